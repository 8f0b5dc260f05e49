// The hires fix: a first pass at the base size, the upscale (on the latent, or Lanczos on the
// image), and an image-to-image pass at the target size, on a tiny random checkpoint.
import sharp from 'sharp';
import t from 'tap';

import { generate, hiresUpscalerNames, loadModel, type Model, type Progress } from '../lib/index.js';
import { hiresSize } from '../lib/hires.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { meanAbsDiff } from './fixtures/draw.js';

const dir = t.testdir();
const model: Model = await loadModel(await writeTinyCheckpoint(dir, { dtype: 'f16' }), { backend: 'cpu', threads: 2 });
t.teardown(() => model.close());

// One step per pass and no negative pass (cfg 1): the tiny model's pixels are noise either way;
// sizes and plumbing are the point.
const quick = { prompt: 'a castle', width: 64, height: 64, steps: 1, cfgScale: 1, seed: 42 } as const;

async function pngSize(png: Buffer): Promise<string> {
  const { width, height } = await sharp(png).metadata();
  return `${width}x${height}`;
}

t.test('makes the image at twice the base size by default, and records it as A1111 does', async (t) => {
  const [image] = await model.textToImage({ ...quick, hires: {} });
  t.same([image!.width, image!.height, await pngSize(image!.png)], [128, 128, '128x128']);
  t.equal(image!.parameters, 'a castle\nSteps: 1, Sampler: Euler a, CFG scale: 1, Seed: 42, Size: 64x64, '
    + 'Model: tiny-sd1-f16-seed1, Denoising strength: 0.7, Hires upscale: 2, Hires upscaler: Latent');
});

t.test('sizes the second pass by scale, by one side keeping the aspect ratio, or by both with a centre crop', async (t) => {
  t.same(hiresSize(512, 768, { scale: 1.5 }), { width: 768, height: 1152, upscaleWidth: 768, upscaleHeight: 1152 });
  t.same(hiresSize(500, 300, { scale: 1.3 }), { width: 648, height: 384, upscaleWidth: 648, upscaleHeight: 384 },
    'floored to multiples of 8');
  t.same(hiresSize(512, 768, { width: 1024 }), { width: 1024, height: 1536, upscaleWidth: 1024, upscaleHeight: 1536 });
  t.same(hiresSize(512, 768, { height: 1000 }), { width: 664, height: 1000, upscaleWidth: 664, upscaleHeight: 1000 },
    'hr_resize_y * width // height, floored to 8');
  t.same(hiresSize(512, 512, { width: 1024, height: 768 }), { width: 1024, height: 768, upscaleWidth: 1024, upscaleHeight: 1024 },
    'a wider target: upscaled by the width, rows cropped');
  t.same(hiresSize(512, 512, { width: 768, height: 1024 }), { width: 768, height: 1024, upscaleWidth: 1024, upscaleHeight: 1024 },
    'a taller target: upscaled by the height, columns cropped');

  const [byWidth] = await model.textToImage({ ...quick, width: 96, hires: { width: 192, steps: 1 } });
  t.same([byWidth!.width, byWidth!.height, await pngSize(byWidth!.png)], [192, 128, '192x128']);
  t.match(byWidth!.parameters, /Hires resize: 192x0, Hires steps: 1, Hires upscaler: Latent$/);
  const [cropped] = await model.textToImage({ ...quick, hires: { width: 128, height: 64, steps: 1 } });
  t.same([cropped!.width, cropped!.height, await pngSize(cropped!.png)], [128, 64, '128x64']);
  t.match(cropped!.parameters, /Hires resize: 128x64,/);
});

t.test('runs the second pass for the requested steps, reported after the first pass', async (t) => {
  const events: Progress[] = [];
  await model.textToImage({ ...quick, steps: 3, hires: { steps: 2 }, previews: true, onProgress: (p) => events.push(p) });
  t.same(events.map(({ step, steps, pass, passStep, passSteps, preview }) => [step, steps, pass, passStep, passSteps, preview?.width]), [
    [1, 5, 'first', 1, 3, 8], [2, 5, 'first', 2, 3, 8], [3, 5, 'first', 3, 3, 8], [4, 5, 'hires', 1, 2, 16],
    [5, 5, 'hires', 2, 2, 16],
  ], 'previews of each pass at its own size');
  const again: Progress[] = [];
  await model.textToImage({ ...quick, steps: 2, hires: { steps: 0, denoisingStrength: 0.3 }, onProgress: (p) => again.push(p) });
  t.same(again.filter((p) => p.pass === 'hires').map((p) => p.passStep), [1, 2], 'steps 0: as many as the first pass');
});

