// Image files in and out. The engine sees only raw pixels of exactly the requested size: RGB bytes
// for images, one byte per pixel for masks; decoding, orientation, alpha and resizing happen here.
import { readFile } from 'node:fs/promises';

import sharp from 'sharp';

import type { ImageInput } from './option-types.js';
import { insertPngText } from './png-metadata.js';

const acceptedFormats = ['png', 'jpeg', 'webp'];

/**
 * Largest image read, in pixels (width × height): 4096 × 4096. sharp's own limit is 16 times
 * that, and a small PNG of one colour can claim it and take gigabytes to decode.
 */
export const MAX_INPUT_PIXELS = 4096 * 4096;

/** sharp for an untrusted image: decoding stops at MAX_INPUT_PIXELS. */
function decoder(bytes: Buffer): sharp.Sharp {
  return sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS });
}

/**
 * Decodes `input` to RGB bytes of exactly `width`×`height` (row-major, 3 bytes a pixel). EXIF
 * orientation is applied and alpha flattened onto black. Another size is scaled to cover the target
 * and centre-cropped, AUTOMATIC1111's "Crop and resize": no stretching and no borders.
 */
export async function decodeImage(input: ImageInput, name: string, width: number, height: number): Promise<Uint8Array> {
  const bytes = await openImage(input, name);
  const { data, info } = await decoder(bytes)
    .autoOrient()
    .flatten({ background: '#000000' })
    .resize(width, height, { fit: 'cover', position: 'centre' })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return expectRaw(data, info, 3, width, height);
}

/**
 * How an image of another size is fitted to the target, as AUTOMATIC1111's ControlNet resize modes:
 * 'just-resize' stretches it; 'crop-and-resize' scales it to cover the target and centre-crops;
 * 'resize-and-fill' scales it to fit inside and fills the rest with the median colour of its edge pixels.
 */
export type ResizeMode = 'just-resize' | 'crop-and-resize' | 'resize-and-fill';

/** `decodeImage` with a choice of how another size is fitted (see `ResizeMode`). */
export async function decodeImageResized(
  input: ImageInput, name: string, width: number, height: number, mode: ResizeMode,
): Promise<Uint8Array> {
  if (mode === 'crop-and-resize') return decodeImage(input, name, width, height);
  const bytes = await openImage(input, name);
  const { data, info } = await decoder(bytes)
    .autoOrient()
    .flatten({ background: '#000000' })
    .resize(width, height, { fit: mode === 'just-resize' ? 'fill' : 'inside' })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const inner = expectRaw(data, info, 3, info.width, info.height);
  if (info.width === width && info.height === height) return inner;
  const fill = medianEdgeColour(inner, info.width, info.height);
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) out.set(fill, p * 3);
  const left = Math.floor((width - info.width) / 2);
  const top = Math.floor((height - info.height) / 2);
  for (let y = 0; y < info.height; y++) {
    out.set(inner.subarray(y * info.width * 3, (y + 1) * info.width * 3), ((top + y) * width + left) * 3);
  }
  return out;
}

/** Per channel, the median (numpy's: the mean of the middle two, truncated) of an RGB image's first and last rows and columns. */
function medianEdgeColour(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const edge: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y === 0 || y === height - 1 || x === 0 || x === width - 1) edge.push((y * width + x) * 3);
    }
  }
  const colour = new Uint8Array(3);
  for (let c = 0; c < 3; c++) {
    const values = edge.map((p) => rgb[p + c]).sort((a, b) => a - b);
    const middle = values.length >> 1;
    colour[c] = values.length % 2 === 1 ? values[middle] : (values[middle - 1] + values[middle]) >> 1;
  }
  return colour;
}

/** The size of an image file or its bytes, after EXIF orientation. */
export async function imageSize(input: ImageInput, name: string): Promise<{ width: number; height: number }> {
  const { info } = await decoder(await openImage(input, name)).autoOrient().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height };
}

/**
 * Decodes a mask to one byte per pixel (255 repaints, 0 keeps) of exactly `width`×`height`, resized
 * like `decodeImage`, then blurred with a Gaussian of sigma `blurSigma` pixels (0: none).
 *
 * A mask with transparency whose visible pixels all have one colour (a brush layer) is read from its
 * alpha; any other mask by its luminance (ITU-R 601, as Pillow's "L" mode that AUTOMATIC1111 uses)
 * with alpha flattened onto black, so transparent pixels keep the image.
 */
