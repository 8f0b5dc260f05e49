// End to end through the native engine, on tiny random checkpoints: what a user of
// `import { generate, loadModel } from 'sdnode'` sees.
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import {
  generate, loadModel, readPngText, samplers, schedulers, SdnodeError, systemInfo,
  type GeneratedImage, type Progress,
} from '../lib/index.js';
import { writeDamagedCheckpoint, writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';

const dir = t.testdir();
const checkpoint = await writeTinyCheckpoint(dir);
const model = await loadModel(checkpoint, cpu);
t.teardown(() => model.close());

// Small and few steps: the tiny model's pixels are noise either way.
const quick = { prompt: 'a photo of a cat', width: 64, height: 64, steps: 2 } as const;

async function rgbOf(image: GeneratedImage): Promise<Buffer> {
  return sharp(image.png).raw().toBuffer();
}

t.test('reports the engine, samplers and schedulers it has', async (t) => {
  t.ok(systemInfo().backends.includes('cpu'));
  t.same(samplers(), ['euler_a', 'euler', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'lcm', 'ddim',
    'lms', 'ipndm', 'ipndm_v', 'plms', 'ddim_trailing', 'tcd', 'res_multistep']);
  t.same(schedulers(), ['discrete', 'karras', 'exponential', 'lcm', 'simple', 'sgm_uniform', 'flux', 'beta', 'smoothstep']);
  t.same([model.info.family, model.info.prediction, model.info.inpainting, model.info.defaultWidth],
    ['sd1', 'eps', false, 512]);
  t.equal(model.path, path.resolve(checkpoint));
});

t.test('makes a decodable PNG of the requested size that carries its parameters', async (t) => {
  const [image, ...rest] = await model.textToImage({ ...quick, width: 96, height: 64, seed: 42, negativePrompt: 'blurry' });
  t.same(rest, []);
  const metadata = await sharp(image!.png).metadata();
  t.same([metadata.format, metadata.width, metadata.height, metadata.channels], ['png', 96, 64, 3]);
  t.same([image!.width, image!.height, image!.seed], [96, 64, 42]);
  t.equal(image!.parameters, 'a photo of a cat\nNegative prompt: blurry\n'
    + `Steps: 2, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 96x64, Model: ${path.basename(checkpoint, '.safetensors')}`);
  t.same(readPngText(image!.png), { parameters: image!.parameters });
});

t.test('count 2 makes two different images with seeds s and s+1', async (t) => {
  const images = await model.textToImage({ ...quick, seed: 1000, count: 2 });
  t.same(images.map((image) => image.seed), [1000, 1001]);
  t.match(images[1]!.parameters, /Seed: 1001,/);
  t.notOk((await rgbOf(images[0]!)).equals(await rgbOf(images[1]!)), 'pixels differ');
});

t.test('seeds wrap after 4294967295: the next image has seed 0 and is the seed-0 image', async (t) => {
  const images = await model.textToImage({ ...quick, seed: 2 ** 32 - 1, count: 2 });
  t.same(images.map((image) => image.seed), [2 ** 32 - 1, 0]);
  const [zero] = await model.textToImage({ ...quick, seed: 0 });
  t.ok(images[1]!.png.equals(zero!.png));
});

t.test('the same seed gives the same bytes, and a random seed is reported back', async (t) => {
  const [a] = await model.textToImage({ ...quick, seed: 7 });
  const [b] = await model.textToImage({ ...quick, seed: 7 });
  t.ok(a!.png.equals(b!.png));
  const [random] = await model.textToImage(quick);
  t.ok(Number.isInteger(random!.seed) && random!.seed >= 0 && random!.seed < 2 ** 32);
  const [again] = await model.textToImage({ ...quick, seed: random!.seed });
  t.ok(again!.png.equals(random!.png), 'the reported seed reproduces the image');
});

t.test('reports progress after every step, in order, for every image', async (t) => {
  const events: Progress[] = [];
  await model.textToImage({ ...quick, steps: 3, count: 2, seed: 1, onProgress: (p) => events.push(p) });
  t.same(events.map(({ step, steps, image, images }) => [step, steps, image, images]), [
    [1, 3, 0, 2], [2, 3, 0, 2], [3, 3, 0, 2],
    [1, 3, 1, 2], [2, 3, 1, 2], [3, 3, 1, 2],
  ]);
  t.ok(events.every((e, i) => e.elapsedMs >= 0 && (i === 0 || e.elapsedMs >= events[i - 1]!.elapsedMs)),
    'elapsedMs never goes back');
});

t.test('an AbortController stops a call with an AbortError', async (t) => {
  const before = new AbortController();
  before.abort();
  const seen: Progress[] = [];
  await t.rejects(model.textToImage({ ...quick, signal: before.signal, onProgress: (p) => seen.push(p) }),
    { name: 'AbortError', code: 'ERR_ABORTED' });
  t.same(seen, [], 'an aborted signal never starts the call');

  const during = new AbortController();
  const steps: number[] = [];
  const aborted = model.textToImage({
    ...quick, steps: 50, signal: during.signal,
    onProgress: ({ step }) => { steps.push(step); if (step === 1) during.abort(); },
  });
  await t.rejects(aborted, { name: 'AbortError', code: 'ERR_ABORTED' });
  t.ok(steps.length >= 1 && steps.length < 50, `stopped after ${steps.length} of 50 steps`);
  const error = await aborted.catch((err: unknown) => err);
  t.ok(error instanceof SdnodeError);

  const [next] = await model.textToImage({ ...quick, seed: 3 });
  t.equal(next!.seed, 3, 'the model works on after an abort');
});

t.test('two calls at once on one model both complete, one after the other', async (t) => {
  const order: string[] = [];
  const [a, b] = await Promise.all([
    model.textToImage({ ...quick, seed: 11, onProgress: ({ step }) => order.push(`a${step}`) }),
    model.textToImage({ ...quick, seed: 12, onProgress: ({ step }) => order.push(`b${step}`) }),
  ]);
  t.same([a![0]!.seed, b![0]!.seed], [11, 12]);
  t.same(order, ['a1', 'a2', 'b1', 'b2'], 'not interleaved');
});

t.test('a call waiting its turn can be aborted without disturbing the one running', async (t) => {
  const waiting = new AbortController();
  const running = model.textToImage({ ...quick, seed: 21 });
  const queued = model.textToImage({ ...quick, seed: 22, signal: waiting.signal });
  waiting.abort();
  await t.rejects(queued, { name: 'AbortError' });
  t.equal((await running)[0]!.seed, 21);
});

t.test('a progress callback that throws fails the call with its error', async (t) => {
  const boom = new Error('boom');
  await t.rejects(model.textToImage({ ...quick, steps: 20, onProgress: () => { throw boom; } }), boom);
  t.equal((await model.textToImage({ ...quick, seed: 4 }))[0]!.seed, 4);
});

t.test('image-to-image and inpainting take images of any size and make the requested size', async (t) => {
  const [start] = await model.textToImage({ ...quick, seed: 5 });
  const bigger = await sharp(start!.png).resize(100, 80).jpeg().toBuffer();
  const [changed] = await model.imageToImage({ ...quick, image: bigger, strength: 0.5, seed: 5 });
  t.same([changed!.width, changed!.height], [64, 64]);
  t.match(changed!.parameters, /Denoising strength: 0\.5$/);

  const inpaintModel = await loadModel(await writeTinyCheckpoint(path.join(dir, 'inpaint'), { inpaint: true }), cpu);
  t.teardown(() => inpaintModel.close());
  t.equal(inpaintModel.info.inpainting, true);
  const leftHalf = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } })
    .composite([{ input: { create: { width: 32, height: 64, channels: 3, background: '#fff' } }, left: 0, top: 0 }])
    .png().toBuffer();
  for (const m of [model, inpaintModel]) {
    const [painted] = await m.inpaint({ ...quick, image: start!.png, mask: leftHalf, maskBlur: 0, strength: 1, seed: 6 });
    const before = await rgbOf(start!);
    const after = await rgbOf(painted!);
    const rightHalfKept = Array.from({ length: 64 }, (_, y) =>
      after.subarray((y * 64 + 32) * 3, (y * 64 + 64) * 3).equals(before.subarray((y * 64 + 32) * 3, (y * 64 + 64) * 3)))
      .every(Boolean);
    t.ok(rightHalfKept, `${m.info.inpainting ? 'inpainting' : 'plain'} model keeps the pixels where the mask is black`);
    t.notOk(after.equals(before), 'and repaints where it is white');
  }
});

