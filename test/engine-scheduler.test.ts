// On a GPU the engine runs its graphs through ggml's scheduler, which sends the ops the GPU lacks
// to the CPU. SDNODE_SCHEDULER=1 sends CPU graphs through that same path (with the CPU alone), so
// here, without a GPU, it must draw the very bytes of the plain path, and abort as it does.
import path from 'node:path';

import t from 'tap';

import { loadAddon } from '../bindings/index.js';
import type { NativeModel, NativeRequest } from '../bindings/native.js';
import { buildConditioning } from '../lib/prompt.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';

const addon = loadAddon();
const dir = t.testdir();

// The engine reads the switch when a model loads.
async function load(file: string, scheduled: boolean): Promise<NativeModel> {
  if (scheduled) process.env.SDNODE_SCHEDULER = '1';
  else delete process.env.SDNODE_SCHEDULER;
  try {
    return await addon.loadModel(file, { ...cpu, prediction: 'auto' });
  } finally {
    delete process.env.SDNODE_SCHEDULER;
  }
}

function request(model: NativeModel, overrides: Partial<NativeRequest> = {}): NativeRequest {
  return {
    mode: 'txt2img', width: 64, height: 64, steps: 2, cfgScale: 7, sampler: 'euler_a', scheduler: 'discrete',
    seed: 42, rng: 'gpu', clipSkip: 0, count: 1, strength: 1,
    prompt: buildConditioning('a photo of a cat', model.info.padToken),
    negative: buildConditioning('', model.info.padToken),
    ...overrides,
  };
}

async function drawBoth(file: string, overrides: (model: NativeModel) => Partial<NativeRequest>): Promise<Buffer[][]> {
  const drawings: Buffer[][] = [];
  for (const scheduled of [false, true]) {
    const model = await load(file, scheduled);
    try {
      const images = await model.generate(request(model, overrides(model)), () => {});
      drawings.push(images.map((image) => Buffer.from(image.data)));
    } finally {
      model.close();
    }
  }
  return drawings;
}

for (const family of ['sd1', 'sd2'] as const) {
  t.test(`${family}: the scheduled path draws the same bytes as the plain one`, async (t) => {
    const file = await writeTinyCheckpoint(path.join(dir, family), { family });
    const [plain, scheduled] = await drawBoth(file, () => ({ count: 2 }));
    t.equal(scheduled!.length, 2);
    for (let i = 0; i < 2; i++) t.ok(plain![i]!.equals(scheduled![i]!), `image ${i}: same bytes`);
    t.ok(new Set(scheduled![0]!).size > 16, 'the image is not flat');
  });
}

t.test('img2img through the scheduler (VAE encoder too) gives the same bytes as the plain path', async (t) => {
  const file = await writeTinyCheckpoint(path.join(dir, 'img2img'));
  const image = new Uint8Array(64 * 64 * 3).map((_, i) => (i * 7) % 256);
  const [plain, scheduled] = await drawBoth(file, () => ({ mode: 'img2img', image, strength: 0.6 }));
  t.ok(plain![0]!.equals(scheduled![0]!));
});

t.test('an abort through the scheduler rejects, and the next drawing is unchanged by it', async (t) => {
  const file = await writeTinyCheckpoint(path.join(dir, 'abort'));
  const [before] = await drawBoth(file, () => ({ count: 1 }));
  const model = await load(file, true);
  t.teardown(() => model.close());
  const seen: Array<[number, number]> = [];
  const run = model.generate(request(model, { count: 2, steps: 10 }), (p) => {
    seen.push([p.image, p.step]);
    if (p.image === 1 && p.step === 1) model.abort();
  });
  await t.rejects(run, { code: 'ERR_ABORTED' });
  t.same(seen.at(-1), [1, 1], 'stopped in the second image, at the step that asked');
  const [after] = await model.generate(request(model), () => {});
  t.ok(Buffer.from(after!.data).equals(before![0]!), 'the scheduler reallocates cleanly after an abort');
});