export async function decodeMask(input: ImageInput, width: number, height: number, blurSigma: number): Promise<Uint8Array> {
  const bytes = await openImage(input, 'mask');
  const rgba = await decoder(bytes)
    .autoOrient()
    .ensureAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const grey = maskFromRgba(expectRaw(rgba.data, rgba.info, 4, rgba.info.width, rgba.info.height));
  let resized = sharp(grey, { raw: { width: rgba.info.width, height: rgba.info.height, channels: 1 } })
    .resize(width, height, { fit: 'cover', position: 'centre' });
  if (blurSigma > 0) resized = resized.blur(blurSigma);
  const { data, info } = await resized.toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  return expectRaw(data, info, 1, width, height);
}

/** Encodes RGB bytes as a PNG with AUTOMATIC1111's `parameters` text chunk. */
export async function encodePng(rgb: Uint8Array, width: number, height: number, parameters: string): Promise<Buffer> {
  const png = await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
  return insertPngText(png, 'parameters', parameters);
}

function maskFromRgba(rgba: Uint8Array): Uint8Array {
  const pixels = rgba.length / 4;
  const grey = new Uint8Array(pixels);
  if (isBrushLayer(rgba)) {
    for (let i = 0; i < pixels; i++) grey[i] = rgba[i * 4 + 3];
    return grey;
  }
  for (let i = 0; i < pixels; i++) {
    const p = i * 4;
    const luminance = (rgba[p] * 299 + rgba[p + 1] * 587 + rgba[p + 2] * 114) / 1000;
    grey[i] = Math.round(luminance * rgba[p + 3] / 255);
  }
  return grey;
}

// Some transparency, and one colour wherever a pixel shows at all: the alpha is the drawing. An
// opaque mask's alpha says nothing, so an all-black opaque mask still means "keep everything".
function isBrushLayer(rgba: Uint8Array): boolean {
  let translucent = false;
  let colour = -1;
  for (let p = 0; p < rgba.length; p += 4) {
    const alpha = rgba[p + 3];
    if (alpha < 255) translucent = true;
    if (alpha === 0) continue;
    const rgb = (rgba[p] << 16) | (rgba[p + 1] << 8) | rgba[p + 2];
    if (colour < 0) colour = rgb;
    else if (rgb !== colour) return false;
  }
  return translucent;
}

/**
 * Reads a path or views bytes, and checks that they are an image of an accepted format of at
 * most MAX_INPUT_PIXELS (a RangeError naming `name` otherwise).
 */
export async function openImage(input: ImageInput, name: string): Promise<Buffer> {
  const bytes = typeof input === 'string'
    ? await readFile(input)
    : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const received = typeof input === 'string' ? `file ${JSON.stringify(input)}` : `${bytes.length} bytes`;
  let format: string | undefined;
  let width = 0;
  let height = 0;
  try {
    ({ format, width = 0, height = 0 } = await sharp(bytes).metadata());
  } catch (err) {
    throw new TypeError(`Expected PNG, JPEG or WebP image for ${name} but received ${received} that is not an image `
      + `(${(err as Error).message})`, { cause: err });
  }
  if (!format || !acceptedFormats.includes(format)) {
    throw new TypeError(`Expected PNG, JPEG or WebP image for ${name} but received ${received} in ${format} format`);
  }
  if (width * height > MAX_INPUT_PIXELS) {
    throw new RangeError(`Expected an image of at most ${MAX_INPUT_PIXELS} pixels (4096×4096) for ${name} but received ${width}×${height}`);
  }
  return bytes;
}

// The pipelines above always give these shapes; a mismatch is a sharp behaviour change, caught here
// rather than as a garbled picture or an out-of-bounds read in the engine.
function expectRaw(data: Buffer, info: sharp.OutputInfo, channels: number, width: number, height: number): Uint8Array {
  if (info.channels !== channels || info.width !== width || info.height !== height
    || data.length !== width * height * channels) {
    throw new Error(`Decoded ${info.width}x${info.height}x${info.channels} (${data.length} bytes) `
      + `where ${width}x${height}x${channels} was expected`);
  }
  return data;
}
