// Load: many concurrent clients on the routes that do not generate (/health, /v1/models,
// /sdapi/v1/sd-models, /openapi.json, a job's status URL) while generation jobs run on a tiny
// model, with more jobs submitted than the queue holds. Reports the latency of those routes, how
// the queue refuses what is beyond its bound, the server's RSS sampled through the run, the
// machine's load, and whether every accepted job completed exactly once. Loopback only; bounded
// in time and count.
//
//   npm run build:ts && node bench/load.mjs [--connections 1000] [--seconds 20] [--max-queue 20]
//     [--burst 60] [--steps 2] [--size 64] [--model file] [--sdnode dir] [--routes list] [--rate n]
//     [--server-cpus list --client-cpus list]
//     [--rss-every 10] [--warm-up s] [--idle] [--control] [--redis [--kill-after s] [--stall-timeout 6]]
//
//   --sdnode dir      the sdnode package to run (its bin/ and dist/), default this checkout: to
//                     compare two commits with the same bench.
//   --routes list     the paths each connection cycles through, 'job' for the first job's status URL
//                     (default /health,/v1/models,/sdapi/v1/sd-models,/openapi.json,job).
//   --rate n          the clients send n requests per second all together (autocannon's overallRate,
//                     latencies corrected for coordinated omission); without it each connection
//                     sends its next request when the last is answered (a closed loop).
//   --server-cpus, --client-cpus  pin the sdnode processes (and redis-server) and this process
//                     (autocannon, the job submitter) to these CPUs (taskset lists, e.g. 0 and 1).
//   --rss-every s     sample the RSS every s seconds (default 10); the report gives the series,
//                     its start, the first sample after --warm-up s (default a third of the run,
//                     at most 60 s), end, max and the least-squares slope after the warm-up.
//   --idle            one job only, finished before the clients start: the same routes with the
//                     engine idle, to tell its share of the latency from the machine's.
//   --control         no sdnode: the same clients, pinning and --routes against a node:http server
//                     that answers {} at once: the latency this machine gives any server.
//   --redis           a redis-server of its own on a free port, an API process (serve --redis
//                     --workers 0) and two `sdnode worker` processes; after --kill-after s (default
//                     a third of the run) the first worker seen running a job is killed (SIGKILL),
//                     and the other must finish that job after --stall-timeout s.
//
// Every accepted job must end COMPLETE with one image that is served, and the generating
// processes' job log must show each job completed once and its image made at most once (a job
// whose worker died after writing the image and before logging it is resumed without remaking it).
//
// Without --model it writes the tiny random checkpoint of the tests (test/fixtures, through tap's
// TypeScript loader, a dev dependency). --redis needs redis-server on the PATH, pinning taskset.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
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
    steps: { type: 'string', default: '2' },
    size: { type: 'string', default: '64' },
    model: { type: 'string' },
    sdnode: { type: 'string' },
    rate: { type: 'string' },
    routes: { type: 'string', default: '/health,/v1/models,/sdapi/v1/sd-models,/openapi.json,job' },
    'server-cpus': { type: 'string' },
    'client-cpus': { type: 'string' },
    'rss-every': { type: 'string', default: '10' },
    'warm-up': { type: 'string' },
    redis: { type: 'boolean', default: false },
    idle: { type: 'boolean', default: false },
    control: { type: 'boolean', default: false },
    'kill-after': { type: 'string' },
    'stall-timeout': { type: 'string', default: '6' },
  },
});
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const maxQueue = Number(values['max-queue']);
const burst = values.idle ? 1 : Number(values.burst);
if (values.idle && values.redis) throw new Error('--idle measures the embedded server with its engine idle; it does not go with --redis');
const rate = values.rate === undefined ? undefined : Number(values.rate);
const rssEveryMs = Number(values['rss-every']) * 1000;
const warmUpSeconds = values['warm-up'] === undefined ? Math.min(60, seconds / 3) : Number(values['warm-up']);
const killAfterMs = (values['kill-after'] === undefined ? seconds / 3 : Number(values['kill-after'])) * 1000;
const serverCpus = values['server-cpus'];
const root = path.resolve(new URL('..', import.meta.url).pathname);
const sdnodeDir = path.resolve(values.sdnode ?? root);
const scratch = mkdtempSync(path.join(tmpdir(), 'sdnode-load-'));
const processes = [];

