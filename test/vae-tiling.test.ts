// vaeTiling: large images decoded (and, for image-to-image, encoded) in overlapping 512-pixel
// tiles, cross-faded.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, type Model } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu, meanAbsDiff } from './fixtures/draw.js';

// Images are 64 pixels high, the least the library takes: the tiles run side by side, and every
// decode costs a quarter of what a 256-pixel-high one does.
const height = 64;
const dir = t.testdir();
const model: Model = await loadModel(await writeTinyCheckpoint(dir, { dtype: 'f16' }), cpu);
t.teardown(() => model.close());

async function rgb(width: number, vaeTiling: boolean, image?: Buffer): Promise<Buffer> {
  const options = { prompt: 'a castle', width, height, steps: 2, seed: 7, vaeTiling };
  const [result] = image ? await model.imageToImage({ ...options, image, strength: 0.5 }) : await model.textToImage(options);
  return sharp(result!.png).raw().toBuffer();
}

/** A smooth test picture: a diagonal colour gradient. */
function gradient(width: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set([(x * 255) / width, (y * 255) / height, 128], (y * width + x) * 3);
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** Mean absolute difference of each pixel column, 0–255. */
function columnDiffs(a: Buffer, b: Buffer, width: number): number[] {
  return Array.from({ length: width }, (_, x) => {
    let sum = 0;
    for (let y = 0; y < height; y++) for (let c = 0; c < 3; c++) sum += Math.abs(a[(y * width + x) * 3 + c]! - b[(y * width + x) * 3 + c]!);
    return sum / (3 * height);
  });
}

t.test('an image of one tile or less decodes exactly as without tiling', async (t) => {
  t.ok((await rgb(512, true)).equals(await rgb(512, false)));
});

t.test('a wider image decodes in two tiles, close to the whole decode and without a seam', async (t) => {
  // 520 pixels are 65 latent cells, the fewest that take two tiles: at 0–63 and 1–64, each
  // cross-faded over 128 pixels where the other overlaps it.
  const whole = await rgb(520, false);
  const tiled = await rgb(520, true);
  const diff = meanAbsDiff(tiled, whole);
  const columns = columnDiffs(tiled, whole, 520);
  // A seam is a step in how far the tiled image is from the whole one, column to column: measured
  // 0.52–0.60 with the cross-fade over three seeds, 18–25 with the same tiles blended without it.
  const jumps = columns.slice(1).map((d, x) => Math.abs(d - columns[x]!));
  t.ok(Math.max(...jumps) < 3, `largest step between columns ${Math.max(...jumps).toFixed(2)} is below 3`);
  // Measured 0.31–0.35: the decoder's group norms see one tile's statistics instead of the image's.
  t.ok(diff > 0 && diff < 2, `mean absolute difference ${diff.toFixed(2)} is in (0, 2)`);
});

t.test('image-to-image encodes in tiles too: exact up to one tile, close beyond', async (t) => {
  const small = await gradient(512);
  t.ok((await rgb(512, true, small)).equals(await rgb(512, false, small)), 'one tile: same bytes');
  const wide = await gradient(520);
  const tiled = await rgb(520, true, wide);
  t.ok(tiled.equals(await rgb(520, true, wide)), 'same options, same bytes');
  // Measured 0.37 (encoded and decoded in tiles, half the steps run from the encoded latent).
  const diff = meanAbsDiff(tiled, await rgb(520, false, wide));
  t.ok(diff > 0 && diff < 2, `mean absolute difference ${diff.toFixed(2)} is in (0, 2)`);
});
