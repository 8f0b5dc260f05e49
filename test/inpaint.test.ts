// Inpainting end to end on tiny checkpoints: which pixels are kept (byte for byte), what black,
// white and grey masks do, how masks are read, and the 9-channel inpainting UNet.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, type GeneratedImage, type Model, type Progress } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';

const dir = t.testdir();
const checkpoint = await writeTinyCheckpoint(dir);
const plain = await loadModel(checkpoint, cpu);
t.teardown(() => plain.close());
const inpainting = await loadModel(await writeTinyCheckpoint(dir, { inpaint: true }), cpu);
t.teardown(() => inpainting.close());

const size = 64;
const common = { prompt: 'a stone tower', width: size, height: size, steps: 4, seed: 5 } as const;
const quick = { ...common, maskBlur: 0 } as const;

const input = await sharp(Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256)),
  { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
const inputPixels = await sharp(input).raw().toBuffer();

async function first(images: Promise<GeneratedImage[]>): Promise<Buffer> {
  const [image] = await images;
  return sharp(image!.png).raw().toBuffer();
}

function greyMask(width: number, height: number, value: (x: number, y: number) => number): Promise<Buffer> {
  const data = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = value(x, y);
  return sharp(data, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

const leftHalf = await greyMask(size, size, (x) => (x < size / 2 ? 255 : 0));
const black = await greyMask(size, size, () => 0);
const white = await greyMask(size, size, () => 255);

/** Bytes of the right half that equal the input, and bytes of the left half that differ from it. */
function splitCounts(out: Buffer): { kept: number; changed: number } {
  let kept = 0;
  let changed = 0;
  for (let i = 0; i < out.length; i++) {
    const x = Math.floor(i / 3) % size;
    if (x >= size / 2) kept += out[i] === inputPixels[i] ? 1 : 0;
    else changed += out[i] !== inputPixels[i] ? 1 : 0;
  }
  return { kept, changed };
}

function meanDistance(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

for (const [name, model] of [['a plain checkpoint', plain], ['an inpainting checkpoint', inpainting]] as [string, Model][]) {
  t.test(`${name}: keeps the pixels where the mask is black byte for byte and repaints the rest`, async (t) => {
    for (const strength of [1, 0.6]) {
      const { kept, changed } = splitCounts(await first(model.inpaint({ ...quick, image: input, mask: leftHalf, strength })));
      t.equal(kept, (size * size * 3) / 2, `strength ${strength}: every kept byte equals the input`);
      t.ok(changed > (size * size * 3) / 4, `strength ${strength}: the masked half was repainted (${changed} bytes)`);
    }
  });

  t.test(`${name}: an all-black mask returns the input without sampling`, async (t) => {
    const events: Progress[] = [];
    const out = await first(model.inpaint({ ...quick, image: input, mask: black, onProgress: (p) => events.push(p) }));
    t.ok(out.equals(inputPixels));
    t.same(events, []);
  });

  t.test(`${name}: an all-white mask gives the image-to-image picture of the same seed and strength`, async (t) => {
    for (const strength of [1, 0.8]) {
      const all = await first(model.inpaint({ ...quick, image: input, mask: white, strength }));
      const img2img = await first(model.imageToImage({ ...common, image: input, strength }));
      t.ok(all.equals(img2img), `strength ${strength}`);
    }
  });

  t.test(`${name}: the same request gives the same bytes`, async (t) => {
    const a = await first(model.inpaint({ ...quick, image: input, mask: leftHalf }));
    const b = await first(model.inpaint({ ...quick, image: input, mask: leftHalf }));
    t.ok(a.equals(b));
  });
}

t.test('a grey mask repaints partly: the result stays nearer the input than with a white mask', async (t) => {
  const grey = await greyMask(size, size, () => 128);
  const partly = await first(plain.inpaint({ ...quick, image: input, mask: grey, strength: 1 }));
  const fully = await first(plain.inpaint({ ...quick, image: input, mask: white, strength: 1 }));
  t.notOk(partly.equals(inputPixels), 'grey changes the image');
  t.ok(meanDistance(partly, inputPixels) < meanDistance(fully, inputPixels) * 0.75,
    `mean distance to the input: grey ${meanDistance(partly, inputPixels).toFixed(1)}, white ${meanDistance(fully, inputPixels).toFixed(1)}`);
});

t.test('a blurred mask keeps the pixels far from its edge and blends those near it', async (t) => {
  const out = await first(plain.inpaint({ ...quick, maskBlur: 2, image: input, mask: leftHalf, strength: 1 }));
  const at = (x: number, y: number) => (y * size + x) * 3;
  const same = (x: number) => out.subarray(at(x, 9), at(x, 9) + 3).equals(inputPixels.subarray(at(x, 9), at(x, 9) + 3));
  for (const x of [40, 50, 63]) t.ok(same(x), `x ${x} kept`);
  t.notOk(same(32), 'x 32, just right of the edge, blended');
});

t.test('a mask of another size is scaled to the image', async (t) => {
  const small = await greyMask(16, 16, (x) => (x < 8 ? 255 : 0));
  const out = await first(plain.inpaint({ ...quick, image: input, mask: small }));
  // Scaling softens the edge a little; away from it the mask is the full-size one.
  let keptRight = true;
  let changedLeft = 0;
  for (let i = 0; i < out.length; i++) {
    const x = Math.floor(i / 3) % size;
    if (x >= 36 && out[i] !== inputPixels[i]) keptRight = false;
    if (x < 28 && out[i] !== inputPixels[i]) changedLeft++;
  }
  t.ok(keptRight, 'the right side is kept');
  t.ok(changedLeft > (size * size * 3 * 28) / 64 / 2, 'the left side is repainted');
});

t.test('a colour mask is read by its luminance', async (t) => {
  // Pure red: 0.299 * 255 = 76 on the grey scale.
  const red = await sharp({ create: { width: size, height: size, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
  const grey76 = await greyMask(size, size, () => 76);
  const fromRed = await first(plain.inpaint({ ...quick, image: input, mask: red }));
  t.ok(fromRed.equals(await first(plain.inpaint({ ...quick, image: input, mask: grey76 }))));
});

t.test('a missing image or mask is a TypeError naming it', async (t) => {
  // @ts-expect-error: the image is required
  await t.rejects(plain.inpaint({ ...quick, mask: leftHalf }), { name: 'TypeError', message: /for image/ });
  // @ts-expect-error: the mask is required
  await t.rejects(plain.inpaint({ ...quick, image: input }), { name: 'TypeError', message: /for mask/ });
});

t.test('an inpainting checkpoint also makes text-to-image and image-to-image pictures, deterministically', async (t) => {
  t.equal(inpainting.info.inpainting, true);
  t.equal(plain.info.inpainting, false);
  const a = await first(inpainting.textToImage(common));
  t.ok(a.equals(await first(inpainting.textToImage(common))));
  const b = await first(inpainting.imageToImage({ ...common, image: input, strength: 0.7 }));
  t.ok(b.equals(await first(inpainting.imageToImage({ ...common, image: input, strength: 0.7 }))));
  t.notOk(b.equals(inputPixels));
});
