// Every user-facing option is checked here, in one place, and normalised into the plain request the
// addon takes (its NativeRequest, less the prompt conditioning and the decoded pixels, which need
// async work). Wrong types are TypeErrors, values out of range RangeErrors, and every message names
// the option, what is allowed and what was received. An option set to undefined counts as omitted.
import { randomInt } from 'node:crypto';

import type { NativeRequest } from '../bindings/native.js';
import {
  defaultScheduler, findSampler, findScheduler, samplerAliases, samplerDisplayNames, samplerNames, schedulerNames,
} from './samplers.js';

/** How to load a model. */
export interface LoadOptions {
  /** Compute backend; 'auto' picks CUDA or Metal when compiled in and available, else the CPU. Default 'auto'. */
  backend?: 'auto' | 'cpu' | 'metal' | 'cuda';
  /** Worker threads for the CPU backend. Integer 1–1024, default the number of physical cores. */
  threads?: number;
  /** What the UNet predicts; 'auto' reads it from the checkpoint (SD 2.x 768 models are 'v'). Default 'auto'. */
  prediction?: 'auto' | 'eps' | 'v';
  /**
   * Type the weight matrices are kept in: 'auto' keeps the checkpoint's (f16, or a GGUF's quantized
   * types); 'f32' and 'f16' convert every matrix and convolution kernel; a quantized type ('q8_0',
   * 'q4_0', …) quantizes f16/f32 matrices on load whose rows are whole blocks (32 values, 256 for
   * the K-quants), leaving convolution kernels, embeddings and vectors as they are. Smaller types
   * use less memory (see `ModelInfo.weightBytes`) at some cost in fidelity. Case-insensitive;
   * default 'auto'.
   */
  weightType?: WeightType;
}

/** Resident types of the `weightType` load option. */
export const weightTypes = [
  'auto', 'f32', 'f16', 'q8_0', 'q6_k', 'q5_k', 'q5_1', 'q5_0', 'q4_k', 'q4_1', 'q4_0', 'q3_k', 'q2_k',
] as const;

export type WeightType = typeof weightTypes[number];

/** Options of `convertModel()`. */
export interface ConvertOptions {
  /**
   * Type of the weights in the written file, as the `weightType` load option: the file then holds
   * exactly what `loadModel(input, { weightType })` keeps in memory, and loads without converting.
   * 'auto' keeps the stored types (bf16 becomes f32). Case-insensitive; default 'auto'.
   */
  weightType?: WeightType;
  /** Threads that quantize. Integer 1–1024, default the number of physical cores. */
  threads?: number;
  /** Replace `output` when it exists; otherwise that is an 'ERR_OUTPUT_EXISTS' error. Default false. */
  overwrite?: boolean;
  /** Stops the conversion before its next tensor; `output` is then left as it was. Rejects with an AbortError. */
  signal?: AbortSignal;
  /** Called after each tensor is written. */
  onProgress?: (progress: ConvertProgress) => void;
}

/** Progress of `convertModel()`. */
export interface ConvertProgress {
  /** Tensors written so far. Range 1–`tensors`. */
  tensor: number;
  /** Tensors the file gets. */
  tensors: number;
}

/** Progress of a running call, reported after every sampling step. */
export interface Progress {
  /** Sampling step just finished, 1-based. Range 1–`steps`. */
  step: number;
  /** Sampling steps each image takes; image-to-image may take fewer than the `steps` option, as `strength` skips some. */
  steps: number;
  /** Image being made, 0-based. Range 0–`images` − 1. */
  image: number;
  /** Images this call makes (its `count`). */
  images: number;
  /** Milliseconds since the call started running. */
  elapsedMs: number;
  /** A preview of the image at this step; present only on the steps `previews` / `previewEvery` ask for. */
  preview?: Preview;
}

/**
 * A cheap look at an image while it is made: the model's current estimate of the finished image
 * (its denoised prediction at this step), projected from the latent to RGB by a fixed linear map
 * (AUTOMATIC1111's "Approximate cheap") instead of the VAE. One pixel per latent cell, so 1/8 of the
 * image's width and height (64×64 for 512×512), not upscaled; colours are approximate.
 */
export interface Preview {
  /** PNG file bytes (8-bit RGB, no metadata). */
  png: Buffer;
  /** Width in pixels: the image's width / 8. */
  width: number;
  /** Height in pixels: the image's height / 8. */
  height: number;
  /** Sampling step it shows, 1-based; the same as the progress event's `step`. */
  step: number;
}