if (values['client-cpus'] !== undefined) pinThisProcess(values['client-cpus']);
const model = values.control ? undefined : (values.model ?? writeTinyCheckpoint(scratch));
const uptimeBefore = uptime();
try {
  if (values.control) {
    await runControl();
  } else {
    const { server, generators } = values.redis ? await startRedisSetup() : await startEmbedded();
    await run(server, generators);
  }
} finally {
  for (const child of processes) child.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
}

async function startEmbedded() {
  const server = await startSdnode(['serve', '--model', model, '--host', '127.0.0.1', '--port', '0',
    '--output', path.join(scratch, 'output'), '--max-queue', String(maxQueue), '--threads', '1']);
  return { server, generators: [server] };
}

async function startRedisSetup() {
  const redisUrl = await startRedis();
  const stall = ['--stall-timeout', values['stall-timeout']];
  const workerArgs = ['worker', '--redis', redisUrl, '--model', model, '--threads', '1', ...stall];
  const [server, ...workers] = await Promise.all([
    startSdnode(['serve', '--redis', redisUrl, '--workers', '0', '--host', '127.0.0.1', '--port', '0',
      '--max-queue', String(maxQueue), ...stall]),
    startSdnode(workerArgs),
    startSdnode(workerArgs),
  ]);
  return { server, generators: workers };
}

