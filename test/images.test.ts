import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import sharp from 'sharp';
import t from 'tap';

import { decodeImage, decodeImageResized, decodeMask, encodePng, MAX_INPUT_PIXELS } from '../lib/images.js';
import { readPngText } from '../lib/png-metadata.js';

type Rgba = [number, number, number, number];

/** A raw image whose pixel (x, y) is `colour(x, y)`, 4 channels. */
function paint(width: number, height: number, colour: (x: number, y: number) => Rgba): sharp.Sharp {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(colour(x, y), (y * width + x) * 4);
  }
  return sharp(data, { raw: { width, height, channels: 4 } });
}

const opaque = (r: number, g: number, b: number): Rgba => [r, g, b, 255];
/** Pixel (x, y) of RGB bytes. */
const rgbAt = (rgb: Uint8Array, width: number, x: number, y: number) => [...rgb.subarray((y * width + x) * 3, (y * width + x) * 3 + 3)];

const red = opaque(255, 0, 0);
const green = opaque(0, 255, 0);
const blue = opaque(0, 0, 255);
// A 96x64 picture whose colour says where a pixel came from.
const quadrants = paint(96, 64, (x, y) => (y < 32 ? (x < 48 ? red : green) : x < 48 ? blue : opaque(255, 255, 255)));

t.test('decodes PNG, JPEG and WebP buffers to RGB of the requested size', async (t) => {
  const encoded = {
    png: await quadrants.clone().png().toBuffer(),
    jpeg: await quadrants.clone().jpeg({ quality: 95 }).toBuffer(),
    webp: await quadrants.clone().webp({ lossless: true }).toBuffer(),
  };
  for (const [format, bytes] of Object.entries(encoded)) {
    const rgb = await decodeImage(bytes, 'image', 96, 64);
    t.equal(rgb.length, 96 * 64 * 3, `${format}: 3 bytes a pixel`);
    const near = (actual: number[], wanted: number[]) => actual.every((v, i) => Math.abs(v - wanted[i]!) <= 8);
    t.ok(near(rgbAt(rgb, 96, 10, 10), [255, 0, 0]), `${format}: top left is red`);
    t.ok(near(rgbAt(rgb, 96, 80, 50), [255, 255, 255]), `${format}: bottom right is white`);
  }
  const exact = await decodeImage(encoded.png, 'image', 96, 64);
  const { data } = await quadrants.clone().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  t.ok(Buffer.from(exact).equals(data), 'a lossless image of the requested size comes back unchanged');
});

t.test('reads an image from a file path and from a plain Uint8Array', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'picture.webp');
  await writeFile(file, await quadrants.clone().webp({ lossless: true }).toBuffer());
  const fromPath = await decodeImage(file, 'image', 64, 64);
  t.equal(fromPath.length, 64 * 64 * 3);
  const png = await quadrants.clone().png().toBuffer();
  const view = new Uint8Array(png.buffer.slice(png.byteOffset, png.byteOffset + png.length));
  t.same(rgbAt(await decodeImage(view, 'image', 96, 64), 96, 0, 0), [255, 0, 0]);
  await t.rejects(decodeImage(path.join(dir, 'missing.png'), 'image', 64, 64), { code: 'ENOENT' });
});

t.test('scales an image of another size to cover the target and crops the centre', async (t) => {
  // 200x100: red | green (100 wide) | blue. Covering 64x64 scales to 128x64; the centre 64 columns
  // are original columns 50–150, all green. A stretch would show red and blue at the sides.
  const wide = await paint(200, 100, (x) => (x < 50 ? red : x < 150 ? green : blue)).png().toBuffer();
  const rgb = await decodeImage(wide, 'image', 64, 64);
  for (const [x, y] of [[0, 0], [63, 0], [0, 63], [63, 63], [32, 32]] as const) {
    const [r, g, b] = rgbAt(rgb, 64, x, y);
    t.ok(r! < 40 && g! > 215 && b! < 40, `(${x}, ${y}) is green: ${r}, ${g}, ${b}`);
  }
  // 100x200 into 128x64: scaled to 128x256, the centre 64 rows are original rows 75–125.
  const tall = await paint(100, 200, (_x, y) => (y < 75 ? red : y < 125 ? green : blue)).png().toBuffer();
  const rows = await decodeImage(tall, 'image', 128, 64);
  t.same([rgbAt(rows, 128, 64, 2)[1]! > 200, rgbAt(rows, 128, 64, 61)[1]! > 200], [true, true], 'top and bottom rows green');
});

