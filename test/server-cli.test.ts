// The sdnode command line, run in a child process as a user would.

import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import t, { type Test } from 'tap';

import { main } from '../server/cli.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTinySafetyChecker } from './fixtures/safety-checker.js';
import { exitCode, getJson, outputTestdir, spawnCli, waitForOutput } from './server-helpers.js';

/** Runs main() in this process (for commands that do not start a server); returns code and output. */
async function runMain(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const logs = t.capture(console, 'log');
  const errors = t.capture(console, 'error');
  const code = await main(args);
  const output = [...logs(), ...errors()].map((call) => call.args.join(' ')).join('\n');
  return { code, output };
}

t.test('sdnode --help explains every option', async (t) => {
  const { code, output: help } = await runMain(t, ['--help']);
  t.equal(code, 0);
  for (const option of ['--model', '--port', '--host', '--concurrency', '--output', '--cert', '--key',
    '--delete-incomplete', '--threads', '--backend', '--prediction', '--weight-type', '--max-queue', '--max-upload-mb', '--models', '--max-loaded', '--api', '--api-key', '--presets', '--url-ttl', '--safety-checker', '--help', '--version']) {
    t.match(help, new RegExp(`^ +(-\\w, )?${option}\\b.*\\S`, 'm'), option);
  }
  t.match(help, /default 8888/);
  t.match(help, /sdnode build +compile the native addon/);
});

t.test('sdnode --version prints the package version', async (t) => {
  const { code, output } = await runMain(t, ['--version']);
  t.equal(code, 0);
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(output, version);
});

t.test('an unknown option or a malformed number is a usage error with exit code 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--nope'], /Unknown option '--nope'/],
    [['serve', '--port', '12abc'], /Expected an integer for --port but received "12abc"/],
    [['--concurrency', '0'], /between 1 and 64 for --concurrency/],
    [['--backend', 'opencl'], /Expected one of auto, cpu, metal, cuda for --backend/],
    [['--weight-type', 'q9'], /Expected one of auto, f32, f16, q8_0, .*, q2_k for --weight-type but received q9/],
    [['--prediction', 'x0'], /Expected one of auto, eps, v for --prediction but received x0/],
    [['--cert', 'cert.pem'], /HTTPS needs both --cert and --key/],
    [['frobnicate'], /Unknown command frobnicate/],
    [['--api', 'm1,sdapi'], /Expected a comma-separated list of m1, openai, a1111, tasks, photoshop, generate, comfyui, sdcpp for --api but received m1,sdapi/],
    [['--max-loaded', '0'], /between 1 and 64 for --max-loaded/],
    [['--url-ttl', 'soon'], /Expected an integer for --url-ttl/],
    [['--api-prefix', 'sd/'], /Expected a path such as \/sd for --api-prefix .* but received "sd\/"/],
  ];
  for (const [args, message] of cases) {
    const { code, output } = await runMain(t, args);
    t.equal(code, 2, args.join(' '));
    t.match(output, message, args.join(' '));
    t.match(output, /sdnode --help/, args.join(' '));
  }
});

t.test('with no subcommand sdnode serves, and SIGTERM stops it cleanly', async (t) => {
  const child = spawnCli(['--port', '0', '--output', outputTestdir(t)]);
  t.teardown(() => child.kill('SIGKILL'));
  await waitForOutput(child, /No model loaded: generation requests answer 503/);
  const url = /listening on (http:\/\/\S+)/.exec(child.output())?.[1];
  t.match((await getJson(`${url}/health`)).body, { ready: false });
  child.kill('SIGTERM');
  t.equal(await exitCode(child), 0);
  t.match(child.output(), /SIGTERM: finishing the current image/);
});