t.test('a closed model rejects every later call with ERR_MODEL_CLOSED', async (t) => {
  const closing = await loadModel(checkpoint, cpu);
  const last = closing.textToImage({ ...quick, seed: 8 });
  const closed = closing.close();
  t.equal(closing.closed, true);
  t.equal((await last)[0]!.seed, 8, 'a call made before close() finishes');
  await closed;
  await t.rejects(closing.textToImage(quick), { name: 'SdnodeError', code: 'ERR_MODEL_CLOSED' });
  await t.rejects(closing.inpaint({ ...quick, image: Buffer.alloc(0), mask: Buffer.alloc(0) }), { code: 'ERR_MODEL_CLOSED' });
  await closing.close();
});

t.test('generate with a model path loads it once and reuses it', async (t) => {
  const file = path.join(dir, 'cached.safetensors');
  await copyFile(checkpoint, file);
  const [first] = await generate({ model: file, ...cpu, ...quick, seed: 9 });
  // Overwrite the file: a second load would fail, so success means the loaded model was reused.
  await writeFile(file, 'not a checkpoint any more');
  const [second] = await generate({ model: file, ...cpu, ...quick, seed: 9 });
  t.ok(second!.png.equals(first!.png));
  await t.rejects(generate({ model: file, ...cpu, threads: 2, ...quick }), SdnodeError,
    'other load options load the file again');
  await t.rejects(generate({ model: file, ...quick, stregth: 1 } as never), {
    name: 'TypeError', message: /^Unknown option "stregth" for generate without image; known options: .*, model, backend/,
  });
});

t.test('generate uses a loaded Model as it is, and an image makes it image-to-image', async (t) => {
  const [viaModel] = await generate({ model, ...quick, seed: 9 });
  t.equal(viaModel!.seed, 9);
  await t.rejects(generate({ model, backend: 'cpu', ...quick }), { name: 'TypeError', message: /^Option backend of generate/ });
  const [changed] = await generate({ model, ...quick, seed: 9, image: viaModel!.png, strength: 0.3 });
  t.match(changed!.parameters, /Denoising strength: 0\.3$/);
});

t.test('engine failures are SdnodeErrors with the native code', async (t) => {
  await t.rejects(loadModel(await writeDamagedCheckpoint(dir, 'garbage')), { name: 'SdnodeError', code: 'ERR_MODEL_FORMAT' });
  await t.rejects(loadModel(path.join(dir, 'missing.safetensors')), { name: 'SdnodeError', code: 'ERR_MODEL_IO' });
});
