// pullModel and loadModel's `pull` against a hub on the loopback interface (test/fixtures/fake-hub.ts):
// redirects, resumed downloads, checksums, gated and missing files. Nothing reaches the internet.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { findPulledModel, loadModel, pullModel, SdnodeError, type PullProgress } from '../lib/index.js';
import { tinyCheckpointBytes } from './fixtures/checkpoint.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { cpu } from './fixtures/draw.js';
import { serveFluxSchnellQ4, startFakeHub } from './fixtures/fake-hub.js';
import { writeTinyZImage } from './fixtures/z-image.js';

const hub = await startFakeHub();
t.teardown(() => hub.close());
const savedEnv = { endpoint: process.env.SDNODE_HF_ENDPOINT, models: process.env.SDNODE_MODELS, token: process.env.HF_TOKEN };
process.env.SDNODE_HF_ENDPOINT = hub.endpoint;
delete process.env.HF_TOKEN;
t.teardown(() => {
  for (const [name, value] of [['SDNODE_HF_ENDPOINT', savedEnv.endpoint], ['SDNODE_MODELS', savedEnv.models], ['HF_TOKEN', savedEnv.token]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const checkpoint = tinyCheckpointBytes();

async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true }).catch(() => [])).sort();
}

t.test('pulls an hf: reference through the hub redirect, and the file loads and generates', async (t) => {
  hub.files.set('someone/tiny/main/tiny.safetensors', { bytes: checkpoint });
  const modelsDir = t.testdir();
  const progress: PullProgress[] = [];
  const pulled = await pullModel('hf:someone/tiny/tiny.safetensors', { modelsDir, onProgress: (p) => progress.push(p) });
  t.same(pulled, { name: 'tiny', path: path.join(modelsDir, 'tiny.safetensors') });
  t.ok((await readFile(pulled.path)).equals(checkpoint), 'the file is the hub\'s bytes');
  t.same(progress.at(-1), { file: 'tiny.safetensors', index: 1, files: 1, receivedBytes: checkpoint.length, totalBytes: checkpoint.length, resumedFromBytes: 0 });
  const source = JSON.parse(await readFile(`${pulled.path}.source.json`, 'utf8')) as { reference: string };
  t.equal(source.reference, 'hf:someone/tiny/tiny.safetensors', 'a sidecar says where it came from');

  const model = await loadModel(pulled.path, cpu);
  t.teardown(() => model.close());
  const [image] = await model.textToImage({ prompt: 'a cat', width: 64, height: 64, steps: 1, seed: 1 });
  const meta = await sharp(image!.png).metadata();
  t.same([meta.width, meta.height], [64, 64]);
});

t.test('a revision after @ picks that revision\'s file', async (t) => {
  hub.files.set('someone/tiny/v2/tiny-v2.safetensors', { bytes: Buffer.from('revision two') });
  const modelsDir = t.testdir();
  await t.rejects(pullModel('hf:someone/tiny/tiny-v2.safetensors', { modelsDir }), { code: 'ERR_MODEL_NOT_FOUND' });
  const pulled = await pullModel('hf:someone/tiny/tiny-v2.safetensors@v2', { modelsDir });
  t.equal(await readFile(pulled.path, 'utf8'), 'revision two');
});

