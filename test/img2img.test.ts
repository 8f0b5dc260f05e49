// Image-to-image end to end on a tiny checkpoint: what strength does to the pixels and to the
// number of steps, determinism, and the checks on the input image (and the engine's on image and
// mask buffers, which the library always sizes right).
import sharp from 'sharp';
import t from 'tap';

import { loadAddon } from '../bindings/index.js';
import type { NativeRequest } from '../bindings/native.js';
import { loadModel, type GeneratedImage, type Progress } from '../lib/index.js';
import { buildConditioning } from '../lib/prompt.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';

const dir = t.testdir();
const checkpoint = await writeTinyCheckpoint(dir);
const model = await loadModel(checkpoint, cpu);
t.teardown(() => model.close());

const size = 64;
const quick = { prompt: 'a castle on a hill at night', width: size, height: size, steps: 4, seed: 5 } as const;

// A picture with structure, so that "unchanged" is a real claim.
const input = await sharp(Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256)),
  { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
const inputPixels = await sharp(input).raw().toBuffer();

async function pixels(images: Promise<GeneratedImage[]>): Promise<Buffer[]> {
  return Promise.all((await images).map((image) => sharp(image.png).raw().toBuffer()));
}

async function first(images: Promise<GeneratedImage[]>): Promise<Buffer> {
  return (await pixels(images))[0]!;
}

t.test('strength 0 returns the input pixels exactly and runs no step', async (t) => {
  const events: Progress[] = [];
  const out = await first(model.imageToImage({ ...quick, image: input, strength: 0, onProgress: (p) => events.push(p) }));
  t.ok(out.equals(inputPixels), 'every byte equals the input');
  t.same(events, []);
});

t.test('strength 1 repaints the image in every step, still starting from it as the reference tools do', async (t) => {
  const events: Progress[] = [];
  const out = await first(model.imageToImage({ ...quick, image: input, strength: 1, onProgress: (p) => events.push(p) }));
  t.notOk(out.equals(inputPixels), 'the image changed');
  t.same(events.map((e) => e.steps), [4, 4, 4, 4], 'all the steps run');
  // The start is the input's latent + sigma_max * noise, not the noise alone.
  t.notOk(out.equals(await first(model.textToImage(quick))), 'not the text-to-image picture of the same seed');
});

t.test('an intermediate strength runs int(steps x strength) + 1 steps and reports each of them', async (t) => {
  for (const [steps, strength, expected] of [[10, 0.5, 6], [8, 0.6, 5], [20, 0.75, 16], [4, 0.1, 1]] as const) {
    const events: Progress[] = [];
    await model.imageToImage({ ...quick, steps, image: input, strength, onProgress: (p) => events.push(p) });
    t.same(events.map((e) => [e.step, e.steps]), Array.from({ length: expected }, (_, i) => [i + 1, expected]),
      `${steps} steps at strength ${strength}`);
  }
});

t.test('the same seed gives the same image, another seed another', async (t) => {
  const a = await first(model.imageToImage({ ...quick, image: input, strength: 0.5 }));
  const b = await first(model.imageToImage({ ...quick, image: input, strength: 0.5 }));
  const other = await first(model.imageToImage({ ...quick, seed: 6, image: input, strength: 0.5 }));
  t.ok(a.equals(b), 'same seed, same bytes');
  t.notOk(a.equals(other), 'another seed, other bytes');
});

t.test('count makes one image per seed from the same input', async (t) => {
  const images = await model.imageToImage({ ...quick, image: input, strength: 0.6, count: 2 });
  t.same(images.map((image) => image.seed), [5, 6]);
  const [a, b] = await pixels(Promise.resolve(images));
  t.notOk(a!.equals(b!), 'the two images differ');
});

t.test('an input of another size is scaled to cover the requested size', async (t) => {
  const wide = await sharp({ create: { width: 96, height: 40, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer();
  const [image] = await model.imageToImage({ ...quick, image: wide, strength: 0 });
  const metadata = await sharp(image!.png).metadata();
  t.same([metadata.width, metadata.height], [size, size]);
  t.same([...(await sharp(image!.png).raw().toBuffer()).subarray(0, 3)], [200, 40, 90]);
});

t.test('runs at any multiple of 8, such as 72x88', async (t) => {
  const [image] = await model.imageToImage({ ...quick, width: 72, height: 88, image: input, strength: 0.5 });
  const metadata = await sharp(image!.png).metadata();
  t.same([metadata.width, metadata.height], [72, 88]);
});

t.test('a missing or unreadable image is a TypeError naming it', async (t) => {
  // @ts-expect-error: the image is required
  await t.rejects(model.imageToImage({ ...quick }), { name: 'TypeError', message: /for image/ });
  await t.rejects(model.imageToImage({ ...quick, image: Buffer.from('not a picture') }),
    { name: 'TypeError', message: /image for image/ });
});

t.test('the engine rejects an image or mask buffer of the wrong size, naming the bytes it expects', async (t) => {
  const addon = loadAddon();
  const native = await addon.loadModel(checkpoint, { ...cpu, prediction: 'auto' });
  t.teardown(() => native.close());
  const pixels = size * size;
  const request: NativeRequest = {
    mode: 'img2img', width: size, height: size, steps: 2, cfgScale: 7, sampler: 'euler_a', scheduler: 'discrete',
    seed: 1, rng: 'gpu', clipSkip: 0, count: 1, strength: 0.5,
    prompt: buildConditioning('a castle', native.info.padToken),
    negative: buildConditioning('', native.info.padToken),
    image: new Uint8Array(pixels * 3 - 1),
  };
  await t.rejects(native.generate(request, () => {}),
    { code: 'ERR_INVALID_ARGUMENT', message: `image must hold width*height*3 = ${pixels * 3} RGB bytes, got ${pixels * 3 - 1}` });
  const { image: _, ...withoutImage } = request;
  await t.rejects(native.generate(withoutImage, () => {}), { code: 'ERR_INVALID_ARGUMENT', message: /^image must hold/ });
  const inpaint = { ...request, mode: 'inpaint', image: new Uint8Array(pixels * 3) };
  await t.rejects(native.generate({ ...inpaint, mask: new Uint8Array(pixels * 3) }, () => {}),
    { code: 'ERR_INVALID_ARGUMENT', message: `mask must hold width*height = ${pixels} bytes, got ${pixels * 3}` });
  await t.rejects(native.generate(inpaint, () => {}), { code: 'ERR_INVALID_ARGUMENT', message: /^mask must hold/ });
});
