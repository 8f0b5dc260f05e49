// The PNG container: chunk framing and its CRC, and a small synchronous encoder for raw RGB. Image
// results go through sharp (lib/images.ts); progress previews use encodeRgbPng, as they are made
// inside the progress callback, which must return before the next step's callback can arrive.
import { deflateSync } from 'node:zlib';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** One chunk: length, type, data, CRC over type and data. */
export function encodeChunk(type: string, data: Buffer): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}

/**
 * A PNG of 8-bit RGB pixels (row-major, 3 bytes a pixel), synchronously. Every row is stored with
 * filter type 0 (none): for the small images this is meant for, filtering would save a few hundred
 * bytes at most.
 */
export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Buffer {
  const stride = width * 3;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || rgb.length !== stride * height) {
    throw new RangeError(`Expected ${width}x${height}x3 RGB bytes but received ${rgb.length} bytes`);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  // bit depth 8, colour type 2 (RGB); compression, filter method and interlace all 0
  ihdr[8] = 8;
  ihdr[9] = 2;
  const rows = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) rows.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([
    PNG_SIGNATURE, encodeChunk('IHDR', ihdr), encodeChunk('IDAT', deflateSync(rows)), encodeChunk('IEND', Buffer.alloc(0)),
  ]);
}

// zlib.crc32 exists only from Node 20.15 / 22.2; package.json allows any Node 20.
const crcTable = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 as PNG (and zlib) computes it over a chunk's type and data. */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