async function run(server, generators) {
  const { url } = server;
  const loads = [];
  // Jobs waiting, from /health: right after the burst, then every second, marked with the phase.
  const waiting = [];
  let phase = 'burst';
  const sampleQueue = async () => {
    const sampledIn = phase;
    waiting.push({ phase: sampledIn, jobs: (await (await fetch(`${url}/health`)).json()).queue.waiting });
  };
  const loadTimer = setInterval(() => {
    loads.push(loadavg()[0]);
    void sampleQueue();
  }, 1000);
  const rss = sampleRss([server, ...(values.redis ? generators : [])]);

  // A burst beyond the queue's bound, then one job every 500 ms while the clients run (--idle:
  // one job, finished before the clients start).
  const submissions = [];
  const burstAnswers = await Promise.all(Array.from({ length: burst }, () => submit(url)));
  submissions.push(...burstAnswers);
  await sampleQueue();
  const firstJob = burstAnswers.find((answer) => answer.accepted);
  if (!firstJob) throw new Error(`No job accepted: ${JSON.stringify(burstAnswers[0])}`);
  if (values.idle) await waitForJob(firstJob.resultUrl);
  const steady = values.idle ? undefined : setInterval(() => submissions.push(submit(url)), 500);
  const kill = values.redis ? killAWorkerMidJob(generators, submissions) : undefined;

  const routes = values.routes.split(',').map((route) => (route === 'job' ? new URL(firstJob.resultUrl).pathname : route));
  phase = 'clients';
  const { result, cpuBusy } = await runClients(url, routes);
  phase = 'after';
  clearInterval(steady);
  const answers = await Promise.all(submissions);
  const killed = await kill;
  const accepted = answers.filter((answer) => answer.accepted);
  const finals = await Promise.all(accepted.map((answer) => waitForJob(answer.resultUrl)));
  clearInterval(loadTimer);
  const series = rss.stop();

  const statuses = countBy(answers.map((answer) => answer.status));
  const refusals = answers.filter((answer) => !answer.accepted);
  const clearRefusals = refusals.every((answer) => answer.status === 503 && answer.retryAfter !== null && answer.code === 'QUEUE_FULL');
  const ids = accepted.map((answer) => path.basename(new URL(answer.resultUrl).pathname));
  const completed = finals.filter((final) => final.status === 'COMPLETE' && final.imageUrls.length === 1);
  const served = await Promise.all(completed.map((final) => imageServed(new URL(final.imageUrls[0], url).href)));
  const tags = ids.map((id) => id.slice(0, 8));
  // A job's state is stored before its 'complete' line reaches us through the pipe.
  for (let tries = 0; tries < 50 && tags.some((tag) => !readJobLog(generators).completions.has(tag)); tries++) await sleep(100);
  const jobLog = readJobLog(generators);
  const completedOnce = tags.filter((tag) => jobLog.completions.get(tag) === 1).length;
  const madeTwice = tags.filter((tag) => (jobLog.images.get(tag) ?? 0) > 1).length;
  const unknownInLog = [...jobLog.completions.keys()].filter((tag) => !tags.includes(tag)).length;

  printMachine(loads, cpuBusy);
  printRoutes('Non-generating routes', result, routes);
  console.log(`\n## Jobs (M1 POST /text-to-image, ${values.size}², ${values.steps} steps; --max-queue ${maxQueue}; ${values.idle ? 'one job, done before the clients start (--idle)' : `a burst of ${burst}, then one per 500 ms`}; `
    + `${values.redis ? 'serve --redis --workers 0 and two workers' : 'embedded queue'})\n`);
  console.log(`submitted ${answers.length}; answers ${JSON.stringify(statuses)}`);
  console.log(`refused: ${refusals.length}, all 503 QUEUE_FULL with Retry-After: ${clearRefusals}; `
    + `jobs waiting (/health, right after the burst and every second): max ${Math.max(...waiting.map((sample) => sample.jobs))}, `
    + `min while the clients ran ${Math.min(...waiting.filter((sample) => sample.phase === 'clients').map((sample) => sample.jobs))} (above 0: the engine never ran out of work)`);
  console.log(`accepted: ${accepted.length}, distinct ids: ${new Set(ids).size}, COMPLETE with one image: ${completed.length}, `
    + `image served: ${served.filter(Boolean).length}, lost (not COMPLETE): ${accepted.length - completed.length}`);
  console.log(`job log: completed once ${completedOnce}, image made twice ${madeTwice}, completions of jobs never accepted ${unknownInLog}, `
    + `images made ${jobLog.imageSeconds.length}, ${mean(jobLog.imageSeconds).toFixed(2)} s each on average`);
  if (killed) {
    console.log(`\nkilled worker ${killed.victim} (SIGKILL) ${(killed.atMs / 1000).toFixed(1)} s into the run, running job ${killed.tag}; `
      + `the other worker took it up: ${killed.recoveredBy(readJobLog(generators))}; COMPLETE ${(killed.recoveryMs / 1000).toFixed(1)} s after the kill`);
  }
  printRss(series);
  const exactlyOnce = completed.length === accepted.length && new Set(ids).size === accepted.length
    && served.every(Boolean) && completedOnce === accepted.length && madeTwice === 0 && unknownInLog === 0;
  console.log(`\nevery accepted job completed exactly once: ${exactlyOnce}`);
  if (!exactlyOnce || !clearRefusals || waiting.some((sample) => sample.jobs > maxQueue) || (killed && !killed.recoveredBy(readJobLog(generators)))) process.exitCode = 1;
}

/** --control: the same clients against a node:http server that answers {} at once, pinned the same way. */
async function runControl() {
  const server = await whenReady(spawnPinned(process.execPath, ['-e', `
    const server = require('node:http').createServer((req, res) => res.setHeader('content-type', 'application/json').end('{}'));
    server.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + server.address().port + '\\nPress Ctrl+C to stop'));
  `], { stdio: ['ignore', 'pipe', 'pipe'] }), 'node:http');
  const loads = [];
  const loadTimer = setInterval(() => loads.push(loadavg()[0]), 1000);
  const routes = values.routes.split(',').map((route) => (route === 'job' ? '/job' : route));
  const { result, cpuBusy } = await runClients(server.url, routes);
  clearInterval(loadTimer);
  printMachine(loads, cpuBusy);
  printRoutes('Control: a node:http server that answers {} (no sdnode, no engine)', result, routes);
}