/** Options of a text-to-image call; every image call takes these. */
export interface ImageOptions {
  /** What to draw, with AUTOMATIC1111 emphasis syntax: `(word)`, `[word]`, `(word:1.3)`; any length. Default ''. */
  prompt?: string;
  /** What to steer away from, same syntax as `prompt`. Default ''. */
  negativePrompt?: string;
  /** Image width in pixels. Multiple of 8, 64–2048; default 512 (768 for SD 2.x v-prediction models). */
  width?: number;
  /** Image height in pixels. Multiple of 8, 64–2048; default 512 (768 for SD 2.x v-prediction models). */
  height?: number;
  /** Sampling steps. Integer 1–150, default 20. */
  steps?: number;
  /** Classifier-free guidance scale; 1 disables guidance (no negative pass). Number 0–30, default 7. */
  cfgScale?: number;
  /**
   * Sampler: an engine name (see `samplers()`), an AUTOMATIC1111 name ("Euler a", "DPM++ 2M", "LMS",
   * "PLMS", "DPM++ 2M Karras" — a " Karras"/" Exponential" suffix sets `scheduler`) or an alias
   * ('k-lms'), case-insensitive. Default 'euler_a'.
   */
  sampler?: string;
  /**
   * Noise schedule: 'discrete', 'karras', 'exponential', 'lcm' or 'simple' (see `schedulers()`),
   * case-insensitive. Default 'discrete' ('lcm' for the lcm and tcd samplers, 'simple' for ddim_trailing).
   */
  scheduler?: string;
  /** Seed of the first image; image i uses seed + i. Integer 0–4294967295; default a random one, reported in the result. */
  seed?: number;
  /** Images to make. Integer 1–16, default 1. */
  count?: number;
  /**
   * Random number generator: 'gpu' (torch's CUDA Philox, as AUTOMATIC1111 and stable-diffusion.cpp
   * use by default) or 'cpu' (torch's CPU mt19937). Same seed, same image on every backend. Default 'gpu'.
   */
  rng?: 'gpu' | 'cpu';
  /**
   * CLIP "clip skip" as in AUTOMATIC1111: 1 uses the text encoder's last layer, 2 the one before it, …
   * Integer 0–12; default 0, the family's own choice (SD 1.x last layer, SD 2.x penultimate).
   */
  clipSkip?: number;
  /**
   * Run the VAE in overlapping tiles of 512×512 pixels (64 latent cells, 128 pixels shared and
   * cross-faded), as stable-diffusion.cpp's `--vae-tiling` does: the decoder (and, for image-to-image
   * and inpainting, the encoder) then needs the memory of one tile at any size (a whole 1024×1024
   * decode takes about 4 GB on the CPU), at the price of pixels slightly different from a whole-image
   * pass and more time. Images up to 512×512 are the same either way. Default false.
   */
  vaeTiling?: boolean;
  /**
   * Attach a `preview` to every step's progress event (see `Progress.preview`); needs `onProgress`.
   * With `previewEvery` as well, that sets the interval. Default false.
   */
  previews?: boolean;
  /**
   * Attach a `preview` to every n-th step's progress event and always to each image's last step;
   * implies `previews` (and `previews: false` with it is an error). Integer 1–1000; default none,
   * or 1 when `previews` is true.
   */
  previewEvery?: number;
  /** Aborts the call: before it starts it never runs; while it runs it stops within one step. Rejects with an AbortError. */
  signal?: AbortSignal;
  /** Called after every sampling step, in order. */
  onProgress?: (progress: Progress) => void;
}

/** An image file's contents (PNG, JPEG or WebP) or its path. */
export type ImageInput = Buffer | Uint8Array | string;

/** Options of an image-to-image call. */
export interface ImageToImageOptions extends ImageOptions {
  /**
   * Starting image: PNG, JPEG or WebP bytes or a file path. Alpha is flattened onto black. An image
   * of another size is scaled to cover `width`×`height` and centre-cropped (AUTOMATIC1111's "Crop and resize").
   */
  image: ImageInput;
  /** How much to change the image ("denoising strength"): 0 keeps it, 1 replaces it. Number 0–1, default 0.75. */
  strength?: number;
}

