// The SDXL refiner checkpoint on its own, on a tiny random checkpoint of its layout (one OpenCLIP
// encoder, label_emb with the aesthetic score): detection, image to image, the aesthetic scores.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, type GeneratedImage } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';
import { solidPng } from './server-helpers.js';

const dir = t.testdir();
const model = await loadModel(await writeTinyCheckpoint(dir, { family: 'sdxl-refiner' }), cpu);
t.teardown(() => model.close());

const image = await solidPng(64, 64, 100);
const quick = { prompt: 'a lighthouse', negativePrompt: 'fog', width: 64, height: 64, steps: 4, seed: 5, image, strength: 0.5 } as const;

async function refine(options: Record<string, unknown> = {}): Promise<Buffer> {
  const [result] = await model.imageToImage({ ...quick, ...options });
  return sharp((result as GeneratedImage).png).raw().toBuffer();
}

t.test('a refiner checkpoint is told apart by its lone OpenCLIP encoder', async (t) => {
  t.match(model.info, { family: 'sdxl-refiner', defaultWidth: 1024, contextDim: 48, inpainting: false });
  t.same(model.info.unusedTensors, []);
});

t.test('refines an image deterministically; the aesthetic scores reach the UNet', async (t) => {
  const plain = await refine();
  t.ok(plain.equals(await refine()), 'deterministic');
  t.ok(plain.equals(await refine({ aestheticScore: 6, negativeAestheticScore: 2.5 })), 'defaults 6 and 2.5');
  t.notOk(plain.equals(await refine({ aestheticScore: 9 })), 'aestheticScore');
  t.notOk(plain.equals(await refine({ negativeAestheticScore: 0 })), 'negativeAestheticScore');
  t.notOk(plain.equals(await refine({ originalSize: { width: 512, height: 512 } })), 'originalSize');
});

t.test('rejects the base model\'s target size and scores out of range', async (t) => {
  await t.rejects(refine({ targetSize: { width: 64, height: 64 } }),
    new RangeError('targetSize applies to sdxl models only, but this model\'s family is sdxl-refiner; leave it out'));
  await t.rejects(refine({ aestheticScore: 11 }),
    new RangeError('Expected number between 0 and 10 for aestheticScore but received 11 of type number'));
});