async function runClients(url, routes) {
  const cpuBefore = cpuTimes();
  const result = await autocannon({
    url, connections, duration: seconds, timeout: 10, ...(rate === undefined ? {} : { overallRate: rate }),
    requests: routes.map((route) => ({ method: 'GET', path: route })),
  });
  return { result, cpuBusy: busyShare(cpuBefore, cpuTimes()) };
}

function printMachine(loads, cpuBusy) {
  console.log(`\n${cpus().length} CPUs (${cpus()[0].model}); uptime before: ${uptimeBefore}; after: ${uptime()}`);
  console.log(`load average (1 min) during the run: min ${Math.min(...loads).toFixed(2)}, max ${Math.max(...loads).toFixed(2)}; `
    + `CPU busy during the clients' run (whole machine): ${cpuBusy.map((share, cpu) => `cpu${cpu} ${(share * 100).toFixed(0)} %`).join(', ')}`);
  console.log(`pinning: server ${serverCpus ?? 'not pinned'}, load generator ${values['client-cpus'] ?? 'not pinned'}`);
}

function printRoutes(title, result, routes) {
  console.log(`\n## ${title}: ${connections} connections for ${seconds} s, `
    + `${rate === undefined ? 'closed loop' : `${rate} requests/s in all`}, cycling ${routes.join(', ')}\n`);
  console.log('| requests | 2xx | non-2xx | errors | timeouts | req/s (mean) | p50 ms | p90 ms | p99 ms | max ms |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  console.log(`| ${result.requests.total} | ${result['2xx']} | ${result.non2xx} | ${result.errors} | ${result.timeouts} | `
    + `${result.requests.average.toFixed(0)} | ${result.latency.p50} | ${result.latency.p90} | ${result.latency.p99} | ${result.latency.max} |`);
}

async function submit(url) {
  const form = new FormData();
  for (const [name, value] of Object.entries({ prompt: 'a cat', steps: values.steps, width: values.size, height: values.size })) form.append(name, value);
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

async function imageServed(imageUrl) {
  const response = await fetch(imageUrl);
  const bytes = Buffer.from(await response.arrayBuffer());
  return response.ok && bytes.subarray(1, 4).toString('latin1') === 'PNG';
}

/**
 * After --kill-after, kills (SIGKILL) the first worker whose log shows a job started and not yet
 * finished, then times how long until that job is COMPLETE (through the API process).
 */
async function killAWorkerMidJob(workers, submissions) {
  const startedAt = Date.now();
  await sleep(killAfterMs);
  for (;;) {
    const victim = workers.find((worker) => readJobLog([worker]).running.length > 0);
    if (victim) {
      const [tag] = readJobLog([victim]).running;
      victim.kill('SIGKILL');
      const killedAt = Date.now();
      victim.label += ' (killed)';
      const survivor = workers.find((worker) => worker !== victim);
      const recoveredBy = (jobLog) => (jobLog.startsBy.get(tag) ?? []).includes(survivor.pid);
      await waitForJob(await resultUrlOf(tag, submissions));
      return { victim: victim.pid, tag, atMs: killedAt - startedAt, recoveryMs: Date.now() - killedAt, recoveredBy };
    }
    if (Date.now() - startedAt > killAfterMs + 60_000) throw new Error('No worker ran a job within 60 s of --kill-after');
    await sleep(5);
  }
}

// The job log shows 8 characters of an id; the status URL has all of it.
async function resultUrlOf(tag, submissions) {
  for (;;) {
    const match = (await Promise.all(submissions)).find((answer) => answer.accepted && path.basename(answer.resultUrl).startsWith(tag));
    if (match) return match.resultUrl;
    await sleep(50);
  }
}

/** What the generating processes' job log says, per job tag (8 characters of its id). */
function readJobLog(generators) {
  const completions = new Map();
  const images = new Map();
  const startsBy = new Map();
  const running = [];
  const imageSeconds = [];
  for (const child of generators) {
    const open = new Set();
    for (const [, tag, text] of child.output().matchAll(/^\[([\w-]{8})\] (.*)$/gm)) {
      if (/^\w+ ".*": \d+ images?, seed/.test(text)) {
        startsBy.set(tag, [...(startsBy.get(tag) ?? []), child.pid]);
        open.add(tag);
      } else if (/^image \d+\/\d+ done/.test(text)) {
        images.set(tag, (images.get(tag) ?? 0) + 1);
        imageSeconds.push(Number(/done in ([\d.]+) s/.exec(text)[1]));
      } else if (text === 'complete') {
        completions.set(tag, (completions.get(tag) ?? 0) + 1);
        open.delete(tag);
      } else if (/^(failed|stopped)/.test(text)) {
        open.delete(tag);
      }
    }
    running.push(...open);
  }
  return { completions, images, startsBy, running, imageSeconds };
}

/** Samples the RSS of each process every --rss-every (the first is the server); stop() returns the series. */
function sampleRss(children) {
  const startedAt = Date.now();
  const series = [];
  const sample = () => series.push({ seconds: (Date.now() - startedAt) / 1000, mb: children.map((child) => rssMb(child.pid)) });
  sample();
  const timer = setInterval(sample, rssEveryMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { children, series };
    },
  };
}

