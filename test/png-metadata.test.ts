import zlib from 'node:zlib';

import sharp from 'sharp';
import t from 'tap';

import { normalizeImageOptions, type GenerateMode } from '../lib/options.js';
import { formatParameters, insertPngText, MAX_PNG_TEXT_BYTES, MAX_PNG_TEXT_TOTAL_BYTES, readPngText } from '../lib/png-metadata.js';

const width = 24;
const height = 16;
const pixels = Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 53 + 7) & 255));
const plainPng = await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();

const request = (options: Record<string, unknown>, mode: GenerateMode = 'txt2img') =>
  normalizeImageOptions(options, mode, { family: 'sd1', prediction: 'eps' }, 'test');
const image = Buffer.alloc(1);

/** [type, data] of every chunk, in file order. */
function chunks(png: Buffer): Array<[string, Buffer]> {
  const list: Array<[string, Buffer]> = [];
  for (let offset = 8; offset < png.length;) {
    const length = png.readUInt32BE(offset);
    list.push([png.toString('latin1', offset + 4, offset + 8), png.subarray(offset + 4, offset + 12 + length)]);
    offset += 12 + length;
  }
  return list;
}

t.test('writes the parameters as AUTOMATIC1111 does', async (t) => {
  t.equal(formatParameters(request({ prompt: 'a photo of a cat', negativePrompt: 'blurry', seed: 1 }), { seed: 42, subseed: 0 }, 'v1-5'),
    'a photo of a cat\nNegative prompt: blurry\n'
    + 'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model: v1-5');
  t.equal(formatParameters(request({ prompt: 'a cat', sampler: 'DPM++ 2M Karras', cfgScale: 7.5, width: 640, height: 384 }),
    { seed: 7, subseed: 0 }, 'model'),
  'a cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 7, Size: 640x384, Model: model',
  'no negative prompt line without a negative prompt; schedule type when not discrete');
  t.equal(formatParameters(request({ prompt: 'night', image, strength: 0.6, steps: 8 }, 'img2img'), { seed: 5, subseed: 0 }, 'm'),
    'night\nSteps: 8, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: m, Denoising strength: 0.6');
  t.equal(formatParameters(request({ prompt: 'tower', image, mask: image, clipSkip: 2 }, 'inpaint'), { seed: 5, subseed: 0 }, 'm'),
    'tower\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: m, Denoising strength: 0.75, '
    + 'Clip skip: 2, Mask blur: 4');
});

t.test('quotes a value holding a comma, colon or newline, as AUTOMATIC1111 does', async (t) => {
  t.equal(formatParameters(request({ prompt: 'a cat' }), { seed: 1, subseed: 0 }, 'v1-5, pruned: ema'),
    'a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: "v1-5, pruned: ema"');
});

t.test('reads back the parameters chunk it wrote, right after IHDR with a valid CRC', async (t) => {
  const text = 'a photo of a cat, (detailed:1.2)\nNegative prompt: blurry\nSteps: 20, Seed: 42';
  const png = insertPngText(plainPng, 'parameters', text);
  t.same(readPngText(png), { parameters: text });

  const [ihdr, textChunk] = chunks(png);
  t.equal(ihdr?.[0], 'IHDR');
  t.equal(textChunk?.[0], 'tEXt');
  const body = textChunk![1];
  t.equal(body.readUInt32BE(body.length - 4), zlib.crc32(body.subarray(0, body.length - 4)), 'CRC-32 as zlib computes it');
  t.same(chunks(png).map(([type]) => type), chunks(plainPng).flatMap(([type]) => (type === 'IHDR' ? [type, 'tEXt'] : [type])));
});

t.test('the PNG stays decodable with the same pixels', async (t) => {
  const png = insertPngText(plainPng, 'parameters', 'a cat');
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  t.same([info.width, info.height, info.channels], [width, height, 3]);
  t.ok(data.equals(pixels));
  const metadata = await sharp(png).metadata();
  t.same(metadata.comments, [{ keyword: 'parameters', text: 'a cat' }], 'libvips reads the chunk too');
});

t.test('writes a prompt that is not Latin-1 as UTF-8 in an iTXt chunk', async (t) => {
  const text = '東京タワー, 🐱, café';
  const png = insertPngText(plainPng, 'parameters', text);
  t.equal(chunks(png)[1]?.[0], 'iTXt');
  t.same(readPngText(png), { parameters: text });
  t.equal((await sharp(png).metadata()).width, width);
});

t.test('reads compressed text chunks that other tools write', async (t) => {
  t.same(readPngText(plainPng), {}, 'a PNG without text has none');
  const zText = Buffer.concat([Buffer.from('Comment\0\0', 'latin1'), zlib.deflateSync(Buffer.from('squeezed', 'latin1'))]);
  const withZ = insertChunk(plainPng, 'zTXt', zText);
  t.same(readPngText(withZ), { Comment: 'squeezed' });
});

t.test('skips text that inflates past its limit, corrupt compressed text, and text past the total', async (t) => {
  const zChunk = (keyword: string, text: Buffer) => Buffer.concat([Buffer.from(`${keyword}\0\0`, 'latin1'), zlib.deflateSync(text)]);
  // 64 MB of zeros in 64 KB: a decompression bomb once inflated without an output limit.
  const bomb = insertChunk(insertChunk(plainPng, 'tEXt', Buffer.from('parameters\0kept', 'latin1')), 'zTXt',
    zChunk('Comment', Buffer.alloc(64 * 1024 * 1024)));
  t.same(readPngText(bomb), { parameters: 'kept' });
  const iBomb = Buffer.concat([Buffer.from('workflow\0\u0001\0\0\0', 'latin1'), zlib.deflateSync(Buffer.alloc(MAX_PNG_TEXT_BYTES + 1))]);
  t.same(readPngText(insertChunk(plainPng, 'iTXt', iBomb)), {});
  t.same(readPngText(insertChunk(plainPng, 'zTXt', Buffer.from('Comment\0\0not zlib', 'latin1'))), {});
  let many = plainPng;
  const big = Buffer.alloc(MAX_PNG_TEXT_BYTES, 'a');
  for (let i = 0; i < 6; i++) many = insertChunk(many, 'zTXt', zChunk(`k${i}`, big));
  const read = readPngText(many);
  t.equal(Object.keys(read).length, MAX_PNG_TEXT_TOTAL_BYTES / MAX_PNG_TEXT_BYTES, 'chunks past the total are skipped');
});

t.test('any keyword is an own property of the result', async (t) => {
  const png = insertChunk(plainPng, 'tEXt', Buffer.from('__proto__\0text', 'latin1'));
  const read = readPngText(png);
  t.ok(Object.hasOwn(read, '__proto__'));
  t.equal(read.__proto__, 'text');
});

t.test('rejects data that is not a PNG or is cut short', async (t) => {
  t.throws(() => readPngText(Buffer.from('GIF89a not a png')), { name: 'TypeError', message: /^Expected PNG data for png/ });
  t.throws(() => readPngText(plainPng.subarray(0, 40)), { name: 'TypeError', message: /^Truncated PNG/ });
  t.throws(() => insertPngText(Buffer.from('nope'), 'parameters', 'x'), { name: 'TypeError' });
});

function insertChunk(png: Buffer, type: string, data: Buffer): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(zlib.crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  const ihdrEnd = 8 + 12 + png.readUInt32BE(8);
  return Buffer.concat([png.subarray(0, ihdrEnd), chunk, png.subarray(ihdrEnd)]);
}