/** Options of an inpainting call. */
export interface InpaintOptions extends ImageToImageOptions {
  /**
   * Where to repaint: white repaints, black keeps, grey in between. PNG, JPEG or WebP bytes or a file
   * path, resized like `image`. A mask with transparency whose visible pixels all have one colour (a
   * brush layer) is read from its alpha (opaque repaints); any other by its luminance, alpha flattened onto black.
   */
  mask: ImageInput;
  /** Gaussian blur of the mask, soft edges; its sigma in pixels. Integer 0–64, default 4. */
  maskBlur?: number;
}

export type GenerateMode = 'txt2img' | 'img2img' | 'inpaint';

/** What the defaults depend on: the model's family and prediction type. */
export interface ModelTraits {
  family: string;
  prediction: string;
}

/** The request the addon takes, before the prompts are tokenised and the images decoded. */
export type RequestSettings = Omit<NativeRequest, 'prompt' | 'negative' | 'image' | 'mask'>;

/** Checked options with every default filled in. */
export interface NormalizedImageOptions {
  settings: RequestSettings;
  prompt: string;
  negativePrompt: string;
  image?: ImageInput;
  mask?: ImageInput;
  /** Mask blur sigma in pixels (inpaint). */
  maskBlur: number;
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

const DEFAULT_STEPS = 20;
const DEFAULT_CFG_SCALE = 7;
const DEFAULT_STRENGTH = 0.75;
const DEFAULT_MASK_BLUR = 4;
const MAX_SEED = 2 ** 32 - 1;

const imageOptionKeys = [
  'prompt', 'negativePrompt', 'width', 'height', 'steps', 'cfgScale', 'sampler', 'scheduler', 'seed',
  'count', 'rng', 'clipSkip', 'vaeTiling', 'previews', 'previewEvery', 'signal', 'onProgress',
] as const;
const optionKeysByMode: Readonly<Record<GenerateMode, readonly string[]>> = {
  txt2img: imageOptionKeys,
  img2img: [...imageOptionKeys, 'image', 'strength'],
  inpaint: [...imageOptionKeys, 'image', 'strength', 'mask', 'maskBlur'],
};
export const loadOptionKeys = ['backend', 'threads', 'prediction', 'weightType'] as const;

/** Image side in pixels the model makes when `width`/`height` are not given. */
export function defaultImageSize(model: ModelTraits): number {
  return model.family === 'sd2' && model.prediction === 'v' ? 768 : 512;
}

/**
 * Checks the options of one image call and fills in the defaults. `caller` names the call in
 * messages ('textToImage', 'generate', …); `extraKeys` are keys the caller handles itself.
 */
export function normalizeImageOptions(
  options: unknown, mode: GenerateMode, model: ModelTraits, caller: string, extraKeys: readonly string[] = [],
): NormalizedImageOptions {
  const o = checkOptionsObject(options, caller, [...optionKeysByMode[mode], ...extraKeys]);
  const size = defaultImageSize(model);
  const { sampler, scheduler } = samplerAndScheduler(o.sampler, o.scheduler);
  const isImageMode = mode !== 'txt2img';
  const normalized: NormalizedImageOptions = {
    settings: {
      mode,
      width: integer(o.width, 'width', 64, 2048, size, 8),
      height: integer(o.height, 'height', 64, 2048, size, 8),
      steps: integer(o.steps, 'steps', 1, 150, DEFAULT_STEPS),
      cfgScale: number(o.cfgScale, 'cfgScale', 0, 30, DEFAULT_CFG_SCALE),
      sampler,
      scheduler,
      seed: integer(o.seed, 'seed', 0, MAX_SEED, undefined) ?? randomInt(0, MAX_SEED + 1),
      rng: oneOf(o.rng, 'rng', ['gpu', 'cpu'], 'gpu'),
      clipSkip: integer(o.clipSkip, 'clipSkip', 0, 12, 0),
      count: integer(o.count, 'count', 1, 16, 1),
      strength: isImageMode ? number(o.strength, 'strength', 0, 1, DEFAULT_STRENGTH) : 1,
      vaeTiling: boolean(o.vaeTiling, 'vaeTiling', false),
      previewEvery: previewInterval(o.previews, o.previewEvery),
    },
    prompt: text(o.prompt, 'prompt'),
    negativePrompt: text(o.negativePrompt, 'negativePrompt'),
    maskBlur: mode === 'inpaint' ? integer(o.maskBlur, 'maskBlur', 0, 64, DEFAULT_MASK_BLUR) : 0,
  };
  if (isImageMode) normalized.image = imageInput(o.image, 'image');
  if (mode === 'inpaint') normalized.mask = imageInput(o.mask, 'mask');
  if (o.signal !== undefined) normalized.signal = abortSignal(o.signal, 'signal');
  if (o.onProgress !== undefined) normalized.onProgress = progressCallback(o.onProgress, 'onProgress');
  return normalized;
}

/** Load options with every default filled in but the thread count, which needs the addon. */
export type NormalizedLoadOptions = Required<Omit<LoadOptions, 'threads'>> & Pick<LoadOptions, 'threads'>;

/** Checks load options and fills in the defaults, except `threads`, which needs the addon to know the core count. */
export function normalizeLoadOptions(
  options: unknown, caller: string, extraKeys: readonly string[] = [],
): NormalizedLoadOptions {
  const o = checkOptionsObject(options ?? {}, caller, [...loadOptionKeys, ...extraKeys]);
  const normalized: NormalizedLoadOptions = {
    backend: oneOf(o.backend, 'backend', ['auto', 'cpu', 'metal', 'cuda'], 'auto'),
    prediction: oneOf(o.prediction, 'prediction', ['auto', 'eps', 'v'], 'auto'),
    weightType: weightType(o.weightType),
  };
  const threads = integer(o.threads, 'threads', 1, 1024, undefined);
  if (threads !== undefined) normalized.threads = threads;
  return normalized;
}

/** Convert options with every default filled in but the thread count, which needs the addon. */
export type NormalizedConvertOptions = Required<Pick<ConvertOptions, 'weightType' | 'overwrite'>>
  & Pick<ConvertOptions, 'threads' | 'signal' | 'onProgress'>;

/** Checks the options of convertModel and fills in the defaults. */
export function normalizeConvertOptions(options: unknown): NormalizedConvertOptions {
  const o = checkOptionsObject(options ?? {}, 'convertModel', ['weightType', 'threads', 'overwrite', 'signal', 'onProgress']);
  const normalized: NormalizedConvertOptions = {
    weightType: weightType(o.weightType),
    overwrite: boolean(o.overwrite, 'overwrite', false),
  };
  const threads = integer(o.threads, 'threads', 1, 1024, undefined);
  if (threads !== undefined) normalized.threads = threads;
  if (o.signal !== undefined) normalized.signal = abortSignal(o.signal, 'signal');
  if (o.onProgress !== undefined) normalized.onProgress = progressCallback(o.onProgress, 'onProgress');
  return normalized;
}

/** A non-empty string, such as a model path. */
export function nonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(TypeError, name, 'non-empty string', value);
  return value;
}

