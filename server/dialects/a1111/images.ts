// AUTOMATIC1111's image handling before a job: base64 decoding, its four resize modes, mask
// inversion and "fill" (masked pixels replaced by the colours around them). The job then gets
// images of exactly its size.

import sharp from 'sharp';

import { ApiError } from '../../http/errors.js';
import { imageUpload } from '../../http/uploads.js';
import type { Upload } from '../../jobs/store.js';

/** Decodes base64 (with or without a data: URL prefix) and checks it is an image; 422 naming `field` otherwise. */
export async function base64Image(field: string, text: string): Promise<Upload> {
  const payload = text.replace(/^data:[^,]*,/, '').replace(/\s+/g, '');
  if (payload === '' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) {
    throw new ApiError(422, 'INVALID_PARAMETER', `${field} is not base64 image data`, { param: field });
  }
  return imageUpload(field, Buffer.from(payload, 'base64'));
}

export type ResizeMode = 0 | 1 | 2 | 3;

/**
 * A1111's resize modes to width × height: 0 just resize (stretch), 1 crop and resize (cover, centre
 * crop), 2 resize and fill (fit inside, edges repeated outward), 3 just resize (A1111 then upscales
 * in latent space; here the pixels are resized, the same picture).
 */
export async function resized(image: Buffer, mode: number, width: number, height: number): Promise<Buffer> {
  const input = sharp(image).removeAlpha();
  switch (mode) {
    case 1:
      return input.resize(width, height, { fit: 'cover', position: 'centre', kernel: 'lanczos3' }).png().toBuffer();
    case 2: {
      const fitted = await input.resize(width, height, { fit: 'inside', kernel: 'lanczos3' }).png().toBuffer({ resolveWithObject: true });
      const left = Math.floor((width - fitted.info.width) / 2);
      const top = Math.floor((height - fitted.info.height) / 2);
      return sharp(fitted.data).extend({
        left, right: width - fitted.info.width - left, top, bottom: height - fitted.info.height - top, extendWith: 'copy',
      }).png().toBuffer();
    }
    default:
      return input.resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).png().toBuffer();
  }
}

/** A mask as one grey byte per pixel (alpha masks by their alpha), optionally inverted. */
export async function maskBytes(mask: Buffer, width: number, height: number, mode: number, invert: boolean): Promise<Buffer> {
  const meta = await sharp(mask).metadata();
  const source = meta.hasAlpha && !(await opaque(mask)) ? await sharp(mask).extractChannel(3).png().toBuffer() : mask;
  const grey = await sharp(await resized(await sharp(source).greyscale().png().toBuffer(), mode, width, height))
    .greyscale().raw().toBuffer();
  const bytes = Buffer.from(grey.subarray(0, width * height));
  if (invert) for (let i = 0; i < bytes.length; i++) bytes[i] = 255 - (bytes[i] as number);
  return bytes;
}

async function opaque(image: Buffer): Promise<boolean> {
  const { channels } = await sharp(image).stats();
  const alpha = channels[3];
  return alpha === undefined || alpha.min === 255;
}

export async function greyPng(bytes: Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(bytes, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

/**
 * A1111's "fill" masked content: every masked pixel takes the average colour of the unmasked
 * pixels around it (a normalised blur of the kept pixels), so sampling starts from the
 * surroundings' colours instead of what was there.
 */
export async function filledUnderMask(image: Buffer, mask: Buffer, width: number, height: number): Promise<Buffer> {
  const rgb = await sharp(image).removeAlpha().raw().toBuffer();
  const keep = Buffer.alloc(width * height);
  const kept = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const weight = (mask[i] as number) < 128 ? 255 : 0;
    keep[i] = weight;
    for (let c = 0; c < 3; c++) kept[i * 3 + c] = weight === 0 ? 0 : (rgb[i * 3 + c] as number);
  }
  const sigma = Math.max(width, height) / 8;
  const blurredColour = await sharp(kept, { raw: { width, height, channels: 3 } }).blur(sigma).raw().toBuffer();
  const blurredWeight = await sharp(keep, { raw: { width, height, channels: 1 } }).blur(sigma).raw().toBuffer();
  const out = Buffer.from(rgb);
  for (let i = 0; i < width * height; i++) {
    if ((mask[i] as number) < 128) continue;
    const weight = (blurredWeight[i] as number) / 255;
    for (let c = 0; c < 3; c++) {
      out[i * 3 + c] = weight > 0.01 ? Math.min(255, Math.round((blurredColour[i * 3 + c] as number) / weight)) : 128;
    }
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
