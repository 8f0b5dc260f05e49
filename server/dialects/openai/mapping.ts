// OpenAI ↔ jobs: model names through presets, sizes through the pixel budget, OpenAI's
// transparent-pixel masks into sdnode's white-repaints masks, and results in the asked format.

import sharp from 'sharp';

import { ApiError } from '../../http/errors.js';
import type { JobMode, JobParameters } from '../../jobs/job.js';
import { checkOutputSize } from '../../jobs/limits.js';
import {
  a1111RefinerFields, chosenSeed, refinerParameters, resolveRefiner, samplerFields, withoutUndefined,
} from '../../jobs/parameters.js';
import type { Upload } from '../../jobs/store.js';
import { presetSettings, type PresetSettings, type PresetTable } from '../../models/presets.js';
import type { ModelCatalog, ModelEntry } from '../../models/registry.js';
import { UnknownModelError } from '../../models/registry.js';
import { InvalidFieldError } from '../../parse.js';
import { isKontext } from '../kontext.js';
import { flowFamilyOf } from '../model-family.js';

/** OpenAI's default model when a request names none. */
export const defaultModelName = 'dall-e-2';

export interface Target {
  /** The model id the client used (or the default). */
  id: string;
  settings: PresetSettings;
  checkpoint: ModelEntry;
  /** The preset's refiner, its checkpoint resolved. */
  refiner?: JobParameters['refiner'];
  /** Whether the checkpoint is a flow model (FLUX.1, SD3), as known before the job runs. */
  flow?: boolean;
  /** Whether it is FLUX.1 Kontext: edits send their images as reference images (see kontext.ts). */
  kontext?: boolean;
}

/** A preset name, else a checkpoint name; a 404 naming both kinds of names otherwise. */
export async function resolveTarget(models: ModelCatalog, presets: PresetTable, requested: string | undefined,
  variants: (string | undefined)[]): Promise<Target> {
  const id = requested ?? defaultModelName;
  const preset = presets[id];
  if (preset) {
    const settings = presetSettings(preset, ...variants);
    const checkpoint = await models.resolve(settings.checkpoint);
    return { id, settings, checkpoint, ...await modelKind(checkpoint), ...await presetRefiner(models, id, settings, checkpoint) };
  }
  try {
    const checkpoint = await models.resolve(id);
    return { id, settings: {}, checkpoint, ...await modelKind(checkpoint) };
  } catch (error) {
    if (error instanceof UnknownModelError) {
      throw new UnknownModelError(id, [...Object.keys(presets), ...error.available]);
    }
    throw error;
  }
}

async function modelKind(checkpoint: ModelEntry): Promise<Pick<Target, 'flow' | 'kontext'>> {
  return { flow: (await flowFamilyOf(checkpoint)) !== undefined, kontext: await isKontext(checkpoint) };
}

// The preset's refiner is the server's configuration: a name the models lack is an error of the
// request's `model`, which chose the preset; the message names the preset's field.
async function presetRefiner(models: ModelCatalog, id: string, settings: PresetSettings, checkpoint: ModelEntry):
  Promise<Pick<Target, 'refiner'>> {
  const refiner = settings.refinerCheckpoint === undefined ? undefined
    : refinerParameters(settings.refinerCheckpoint, settings.refinerSwitchAt, a1111RefinerFields);
  try {
    return withoutUndefined({ refiner: await resolveRefiner(models, refiner, checkpoint.name, `refiner_checkpoint of preset ${id}`) });
  } catch (error) {
    if (error instanceof UnknownModelError) throw new ApiError(404, 'MODEL_NOT_FOUND', error.message, { param: 'model' });
    if (error instanceof InvalidFieldError) throw new ApiError(400, 'INVALID_PARAMETER', error.message, { param: 'model' });
    throw error;
  }
}

export interface Size {
  width: number;
  height: number;
}

/** "WIDTHxHEIGHT" → pixels; "auto" or nothing → undefined. */
export function parseSize(text: string | undefined): Size | undefined {
  if (text === undefined || text === 'auto') return undefined;
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(text.trim());
  const width = Number(match?.[1]);
  const height = Number(match?.[2]);
  if (!match || width < 64 || height < 64 || width > 2048 || height > 2048) {
    throw new ApiError(400, 'INVALID_PARAMETER',
      `Expected size as "WIDTHxHEIGHT" with each side 64–2048 (e.g. "1024x1024") or "auto", but received ${JSON.stringify(text)}`,
      { param: 'size' });
  }
  return { width, height };
}

/**
 * What to generate for a requested size: within the preset's pixel budget, aspect ratio kept,
 * sides multiples of `step` (8; 16 for flow models); plus the size to scale the result to when the
 * preset (or a side that is not such a multiple) calls for it.
 */
