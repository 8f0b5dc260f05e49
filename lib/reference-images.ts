// FLUX.1 Kontext's reference images: each decoded at its own aspect ratio, scaled to at most about a
// megapixel (the size Kontext was trained on) and to whole 16-pixel patches, as RGB for the engine.
import sharp from 'sharp';

import type { NativeReferenceImage } from '../bindings/native.js';
import { decodeImage, openImage } from './images.js';
import type { ImageInput } from './option-types.js';

const MAX_REFERENCE_PIXELS = 1024 * 1024;
const PATCH = 16;

/** The size a reference image of `width`×`height` is read at: its aspect, ≤ 1 MP, sides in 16s (at least 16). */
export function referenceSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, Math.sqrt(MAX_REFERENCE_PIXELS / (width * height)));
  const side = (v: number) => Math.max(PATCH, Math.floor((v * scale) / PATCH) * PATCH);
  return { width: side(width), height: side(height) };
}

/** Decodes `referenceImages[i]` for the engine; errors name `referenceImages[i]`. */
export async function decodeReferenceImages(inputs: readonly ImageInput[]): Promise<NativeReferenceImage[]> {
  return Promise.all(inputs.map(async (input, i) => {
    const name = `referenceImages[${i}]`;
    const bytes = await openImage(input, name);
    const { width = PATCH, height = PATCH, orientation = 1 } = await sharp(bytes).metadata();
    // EXIF orientations 5–8 turn the image a quarter, as decodeImage's autoOrient will.
    const size = orientation >= 5 ? referenceSize(height, width) : referenceSize(width, height);
    return { ...size, data: await decodeImage(bytes, name, size.width, size.height) };
  }));
}