t.test('every upscaler makes the target size; nearest and nearest-exact agree at 2x but not at 1.5x', async (t) => {
  const images = new Map<string, Buffer>();
  for (const upscaler of hiresUpscalerNames) {
    const [image] = await model.textToImage({ ...quick, hires: { upscaler: upscaler.toUpperCase() as typeof upscaler } });
    t.equal(await pngSize(image!.png), '128x128', upscaler);
    t.match(image!.parameters, new RegExp(`Hires upscaler: ${upscaler.replace(/[()]/g, '\\$&')}$`), 'named as A1111 does');
    images.set(upscaler, await sharp(image!.png).raw().toBuffer());
  }
  t.ok(images.get('Latent (nearest)')!.equals(images.get('Latent (nearest-exact)')!));
  t.ok(meanAbsDiff(images.get('Latent')!, images.get('Lanczos')!) > 1, 'the latent and image-space upscalers differ');
  t.ok(meanAbsDiff(images.get('Latent')!, images.get('Latent (bicubic)')!) > 0, 'bilinear and bicubic differ');
  const at = async (upscaler: 'Latent (nearest)' | 'Latent (nearest-exact)') =>
    sharp((await model.textToImage({ ...quick, hires: { scale: 1.5, upscaler } }))[0]!.png).raw().toBuffer();
  t.notOk((await at('Latent (nearest)')).equals(await at('Latent (nearest-exact)')));
});

t.test('the second pass takes its own prompt, and the parameters say so', async (t) => {
  const [same] = await model.textToImage({ ...quick, hires: { prompt: 'a castle' } });
  const [other] = await model.textToImage({ ...quick, hires: { prompt: 'a tower, at night' } });
  const [plain] = await model.textToImage({ ...quick, hires: {} });
  t.ok(same!.png.equals(plain!.png), 'the same prompt again is no change');
  t.ok(meanAbsDiff(await sharp(other!.png).raw().toBuffer(), await sharp(plain!.png).raw().toBuffer()) > 0);
  t.match(other!.parameters, /Denoising strength: 0\.7, Hires prompt: "a tower, at night", Hires upscale: 2,/);
});

t.test('image i of a call is the same as a call for its seed alone', async (t) => {
  const images = await model.textToImage({ ...quick, count: 2, hires: { upscaler: 'Lanczos' } });
  const [second] = await model.textToImage({ ...quick, seed: 43, hires: { upscaler: 'Lanczos' } });
  t.same(images.map((image) => [image.seed, image.width]), [[42, 128], [43, 128]]);
  t.ok(images[1]!.png.equals(second!.png));
});

t.test('rejects bad hires options with a message that names the option', async (t) => {
  const cases: Array<[unknown, typeof TypeError | typeof RangeError, string]> = [
    [true, TypeError, 'Expected object for hires but received true of type boolean'],
    [{ scales: 2 }, TypeError, 'Unknown option "scales" for hires; known options: scale, width, height, upscaler, steps, '
      + 'denoisingStrength, prompt, negativePrompt'],
    [{ scale: 0.5 }, RangeError, 'Expected number between 1 and 8 for hires.scale but received 0.5 of type number'],
    [{ scale: 2, width: 128 }, TypeError, 'hires.scale is 2 but hires.width is given too; give the scale or the size, not both'],
    [{ width: 100 }, RangeError, 'Expected multiple of 8 between 64 and 2048 for hires.width but received 100 of type number'],
    [{ upscaler: 'ESRGAN_4x' }, RangeError, 'Expected one of Latent, Latent (antialiased), Latent (bicubic), '
      + 'Latent (bicubic antialiased), Latent (nearest), Latent (nearest-exact), Lanczos, or the path of an ESRGAN .safetensors '
      + 'or .gguf file for hires.upscaler but received '
      + '"ESRGAN_4x" of type string'],
    [{ steps: 151 }, RangeError, 'Expected integer between 0 and 150 for hires.steps but received 151 of type number'],
    [{ denoisingStrength: 0 }, RangeError,
      'Expected number above 0 and at most 1 for hires.denoisingStrength but received 0 of type number'],
    [{ prompt: 1 }, TypeError, 'Expected string for hires.prompt but received 1 of type number'],
    [{ scale: 8 }, RangeError, 'hires.scale 8 on a 512x512 image makes it 4096x4096; the hires fix works with 64 to 2048 '
      + 'pixels a side'],
    [{ width: 1024, height: 1024 }, RangeError, 'hires.width 1024 and hires.height 1024 on a 512x128 image upscale it to '
      + '4096x1024 before the crop; the hires fix works with 64 to 2048 pixels a side'],
  ];
  for (const [hires, kind, message] of cases) {
    const height = message.includes('512x128') ? 128 : 512;
    await t.rejects(model.textToImage({ ...quick, width: 512, height, hires } as never), new kind(message), message);
  }
  const unknownHires = { name: 'TypeError', message: /^Unknown option "hires" for / };
  await t.rejects(model.imageToImage({ ...quick, image: Buffer.alloc(1), hires: {} } as never), unknownHires,
    'text-to-image only');
  await t.rejects(generate({ model: 'unused.safetensors', ...quick, image: Buffer.alloc(1), hires: {} } as never), unknownHires);
});
