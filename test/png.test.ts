// The synchronous RGB PNG encoder that progress previews use, read back by sharp (libspng).
import sharp from 'sharp';
import t from 'tap';

import { readPngText } from '../lib/index.js';
import { encodeRgbPng } from '../lib/png.js';

t.test('encodes RGB bytes that decode to the same pixels, at odd sizes too', async (t) => {
  for (const [width, height] of [[1, 1], [5, 3], [64, 64]] as const) {
    const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 73 + 11) % 256);
    const png = encodeRgbPng(rgb, width, height);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    t.same([info.width, info.height, info.channels], [width, height, 3]);
    t.ok(data.equals(Buffer.from(rgb)), `${width}x${height} pixels survive`);
    t.same(readPngText(png), {}, 'no text chunks');
  }
});

t.test('rejects bytes that do not fill width × height × 3', async (t) => {
  t.throws(() => encodeRgbPng(new Uint8Array(10), 2, 2), { name: 'RangeError', message: 'Expected 2x2x3 RGB bytes but received 10 bytes' });
  t.throws(() => encodeRgbPng(new Uint8Array(0), 0, 0), { name: 'RangeError' });
});