function printRss({ children, series }) {
  const labels = children.map((child) => child.label);
  const slope = (points) => (points.length > 1 ? slopePerMinute(points).toFixed(2) : '–');
  console.log(`\n## RSS (MB), every ${rssEveryMs / 1000} s; warm-up ${warmUpSeconds.toFixed(0)} s\n`);
  console.log('| process | start | after warm-up | end | max | slope after warm-up (MB/min) | its first half / second half | min–max after warm-up |');
  console.log('|---|---|---|---|---|---|---|---|');
  labels.forEach((label, i) => {
    const points = series.filter((row) => row.mb[i] !== undefined).map((row) => ({ seconds: row.seconds, mb: row.mb[i] }));
    const settled = points.filter((point) => point.seconds >= warmUpSeconds);
    const settledMb = settled.map((point) => point.mb);
    const middle = settled.length > 0 ? (settled[0].seconds + settled.at(-1).seconds) / 2 : 0;
    console.log(`| ${label} | ${points[0].mb.toFixed(0)} | ${settled[0]?.mb.toFixed(0) ?? '–'} | ${points.at(-1).mb.toFixed(0)} | `
      + `${Math.max(...points.map((point) => point.mb)).toFixed(0)} | ${slope(settled)} | `
      + `${slope(settled.filter((point) => point.seconds < middle))} / ${slope(settled.filter((point) => point.seconds >= middle))} | `
      + `${settled.length > 0 ? `${Math.min(...settledMb).toFixed(0)}–${Math.max(...settledMb).toFixed(0)}` : '–'} |`);
  });
  console.log(`\nseries (s: MB of ${labels[0]}): ${series.map((row) => `${row.seconds.toFixed(0)}: ${row.mb[0].toFixed(0)}`).join(', ')}`);
  // GC makes the RSS a saw; the lows of each minute show what stays.
  const minutes = [];
  for (const row of series) (minutes[Math.floor(row.seconds / 60)] ??= []).push(row.mb[0]);
  if (minutes.length > 2) {
    console.log(`per minute (min / mean / max of ${labels[0]}): ${minutes.map((mbs, minute) => `${minute}: ${Math.min(...mbs).toFixed(0)} / `
      + `${mean(mbs).toFixed(0)} / ${Math.max(...mbs).toFixed(0)}`).join(', ')}`);
  }
}

