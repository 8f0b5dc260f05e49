// The safety checker Stable Diffusion releases ship, as a library object: load it once, then check
// images (files or the RGB pixels a generation made). Preprocessing happens here (clip-preprocess.ts);
// the engine embeds and scores.
import path from 'node:path';

import sharp from 'sharp';

import type { NativeSafetyChecker, NativeSafetyVerdict } from '../bindings/native.js';
import { clipPixels, type RgbImage } from './clip-preprocess.js';
import { fromNativeError, SdnodeError } from './errors.js';
import { openImage } from './images.js';
import { addonOrThrow } from './model.js';
import type { LoadOptions } from './option-types.js';
import { invalid, nonEmptyString, normalizeLoadOptions } from './options.js';

/** What a loaded safety checker is, as read from its file. */
export interface SafetyCheckerInfo {
  /** Side in pixels of the square each image is scaled and cropped to: 224 for CLIP ViT-L/14. */
  imageSize: number;
  /** Concepts it scores (17 in Stable Diffusion's checker). */
  concepts: number;
  /** "Special care" concepts (3), which make every concept threshold 0.01 stricter when matched. */
  specialConcepts: number;
  /** Bytes of weights it keeps resident. */
  weightBytes: number;
  /** Backend it runs on. */
  backend: 'cpu' | 'metal' | 'cuda';
}

/** The verdict on one image. */
export interface SafetyResult {
  /** Whether any concept score is above 0 (after rounding to 3 decimals, as the reference pipeline does). */
  nsfw: boolean;
  /** Whether a special-care concept matched, lowering every concept threshold by 0.01. */
  specialCare: boolean;
  /** Per concept: cosine similarity of the image to it, less its threshold, plus the special-care adjustment. */
  conceptScores: number[];
  /** Per special-care concept: cosine similarity less its threshold. */
  specialScores: number[];
}

/** Options of `loadSafetyChecker()`: the backend and threads, as for models. */
export type SafetyCheckerLoadOptions = Pick<LoadOptions, 'backend' | 'threads'>;

// Friend of SafetyChecker inside this package (model.ts): checks raw pixels without a decode.
let checkRgbImages: (checker: SafetyChecker, images: readonly RgbImage[]) => Promise<SafetyResult[]>;
let createChecker: (checkerPath: string, native: NativeSafetyChecker) => SafetyChecker;

/**
 * A loaded safety checker (a CLIP vision tower with concept embeddings, as the CompVis checker ships
 * it). Checks run one at a time in the order they were made; `close()` frees its weights. Get one
 * from `loadSafetyChecker()`.
 */
export class SafetyChecker {
  /** Absolute path of the checker file. */
  readonly path: string;
  readonly info: SafetyCheckerInfo;
  readonly #native: NativeSafetyChecker;
  #closed = false;

  static {
    checkRgbImages = (checker, images) => checker.#checkRgb(images);
    createChecker = (checkerPath, native) => new SafetyChecker(checkerPath, native);
  }

  private constructor(checkerPath: string, native: NativeSafetyChecker) {
    this.path = checkerPath;
    this.#native = native;
    this.info = { ...native.info, backend: native.info.backend as SafetyCheckerInfo['backend'] };
  }

  /** Whether `close()` has been called; a closed checker rejects with 'ERR_CHECKER_CLOSED'. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Checks images: PNG, JPEG or WebP bytes or file paths (alpha is dropped, as Pillow's RGB
   * conversion drops it). One result per image, in order.
   */
  async check(images: ImageInputs): Promise<SafetyResult[]> {
    const list = Array.isArray(images) ? images : [images];
    if (list.length === 0) throw invalid(TypeError, 'images', 'an image or a non-empty array of images', images);
    const decoded = await Promise.all(list.map(async (image, i) => decodeRgb(image, list.length === 1 ? 'image' : `images[${i}]`)));
    return this.#checkRgb(decoded);
  }

  /** Frees the weights once the running check has finished; later checks reject with 'ERR_CHECKER_CLOSED'. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#native.close();
    } catch (err) {
      throw fromNativeError(err);
    }
  }

  async #checkRgb(images: readonly RgbImage[]): Promise<SafetyResult[]> {
    if (this.#closed) throw new SdnodeError('ERR_CHECKER_CLOSED', `check was called on a closed safety checker (${this.path})`);
    const size = this.info.imageSize;
    const pixels = new Float32Array(images.length * 3 * size * size);
    images.forEach((image, i) => clipPixels(image, size, pixels, i * 3 * size * size));
    let verdicts: NativeSafetyVerdict[];
    try {
      verdicts = await this.#native.check(pixels, images.length);
    } catch (err) {
      throw fromNativeError(err);
    }
    return verdicts.map((verdict) => ({
      nsfw: verdict.nsfw,
      specialCare: verdict.specialCare,
      conceptScores: Array.from(verdict.conceptScores),
      specialScores: Array.from(verdict.specialScores),
    }));
  }
}

/** One image or several, as `check()` takes them. */
export type ImageInputs = Buffer | Uint8Array | string | readonly (Buffer | Uint8Array | string)[];

/**
 * Loads a safety checker file (`.safetensors` in Hugging Face's transformers layout, as
 * CompVis/stable-diffusion-safety-checker and the `safety_checker/` folder of Stable Diffusion
 * releases ship it) off the main thread. Rejects with an SdnodeError: 'ERR_MODEL_IO',
 * 'ERR_MODEL_FORMAT', 'ERR_MODEL_UNSUPPORTED' (not a safety checker), 'ERR_BACKEND' or 'ERR_ADDON_LOAD'.
 */
export async function loadSafetyChecker(checkerPath: string, options?: SafetyCheckerLoadOptions): Promise<SafetyChecker> {
  const resolved = path.resolve(nonEmptyString(checkerPath, 'path'));
  const extra = Object.keys(options ?? {}).filter((key) => key !== 'backend' && key !== 'threads');
  if (extra.length > 0) {
    throw new TypeError(`Unknown option ${JSON.stringify(extra[0])} for loadSafetyChecker; known options: backend, threads`);
  }
  const { backend, threads } = normalizeLoadOptions(options, 'loadSafetyChecker');
  const addon = addonOrThrow();
  if (typeof addon.loadSafetyChecker !== 'function') {
    throw new SdnodeError('ERR_ADDON_LOAD', 'This build of the native addon has no safety checker; rebuild it with: npx sdnode build');
  }
  try {
    const native = await addon.loadSafetyChecker(resolved, { backend, threads: threads ?? addon.systemInfo().physicalCores });
    return createChecker(resolved, native);
  } catch (err) {
    throw fromNativeError(err);
  }
}

/** Verdicts on images a generation made, from their RGB bytes. */
export function checkGenerated(checker: SafetyChecker, images: readonly RgbImage[]): Promise<SafetyResult[]> {
  return checkRgbImages(checker, images);
}

async function decodeRgb(input: Buffer | Uint8Array | string, name: string): Promise<RgbImage> {
  const bytes = await openImage(input, name);
  const { data, info } = await sharp(bytes).autoOrient().removeAlpha().toColourspace('srgb').raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}
