// Image-to-image and inpainting end to end on tiny checkpoints: what strength does, which pixels
// are kept, and the 9-channel inpainting UNet.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, type GeneratedImage, type Progress } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';

const dir = t.testdir();
const model = await loadModel(await writeTinyCheckpoint(dir), { backend: 'cpu' });
t.teardown(() => model.close());

const size = 64;
const quick = { prompt: 'a stone tower', width: size, height: size, steps: 4, seed: 3 } as const;

// A picture with structure, so that "unchanged" is a real claim.
const input = await sharp(Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256)),
  { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
const inputPixels = await sharp(input).raw().toBuffer();

async function rgb(images: Promise<GeneratedImage[]>): Promise<Buffer> {
  const [image] = await images;
  return sharp(image!.png).raw().toBuffer();
}

function greyMask(width: number, height: number, value: (x: number, y: number) => number): Promise<Buffer> {
  const data = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = value(x, y);
  return sharp(data, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

t.test('strength 0 returns the input pixels exactly; strength 1 repaints them', async (t) => {
  t.ok((await rgb(model.imageToImage({ ...quick, image: input, strength: 0 }))).equals(inputPixels));
  t.notOk((await rgb(model.imageToImage({ ...quick, image: input, strength: 1 }))).equals(inputPixels));
});

t.test('an intermediate strength runs int(steps x strength) + 1 steps, as the reference tools do', async (t) => {
  const events: Progress[] = [];
  await model.imageToImage({ ...quick, steps: 10, image: input, strength: 0.5, onProgress: (p) => events.push(p) });
  t.same(events.map((e) => [e.step, e.steps]), [[1, 6], [2, 6], [3, 6], [4, 6], [5, 6], [6, 6]]);
});

t.test('inpainting keeps the pixels where the mask is black byte for byte', async (t) => {
  const leftHalf = await greyMask(size, size, (x) => (x < size / 2 ? 255 : 0));
  const out = await rgb(model.inpaint({ ...quick, image: input, mask: leftHalf, strength: 1, maskBlur: 0 }));
  let kept = 0;
  let changed = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * size + x) * 3 + c;
        if (x >= size / 2) kept += out[i] === inputPixels[i] ? 1 : 0;
        else changed += out[i] !== inputPixels[i] ? 1 : 0;
      }
    }
  }
  t.equal(kept, (size * size * 3) / 2, 'every kept byte equals the input');
  t.ok(changed > (size * size * 3) / 4, 'the masked half was repainted');
});

t.test('an all-black mask returns the input; an all-white one is image-to-image', async (t) => {
  const black = await greyMask(size, size, () => 0);
  const white = await greyMask(size, size, () => 255);
  t.ok((await rgb(model.inpaint({ ...quick, image: input, mask: black, strength: 1 }))).equals(inputPixels));
  const all = await rgb(model.inpaint({ ...quick, image: input, mask: white, strength: 0.8, maskBlur: 0 }));
  const img2img = await rgb(model.imageToImage({ ...quick, image: input, strength: 0.8 }));
  t.ok(all.equals(img2img));
});

t.test('a mask of another size is resized, and a colour mask is read by its luminance', async (t) => {
  const small = await greyMask(16, 16, (x) => (x < 8 ? 255 : 0));
  const out = await rgb(model.inpaint({ ...quick, image: input, mask: small, maskBlur: 0 }));
  const right = (y: number, x: number) => (y * size + x) * 3;
  t.equal(out[right(10, 60)], inputPixels[right(10, 60)], 'right side kept');
  const red = await sharp({ create: { width: size, height: size, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
  const [image] = await model.inpaint({ ...quick, image: input, mask: red, maskBlur: 0 });
  t.equal((await sharp(image!.png).metadata()).width, size, 'a colour mask is accepted');
});

t.test('a missing image or mask is a TypeError naming it', async (t) => {
  // @ts-expect-error: the image is required
  await t.rejects(model.imageToImage({ ...quick }), { name: 'TypeError', message: /for image/ });
  // @ts-expect-error: the mask is required
  await t.rejects(model.inpaint({ ...quick, image: input }), { name: 'TypeError', message: /for mask/ });
});

t.test('an inpainting checkpoint (9-channel UNet) inpaints and makes text-to-image, deterministically', async (t) => {
  const inpainting = await loadModel(await writeTinyCheckpoint(dir, { inpaint: true }), { backend: 'cpu' });
  t.teardown(() => inpainting.close());
  t.equal(inpainting.info.inpainting, true);
  const mask = await greyMask(size, size, (x) => (x < size / 2 ? 255 : 0));
  const a = await rgb(inpainting.inpaint({ ...quick, image: input, mask, maskBlur: 0 }));
  const b = await rgb(inpainting.inpaint({ ...quick, image: input, mask, maskBlur: 0 }));
  t.ok(a.equals(b));
  t.equal(a[(5 * size + 60) * 3], inputPixels[(5 * size + 60) * 3], 'kept pixels stay');
  const [plain] = await inpainting.textToImage(quick);
  t.equal((await sharp(plain!.png).metadata()).height, size);
});
