// Throughput of a batch of tiny jobs: the embedded queue against --redis with 1, 2 and 4 worker
// processes (one API process, --workers 0). Prints jobs per minute side by side.
//
//   npm run build:ts && node bench/scale-out.mjs [--jobs 24] [--steps 2] [--size 64] [--workers 1,2,4]
//     [--model file] [--threads n]
//
// Without --model it writes the tiny random checkpoint of the tests (test/fixtures, through tap's
// TypeScript loader, a dev dependency). Needs redis-server on the PATH.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '24' },
    steps: { type: 'string', default: '2' },
    size: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1,2,4' },
    model: { type: 'string' },
    threads: { type: 'string' },
  },
});
const jobs = Number(values.jobs);
const workerCounts = values.workers.split(',').map(Number);
const root = path.resolve(new URL('..', import.meta.url).pathname);
const bin = path.join(root, 'bin', 'sdnode.js');
const scratch = mkdtempSync(path.join(tmpdir(), 'sdnode-scale-out-'));
const threadArgs = values.threads === undefined ? [] : ['--threads', values.threads];

const model = values.model ?? writeTinyCheckpoint(scratch);
const rows = [];
try {
  rows.push({ setup: 'embedded queue (serve --model)', workers: 1, ...await runEmbedded() });
  for (const count of workerCounts) rows.push({ setup: '--redis, API process + workers', workers: count, ...await runRedis(count) });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`\n${jobs} jobs of 1 image, ${values.size}², ${values.steps} steps; ${cpus().length} CPUs; load average at the end ${loadavg()[0].toFixed(1)}\n`);
console.log('| setup | workers | seconds | jobs per minute |\n|---|---|---|---|');
for (const row of rows) console.log(`| ${row.setup} | ${row.workers} | ${row.seconds.toFixed(1)} | ${row.perMinute.toFixed(0)} |`);

async function runEmbedded() {
  const processes = [];
  try {
    const api = await startSdnode(['serve', '--model', model, '--port', '0', '--output', path.join(scratch, 'output'), ...threadArgs], processes);
    return await timeBatch(urlOf(api));
  } finally {
    await stopAll(processes);
  }
}

async function runRedis(workerCount) {
  const processes = [];
  try {
    const redisUrl = await startRedis(processes);
    const api = await startSdnode(['serve', '--redis', redisUrl, '--workers', '0', '--port', '0'], processes);
    await Promise.all(Array.from({ length: workerCount }, () =>
      startSdnode(['worker', '--redis', redisUrl, '--model', model, ...threadArgs], processes)));
    return await timeBatch(urlOf(api));
  } finally {
    await stopAll(processes);
  }
}

// One warm-up job (every worker has loaded the model at start), then the batch, all submitted at once.
async function timeBatch(url) {
  await runJobs(url, 1);
  const started = performance.now();
  await runJobs(url, jobs);
  const seconds = (performance.now() - started) / 1000;
  return { seconds, perMinute: (jobs / seconds) * 60 };
}

async function runJobs(url, count) {
  const resultUrls = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const form = new FormData();
    for (const [name, value] of Object.entries({ prompt: 'a lighthouse', steps: values.steps, width: values.size, height: values.size, seed: String(i) })) {
      form.append(name, value);
    }
    const response = await fetch(`${url}/text-to-image`, { method: 'POST', body: form });
    const body = await response.json();
    if (response.status !== 200) throw new Error(`POST answered ${response.status}: ${JSON.stringify(body)}`);
    return body.resultUrl;
  }));
  for (const resultUrl of resultUrls) {
    for (;;) {
      const status = await (await fetch(`${url}${resultUrl}`)).json();
      if (status.status === 'COMPLETE') break;
      if (status.status === 'FAILED') throw new Error(`${resultUrl} failed: ${JSON.stringify(status.error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function startSdnode(args, processes) {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  processes.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk;
      if (/Press Ctrl\+C to stop/.test(output)) resolve(Object.assign(child, { output: () => output }));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`sdnode ${args[0]} exited with ${code}:\n${output}`)));
  });
}

function urlOf(child) {
  return /listening on (http:\/\/\S+)/.exec(child.output())[1];
}

async function startRedis(processes) {
  const port = await new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = server.address();
      server.close(() => resolve(free));
    });
  });
  const dir = mkdtempSync(path.join(scratch, 'redis-'));
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''], { stdio: 'ignore' });
  processes.push(redis);
  for (let tries = 0; tries < 100; tries++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG') return `redis://127.0.0.1:${port}/0`;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('redis-server did not start');
}

async function stopAll(processes) {
  await Promise.all(processes.reverse().map((child) => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.once('exit', resolve);
    child.kill('SIGKILL');
  })));
}

function writeTinyCheckpoint(dir) {
  const script = `import { writeTinyCheckpoint } from ${JSON.stringify(path.join(root, 'test/fixtures/checkpoint.ts'))};
console.log(await writeTinyCheckpoint(${JSON.stringify(dir)}, { name: 'tiny.safetensors' }));`;
  const child = spawnSync(process.execPath, ['--import=@tapjs/typescript/import', '--input-type=module', '-e', script],
    { cwd: root, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`Could not write the tiny checkpoint (pass --model):\n${child.stderr}`);
  return child.stdout.trim().split('\n').pop();
}