t.test('flattens transparency onto black and turns grey images into RGB', async (t) => {
  const halfTransparent = await paint(8, 8, (x) => (x < 4 ? [255, 255, 255, 0] : [255, 255, 255, 255])).png().toBuffer();
  const rgb = await decodeImage(halfTransparent, 'image', 64, 64);
  t.same(rgbAt(rgb, 64, 5, 32), [0, 0, 0], 'transparent white is black');
  t.same(rgbAt(rgb, 64, 60, 32), [255, 255, 255]);

  const grey = await sharp(Buffer.alloc(64 * 64, 90), { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
  t.same(rgbAt(await decodeImage(grey, 'image', 64, 64), 64, 3, 3), [90, 90, 90]);
});

t.test('reads a brush-layer mask from its alpha and any other mask by its luminance', async (t) => {
  const at = (mask: Uint8Array, x: number, y: number) => mask[y * 64 + x];
  // Red strokes on the left half of a transparent layer: the alpha is the mask.
  const brush = await paint(64, 64, (x) => (x < 32 ? [255, 0, 0, 255] : [0, 0, 0, 0])).png().toBuffer();
  const fromAlpha = await decodeMask(brush, 64, 64, 0);
  t.same([at(fromAlpha, 5, 5), at(fromAlpha, 60, 5)], [255, 0], 'opaque stroke repaints, transparency keeps');

  // Black and white, opaque: luminance.
  const blackWhite = await paint(64, 64, (x) => (x < 32 ? opaque(255, 255, 255) : opaque(0, 0, 0))).png().toBuffer();
  const fromLuminance = await decodeMask(blackWhite, 64, 64, 0);
  t.same([at(fromLuminance, 5, 5), at(fromLuminance, 60, 5)], [255, 0]);
  t.same([at(await decodeMask(await paint(64, 64, () => red).png().toBuffer(), 64, 64, 0), 9, 9)], [76],
    'an opaque red mask is its luminance, not its alpha');
  t.same([at(await decodeMask(await paint(64, 64, () => opaque(0, 0, 0)).png().toBuffer(), 64, 64, 0), 9, 9)], [0],
    'an all-black opaque mask keeps everything');

  // Two colours with transparency: luminance, with transparent pixels flattened onto black.
  const mixed = await paint(64, 64, (x) => (x < 20 ? [255, 255, 255, 255] : x < 40 ? [128, 128, 128, 255] : [255, 255, 255, 0]))
    .png().toBuffer();
  const m = await decodeMask(mixed, 64, 64, 0);
  t.same([at(m, 5, 5), at(m, 30, 5), at(m, 50, 5)], [255, 128, 0]);
});

t.test('resizes masks like images and blurs them by maskBlur pixels', async (t) => {
  // 128x64 with the white half on the left; covering 64x64 keeps columns 32–96, so the edge lands in the middle.
  const wide = await paint(128, 64, (x) => (x < 64 ? opaque(255, 255, 255) : opaque(0, 0, 0))).png().toBuffer();
  const sharpEdge = await decodeMask(wide, 64, 64, 0);
  t.equal(sharpEdge.length, 64 * 64, 'one byte a pixel');
  t.same([sharpEdge[32 * 64 + 28], sharpEdge[32 * 64 + 36]], [255, 0]);

  const soft = await decodeMask(wide, 64, 64, 4);
  const row = [...soft.subarray(32 * 64, 33 * 64)];
  t.ok(row[30]! < 255 && row[30]! > 128 && row[34]! > 0 && row[34]! < 128, `soft edge: ${row.slice(26, 38).join(' ')}`);
  t.same([row[0], row[63]], [255, 0], 'far from the edge stays as it was');
});

t.test('rejects data that is not an image with a TypeError naming the option', async (t) => {
  await t.rejects(decodeImage(Buffer.from('definitely not an image'), 'image', 64, 64), {
    name: 'TypeError',
    message: /^Expected PNG, JPEG or WebP image for image but received 23 bytes that is not an image/,
  });
  await t.rejects(decodeMask(Buffer.alloc(0), 64, 64, 4), {
    name: 'TypeError', message: /^Expected PNG, JPEG or WebP image for mask but received 0 bytes/,
  });
  const dir = t.testdir({ 'notes.txt': 'hello' });
  await t.rejects(decodeImage(path.join(dir, 'notes.txt'), 'image', 64, 64), {
    name: 'TypeError', message: /^Expected PNG, JPEG or WebP image for image but received file ".*notes\.txt" that is not an image/,
  });
  const gif = await paint(8, 8, () => red).gif().toBuffer();
  await t.rejects(decodeImage(gif, 'image', 64, 64), {
    name: 'TypeError', message: `Expected PNG, JPEG or WebP image for image but received ${gif.length} bytes in gif format`,
  });
});

t.test('encodes RGB as a PNG that carries the parameters', async (t) => {
  const pixels = Buffer.from(Array.from({ length: 16 * 8 * 3 }, (_, i) => i & 255));
  const png = await encodePng(pixels, 16, 8, 'a cat\nSteps: 20');
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  t.same([info.format, info.width, info.height, info.channels], ['raw', 16, 8, 3]);
  t.ok(data.equals(pixels));
  t.same(readPngText(png), { parameters: 'a cat\nSteps: 20' });
});

t.test('refuses an image of more than 4096×4096 pixels before decoding it', async (t) => {
  const png = Buffer.from(await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer());
  // The header claims 16383×16383: sharp's own limit lets that through, and decoding it takes gigabytes.
  png.writeUInt32BE(16383, 16);
  png.writeUInt32BE(16383, 20);
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29);
  await t.rejects(decodeImage(png, 'image', 64, 64), { name: 'RangeError', message: /at most 16777216 pixels \(4096×4096\) for image but received 16383×16383/ });
  await t.rejects(decodeMask(png, 64, 64, 0), { name: 'RangeError', message: /for mask/ });
  t.equal(MAX_INPUT_PIXELS, 4096 * 4096);
});

t.test("ControlNet's resize modes: stretch, cover and crop, or fit and fill with the edge's median colour", async (t) => {
  // 96x64 quadrants into 48x48.
  const png = await quadrants.clone().png().toBuffer();
  const stretched = await decodeImageResized(png, 'image', 48, 48, 'just-resize');
  t.same(rgbAt(stretched, 48, 2, 2), [255, 0, 0], 'just-resize: the top-left corner is red');
  t.same(rgbAt(stretched, 48, 45, 2), [0, 255, 0], 'just-resize: the top-right corner is green, nothing cut off');
  t.ok((await decodeImageResized(png, 'image', 48, 48, 'crop-and-resize')).equals(await decodeImage(png, 'image', 48, 48)),
    'crop-and-resize: as the image calls decode');
  // A 96x64 picture, white inside a 16-pixel frame of one colour, fitted inside 48x48: 48x32,
  // centred, 8 rows of fill above and below in the frame's colour (the median of the edge pixels).
  const framed = await paint(96, 64, (x, y) => (x < 16 || y < 16 || x >= 80 || y >= 48 ? opaque(10, 200, 30) : opaque(255, 255, 255)))
    .png().toBuffer();
  const filled = await decodeImageResized(framed, 'image', 48, 48, 'resize-and-fill');
  t.same(rgbAt(filled, 48, 24, 0), [10, 200, 30], 'the fill above');
  t.same(rgbAt(filled, 48, 24, 47), [10, 200, 30], 'the fill below');
  t.same(rgbAt(filled, 48, 24, 24), [255, 255, 255], 'the picture in the middle, whole');
  t.same(rgbAt(filled, 48, 1, 24), [10, 200, 30], 'its frame reaches the sides: nothing cut off');
});
