// Inpainting "only masked" at full resolution (AUTOMATIC1111's inpaint_full_res): the mask's
// bounding box, grown by a padding and then to the image's aspect ratio, is cut out, inpainted at
// the full image size, scaled back and pasted over the original through the mask. Small masked
// areas of a large picture get all of the model's resolution.

import sharp from 'sharp';

import { insertPngText, readPngText } from '../../lib/index.js';

export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Runs `inpaint` on the masked region of `image` (both `width` × `height`) and pastes the result
 * back; the whole image when the mask is empty.
 */
export async function inpaintMaskedRegion(image: Buffer, mask: Buffer, width: number, height: number, padding: number,
  inpaint: (image: Buffer, mask: Buffer) => Promise<Buffer>): Promise<Buffer> {
  const maskBytes = await sharp(mask).greyscale().resize(width, height, { fit: 'fill' }).raw().toBuffer();
  const region = maskedRegion(maskBytes, width, height, padding);
  if (!region) return inpaint(image, mask);
  const extract = { left: region.left, top: region.top, width: region.width, height: region.height };
  const crop = await sharp(image).removeAlpha().extract(extract).png().toBuffer();
  const cropMask = await sharp(maskBytes, { raw: { width, height, channels: 1 } }).extract(extract).png().toBuffer();
  const made = await inpaint(crop, cropMask);
  const patch = await sharp(made).removeAlpha().resize(region.width, region.height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
  const alpha = await sharp(cropMask).greyscale().raw().toBuffer();
  const original = await sharp(image).removeAlpha().resize(width, height, { fit: 'fill' }).raw().toBuffer();
  for (let y = 0; y < region.height; y++) {
    for (let x = 0; x < region.width; x++) {
      const a = (alpha[y * region.width + x] as number) / 255;
      if (a === 0) continue;
      const o = ((region.top + y) * width + region.left + x) * 3;
      const p = (y * region.width + x) * 3;
      for (let c = 0; c < 3; c++) {
        original[o + c] = Math.round((original[o + c] as number) * (1 - a) + (patch[p + c] as number) * a);
      }
    }
  }
  const png = await sharp(original, { raw: { width, height, channels: 3 } }).png().toBuffer();
  const { parameters } = readPngText(made);
  return parameters === undefined ? png : insertPngText(png, 'parameters', parameters);
}

/** The mask's bounding box grown by `padding` and then to the image's aspect ratio; undefined when empty. */
export function maskedRegion(mask: Uint8Array, width: number, height: number, padding: number): Region | undefined {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if ((mask[y * width + x] as number) === 0) continue;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  if (x1 < 0) return undefined;
  let left = Math.max(0, x0 - padding);
  let top = Math.max(0, y0 - padding);
  let right = Math.min(width, x1 + 1 + padding);
  let bottom = Math.min(height, y1 + 1 + padding);
  // Grow the short side until the region has the image's aspect ratio, centred, kept inside.
  const ratio = width / height;
  if ((right - left) / (bottom - top) < ratio) {
    [left, right] = grow(left, right, Math.round((bottom - top) * ratio), width);
  } else {
    [top, bottom] = grow(top, bottom, Math.round((right - left) / ratio), height);
  }
  return { left, top, width: right - left, height: bottom - top };
}

function grow(start: number, end: number, size: number, limit: number): [number, number] {
  const wanted = Math.min(size, limit);
  let newStart = Math.round(start - (wanted - (end - start)) / 2);
  newStart = Math.max(0, Math.min(newStart, limit - wanted));
  return [newStart, newStart + wanted];
}