/** The one message builder: "Expected integer between 1 and 150 for steps but received 0 of type number". */
export function invalid(
  kind: typeof TypeError | typeof RangeError, name: string, expected: string, value: unknown,
): TypeError | RangeError {
  return new kind(`Expected ${expected} for ${name} but received ${describe(value)} of type ${typeof value}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object' && value !== null) {
    if (Array.isArray(value)) return `array of length ${value.length}`;
    if (value instanceof Uint8Array) return `${value.constructor.name} of ${value.length} bytes`;
    const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof ctor === 'string' && ctor !== 'Object' ? `${ctor} instance` : 'object';
  }
  return String(value);
}

function checkOptionsObject(options: unknown, caller: string, known: readonly string[]): Record<string, unknown> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid(TypeError, `the options of ${caller}`, 'object', options);
  }
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (record[key] !== undefined && !known.includes(key)) {
      throw new TypeError(`Unknown option ${JSON.stringify(key)} for ${caller}; known options: ${known.join(', ')}`);
    }
  }
  return record;
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && !Number.isNaN(value);
}

function integer<T extends number | undefined>(
  value: unknown, name: string, min: number, max: number, fallback: T, multipleOf = 1,
): number | T {
  if (value === undefined) return fallback;
  const expected = `${multipleOf === 1 ? 'integer' : `multiple of ${multipleOf}`} between ${min} and ${max}`;
  if (!isNumber(value) || (Number.isFinite(value) && !Number.isInteger(value))) {
    throw invalid(TypeError, name, expected, value);
  }
  if (!(value >= min && value <= max && value % multipleOf === 0)) throw invalid(RangeError, name, expected, value);
  return value;
}

function number(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const expected = `number between ${min} and ${max}`;
  if (!isNumber(value)) throw invalid(TypeError, name, expected, value);
  if (!(value >= min && value <= max)) throw invalid(RangeError, name, expected, value);
  return value;
}

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  const expected = `one of ${allowed.join(', ')}`;
  if (typeof value !== 'string') throw invalid(TypeError, name, expected, value);
  if (!(allowed as readonly string[]).includes(value)) throw invalid(RangeError, name, expected, value);
  return value as T;
}

// Case-insensitive, as ggml spells the K-quants 'q4_K' and users copy that.
function weightType(value: unknown): WeightType {
  if (value === undefined) return 'auto';
  const expected = `one of ${weightTypes.join(', ')}`;
  if (typeof value !== 'string') throw invalid(TypeError, 'weightType', expected, value);
  const lower = value.toLowerCase();
  const found = weightTypes.find((type) => type === lower);
  if (!found) throw invalid(RangeError, 'weightType', expected, value);
  return found;
}

function boolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(TypeError, name, 'boolean', value);
  return value;
}

// 0 (none) or the step interval of previews.
function previewInterval(previews: unknown, previewEvery: unknown): number {
  const enabled = boolean(previews, 'previews', false);
  const every = integer(previewEvery, 'previewEvery', 1, 1000, undefined);
  if (every === undefined) return enabled ? 1 : 0;
  if (previews === false) {
    throw new RangeError(`previewEvery is ${every} but previews is false; give previewEvery alone to get previews, `
      + 'or neither to get none');
  }
  return every;
}

function text(value: unknown, name: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw invalid(TypeError, name, 'string', value);
  return value;
}

/**
 * Resolves a sampler and schedule as `textToImage` does: engine names or AUTOMATIC1111's ("DPM++ 2M
 * Karras" sets both), case-insensitive, with each sampler's default schedule. Throws the same
 * TypeError / RangeError the generation call would.
 */
export function resolveSampler(sampler?: string, scheduler?: string): { sampler: string; scheduler: string } {
  return samplerAndScheduler(sampler, scheduler);
}

function samplerAndScheduler(samplerValue: unknown, schedulerValue: unknown): { sampler: string; scheduler: string } {
  let scheduler: string | undefined;
  if (schedulerValue !== undefined) {
    const expected = `one of ${schedulerNames.join(', ')}`;
    if (typeof schedulerValue !== 'string') throw invalid(TypeError, 'scheduler', expected, schedulerValue);
    scheduler = findScheduler(schedulerValue);
    if (!scheduler) throw invalid(RangeError, 'scheduler', expected, schedulerValue);
  }
  if (samplerValue === undefined) return { sampler: 'euler_a', scheduler: scheduler ?? 'discrete' };
  const expected = `one of ${samplerNames.join(', ')} or their AUTOMATIC1111 names `
    + `(${Object.values(samplerDisplayNames).join(', ')}, with an optional " Karras" or " Exponential") `
    + `or ${Object.keys(samplerAliases).join(', ')}`;
  if (typeof samplerValue !== 'string') throw invalid(TypeError, 'sampler', expected, samplerValue);
  const choice = findSampler(samplerValue);
  if (!choice) throw invalid(RangeError, 'sampler', expected, samplerValue);
  if (choice.scheduler && scheduler && choice.scheduler !== scheduler) {
    throw new RangeError(`sampler ${JSON.stringify(samplerValue)} implies scheduler ${choice.scheduler} `
      + `but scheduler is ${JSON.stringify(schedulerValue)}; give one of them`);
  }
  return { sampler: choice.sampler, scheduler: choice.scheduler ?? scheduler ?? defaultScheduler(choice.sampler) };
}

function imageInput(value: unknown, name: string): ImageInput {
  const expected = 'Buffer, Uint8Array or file path of a PNG, JPEG or WebP image';
  if (value instanceof Uint8Array || typeof value === 'string' && value.length > 0) return value;
  throw invalid(TypeError, name, expected, value);
}

function abortSignal(value: unknown, name: string): AbortSignal {
  if (value instanceof AbortSignal) return value;
  throw invalid(TypeError, name, 'AbortSignal', value);
}

function progressCallback<T>(value: unknown, name: string): (progress: T) => void {
  if (typeof value === 'function') return value as (progress: T) => void;
  throw invalid(TypeError, name, 'function', value);
}