t.test('a connection dropped mid-file leaves only a .part, and the next pull resumes it with a Range request', async (t) => {
  hub.files.set('someone/drop/main/drop.safetensors', { bytes: checkpoint, dropAfter: 1_000_000 });
  const modelsDir = t.testdir();
  const ref = 'hf:someone/drop/drop.safetensors';
  await t.rejects(pullModel(ref, { modelsDir }), { code: 'ERR_DOWNLOAD', message: /pull again to resume/ });
  t.same(await filesIn(modelsDir), ['drop.safetensors.part'], 'nothing under the model\'s own name');
  // The part holds what arrived before the cut: some, not all (the rest was still in flight).
  const partBytes = (await stat(path.join(modelsDir, 'drop.safetensors.part'))).size;
  t.ok(partBytes > 0 && partBytes <= 1_000_000, `the part holds ${partBytes} bytes`);
  t.equal(await findPulledModel(ref, { modelsDir }), undefined, 'a partial download is not a model');

  const progress: PullProgress[] = [];
  const pulled = await pullModel(ref, { modelsDir, onProgress: (p) => progress.push(p) });
  t.ok((await readFile(pulled.path)).equals(checkpoint), 'the resumed file is whole and right');
  t.equal(progress[0]!.resumedFromBytes, partBytes);
  const cdnRequests = hub.requests.filter((r) => r.server === 'cdn' && r.path.includes('drop.safetensors'));
  t.same(cdnRequests.map((r) => r.headers.range), [undefined, `bytes=${partBytes}-`]);
  t.same(await filesIn(modelsDir), ['drop.safetensors', 'drop.safetensors.source.json']);
});

t.test('a wrong checksum is an error and leaves no file that looks complete', async (t) => {
  hub.files.set('someone/bad/main/bad.safetensors', { bytes: checkpoint, announcedSha256: 'ab'.repeat(32) });
  const modelsDir = t.testdir();
  await t.rejects(pullModel('hf:someone/bad/bad.safetensors', { modelsDir }), { code: 'ERR_CHECKSUM', message: /sha256 .* does not match/ });
  t.same(await filesIn(modelsDir), []);
  await t.rejects(loadModel('hf:someone/bad/bad.safetensors', cpu), { code: 'ERR_MODEL_NOT_PULLED' });
});

t.test('a plain URL is checked against its ETag', async (t) => {
  hub.files.set('direct.safetensors', { bytes: Buffer.from('direct bytes') });
  hub.files.set('wrong.safetensors', { bytes: Buffer.from('other bytes'), announcedSha256: 'cd'.repeat(32) });
  const modelsDir = t.testdir();
  const pulled = await pullModel(`${hub.cdn}/cdn/direct.safetensors`, { modelsDir });
  t.equal(await readFile(pulled.path, 'utf8'), 'direct bytes');
  await t.rejects(pullModel(`${hub.cdn}/cdn/wrong.safetensors`, { modelsDir }), { code: 'ERR_CHECKSUM' });
  t.same(await filesIn(modelsDir), ['direct.safetensors', 'direct.safetensors.source.json']);
});

t.test('a gated model answers 401 without a token: the error says to accept the licence and set HF_TOKEN', async (t) => {
  hub.files.set('corp/gated/main/gated.safetensors', { bytes: Buffer.from('gated bytes'), token: 'hf_secret' });
  const modelsDir = t.testdir();
  const error = await pullModel('hf:corp/gated/gated.safetensors', { modelsDir }).catch((e: unknown) => e);
  t.type(error, SdnodeError);
  t.match(error, { code: 'ERR_MODEL_GATED', message: /gated.*licence.*HF_TOKEN/ });
  t.same(await filesIn(modelsDir), []);

  process.env.HF_TOKEN = 'hf_secret';
  t.teardown(() => { delete process.env.HF_TOKEN; });
  const pulled = await pullModel('hf:corp/gated/gated.safetensors', { modelsDir });
  t.equal(await readFile(pulled.path, 'utf8'), 'gated bytes');
  const seen = hub.requests.filter((r) => r.path.includes('gated'));
  t.same(seen.map((r) => [r.server, r.headers.authorization]), [['hub', undefined], ['hub', 'Bearer hf_secret'], ['cdn', undefined]],
    'the token goes to the hub only, never to the CDN it redirects to');
  t.notMatch(await readFile(`${pulled.path}.source.json`, 'utf8'), /hf_secret/, 'the token is not recorded');
});

