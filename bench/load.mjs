// Load: many concurrent clients on the routes that do not generate (/health, /v1/models,
// /sdapi/v1/sd-models, /openapi.json, a job's status URL) while generation jobs run on a tiny
// model, with more jobs submitted than the queue holds. Reports the latency of those routes, how
// the queue refuses what is beyond its bound, RSS at start and end, the machine's load, and
// whether every accepted job completed exactly once. Loopback only; bounded in time and count.
//
//   npm run build:ts && node bench/load.mjs [--connections 1000] [--seconds 20] [--max-queue 20]
//     [--burst 60] [--model file]
//
// Without --model it writes the tiny random checkpoint of the tests (test/fixtures, through tap's
// TypeScript loader, a dev dependency).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import autocannon from 'autocannon';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    'max-queue': { type: 'string', default: '20' },
    burst: { type: 'string', default: '60' },
    model: { type: 'string' },
  },
});
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const maxQueue = Number(values['max-queue']);
const burst = Number(values.burst);
const root = path.resolve(new URL('..', import.meta.url).pathname);
const scratch = mkdtempSync(path.join(tmpdir(), 'sdnode-load-'));
const outputDir = path.join(scratch, 'output');

const model = values.model ?? writeTinyCheckpoint(scratch);
const server = await startServer(['serve', '--model', model, '--host', '127.0.0.1', '--port', '0', '--output', outputDir,
  '--max-queue', String(maxQueue), '--threads', '1']);
try {
  const { url } = server;
  const rssStartMb = rssMb(server.pid);
  const loads = [];
  const loadTimer = setInterval(() => loads.push(loadavg()[0]), 1000);

  // A burst beyond the queue's bound, then one job every 500 ms while the clients run.
  const submissions = [];
  const burstAnswers = await Promise.all(Array.from({ length: burst }, () => submit(url)));
  submissions.push(...burstAnswers);
  const firstJob = burstAnswers.find((answer) => answer.accepted);
  if (!firstJob) throw new Error(`No job accepted: ${JSON.stringify(burstAnswers[0])}`);
  const steady = setInterval(() => submissions.push(submit(url)), 500);

  const routes = ['/health', '/v1/models', '/sdapi/v1/sd-models', '/openapi.json', new URL(firstJob.resultUrl).pathname];
  const result = await autocannon({
    url, connections, duration: seconds, timeout: 10,
    requests: routes.map((route) => ({ method: 'GET', path: route })),
  });
  clearInterval(steady);
  const answers = await Promise.all(submissions);
  const accepted = answers.filter((answer) => answer.accepted);
  const finals = await Promise.all(accepted.map((answer) => waitForJob(answer.resultUrl)));
  clearInterval(loadTimer);
  const rssEndMb = rssMb(server.pid);

  const statuses = countBy(answers.map((answer) => answer.status));
  const refusals = answers.filter((answer) => !answer.accepted);
  const clearRefusals = refusals.every((answer) => answer.status === 503 && answer.retryAfter !== null && answer.code === 'QUEUE_FULL');
  const jobIds = accepted.map((answer) => answer.resultUrl);
  const completed = finals.filter((final) => final.status === 'COMPLETE' && final.imageUrls.length === 1);
  const folders = readdirSync(outputDir).filter((name) => name !== '.url-secret');
  const images = folders.flatMap((folder) => readdirSync(path.join(outputDir, folder)).filter((name) => /^\d+\.png$/.test(name)));

  console.log(`\n${cpus().length} CPUs (${cpus()[0].model}); load average during the run: `
    + `min ${Math.min(...loads).toFixed(1)}, max ${Math.max(...loads).toFixed(1)}`);
  console.log(`\n## Non-generating routes: ${connections} connections for ${seconds} s, cycling ${routes.join(', ')}\n`);
  console.log('| requests | 2xx | non-2xx | errors | timeouts | req/s (mean) | p50 ms | p90 ms | p99 ms | max ms |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  console.log(`| ${result.requests.total} | ${result['2xx']} | ${result.non2xx} | ${result.errors} | ${result.timeouts} | `
    + `${result.requests.average.toFixed(0)} | ${result.latency.p50} | ${result.latency.p90} | ${result.latency.p99} | ${result.latency.max} |`);
  console.log(`\n## Jobs (M1 POST /text-to-image, 64², 2 steps; --max-queue ${maxQueue}; a burst of ${burst}, then one per 500 ms)\n`);
  console.log(`submitted ${answers.length}; answers ${JSON.stringify(statuses)}`);
  console.log(`refused: ${refusals.length}, all 503 QUEUE_FULL with Retry-After: ${clearRefusals}`);
  console.log(`accepted: ${accepted.length}, distinct ids: ${new Set(jobIds).size}, completed with one image: ${completed.length}, `
    + `job folders: ${folders.length}, images written: ${images.length}`);
  console.log(`\nRSS of the server: ${rssStartMb.toFixed(0)} MB at start, ${rssEndMb.toFixed(0)} MB at the end`);
  const exactlyOnce = completed.length === accepted.length && new Set(jobIds).size === accepted.length
    && folders.length === accepted.length && images.length === accepted.length;
  console.log(`every accepted job completed exactly once: ${exactlyOnce}`);
  if (!exactlyOnce || !clearRefusals) process.exitCode = 1;
} finally {
  server.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
}

async function submit(url) {
  const form = new FormData();
  for (const [name, value] of Object.entries({ prompt: 'a cat', steps: '2', width: '64', height: '64' })) form.append(name, value);
  const response = await fetch(`${url}/text-to-image`, { method: 'POST', body: form });
  const body = await response.json();
  return {
    status: response.status, accepted: response.ok, resultUrl: body.resultUrl ? new URL(body.resultUrl, url).href : undefined,
    code: body.error?.code, retryAfter: response.headers.get('retry-after'),
  };
}

async function waitForJob(resultUrl) {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const body = await (await fetch(resultUrl)).json();
    if (body.status === 'COMPLETE' || body.status === 'FAILED') return body;
    if (Date.now() > deadline) throw new Error(`${resultUrl} did not finish: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function countBy(items) {
  const counts = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

function rssMb(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((row) => row.startsWith('VmRSS:'));
  return Number(/\d+/.exec(line)[0]) / 1024;
}

/** Starts sdnode and resolves once /health answers; the child's output is kept for errors. */
async function startServer(args) {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'sdnode.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  for (let tries = 0; tries < 600; tries++) {
    const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
    if (url && (await fetch(`${url}/health`).catch(() => undefined))?.ok) return Object.assign(child, { url });
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`sdnode did not start:\n${output}`);
}

/** The tests' tiny random checkpoint, written by their fixture script through tap's TypeScript loader. */
function writeTinyCheckpoint(dir) {
  const child = spawnSync(process.execPath, ['--import=@tapjs/typescript/import', 'test/fixtures/write-tiny-checkpoint.ts', dir],
    { cwd: root, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`Could not write the tiny checkpoint (pass --model):\n${child.stderr}`);
  return child.stdout.trim().split('\n').pop();
}
