// The engine through the addon's own interface (below lib/), on tiny random checkpoints of both
// layouts: determinism, progress, abort, and damaged files that fail by name while the process
// keeps running.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { loadAddon } from '../bindings/index.js';
import type { NativeModel, NativeProgress, NativeRequest } from '../bindings/native.js';
import { buildConditioning } from '../lib/prompt.js';
import { tinyCheckpointBytes, writeDamagedCheckpoint, writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';

const addon = loadAddon();
const dir = t.testdir();

async function load(family: 'sd1' | 'sd2'): Promise<NativeModel> {
  const file = await writeTinyCheckpoint(dir, { family });
  return addon.loadModel(file, { ...cpu, prediction: 'auto' });
}

function request(model: NativeModel, overrides: Partial<NativeRequest> = {}): NativeRequest {
  return {
    mode: 'txt2img', width: 64, height: 64, steps: 3, cfgScale: 7, sampler: 'euler_a', scheduler: 'discrete',
    seed: 42, rng: 'gpu', clipSkip: 0, count: 1, strength: 1,
    prompt: buildConditioning('a photo of a cat', model.info.padToken),
    negative: buildConditioning('', model.info.padToken),
    ...overrides,
  };
}

for (const family of ['sd1', 'sd2'] as const) {
  t.test(`${family}: reads the architecture from the checkpoint`, async (t) => {
    const model = await load(family);
    t.teardown(() => model.close());
    t.equal(model.info.family, family);
    t.equal(model.info.contextDim, 32);
    t.equal(model.info.padToken, family === 'sd1' ? 49407 : 0);
    t.equal(model.info.prediction, family === 'sd1' ? 'eps' : 'v');
    t.equal(model.info.vaeScale, 8);
    t.ok(model.info.weightBytes > 1_000_000);
  });

  t.test(`${family}: the same seed gives byte-identical pixels, another seed does not`, async (t) => {
    const model = await load(family);
    t.teardown(() => model.close());
    const [a] = await model.generate(request(model), () => {});
    const [b] = await model.generate(request(model), () => {});
    const [c] = await model.generate(request(model, { seed: 43 }), () => {});
    t.equal(a!.data.length, 64 * 64 * 3);
    t.ok(Buffer.from(a!.data).equals(Buffer.from(b!.data)), 'same seed, same bytes');
    t.notOk(Buffer.from(a!.data).equals(Buffer.from(c!.data)), 'different seed, different bytes');
    const distinct = new Set(a!.data).size;
    t.ok(distinct > 16, `the image is not flat (${distinct} distinct byte values)`);
  });
}

t.test('two threads draw the same bytes as one', async (t) => {
  const file = await writeTinyCheckpoint(dir);
  const drawings: Buffer[] = [];
  for (const threads of [1, 2]) {
    const model = await addon.loadModel(file, { backend: 'cpu', threads, prediction: 'auto' });
    t.teardown(() => model.close());
    // One step runs every operation of the pipeline on both threads.
    const [image] = await model.generate(request(model, { steps: 1 }), () => {});
    drawings.push(Buffer.from(image!.data));
  }
  t.ok(drawings[0]!.equals(drawings[1]!));
});

t.test('reports one progress event per step, in order, for every image', async (t) => {
  const model = await load('sd1');
  t.teardown(() => model.close());
  const events: NativeProgress[] = [];
  const images = await model.generate(request(model, { steps: 4, count: 2 }), (p) => events.push(p));
  t.same(images.map((image) => image.seed), [42, 43]);
  t.same(events.map((e) => [e.image, e.step, e.steps, e.images]), [
    [0, 1, 4, 2], [0, 2, 4, 2], [0, 3, 4, 2], [0, 4, 4, 2],
    [1, 1, 4, 2], [1, 2, 4, 2], [1, 3, 4, 2], [1, 4, 4, 2],
  ]);
  for (let i = 1; i < events.length; i++) t.ok(events[i]!.elapsedMs >= events[i - 1]!.elapsedMs);
});

t.test('abort stops within one step and rejects with ERR_ABORTED', async (t) => {
  const model = await load('sd1');
  t.teardown(() => model.close());
  const steps: number[] = [];
  const run = model.generate(request(model, { steps: 20 }), (p) => {
    steps.push(p.step);
    if (p.step === 2) model.abort();
  });
  await t.rejects(run, { code: 'ERR_ABORTED' });
  t.same(steps, [1, 2], 'no step after the one that asked to abort');
  const [after] = await model.generate(request(model, { steps: 1 }), () => {});
  t.ok(after, 'the model still works after an abort');
});

t.test('rejects a width or height that is not a multiple of 8', async (t) => {
  const model = await load('sd1');
  t.teardown(() => model.close());
  await t.rejects(model.generate(request(model, { width: 60 }), () => {}), {
    code: 'ERR_INVALID_ARGUMENT', message: /multiples of 8.*60x64/,
  });
});

t.test('rejects an unknown sampler or schedule with the list of known ones', async (t) => {
  const model = await load('sd1');
  t.teardown(() => model.close());
  await t.rejects(model.generate(request(model, { sampler: 'unipc' }), () => {}), { code: 'ERR_INVALID_ARGUMENT', message: /euler_a/ });
  await t.rejects(model.generate(request(model, { scheduler: 'cosine' }), () => {}), { code: 'ERR_INVALID_ARGUMENT', message: /karras/ });
});

t.test('rejects an unknown maskedStart, and maskedStart outside inpainting', async (t) => {
  const model = await load('sd1');
  t.teardown(() => model.close());
  await t.rejects(model.generate(request(model, { maskedStart: 'latent noise' }), () => {}), {
    code: 'ERR_INVALID_ARGUMENT', message: "maskedStart must be original, noise or zeros, got 'latent noise'",
  });
  await t.rejects(model.generate(request(model, { maskedStart: 'zeros' }), () => {}), {
    code: 'ERR_INVALID_ARGUMENT', message: "maskedStart applies to inpaint only, got mode 'txt2img'",
  });
});

t.test('a closed model rejects further generations', async (t) => {
  const model = await load('sd1');
  model.close();
  await t.rejects(model.generate(request(model), () => {}), { code: 'ERR_MODEL_CLOSED' });
});

const damaged = [
  ['truncated', 'ERR_MODEL_FORMAT', /lies outside the file/],
  ['garbage', 'ERR_MODEL_FORMAT', /header length/],
  ['header-too-long', 'ERR_MODEL_FORMAT', /header length/],
  ['bad-json', 'ERR_MODEL_FORMAT', /not valid JSON/],
  ['offset-out-of-range', 'ERR_MODEL_FORMAT', /model\.diffusion_model\.out\.2\.weight' lies outside the file/],
  ['missing-tensor', 'ERR_MODEL_FORMAT', /missing tensor 'model\.diffusion_model\.out\.2\.weight'/],
  ['wrong-dtype', 'ERR_MODEL_FORMAT', /out\.2\.weight' has dtype Q9/],
  ['wrong-shape', 'ERR_MODEL_FORMAT', /out\.2\.weight' holds \d+ bytes but its shape and dtype need \d+/],
  ['empty', 'ERR_MODEL_FORMAT', /0 bytes/],
] as const;

for (const [kind, code, message] of damaged) {
  t.test(`a ${kind} checkpoint fails with ${code} and the process keeps running`, async (t) => {
    const file = await writeDamagedCheckpoint(dir, kind);
    await t.rejects(addon.loadModel(file, { backend: 'cpu', threads: 1, prediction: 'auto' }), { code, message });
  });
}

t.test('a missing file fails with ERR_MODEL_IO naming it', async (t) => {
  await t.rejects(addon.loadModel(`${dir}/nope.safetensors`, { backend: 'cpu', threads: 1, prediction: 'auto' }), {
    code: 'ERR_MODEL_IO', message: /nope\.safetensors: cannot open/,
  });
});

t.test('an unavailable backend is an ERR_BACKEND error', async (t) => {
  const file = await writeTinyCheckpoint(dir);
  await t.rejects(addon.loadModel(file, { backend: 'cuda', threads: 1, prediction: 'auto' }), { code: 'ERR_BACKEND', message: /cuda/ });
});

t.test('head-count metadata that does not divide the widths is a format error, not a crash', async (t) => {
  const bytes = tinyCheckpointBytes();
  const patched = Buffer.from(bytes.toString('latin1').replace('"sdnode.unet_num_heads":"2"', '"sdnode.unet_num_heads":"7"'), 'latin1');
  t.not(patched.toString('latin1'), bytes.toString('latin1'), 'the metadata was patched in place');
  const file = path.join(dir, 'bad-heads.safetensors');
  await writeFile(file, patched);
  await t.rejects(addon.loadModel(file, { backend: 'cpu', threads: 1, prediction: 'auto' }), {
    code: 'ERR_MODEL_FORMAT', message: /does not split into attention heads/,
  });
  const nonNumeric = Buffer.from(bytes.toString('latin1').replace('"sdnode.unet_num_heads":"2"', '"sdnode.unet_num_heads":"x"'), 'latin1');
  await writeFile(file, nonNumeric);
  await t.rejects(addon.loadModel(file, { backend: 'cpu', threads: 1, prediction: 'auto' }), {
    code: 'ERR_MODEL_FORMAT', message: /sdnode.unet_num_heads' must be a positive integer/,
  });
});
