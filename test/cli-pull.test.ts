// `sdnode pull`, `sdnode models`, `sdnode rm` and `--model <ref>` as a user runs them, against a hub on
// the loopback interface (test/fixtures/fake-hub.ts). Nothing reaches the internet.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { main } from '../server/cli.js';
import { pullWithProgress } from '../server/cli/pull.js';
import { tinyCheckpointBytes } from './fixtures/checkpoint.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { serveFluxSchnellQ4, startFakeHub } from './fixtures/fake-hub.js';
import { exitCode, getJson, outputTestdir, spawnCli, waitFor, waitForOutput } from './server-helpers.js';

const hub = await startFakeHub();
t.teardown(() => hub.close());
const saved = { endpoint: process.env.SDNODE_HF_ENDPOINT, models: process.env.SDNODE_MODELS };
process.env.SDNODE_HF_ENDPOINT = hub.endpoint;
t.teardown(() => {
  for (const [name, value] of [['SDNODE_HF_ENDPOINT', saved.endpoint], ['SDNODE_MODELS', saved.models]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const checkpoint = tinyCheckpointBytes();
hub.files.set('someone/tiny/main/tiny.safetensors', { bytes: checkpoint });
hub.files.set('stabilityai/sd-turbo/main/sd_turbo.safetensors', { bytes: checkpoint });

async function run(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const logs = t.capture(console, 'log');
  const errors = t.capture(console, 'error');
  const code = await main(args);
  return { code, output: [...logs(), ...errors()].map((call) => call.args.join(' ')).join('\n') };
}

t.test('pull downloads a reference, models lists it with where it came from, rm deletes it', async (t) => {
  const dir = t.testdir();
  const pulled = await run(t, ['pull', 'hf:someone/tiny/tiny.safetensors', 'sd-turbo', '--models', dir]);
  t.equal(pulled.code, 0, pulled.output);
  t.match(pulled.output, /hf:someone\/tiny\/tiny\.safetensors: ready as tiny \(.*tiny\.safetensors\)/);
  t.match(pulled.output, /sd-turbo: ready as sd-turbo \(.*sd-turbo\.safetensors\)/);
  t.ok((await readFile(path.join(dir, 'sd-turbo.safetensors'))).equals(checkpoint));

  const listed = await run(t, ['models', '--models', dir]);
  t.equal(listed.code, 0, listed.output);
  t.match(listed.output, /^sd-turbo +[\d.]+ MB +SD 2\.x +sd-turbo$/m, 'a catalogue model has its family');
  t.match(listed.output, /^tiny +[\d.]+ MB +- +hf:someone\/tiny\/tiny\.safetensors$/m);

  const removed = await run(t, ['rm', 'tiny', '--models', dir]);
  t.equal(removed.code, 0, removed.output);
  t.same((await readdir(dir)).sort(), ['sd-turbo.safetensors', 'sd-turbo.safetensors.source.json']);
  const unknown = await run(t, ['rm', 'tiny', '--models', dir]);
  t.equal(unknown.code, 2);
  t.match(unknown.output, /No model tiny in .*sdnode models lists them/);
});

t.test('on a terminal the bar shows the bytes, the speed and the time left', async (t) => {
  const written: string[] = [];
  const terminal = { isTTY: true, columns: 160, write: (text: string) => written.push(text) };
  const pulled = await pullWithProgress('hf:someone/tiny/tiny.safetensors', t.testdir(), '<ref>', terminal);
  t.equal(typeof pulled, 'object');
  const screen = written.join('');
  t.match(screen, /Downloading tiny\.safetensors, 6\.2 MB\n/);
  t.match(screen, /tiny\.safetensors ▕█{24}▏ 6\.2 MB\/6\.2 MB {2}[\d.]+ [KMG]B\/s {2}ETA 0:00/);
});

t.test('models --catalogue lists the names pull knows, with licence and whether they are gated', async (t) => {
  const { code, output } = await run(t, ['models', '--catalogue']);
  t.equal(code, 0, output);
  for (const name of ['sd-turbo', 'sdxl-turbo', 'sd15', 'flux-schnell-q4', 'z-image-turbo']) t.match(output, new RegExp(`^${name} `, 'm'));
  t.match(output, /^flux-schnell-q4 +FLUX\.1 schnell +Apache-2\.0/m);
  t.match(output, /^z-image-turbo +Z-Image +Apache-2\.0/m);
});

t.test('a model of several files is pulled whole and listed as one model', async (t) => {
  serveFluxSchnellQ4(hub);
  const dir = t.testdir();
  t.equal((await run(t, ['pull', 'flux-schnell-q4', '--models', dir])).code, 0);
  const listed = await run(t, ['models', '--models', dir]);
  t.match(listed.output, /^flux-schnell-q4 +[\d.]+ KB +FLUX\.1 schnell +flux-schnell-q4$/m);
  t.equal(listed.output.split('\n').length, 3, 'one heading, one model');
  t.equal((await run(t, ['rm', 'flux-schnell-q4', '--models', dir])).code, 0);
  t.same(await readdir(dir), []);
});

t.test('Ctrl-C during a pull keeps a .part that the next pull resumes', async (t) => {
  hub.files.set('someone/slow/main/slow.safetensors', { bytes: checkpoint, stallAfter: 500_000 });
  const dir = t.testdir();
  const child = spawnCli(['pull', 'hf:someone/slow/slow.safetensors', '--models', dir]);
  t.teardown(() => child.kill('SIGKILL'));
  const part = path.join(dir, 'slow.safetensors.part');
  await waitFor(async () => (await stat(part).catch(() => undefined))?.size === 500_000, 60_000);
  child.kill('SIGINT');
  t.equal(await exitCode(child), 130);
  t.match(child.output(), /stopped; the unfinished download stays .* run sdnode pull hf:someone\/slow\/slow\.safetensors to resume it/);
  t.same(await readdir(dir), ['slow.safetensors.part'], 'nothing under the model\'s own name');

  const resumed = await run(t, ['pull', 'hf:someone/slow/slow.safetensors', '--models', dir]);
  t.equal(resumed.code, 0, resumed.output);
  t.ok((await readFile(path.join(dir, 'slow.safetensors'))).equals(checkpoint));
  const ranges = hub.requests.filter((r) => r.server === 'cdn' && r.path.includes('slow')).map((r) => r.headers.range);
  t.same(ranges, [undefined, 'bytes=500000-']);
});

t.test('rm of a reference removes its unfinished download', async (t) => {
  hub.files.set('someone/cut/main/cut.safetensors', { bytes: checkpoint, dropAfter: 300_000 });
  const dir = t.testdir();
  const failed = await run(t, ['pull', 'hf:someone/cut/cut.safetensors', '--models', dir]);
  t.equal(failed.code, 1);
  t.match(failed.output, /pull again to resume it/);
  t.same(await readdir(dir), ['cut.safetensors.part']);
  t.equal((await run(t, ['rm', 'hf:someone/cut/cut.safetensors', '--models', dir])).code, 0);
  t.same(await readdir(dir), []);
});

t.test('pull errors: a gated model says to set HF_TOKEN, a missing one names the reference, a bad one is a usage error', async (t) => {
  hub.files.set('corp/gated/main/gated.safetensors', { bytes: Buffer.from('x'), token: 'hf_secret' });
  const dir = t.testdir();
  const gated = await run(t, ['pull', 'hf:corp/gated/gated.safetensors', '--models', dir]);
  t.equal(gated.code, 1);
  t.match(gated.output, /gated.*HF_TOKEN/);
  const missing = await run(t, ['pull', 'hf:corp/gated/none.safetensors', '--models', dir]);
  t.match(missing.output, /hf:corp\/gated\/none\.safetensors: not found \(404\)/);
  const bad = await run(t, ['pull', 'hf:corp', '--models', dir]);
  t.equal(bad.code, 2);
  t.match(bad.output, /hf:<owner>\/<repo>\/<file>/);
  t.same(await readdir(dir), []);
});

t.test('generate --model <ref> refuses to download without --pull and pulls with it', async (t) => {
  process.env.SDNODE_MODELS = t.testdir();
  t.teardown(() => { delete process.env.SDNODE_MODELS; });
  const out = path.join(t.testdir(), 'cat.png');
  const args = ['generate', '-m', 'hf:someone/tiny/tiny.safetensors', '-p', 'a cat', '-W', '64', '-H', '64', '--steps', '1',
    '--backend', 'cpu', '--threads', '1', '-o', out];
  const refused = await run(t, args);
  t.equal(refused.code, 2);
  t.match(refused.output, /--model hf:someone\/tiny\/tiny\.safetensors is not downloaded yet: run sdnode pull hf:someone\/tiny\/tiny\.safetensors first, or add --pull/);
  t.same(await readdir(process.env.SDNODE_MODELS), [], 'nothing downloaded unasked');
  const made = await run(t, [...args, '--pull']);
  t.equal(made.code, 0, made.output);
  const meta = await sharp(out).metadata();
  t.same([meta.width, meta.height], [64, 64]);
});

t.test('serve without a model pulls the catalogue default with --pull and serves it', async (t) => {
  const refused = await run(t, ['serve', '--model', 'sd15', '--port', '0']);
  t.equal(refused.code, 2);
  t.match(refused.output, /--model sd15 is not downloaded yet: run sdnode pull sd15 first, or add --pull/);

  const models = t.testdir();
  const child = spawnCli(['--pull', '--port', '0', '--output', outputTestdir(t), '--threads', '1', '--backend', 'cpu'], { SDNODE_MODELS: models });
  t.teardown(() => child.kill('SIGKILL'));
  const [, url] = await waitForOutput(child, /listening on (http:\/\/\S+)/);
  t.match((await getJson(`${url}/health`)).body, { ready: true });
  t.ok((await readFile(path.join(models, 'sd-turbo.safetensors'))).equals(checkpoint));
  child.kill('SIGTERM');
  t.equal(await exitCode(child), 0);
});

t.test('worker --model takes a reference as serve does; --allow-pull is refused beside --redis', async (t) => {
  const models = t.testdir();
  const refused = await run(t, ['worker', '--redis', 'redis://127.0.0.1:1/0', '--model', 'sd15', '--models', models]);
  t.equal(refused.code, 2);
  t.match(refused.output, /--model sd15 is not downloaded yet: run sdnode pull sd15 first, or add --pull/);
  t.same(await readdir(models), [], 'nothing downloaded unasked');
  const withRedis = await run(t, ['serve', '--redis', 'redis://127.0.0.1:1/0', '--allow-pull', '--models', models]);
  t.equal(withRedis.code, 2);
  t.match(withRedis.output, /--allow-pull applies to models this process loads; with --redis the workers load them/);
});

t.test('generate takes references for component files: --vae hf:… is refused without --pull and pulled with it', async (t) => {
  const dir = t.testdir();
  const files = await writeTinyFlux(path.join(dir, 'made'));
  hub.files.set('someone/tiny-flux/main/ae.safetensors', { bytes: await readFile(files.vae) });
  process.env.SDNODE_MODELS = path.join(dir, 'models');
  t.teardown(() => { delete process.env.SDNODE_MODELS; });
  const out = path.join(dir, 'cat.png');
  const args = ['generate', '--diffusion-model', files.diffusionModel, '--clip-l', files.clipL, '--t5xxl', files.t5xxl,
    '--vae', 'hf:someone/tiny-flux/ae.safetensors', '--t5-tokenizer', files.t5Tokenizer, '-p', 'a cat', '-W', '64', '-H', '64',
    '--steps', '1', '--backend', 'cpu', '--threads', '1', '-o', out];
  const refused = await run(t, args);
  t.equal(refused.code, 2);
  t.match(refused.output, /--vae hf:someone\/tiny-flux\/ae\.safetensors is not downloaded yet: run sdnode pull hf:someone\/tiny-flux\/ae\.safetensors first, or add --pull/);
  const made = await run(t, [...args, '--pull']);
  t.equal(made.code, 0, made.output);
  t.ok((await readFile(path.join(process.env.SDNODE_MODELS, 'ae.safetensors'))).equals(await readFile(files.vae)), 'the VAE was pulled');
  const meta = await sharp(out).metadata();
  t.same([meta.width, meta.height], [64, 64]);
});
