// SDXL base through the public library, on a tiny random checkpoint of the real layout (two text
// encoders, label_emb, deeper transformers): detection, the size conditioning, emphasis and long
// prompts, cfg 1 with no negative pass, GGUF, and the option checks.
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { convertModel, generate, loadModel, type GeneratedImage } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu, meanAbsDiff } from './fixtures/draw.js';

const dir = t.testdir();
const checkpoint = await writeTinyCheckpoint(dir, { family: 'sdxl' });
const model = await loadModel(checkpoint, cpu);
t.teardown(() => model.close());

const quick = { prompt: 'a lighthouse on a cliff', negativePrompt: 'fog', width: 64, height: 64, steps: 2, seed: 5 } as const;

async function draw(options: Record<string, unknown> = {}): Promise<GeneratedImage> {
  const [image] = await model.textToImage({ ...quick, ...options });
  return image!;
}

// Pixels, not PNG bytes: the PNG's parameters text records options that may not change the image.
async function same(a: GeneratedImage, b: GeneratedImage): Promise<boolean> {
  const [pa, pb] = await Promise.all([sharp(a.png).raw().toBuffer(), sharp(b.png).raw().toBuffer()]);
  return pa.equals(pb);
}

t.test('an SDXL checkpoint is told apart by its two text encoders and defaults to 1024×1024', async (t) => {
  t.match(model.info, {
    family: 'sdxl', prediction: 'eps', inpainting: false, defaultWidth: 1024, defaultHeight: 1024,
    contextDim: 32 + 48, padToken: 49407, format: 'safetensors',
  });
  t.same(model.info.unusedTensors, [], 'every weight of both encoders, label_emb and the UNet is used');
});

t.test('the same seed gives the same image; the prompt, the negative prompt and emphasis change it', async (t) => {
  const plain = await draw();
  t.ok(await same(plain, await draw()), 'deterministic');
  const metadata = await sharp(plain.png).metadata();
  t.same([metadata.width, metadata.height], [64, 64]);
  t.notOk(await same(plain, await draw({ prompt: 'a red barn' })), 'prompt');
  t.notOk(await same(plain, await draw({ negativePrompt: 'rain' })), 'negative prompt');
  t.notOk(await same(plain, await draw({ prompt: 'a (lighthouse:1.5) on a cliff' })), 'emphasis');
});

t.test('a prompt longer than 75 tokens is read in full', async (t) => {
  const words = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' ');
  const long = await draw({ prompt: `${words} lighthouse` });
  t.notOk(await same(long, await draw({ prompt: `${words} barn` })), 'the words after the first 75 tokens count');
});

t.test('originalSize, cropTopLeft and targetSize reach the UNet; their defaults are the generated size and no crop', async (t) => {
  const plain = await draw();
  t.ok(await same(plain, await draw({ originalSize: { width: 64, height: 64 }, cropTopLeft: { top: 0, left: 0 }, targetSize: { width: 64, height: 64 } })),
    'explicit defaults draw the same image');
  t.notOk(await same(plain, await draw({ originalSize: { width: 4096, height: 4096 } })), 'originalSize');
  t.notOk(await same(plain, await draw({ originalSize: { width: 64, height: 32 } })), 'originalSize height and width differ');
  t.notOk(await same(plain, await draw({ cropTopLeft: { top: 256, left: 0 } })), 'cropTopLeft');
  t.notOk(await same(plain, await draw({ targetSize: { width: 512, height: 512 } })), 'targetSize');
});

t.test('at cfg 1 there is no negative pass: the negative prompt changes nothing', async (t) => {
  const a = await draw({ cfgScale: 1, negativePrompt: 'fog' });
  t.ok(await same(a, await draw({ cfgScale: 1, negativePrompt: 'a completely different negative prompt' })));
  t.notOk(await same(a, await draw({ cfgScale: 1.5 })), 'guidance above 1 runs it');
});

t.test('clip skip 1 uses the last layers of both encoders instead of the penultimate ones', async (t) => {
  const plain = await draw();
  t.ok(await same(plain, await draw({ clipSkip: 2 })), 'SDXL\'s default is clip skip 2');
  t.notOk(await same(plain, await draw({ clipSkip: 1 })));
});

t.test('image to image, inpainting and the hires fix run on SDXL', async (t) => {
  const image = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#4080c0' } }).png().toBuffer();
  const mask = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ffffff' } }).png().toBuffer();
  const [changed] = await model.imageToImage({ ...quick, image, strength: 0.6 });
  const [painted] = await model.inpaint({ ...quick, image, mask, strength: 1, maskBlur: 0 });
  const [large] = await model.textToImage({ ...quick, hires: { scale: 2, steps: 1 } });
  t.same([changed!.width, painted!.width, large!.width, large!.height], [64, 64, 128, 128]);
  t.notOk(await same(changed!, await draw()), 'image to image starts from the image');
});

t.test('rejects bad size conditioning values, naming the option', async (t) => {
  await t.rejects(draw({ originalSize: { width: 0, height: 64 } }),
    new RangeError('Expected integer between 1 and 16384 for originalSize.width but received 0 of type number'));
  await t.rejects(draw({ targetSize: { width: 64 } }),
    new TypeError('Expected an object { width, height } for targetSize but targetSize.height is missing'));
  await t.rejects(draw({ cropTopLeft: { top: -1, left: 0 } }),
    new RangeError('Expected integer between 0 and 16384 for cropTopLeft.top but received -1 of type number'));
  await t.rejects(draw({ cropTopLeft: { x: 1, y: 2 } }), { name: 'TypeError', message: /Unknown option "x" for cropTopLeft; known options: top, left/ });
  await t.rejects(draw({ originalSize: '1024x1024' }),
    new TypeError('Expected object for originalSize but received "1024x1024" of type string'));
  await t.rejects(draw({ targetSize: { width: 1.5, height: 64 } }), { name: 'TypeError', message: /targetSize\.width/ });
});

t.test('an option of another family is an error naming the families it applies to', async (t) => {
  const sd1 = await loadModel(await writeTinyCheckpoint(dir), cpu);
  t.teardown(() => sd1.close());
  await t.rejects(sd1.textToImage({ ...quick, originalSize: { width: 64, height: 64 } }),
    new RangeError('originalSize applies to sdxl and sdxl-refiner models only, but this model\'s family is sd1; leave it out'));
  await t.rejects(draw({ aestheticScore: 7 }),
    new RangeError('aestheticScore applies to sdxl-refiner models only, but this model\'s family is sdxl; leave it out'));
});

t.test('generate() takes the SDXL options with a model path', async (t) => {
  const [image] = await generate({ model: checkpoint, ...cpu, ...quick, targetSize: { width: 512, height: 512 } });
  t.ok(await same(image!, await draw({ targetSize: { width: 512, height: 512 } })));
});

t.test('converted to GGUF (q8_0) it loads as SDXL and draws close to the original', async (t) => {
  const gguf = path.join(dir, 'tiny-sdxl-q8.gguf');
  await convertModel(checkpoint, gguf, { weightType: 'q8_0', threads: 1 });
  const converted = await loadModel(gguf, cpu);
  t.teardown(() => converted.close());
  t.match(converted.info, { family: 'sdxl', format: 'gguf', contextDim: 80 });
  t.same(converted.info.unusedTensors, []);
  const [image] = await converted.textToImage(quick);
  const diff = meanAbsDiff(await sharp(image!.png).raw().toBuffer(), await sharp((await draw()).png).raw().toBuffer());
  t.ok(diff > 0 && diff < 3, `mean absolute pixel difference from the f16 image ${diff.toFixed(2)} is in (0, 3)`);
});