t.test('SDNODE_API_KEYS protects the server; a public --host without a key is warned about', async (t) => {
  const child = spawnCli(['--port', '0', '--output', outputTestdir(t), '--api-key', 'one'], { SDNODE_API_KEYS: 'two, three' });
  t.teardown(() => child.kill('SIGKILL'));
  await waitForOutput(child, /listening on/);
  const url = /listening on (http:\/\/\S+)/.exec(child.output())?.[1];
  t.notMatch(child.output(), /without an API key/);
  for (const [key, status] of [['one', 200], ['three', 200], ['four', 401]] as const) {
    t.equal((await getJson(`${url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status, status, key);
  }
  child.kill('SIGTERM');
  await exitCode(child);

  const open = spawnCli(['--port', '0', '--host', '0.0.0.0', '--output', outputTestdir(t)]);
  t.teardown(() => open.kill('SIGKILL'));
  await waitForOutput(open, /listening on/);
  for (const api of ['m1', 'openai', 'a1111', 'tasks', 'photoshop', 'generate', 'comfyui', 'sdcpp']) {
    t.match(open.output(), new RegExp(`warning: the ${api} API is open on 0\\.0\\.0\\.0 without an API key`), api);
  }
  open.kill('SIGTERM');
  await exitCode(open);
});

t.test('--weight-type and --prediction reach the model the server loads', async (t) => {
  const dir = outputTestdir(t);
  const model = await writeTinyCheckpoint(dir, { dtype: 'f16' });
  const loaded = async (args: string[]): Promise<{ prediction: string; megabytes: number }> => {
    const child = spawnCli(['--model', model, '--port', '0', '--output', dir, '--backend', 'cpu', '--threads', '1', ...args]);
    t.teardown(() => child.kill('SIGKILL'));
    await waitForOutput(child, /listening on/);
    const match = /Loaded [^:]+\.safetensors: SD 1\.x, (\w+) prediction, ([\d.]+) MB of weights on cpu/.exec(child.output());
    child.kill('SIGTERM');
    t.equal(await exitCode(child), 0);
    t.ok(match, `a line tells what was loaded: ${child.output()}`);
    return { prediction: match?.[1] ?? '', megabytes: Number(match?.[2]) };
  };
  const asStored = await loaded([]);
  const converted = await loaded(['--weight-type', 'Q8_0', '--prediction', 'v']);
  t.equal(asStored.prediction, 'eps');
  t.equal(converted.prediction, 'v');
  t.ok(converted.megabytes < asStored.megabytes, `q8_0 ${converted.megabytes} MB < f16 ${asStored.megabytes} MB`);
});

t.test('a model that cannot be loaded stops the start with exit code 1', async (t) => {
  const dir = outputTestdir(t);
  const { code, output } = await runMain(t, ['serve', '--model', `${dir}/missing.safetensors`, '--port', '0', '--output', dir]);
  t.equal(code, 1);
  t.match(output, /could not start the server: .*missing\.safetensors/);
});

t.test('--safety-checker loads the checker at start; a file that is not one stops the start', async (t) => {
  const dir = outputTestdir(t);
  const checker = await writeTinySafetyChecker(dir);
  const child = spawnCli(['--port', '0', '--output', dir, '--backend', 'cpu', '--safety-checker', checker]);
  t.teardown(() => child.kill('SIGKILL'));
  await waitForOutput(child, /listening on/);
  t.match(child.output(), /Loaded safety checker tiny-safety-checker-never-seed1\.safetensors \(17 concepts\)/);
  child.kill('SIGTERM');
  t.equal(await exitCode(child), 0);
  const model = await writeTinyCheckpoint(dir);
  const { code, output } = await runMain(t, ['serve', '--safety-checker', model, '--port', '0', '--output', dir]);
  t.equal(code, 1);
  t.match(output, /could not start the server: .*not a Stable Diffusion safety checker/);
});

t.test('sdnode build runs npm run build:native in the package folder and passes on its exit code', {
  skip: process.platform === 'win32' && 'uses a shell script as a stand-in for npm',
}, async (t) => {
  const dir = t.testdir({ npm: '#!/bin/sh\necho "$PWD|$*" > "$SDNODE_TEST_NPM_LOG"\nexit 3\n' });
  chmodSync(path.join(dir, 'npm'), 0o755);
  const { PATH } = process.env;
  t.teardown(() => {
    process.env.PATH = PATH;
    delete process.env.SDNODE_TEST_NPM_LOG;
  });
  process.env.PATH = `${dir}${path.delimiter}${PATH ?? ''}`;
  process.env.SDNODE_TEST_NPM_LOG = path.join(dir, 'npm.log');
  t.equal(await main(['build']), 3);
  const packageRoot = path.dirname(fileURLToPath(new URL('../package.json', import.meta.url)));
  t.equal(readFileSync(path.join(dir, 'npm.log'), 'utf8'), `${packageRoot}|run build:native\n`);
});
