// FLUX.1 Kontext through the dialects. Kontext edits an image by instruction ("make the car red"):
// the image is read beside the prompt as extra tokens (the library's referenceImages), not noised
// as an image-to-image start. Its files have FLUX.1 dev's tensors, so nothing in them tells it
// apart: a model is Kontext when its name or its diffusion model's file name says "kontext" (as
// every download does: flux1-kontext-dev.safetensors), or when its components are marked so
// (--kontext, or "kontext": true in its JSON file). A model whose family is known to be another
// than FLUX.1 is never Kontext. With --redis, the worker that offers a model decides, and says so
// in its offer. Every image-to-image door (OpenAI edits and variations, A1111 img2img, the task
// API's img2img, M1's /image-to-image, Photoshop's /img2img) asks `isKontext` and then builds its
// job from `kontextJob`.

import { referenceSize } from '../../lib/reference-images.js';
import { imageSize } from '../http/uploads.js';
import { referenceSlots, type JobParameters, type UploadSlot } from '../jobs/job.js';
import type { Upload } from '../jobs/store.js';
import { markedKontext } from '../models/components.js';
import type { ModelEntry } from '../models/registry.js';
import { InvalidFieldError } from '../parse.js';
import { flowFamilyOf } from './model-family.js';

/** Most reference images one Kontext call reads (the library's limit). */
export const maxReferenceImages = referenceSlots.length;

/** Whether image-to-image requests for this model send their images as Kontext's reference images. */
export async function isKontext(entry: ModelEntry): Promise<boolean> {
  // A worker's model (--redis) comes with the worker's answer, which knows the mark and the family.
  if (entry.kontext !== undefined) return entry.kontext;
  if (!markedKontext(entry.components?.kontext, entry.name, [entry.path, entry.components?.diffusionModel ?? ''])) return false;
  // A checkpoint in one file (or an older worker's model) has no family known here: its name decides.
  const family = await flowFamilyOf(entry);
  return family === undefined || family === 'flux-dev' || family === 'flux-schnell';
}

/** A Kontext edit as a job: the images as reference uploads and, unless the request gave one, the output size. */
export interface KontextJob {
  uploads: Partial<Record<UploadSlot, Upload>>;
  /** The first image's size, whole 16-pixel patches of at most about a megapixel (what Kontext reads it at). */
  size: Required<Pick<JobParameters, 'width' | 'height'>>;
}

/**
 * The uploads and default size of a Kontext edit of `images` (1–4, in the request's order);
 * `field` names the request's image field in the errors for none or too many.
 */
export async function kontextJob(images: readonly Upload[], field: string): Promise<KontextJob> {
  if (images.length === 0) throw new InvalidFieldError(field, `${field} is required: the image to edit`);
  if (images.length > maxReferenceImages) {
    throw new InvalidFieldError(field, `Expected at most ${maxReferenceImages} images for ${field} (FLUX.1 Kontext's reference images) `
      + `but received ${images.length}`);
  }
  const uploads: Partial<Record<UploadSlot, Upload>> = {};
  images.forEach((image, i) => { uploads[referenceSlots[i] as UploadSlot] = image; });
  const first = await imageSize(images[0] as Upload);
  const { width, height } = referenceSize(first.width, first.height);
  // Flow models take at least 64 pixels a side, as every dialect's size fields do.
  return { uploads, size: { width: Math.max(64, width), height: Math.max(64, height) } };
}

/** The parameters of a Kontext edit: no strength (nothing is noised); the request's size, else the image's. */
export function kontextParameters(parameters: JobParameters, job: KontextJob): JobParameters {
  const { strength: _unused, ...rest } = parameters;
  return { ...rest, width: parameters.width ?? job.size.width, height: parameters.height ?? job.size.height };
}
