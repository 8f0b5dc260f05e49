// ESRGAN-family upscalers through the library, on tiny random networks in the released layouts:
// the scale each layout gives, tiles that leave no seams, sizes asked for, and bad files and options.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { loadModel, loadUpscaler, SdnodeError, upscale } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu, meanAbsDiff } from './fixtures/draw.js';
import { esrganBytes, writeEsrgan } from './fixtures/esrgan.js';
import { writeTaesd } from './fixtures/taesd.js';

const dir = t.testdir();
const x4 = await writeEsrgan(dir);

// A picture with edges and gradients, so that a seam between tiles would show.
async function picture(width: number, height: number): Promise<Buffer> {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      rgb[p] = (x * 255) / width;
      rgb[p + 1] = (y * 255) / height;
      rgb[p + 2] = (x + y) % 16 < 8 ? 220 : 30;
    }
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

function meanAbsoluteDifference(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

function distinctValues(rgb: Buffer): number {
  return new Set(rgb).size;
}

t.test('an x4 RRDBNet makes the image four times as large, with detail', async (t) => {
  const upscaler = await loadUpscaler(x4, cpu);
  t.teardown(() => upscaler.close());
  t.same(upscaler.info, { architecture: 'rrdbnet', scale: 4, blocks: 2, features: 16, weightBytes: upscaler.info.weightBytes, backend: 'cpu' });
  const result = await upscaler.upscale(await picture(24, 20));
  t.equal(result.width, 96);
  t.equal(result.height, 80);
  const decoded = await sharp(result.png).raw().toBuffer({ resolveWithObject: true });
  t.same([decoded.info.width, decoded.info.height, decoded.info.channels], [96, 80, 3]);
  t.same(decoded.data, result.data, 'the PNG holds the RGB bytes');
  t.ok(distinctValues(result.data) > 50, 'not a flat or clamped image');
});

t.test('the old ESRGAN names run the same network as BasicSR names', async (t) => {
  const old = await writeEsrgan(dir, { arch: 'old' });
  const input = await picture(20, 16);
  const [a, b] = await Promise.all([upscale(input, { model: x4, ...cpu }), upscale(input, { model: old, ...cpu })]);
  t.same(a.data, b.data);
});

t.test('an x2 RRDBNet with a pixel-unshuffled input doubles odd sizes too', async (t) => {
  const upscaler = await loadUpscaler(await writeEsrgan(dir, { scale: 2 }), cpu);
  t.teardown(() => upscaler.close());
  t.equal(upscaler.info.scale, 2);
  const result = await upscaler.upscale(await picture(25, 19));
  t.same([result.width, result.height], [50, 38]);
  t.ok(distinctValues(result.data) > 50);
});

t.test('a compact SRVGGNet upscales by its pixel shuffle', async (t) => {
  const upscaler = await loadUpscaler(await writeEsrgan(dir, { arch: 'compact', blocks: 3 }), cpu);
  t.teardown(() => upscaler.close());
  t.same([upscaler.info.architecture, upscaler.info.scale, upscaler.info.blocks], ['srvggnet', 4, 3]);
  const result = await upscaler.upscale(await picture(16, 12));
  t.same([result.width, result.height], [64, 48]);
});

t.test('tiles leave no seams: a tiled upscale is close to the whole-image one', async (t) => {
  const upscaler = await loadUpscaler(x4, cpu);
  t.teardown(() => upscaler.close());
  const input = await picture(72, 56);
  const whole = await upscaler.upscale(input, { tile: 128 });
  const tiles: number[] = [];
  const tiled = await upscaler.upscale(input, { tile: 40, onProgress: ({ tiles: n }) => tiles.push(n) });
  t.equal(tiles.length, 6, 'two rows of three tiles');
  t.notSame(tiled.data, whole.data, 'the tiles ran apart');
  const difference = meanAbsoluteDifference(tiled.data, whole.data);
  t.ok(difference < 0.1, `mean difference ${difference.toFixed(3)} levels`);
});

t.test('a scale or size other than the model\'s is resized to exactly that', async (t) => {
  const upscaler = await loadUpscaler(x4, cpu);
  t.teardown(() => upscaler.close());
  const input = await picture(16, 12);
  const half = await upscaler.upscale(input, { scale: 2 });
  t.same([half.width, half.height], [32, 24]);
  const passes: number[] = [];
  const twice = await upscaler.upscale(input, { scale: 6, onProgress: ({ passes: n }) => passes.push(n) });
  t.same([twice.width, twice.height], [96, 72]);
  t.equal(passes[0], 2, 'x6 with an x4 model runs it twice');
  const sized = await upscaler.upscale(input, { width: 40 });
  t.same([sized.width, sized.height], [40, 30]);
});

t.test('stops when the signal aborts', async (t) => {
  const upscaler = await loadUpscaler(x4, cpu);
  t.teardown(() => upscaler.close());
  const controller = new AbortController();
  const run = upscaler.upscale(await picture(96, 96), {
    tile: 32, signal: controller.signal, onProgress: ({ tile }) => { if (tile === 1) controller.abort(); },
  });
  await t.rejects(run, { code: 'ERR_ABORTED' });
});

t.test('bad files are errors that name the problem', async (t) => {
  await t.rejects(loadUpscaler(path.join(dir, 'missing.safetensors'), cpu), { code: 'ERR_MODEL_IO' });
  const taesd = await writeTaesd(dir);
  await t.rejects(loadUpscaler(taesd, cpu), { code: 'ERR_MODEL_UNSUPPORTED', message: /not an ESRGAN-family upscaler/ });
  const damaged = await writeEsrgan(dir, { name: 'damaged.safetensors', omit: 'body.1.rdb2.conv3.weight' });
  await t.rejects(loadUpscaler(damaged, cpu), { code: 'ERR_MODEL_FORMAT', message: /body\.1\.rdb2\.conv3\.weight/ });
  const truncated = path.join(dir, 'truncated.safetensors');
  const bytes = esrganBytes();
  await writeFile(truncated, bytes.subarray(0, bytes.length - 100));
  const error = await loadUpscaler(truncated, cpu).catch((e: unknown) => e);
  t.ok(error instanceof SdnodeError && error.code === 'ERR_MODEL_FORMAT', String(error));
});

t.test('bad options are errors naming the option', async (t) => {
  const upscaler = await loadUpscaler(x4, cpu);
  t.teardown(() => upscaler.close());
  const input = await picture(8, 8);
  await t.rejects(upscaler.upscale(input, { scale: 0 }), { name: 'RangeError', message: /for scale but received 0/ });
  await t.rejects(upscaler.upscale(input, { tile: 'big' as unknown as number }), { name: 'TypeError', message: /for tile/ });
  await t.rejects(upscaler.upscale(input, { scale: 2, width: 10 }), { name: 'TypeError', message: /scale and width/ });
  await t.rejects(upscaler.upscale(Buffer.from('not an image')), { name: 'TypeError', message: /for image/ });
  await t.rejects(upscale(input, { model: '' }), { name: 'TypeError', message: /for model/ });
  await upscaler.close();
  await t.rejects(upscaler.upscale(input), { code: 'ERR_UPSCALER_CLOSED' });
});

t.test('the hires fix upscales with an ESRGAN file, named by its stem in the parameters', async (t) => {
  const model = await loadModel(await writeTinyCheckpoint(dir, { dtype: 'f16' }), cpu);
  t.teardown(() => model.close());
  const quick = { prompt: 'a castle', width: 64, height: 64, steps: 1, cfgScale: 1, seed: 42 } as const;
  // A light second pass, so that the upscaled image shows through the tiny model's denoising.
  const [esrgan] = await model.textToImage({ ...quick, hires: { upscaler: x4, denoisingStrength: 0.1 } });
  const [lanczos] = await model.textToImage({ ...quick, hires: { upscaler: 'Lanczos', denoisingStrength: 0.1 } });
  t.same([esrgan!.width, esrgan!.height], [128, 128]);
  t.match(esrgan!.parameters, /Hires upscale: 2, Hires upscaler: esrgan-new-x4$/);
  const [a, b] = await Promise.all([esrgan!.png, lanczos!.png].map((png) => sharp(png).raw().toBuffer()));
  t.ok(meanAbsDiff(a!, b!) > 5, 'not the Lanczos image');
  await t.rejects(model.textToImage({ ...quick, hires: { upscaler: 'RealESRGAN' } }), { name: 'RangeError', message: /hires\.upscaler.*ESRGAN/ });
  await t.rejects(model.textToImage({ ...quick, hires: { upscaler: path.join(dir, 'missing.safetensors') } }), { code: 'ERR_MODEL_IO' });
});
