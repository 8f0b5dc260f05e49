// Inpainting's `maskedStart` (AUTOMATIC1111's "Masked content" latent noise / latent nothing): what
// the masked region starts from changes the repainted pixels only, deterministically, and is
// recorded in the parameters text.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, readPngText, type GeneratedImage, type InpaintOptions, type Model } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';

const dir = t.testdir();
const plain = await loadModel(await writeTinyCheckpoint(dir), cpu);
t.teardown(() => plain.close());
const inpainting = await loadModel(await writeTinyCheckpoint(dir, { inpaint: true }), cpu);
t.teardown(() => inpainting.close());

const size = 64;
const drawing = { prompt: 'a stone tower', width: size, height: size, steps: 4, seed: 5 } as const;
const common = { ...drawing, maskBlur: 0 } as const;

const input = await sharp(Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256)),
  { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
const inputPixels = await sharp(input).raw().toBuffer();

function greyMask(value: (x: number) => number): Promise<Buffer> {
  const data = Buffer.alloc(size * size);
  for (let i = 0; i < data.length; i++) data[i] = value(i % size);
  return sharp(data, { raw: { width: size, height: size, channels: 1 } }).png().toBuffer();
}

const leftHalf = await greyMask((x) => (x < size / 2 ? 255 : 0));
const white = await greyMask(() => 255);

async function pixels(images: Promise<GeneratedImage[]>): Promise<Buffer> {
  const [image] = await images;
  return sharp(image!.png).raw().toBuffer();
}

/** Bytes of the left (masked) half that differ between a and b, and of the right half that differ from the input. */
function compare(a: Buffer, b: Buffer): { maskedDiffering: number; keptDiffering: number } {
  let maskedDiffering = 0;
  let keptDiffering = 0;
  for (let i = 0; i < a.length; i++) {
    if (Math.floor(i / 3) % size < size / 2) maskedDiffering += a[i] !== b[i] ? 1 : 0;
    else keptDiffering += a[i] !== inputPixels[i] ? 1 : 0;
  }
  return { maskedDiffering, keptDiffering };
}

for (const [name, model] of [['a plain checkpoint', plain], ['an inpainting checkpoint', inpainting]] as [string, Model][]) {
  t.test(`${name}: noise and zeros repaint the masked half differently from the original, and keep the rest`, async (t) => {
    const options: InpaintOptions = { ...common, image: input, mask: leftHalf, strength: 0.6 };
    const original = await pixels(model.inpaint(options));
    const noise = await pixels(model.inpaint({ ...options, maskedStart: 'noise' }));
    const zeros = await pixels(model.inpaint({ ...options, maskedStart: 'zeros' }));
    for (const [label, out] of [['noise', noise], ['zeros', zeros]] as const) {
      const { maskedDiffering, keptDiffering } = compare(out, original);
      t.equal(keptDiffering, 0, `${label}: every unmasked byte equals the input`);
      t.ok(maskedDiffering > (size * size * 3) / 4, `${label}: the masked half differs from 'original' (${maskedDiffering} bytes)`);
    }
    t.ok(compare(noise, zeros).maskedDiffering > (size * size * 3) / 4, 'noise and zeros differ from each other');
  });

  t.test(`${name}: the same request gives the same bytes; another seed other noise`, async (t) => {
    const options: InpaintOptions = { ...common, image: input, mask: leftHalf, strength: 0.8, maskedStart: 'noise' };
    const once = await pixels(model.inpaint(options));
    t.ok(once.equals(await pixels(model.inpaint(options))));
    t.notOk(once.equals(await pixels(model.inpaint({ ...options, seed: 6 }))));
    const zeros: InpaintOptions = { ...options, maskedStart: 'zeros' };
    t.ok((await pixels(model.inpaint(zeros))).equals(await pixels(model.inpaint(zeros))));
  });
}

t.test('zeros under an all-white mask at strength 1 is the text-to-image picture of the same seed', async (t) => {
  const [inpainted] = await plain.inpaint({ ...common, image: input, mask: white, strength: 1, maskedStart: 'zeros' });
  const [drawn] = await plain.textToImage(drawing);
  t.ok((await sharp(inpainted!.png).raw().toBuffer()).equals(await sharp(drawn!.png).raw().toBuffer()));
});

t.test('the parameters text records the masked content as AUTOMATIC1111 names it', async (t) => {
  for (const [maskedStart, text] of [['noise', 'latent noise'], ['zeros', 'latent nothing']] as const) {
    const [image] = await plain.inpaint({ ...common, steps: 1, image: input, mask: leftHalf, maskedStart });
    t.match(readPngText(image!.png).parameters, new RegExp(`Mask blur: 0, Masked content: ${text}$`));
  }
  const [original] = await plain.inpaint({ ...common, steps: 1, image: input, mask: leftHalf });
  t.notMatch(readPngText(original!.png).parameters, /Masked content/);
});

t.test('a bad maskedStart is a RangeError naming the option and its values', async (t) => {
  await t.rejects(plain.inpaint({ ...common, image: input, mask: leftHalf, maskedStart: 'latent noise' as never }), {
    name: 'RangeError', message: /Expected one of original, noise, zeros for maskedStart but received "latent noise"/,
  });
  await t.rejects(plain.imageToImage({ ...drawing, image: input, maskedStart: 'noise' } as never), {
    name: 'TypeError', message: /Unknown option "maskedStart" for imageToImage/,
  });
});
