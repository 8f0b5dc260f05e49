// The Canny edge detector on images small enough to check by hand: Sobel 3×3 with replicated
// borders, L1 magnitude, non-maximum suppression (a two-pixel-wide ridge keeps its first pixel, as
// OpenCV's rule does), and hysteresis with the low and high thresholds.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import sharp from 'sharp';
import t from 'tap';

import { canny } from '../lib/index.js';

/** A grey image from rows of values. */
function grey(rows: number[][]): { pixels: Uint8Array; width: number; height: number } {
  return { pixels: Uint8Array.from(rows.flat()), width: rows[0]!.length, height: rows.length };
}

/** The edge map as rows of '#' (edge) and '.' (none). */
function picture(edges: Uint8Array, width: number): string[] {
  const rows: string[] = [];
  for (let i = 0; i < edges.length; i += width) rows.push([...edges.subarray(i, i + width)].map((v) => (v === 255 ? '#' : '.')).join(''));
  return rows;
}

const step = (left: number, right: number, width = 8, height = 5, at = 4) =>
  grey(Array.from({ length: height }, () => Array.from({ length: width }, (_, x) => (x < at ? left : right))));

t.test('a flat image has no edges', async (t) => {
  const { pixels, width, height } = grey(Array.from({ length: 6 }, () => Array(6).fill(137)));
  t.same(picture(canny(pixels, width, height, 1), width), Array(6).fill('......'));
});

t.test('a vertical step from black to white is one line on its dark side', async (t) => {
  // Columns 3 and 4 both see |dx| = (1 + 2 + 1) × 255 = 1020; the first keeps the edge.
  const { pixels, width, height } = step(0, 255);
  t.same(picture(canny(pixels, width, height, 1), width), Array(5).fill('...#....'));
});

t.test('a horizontal step is one line too, and the direction of the step does not move it off the first pixel', async (t) => {
  const rows = Array.from({ length: 8 }, (_, y) => Array(5).fill(y < 4 ? 255 : 0));
  const { pixels, width, height } = grey(rows);
  t.same(picture(canny(pixels, width, height, 1), width), ['.....', '.....', '.....', '#####', '.....', '.....', '.....', '.....']);
});

t.test('the high threshold decides whether a step starts an edge', async (t) => {
  // A step of 30 grey levels: |dx| = 4 × 30 = 120.
  const { pixels, width, height } = step(100, 130);
  t.same(picture(canny(pixels, width, height, 1, { low: 100, high: 200 }), width), Array(5).fill('........'), 'below high: none');
  t.same(picture(canny(pixels, width, height, 1, { low: 100, high: 119 }), width), Array(5).fill('...#....'), 'above high: an edge');
  t.same(picture(canny(pixels, width, height, 1, { low: 119, high: 100 }), width), Array(5).fill('...#....'), 'thresholds given the wrong way round are swapped');
  t.same(picture(canny(pixels, width, height, 1, { low: 50, high: 120 }), width), Array(5).fill('........'), 'equal to high is not above it');
});

t.test('a weak edge survives only where it connects to a strong one (hysteresis)', async (t) => {
  // One vertical step, 60 grey levels high in rows 0-3 (|dx| = 240: strong) and 30 in rows 4-11
  // (|dx| = 120: weak with low 100, high 200). Rows 8-11 see only the weak step.
  const rows = Array.from({ length: 12 }, (_, y) => Array.from({ length: 8 }, (_, x) => (x < 4 ? 100 : y < 4 ? 160 : 130)));
  const { pixels, width, height } = grey(rows);
  const joined = picture(canny(pixels, width, height, 1, { low: 100, high: 200 }), width);
  t.same(joined.slice(8), Array(4).fill('...#....'), 'connected to the strong part: kept');
  t.equal(joined[0], '...#....');
  const weak = grey(rows.slice(4));
  t.same(picture(canny(weak.pixels, weak.width, weak.height, 1, { low: 100, high: 200 }), weak.width), Array(8).fill('........'),
    'the weak step alone: dropped');
  const raisedLow = picture(canny(pixels, width, height, 1, { low: 125, high: 200 }), width);
  t.same(raisedLow.slice(8), Array(4).fill('........'), 'below the low threshold: dropped even when connected');
});

t.test('a colour pixel takes the gradient of its strongest channel', async (t) => {
  // Red steps by 255, green and blue stay flat: the same edge as the grey step.
  const width = 8;
  const height = 3;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set([x < 4 ? 0 : 255, 50, 50], (y * width + x) * 3);
  t.same(picture(canny(rgb, width, height, 3), width), Array(3).fill('...#....'));
});

t.test('L2 magnitude: thresholds compare with sqrt(dx² + dy²)', async (t) => {
  // A diagonal step: each pixel's gradient has |dx| = |dy|; L1 counts both, L2 √2 of one.
  const rows = Array.from({ length: 8 }, (_, y) => Array.from({ length: 8 }, (_, x) => (x + y < 8 ? 0 : 40)));
  const { pixels, width, height } = grey(rows);
  const l1 = canny(pixels, width, height, 1, { low: 100, high: 200 });
  const l2 = canny(pixels, width, height, 1, { low: 100, high: 200, l2Gradient: true });
  t.ok(l1.some((v) => v === 255), 'L1 (|dx| + |dy| = 240 on the diagonal) finds the edge');
  t.notOk(l2.some((v) => v === 255), 'L2 (about 170) stays below the high threshold');
});

t.test('a buffer of the wrong size is a RangeError', async (t) => {
  t.throws(() => canny(new Uint8Array(10), 4, 4, 1), { name: 'RangeError', message: /expected 4×4×1 = 16 bytes but received 10/ });
});

t.test('colour images give OpenCV\'s cv2.Canny edges pixel for pixel, with L1 and L2 gradients', async (t) => {
  // Made by fixtures/canny-opencv/make.py with OpenCV 4.6: blurred noise, a disc and a frame.
  const folder = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'canny-opencv');
  const cases = (await readdir(folder)).filter((name) => name.endsWith('-img.png')).map((name) => name.slice(0, -'-img.png'.length));
  t.equal(cases.length, 4);
  for (const name of cases) {
    const [, low, high, l2] = name.split('-');
    const { data, info } = await sharp(path.join(folder, `${name}-img.png`)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const expected = await sharp(path.join(folder, `${name}-edges.png`)).greyscale().raw().toBuffer();
    const edges = canny(data, info.width, info.height, 3, { low: Number(low), high: Number(high), l2Gradient: l2 === '1' });
    let differing = 0;
    for (let i = 0; i < edges.length; i++) if (edges[i] !== expected[i]) differing++;
    t.equal(differing, 0, `${name}: ${expected.filter((v) => v === 255).length} edge pixels, none differ`);
  }
});