export function generationSize(requested: Size | undefined, settings: PresetSettings, step = 8):
  Pick<JobParameters, 'width' | 'height' | 'outputWidth' | 'outputHeight'> {
  const target = requested ?? (settings.width !== undefined && settings.height !== undefined
    ? { width: settings.width, height: settings.height } : undefined);
  if (!target) return {};
  checkOutputSize('size', target.width, target.height);
  const budget = settings.maxPixels ?? Number.POSITIVE_INFINITY;
  const scale = Math.min(1, Math.sqrt(budget / (target.width * target.height)));
  const width = Math.max(64, Math.floor((target.width * scale) / step) * step);
  const height = Math.max(64, Math.floor((target.height * scale) / step) * step);
  const exact = width === target.width && height === target.height;
  const scaleBack = !exact && (settings.scaleToSize === true || scale === 1);
  return { width, height, ...(scaleBack && { outputWidth: target.width, outputHeight: target.height }) };
}

/** The job parameters common to every OpenAI route. */
export function baseParameters(target: Target, prompt: string, n: number | undefined, seed: number | undefined,
  negativePrompt?: string): JobParameters {
  // The built-in presets' samplers and cfg scales are UNet choices ("Euler a" at cfg 7): a flow
  // model takes its family's (FLUX.1: euler at cfg 1, one pass) and keeps the preset's steps.
  const settings = target.flow ? { ...target.settings, sampler: undefined, scheduler: undefined, cfgScale: undefined } : target.settings;
  return withoutUndefined({
    prompt,
    negativePrompt: negativePrompt ?? settings.negativePrompt,
    count: n ?? 1,
    seed: chosenSeed(seed),
    steps: settings.steps,
    cfgScale: settings.cfgScale,
    ...samplerFields(settings.sampler, settings.scheduler),
    // OpenAI moderates every request ('auto'): with a safety checker, flagged images come back black.
    safetyCheck: 'filter' as const,
    refiner: target.refiner,
  });
}

export interface EditInputs {
  mode: JobMode;
  uploads: Partial<Record<'image' | 'mask', Upload>>;
  /** The image's own size, for size "auto". */
  imageSize: Size;
}

/**
 * OpenAI marks what to edit with fully transparent pixels: in `mask` when given (it must match
 * the image's size), else in the image itself. They become sdnode's mask (white repaints, black
 * keeps); with none, the edit is image-to-image.
 */
export async function editInputs(image: Upload, mask: Upload | undefined): Promise<EditInputs> {
  const imageMeta = await sharp(image.data).metadata();
  const imageSize = { width: imageMeta.width ?? 0, height: imageMeta.height ?? 0 };
  let alphaSource = image;
  if (mask) {
    const maskMeta = await sharp(mask.data).metadata();
    if (maskMeta.width !== imageSize.width || maskMeta.height !== imageSize.height) {
      throw new ApiError(400, 'INVALID_PARAMETER', `mask must have the same size as image (${imageSize.width}x${imageSize.height}), `
        + `but is ${maskMeta.width ?? 0}x${maskMeta.height ?? 0}`, { param: 'mask' });
    }
    if (!maskMeta.hasAlpha) {
      throw new ApiError(400, 'INVALID_PARAMETER', 'mask must have an alpha channel: its fully transparent pixels mark what to edit',
        { param: 'mask' });
    }
    alphaSource = mask;
  }
  const { data: alpha, info } = await sharp(alphaSource.data).ensureAlpha().extractChannel(3).raw()
    .toBuffer({ resolveWithObject: true });
  let transparent = 0;
  const repaint = Buffer.alloc(alpha.length);
  for (let i = 0; i < alpha.length; i++) {
    if (alpha[i] === 0) {
      repaint[i] = 255;
      transparent++;
    }
  }
  if (transparent === 0) return { mode: 'img2img', uploads: { image }, imageSize };
  const maskPng = await sharp(repaint, { raw: { width: info.width, height: info.height, channels: 1 } }).png().toBuffer();
  return { mode: 'inpaint', uploads: { image, mask: { ext: 'png', data: maskPng } }, imageSize };
}

export type OutputFormat = 'png' | 'jpeg' | 'webp';

/** A result PNG in the format asked for; PNG stays as made (with its parameters chunk). */
export async function encodeOutput(png: Buffer, format: OutputFormat, compression: number | undefined): Promise<Buffer> {
  if (format === 'png') return png;
  const quality = compression ?? 100;
  return format === 'jpeg' ? sharp(png).jpeg({ quality }).toBuffer() : sharp(png).webp({ quality }).toBuffer();
}

export const contentTypes: Readonly<Record<OutputFormat, string>> = {
  png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp',
};