t.test('a missing file is a 404 error naming the reference', async (t) => {
  await t.rejects(pullModel('hf:someone/tiny/nope.safetensors', { modelsDir: t.testdir() }),
    { code: 'ERR_MODEL_NOT_FOUND', message: /^hf:someone\/tiny\/nope\.safetensors: not found/ });
});

t.test('bad references are TypeErrors that say what is expected', async (t) => {
  await t.rejects(pullModel('hf:someone/tiny', { modelsDir: t.testdir() }), { name: 'TypeError', message: /hf:<owner>\/<repo>\/<file>/ });
  await t.rejects(pullModel('no-such-model', { modelsDir: t.testdir() }), { name: 'TypeError', message: /sd-turbo/ });
  await t.rejects(pullModel('http://example.com/x.safetensors', { modelsDir: t.testdir() }), { name: 'TypeError', message: /https:\/\// });
});

t.test('loadModel pulls a reference only with pull: true', async (t) => {
  hub.files.set('someone/lazy/main/lazy.safetensors', { bytes: checkpoint });
  process.env.SDNODE_MODELS = t.testdir();
  t.teardown(() => { delete process.env.SDNODE_MODELS; });
  await t.rejects(loadModel('hf:someone/lazy/lazy.safetensors', cpu),
    { code: 'ERR_MODEL_NOT_PULLED', message: /sdnode pull hf:someone\/lazy\/lazy\.safetensors.*pull: true/ });
  t.same(await filesIn(process.env.SDNODE_MODELS), [], 'nothing downloaded unasked');
  await t.rejects(loadModel('hf:someone/lazy/lazy.safetensors', { ...cpu, pull: 'yes' as never }), { name: 'TypeError', message: /pull/ });
  const model = await loadModel('hf:someone/lazy/lazy.safetensors', { ...cpu, pull: true });
  t.teardown(() => model.close());
  t.equal(model.path, path.join(process.env.SDNODE_MODELS, 'lazy.safetensors'));
  const again = await loadModel('hf:someone/lazy/lazy.safetensors', cpu);
  t.teardown(() => again.close());
  t.equal(again.path, model.path, 'once pulled, it loads without pull');
});

t.test('z-image-turbo pulls its transformer, Qwen3 text encoder and VAE, and loads as a Z-Image model', async (t) => {
  const parts = await writeTinyZImage(t.testdir());
  const served = { diffusionModel: 'diffusion_models/z_image_turbo_bf16.safetensors', llm: 'text_encoders/qwen_3_4b.safetensors', vae: 'vae/ae.safetensors' };
  for (const [key, file] of Object.entries(served)) {
    hub.files.set(`Comfy-Org/z_image_turbo/main/split_files/${file}`, { bytes: await readFile(parts[key as keyof typeof parts]) });
  }
  const modelsDir = t.testdir();
  const pulled = await pullModel('z-image-turbo', { modelsDir });
  t.same(Object.keys(pulled.components!).sort(), ['diffusionModel', 'llm', 'vae']);
  t.same(await findPulledModel('z-image-turbo', { modelsDir }), pulled, 'its component JSON names the llm file too');
  const model = await loadModel(pulled.components!, cpu);
  t.teardown(() => model.close());
  t.equal(model.info.family, 'z-image');
  const [image] = await model.textToImage({ prompt: 'a cat', width: 64, height: 64, steps: 1, seed: 1 });
  t.same([(await sharp(image!.png).metadata()).width, image!.height], [64, 64]);
});

t.test('a catalogue model of several files pulls each one and writes its component JSON last', async (t) => {
  serveFluxSchnellQ4(hub);
  const modelsDir = t.testdir();
  const pulled = await pullModel('flux-schnell-q4', { modelsDir });
  const dir = path.join(modelsDir, 'flux-schnell-q4');
  t.equal(pulled.path, path.join(dir, 'model.json'));
  t.same(JSON.parse(await readFile(pulled.path, 'utf8')), {
    diffusionModel: 'flux1-schnell-Q4_K_S.gguf', clipL: 'clip_l.safetensors', t5xxl: 't5xxl_fp8_e4m3fn.safetensors',
    vae: 'ae.safetensors', t5Tokenizer: 'tokenizer_2/spiece.model',
  });
  t.equal(pulled.t5Tokenizer, path.join(dir, 'tokenizer_2', 'spiece.model'));
  t.equal(await readFile(pulled.components!.vae!, 'utf8'), 'vae');
  t.same(await findPulledModel('flux-schnell-q4', { modelsDir }), pulled);
});

t.test('a catalogue model loads with its card: SD-Turbo predicts noise and makes its image in one step at cfg 1', async (t) => {
  const sd2 = tinyCheckpointBytes({ family: 'sd2' });
  hub.files.set('stabilityai/sd-turbo/main/sd_turbo.safetensors', { bytes: sd2 });
  process.env.SDNODE_MODELS = t.testdir();
  t.teardown(() => { delete process.env.SDNODE_MODELS; });
  const turbo = await loadModel('sd-turbo', { ...cpu, pull: true });
  t.teardown(() => turbo.close());
  t.match(turbo.info, { family: 'sd2', prediction: 'eps', defaultWidth: 512, defaultHeight: 512, card: { prediction: 'eps', steps: 1, cfgScale: 1 } });
  const [image] = await turbo.textToImage({ prompt: 'a cat', width: 64, height: 64, seed: 1 });
  t.match(image!.parameters, /Steps: 1, .*CFG scale: 1,/, 'the call that gives no steps or cfg gets the card\'s');
  const [asked] = await turbo.textToImage({ prompt: 'a cat', width: 64, height: 64, seed: 1, steps: 2, cfgScale: 2 });
  t.match(asked!.parameters, /Steps: 2, .*CFG scale: 2,/, 'what a call gives wins over the card');
  const v = await loadModel('sd-turbo', { ...cpu, prediction: 'v' });
  t.teardown(() => v.close());
  t.equal(v.info.prediction, 'v', 'a prediction in the load options wins over the card');

  // The same bytes under another name, with no record of being pulled as sd-turbo: the family's guess.
  const plain = path.join(t.testdir(), 'some-sd2.safetensors');
  await writeFile(plain, sd2);
  const guessed = await loadModel(plain, cpu);
  t.teardown(() => guessed.close());
  t.match(guessed.info, { prediction: 'v', defaultWidth: 768 });
  t.notOk('card' in guessed.info);
});

t.test('component files may be references too: each is pulled with pull: true and the model generates', async (t) => {
  const dir = t.testdir();
  const files = await writeTinyFlux(path.join(dir, 'made'));
  for (const [key, file] of Object.entries(files)) hub.files.set(`someone/tiny-flux/main/${key}-${path.basename(file)}`, { bytes: await readFile(file) });
  const ref = (key: keyof typeof files): string => `hf:someone/tiny-flux/${key}-${path.basename(files[key])}`;
  process.env.SDNODE_MODELS = path.join(dir, 'models');
  t.teardown(() => { delete process.env.SDNODE_MODELS; });
  const components = { diffusionModel: ref('diffusionModel'), clipL: ref('clipL'), t5xxl: ref('t5xxl'), vae: ref('vae') };
  await t.rejects(loadModel(components, cpu), { code: 'ERR_MODEL_NOT_PULLED', message: /hf:someone\/tiny-flux\/diffusionModel-/ });
  const model = await loadModel(components, { ...cpu, pull: true, t5Tokenizer: files.t5Tokenizer });
  t.teardown(() => model.close());
  t.equal(model.info.family, 'flux-schnell');
  t.equal(model.info.components?.vae, path.join(process.env.SDNODE_MODELS, `vae-${path.basename(files.vae)}`));
  const [image] = await model.textToImage({ prompt: 'a cat', width: 64, height: 64, steps: 1, seed: 1 });
  t.match(image!.parameters, /Steps: 1/);
});
