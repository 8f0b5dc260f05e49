// Seamless tiling: with circular padding in every convolution of the UNet and the VAE, the image's
// opposite edges continue each other, so copies of it side by side show no seam.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, type Model } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';

const dir = t.testdir();
const model: Model = await loadModel(await writeTinyCheckpoint(dir, { dtype: 'f16' }), { backend: 'cpu', threads: 1 });
t.teardown(() => model.close());

const quick = { prompt: 'a castle', steps: 3, seed: 1 } as const;

/**
 * How far apart the image's last and first columns (`axis` 'columns') or rows are, relative to
 * neighbouring columns (rows) inside it that, like that pair, straddle the border of two latent
 * cells (8 pixels each): the decoder's upsampling makes neighbours within a cell more alike.
 * About 1 when the image continues across the wrap.
 */
function seamRatio(pixels: Buffer, size: number, axis: 'columns' | 'rows'): number {
  const at = (i: number, j: number, c: number) => pixels[(axis === 'columns' ? j * size + i : i * size + j) * 3 + c]!;
  const diff = (i1: number, i2: number) => {
    let sum = 0;
    for (let j = 0; j < size; j++) for (let c = 0; c < 3; c++) sum += Math.abs(at(i1, j, c) - at(i2, j, c));
    return sum / (3 * size);
  };
  let inside = 0;
  for (let i = 7; i + 1 < size; i += 8) inside += diff(i, i + 1);
  return diff(size - 1, 0) / (inside / (size / 8 - 1));
}

async function seamRatios(tiling: boolean, seed: number): Promise<number[]> {
  const [image] = await model.textToImage({ ...quick, width: 128, height: 128, seed, tiling });
  const pixels = await sharp(image!.png).raw().toBuffer();
  return [seamRatio(pixels, 128, 'columns'), seamRatio(pixels, 128, 'rows')];
}

t.test('tiling: false makes the same bytes as leaving it out', async (t) => {
  const [without] = await model.textToImage({ ...quick, width: 64, height: 64 });
  const [off] = await model.textToImage({ ...quick, width: 64, height: 64, tiling: false });
  t.ok(off!.png.equals(without!.png));
  t.notMatch(off!.parameters, /Tiling/);
});

t.test('with tiling, the right edge continues into the left one and the bottom into the top', async (t) => {
  // One image's edges can meet by chance, so four seeds are averaged. Measured on this checkpoint
  // (the narrow fixture VAE): with tiling 0.84–1.19 per edge, mean about 1.03; without it 1.10–1.59,
  // mean about 1.37: zero-padded edges do not continue each other.
  const tiled: number[] = [];
  const plain: number[] = [];
  for (const seed of [1, 2, 3, 4]) {
    tiled.push(...await seamRatios(true, seed));
    plain.push(...await seamRatios(false, seed));
  }
  const mean = (values: number[]) => values.reduce((a, b) => a + b) / values.length;
  const show = (values: number[]) => values.map((r) => r.toFixed(2)).join(', ');
  t.ok(mean(tiled) < 1.15, `with tiling the edges step like the interior: ${show(tiled)}`);
  t.ok(mean(plain) - mean(tiled) > 0.15, `without tiling the edges step more: ${show(plain)}`);
});

t.test('records "Tiling: True" in the parameters, and works for image-to-image', async (t) => {
  const [tiled] = await model.textToImage({ ...quick, width: 64, height: 64, tiling: true });
  t.match(tiled!.parameters, /Model: [^,]+, Tiling: True$/);
  const [changed] = await model.imageToImage({ ...quick, width: 64, height: 64, tiling: true, image: tiled!.png, strength: 0.5 });
  t.match(changed!.parameters, /Denoising strength: 0\.5, Tiling: True$/);
});

t.test('rejects a tiling that is not a boolean, and tiling with vaeTiling', async (t) => {
  await t.rejects(model.textToImage({ ...quick, tiling: 'yes' as never }),
    new TypeError('Expected boolean for tiling but received "yes" of type string'));
  await t.rejects(model.textToImage({ ...quick, tiling: true, vaeTiling: true }),
    new RangeError('tiling is true but vaeTiling is true too; the VAE\'s tiles cannot wrap around the image\'s edges, '
      + 'so turn one of them off'));
});