function slopePerMinute(points) {
  const meanX = points.reduce((sum, point) => sum + point.seconds, 0) / points.length;
  const meanY = points.reduce((sum, point) => sum + point.mb, 0) / points.length;
  let covariance = 0;
  let variance = 0;
  for (const point of points) {
    covariance += (point.seconds - meanX) * (point.mb - meanY);
    variance += (point.seconds - meanX) ** 2;
  }
  return (covariance / variance) * 60;
}

function mean(numbers) {
  return numbers.reduce((sum, n) => sum + n, 0) / numbers.length;
}

function countBy(items) {
  const counts = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

/** RSS in MB, or undefined once the process is gone (a killed worker). */
function rssMb(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((row) => row.startsWith('VmRSS:'));
    return Number(/\d+/.exec(line)[0]) / 1024;
  } catch {
    return undefined;
  }
}

/** Per CPU: busy and total jiffies from /proc/stat. */
function cpuTimes() {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter((line) => /^cpu\d+ /.test(line)).map((line) => {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
    return { busy: user + nice + system + irq + softirq + steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
  });
}

function busyShare(before, after) {
  return after.map((cpu, i) => (cpu.busy - before[i].busy) / Math.max(1, cpu.total - before[i].total));
}

function uptime() {
  return spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
}

function taskset(args) {
  const result = spawnSync('taskset', args, { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(`taskset ${args.join(' ')} failed (util-linux; apt-get install util-linux): ${result.error?.message ?? result.stderr}`);
  }
}

/** Pins every thread of this process (autocannon and the job submitter run here) to `list`. */
function pinThisProcess(list) {
  taskset(['-a', '-p', '-c', list, String(process.pid)]);
}

/** Runs `command` pinned to --server-cpus when given; kills it when the bench ends. */
function spawnPinned(command, args, options) {
  if (serverCpus !== undefined) taskset(['-c', serverCpus, 'true']);
  const child = serverCpus === undefined ? spawn(command, args, options) : spawn('taskset', ['-c', serverCpus, command, ...args], options);
  processes.push(child);
  return child;
}

/** Starts `sdnode <args>` and resolves once it says it is ready; its output is kept for the job log and errors. */
function startSdnode(args) {
  const child = spawnPinned(process.execPath, [path.join(sdnodeDir, 'bin', 'sdnode.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return whenReady(child, `sdnode ${args[0]}`);
}

/** Resolves once `child` prints "Press Ctrl+C to stop", with its output, URL and a label added. */
function whenReady(child, label) {
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk;
      if (/Press Ctrl\+C to stop/.test(output)) {
        resolve(Object.assign(child, { output: () => output, url: /listening on (http:\/\/\S+)/.exec(output)?.[1], label }));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`${label} exited (${code ?? signal}):\n${output}`)));
  });
}

async function startRedis() {
  const port = await new Promise((resolve, reject) => {
    const server = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port: free } = server.address();
      server.close(() => resolve(free));
    });
  });
  const dir = mkdtempSync(path.join(scratch, 'redis-'));
  spawnPinned('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' }).once('error', (error) => {
    console.error(`redis-server could not start (${error.message}); install it (apt-get install redis-server)`);
    process.exit(1);
  });
  for (let tries = 0; tries < 100; tries++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG') return `redis://127.0.0.1:${port}/0`;
    await sleep(100);
  }
  throw new Error('redis-server did not start');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The tests' tiny random checkpoint, written by their fixture script through tap's TypeScript loader. */
function writeTinyCheckpoint(dir) {
  const child = spawnSync(process.execPath, ['--import=@tapjs/typescript/import', 'test/fixtures/write-tiny-checkpoint.ts', dir],
    { cwd: root, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`Could not write the tiny checkpoint (pass --model):\n${child.stderr}`);
  return child.stdout.trim().split('\n').pop();
}
