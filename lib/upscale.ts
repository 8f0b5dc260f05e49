// ESRGAN-family upscalers as library objects: load one file, then enlarge images with it. Images
// are decoded and encoded here (sharp); the engine runs the network tile by tile on RGB bytes.
import path from 'node:path';

import sharp from 'sharp';

import type { NativeUpscaler } from '../bindings/native.js';
import { fromNativeError, SdnodeError } from './errors.js';
import { MAX_INPUT_PIXELS, openImage } from './images.js';
import { addonOrThrow } from './model.js';
import type { ImageInput, LoadOptions } from './option-types.js';
import { nonEmptyString, normalizeLoadOptions, normalizeUpscaleOptions, type NormalizedUpscaleOptions } from './options.js';

/** What a loaded upscaler is, as read from its file. */
export interface UpscalerInfo {
  /** 'rrdbnet' (ESRGAN, Real-ESRGAN) or 'srvggnet' (Real-ESRGAN's compact realesr-general models). */
  architecture: 'rrdbnet' | 'srvggnet';
  /** Output pixels per input pixel, per side (4 for RealESRGAN_x4plus, 2 for x2plus). */
  scale: number;
  /** RRDB blocks (23 in x4plus, 6 in x4plus_anime_6B), or SRVGGNet body convolutions. */
  blocks: number;
  /** Channels of the trunk (64). */
  features: number;
  /** Bytes of weights it keeps resident. */
  weightBytes: number;
  backend: 'cpu' | 'metal' | 'cuda';
}

/** Options of `loadUpscaler()`: the backend and threads, as for models. */
export type UpscalerLoadOptions = Pick<LoadOptions, 'backend' | 'threads'>;

/** Options of one upscale. */
export interface UpscaleImageOptions {
  /**
   * Output size as a factor of the input's, 0.25–16; default the model's own scale. Where it is
   * above the model's, the model runs again on its output (at most 3 passes, as AUTOMATIC1111
   * does); the result is then resized to the exact size with Lanczos.
   */
  scale?: number;
  /** Exact output size in pixels instead of `scale` (one of them keeps the aspect ratio). */
  width?: number;
  height?: number;
  /** Side of the square input tiles the network sees, 32–2048 pixels, default 128; neighbours overlap by 16. */
  tile?: number;
  /** Stops the upscale between tiles (and inside one where the backend can); rejects with 'ERR_ABORTED'. */
  signal?: AbortSignal;
  /** After every tile: tile and tiles of this pass, pass and passes. */
  onProgress?: (progress: { tile: number; tiles: number; pass: number; passes: number }) => void;
}

/** One upscaled image. */
export interface UpscaledImage {
  /** The image as PNG. */
  png: Buffer;
  /** RGB bytes, rows top first. */
  data: Buffer;
  width: number;
  height: number;
}

const TILE_OVERLAP = 16;
const MAX_PASSES = 3;

let createUpscaler: (file: string, native: NativeUpscaler) => Upscaler;

/**
 * A loaded ESRGAN-family upscaler. Upscales run one at a time in the order they were made;
 * `close()` frees its weights. Get one from `loadUpscaler()`.
 */
export class Upscaler {
  /** Absolute path of the upscaler file. */
  readonly path: string;
  readonly info: UpscalerInfo;
  readonly #native: NativeUpscaler;
  #closed = false;

  static {
    createUpscaler = (file, native) => new Upscaler(file, native);
  }

  private constructor(file: string, native: NativeUpscaler) {
    this.path = file;
    this.#native = native;
    this.info = { ...native.info, architecture: native.info.architecture as UpscalerInfo['architecture'], backend: native.info.backend as UpscalerInfo['backend'] };
  }

  /** Whether `close()` has been called; a closed upscaler rejects with 'ERR_UPSCALER_CLOSED'. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Upscales a PNG, JPEG or WebP image (bytes or a path); alpha is flattened onto black. */
  async upscale(image: ImageInput, options?: UpscaleImageOptions): Promise<UpscaledImage> {
    const normalized = normalizeUpscaleOptions(options, 'upscale');
    const bytes = await openImage(image, 'image');
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).autoOrient().flatten({ background: '#000000' })
      .toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return this.upscaleRgb(data, info.width, info.height, normalized);
  }

  /** The same from RGB bytes (3 a pixel, rows top first), with checked options. */
  async upscaleRgb(rgb: Uint8Array, width: number, height: number, options: NormalizedUpscaleOptions): Promise<UpscaledImage> {
    if (this.#closed) throw new SdnodeError('ERR_UPSCALER_CLOSED', `upscale was called on a closed upscaler (${this.path})`);
    const target = targetSize(width, height, this.info.scale, options);
    let passes = 0;
    for (let w = width, h = height; passes < MAX_PASSES && (w < target.width || h < target.height); passes++) {
      w *= this.info.scale;
      h *= this.info.scale;
    }
    let current = { data: Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), width, height };
    for (let pass = 1; pass <= passes; pass++) {
      options.signal?.throwIfAborted();
      current = await this.#pass(current, options, pass, passes);
    }
    let data = current.data;
    if (current.width !== target.width || current.height !== target.height) {
      data = await sharp(current.data, { raw: { width: current.width, height: current.height, channels: 3 } })
        .resize(target.width, target.height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
    }
    const png = await sharp(data, { raw: { width: target.width, height: target.height, channels: 3 } }).png().toBuffer();
    return { png, data, width: target.width, height: target.height };
  }

  /** Frees the weights once the running upscale has finished; later upscales reject with 'ERR_UPSCALER_CLOSED'. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#native.close();
    } catch (err) {
      throw fromNativeError(err);
    }
  }

  async #pass(
    image: { data: Buffer; width: number; height: number }, options: NormalizedUpscaleOptions, pass: number, passes: number,
  ): Promise<{ data: Buffer; width: number; height: number }> {
    const onTile = options.onProgress
      ? ({ tile, tiles }: { tile: number; tiles: number }) => options.onProgress!({ tile, tiles, pass, passes })
      : undefined;
    const job = this.#native.upscale(image.data, image.width, image.height, { tile: options.tile, overlap: TILE_OVERLAP }, onTile);
    const abort = () => job.abort();
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      const data = await job.done;
      return { data, width: image.width * this.info.scale, height: image.height * this.info.scale };
    } catch (err) {
      throw fromNativeError(err);
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
  }
}

// The asked size: by scale (default the model's), or by width and/or height (one keeps the aspect).
function targetSize(width: number, height: number, modelScale: number, o: NormalizedUpscaleOptions): { width: number; height: number } {
  if (o.width !== undefined || o.height !== undefined) {
    return {
      width: o.width ?? Math.max(1, Math.round((width * o.height!) / height)),
      height: o.height ?? Math.max(1, Math.round((height * o.width!) / width)),
    };
  }
  const scale = o.scale ?? modelScale;
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Loads an ESRGAN-family upscaler (`.safetensors` or `.gguf`: RRDBNet in BasicSR's or the old
 * ESRGAN names, or SRVGGNetCompact) off the main thread. Rejects with an SdnodeError:
 * 'ERR_MODEL_IO', 'ERR_MODEL_FORMAT', 'ERR_MODEL_UNSUPPORTED' (not an upscaler), 'ERR_BACKEND' or 'ERR_ADDON_LOAD'.
 */
export async function loadUpscaler(file: string, options?: UpscalerLoadOptions): Promise<Upscaler> {
  const resolved = path.resolve(nonEmptyString(file, 'model'));
  const extra = Object.keys(options ?? {}).filter((key) => key !== 'backend' && key !== 'threads');
  if (extra.length > 0) throw new TypeError(`Unknown option ${JSON.stringify(extra[0])} for loadUpscaler; known options: backend, threads`);
  const { backend, threads } = normalizeLoadOptions(options, 'loadUpscaler');
  const addon = addonOrThrow();
  if (typeof addon.loadUpscaler !== 'function') {
    throw new SdnodeError('ERR_ADDON_LOAD', 'This build of the native addon has no upscaler; rebuild it with: npx sdnode build');
  }
  try {
    return createUpscaler(resolved, await addon.loadUpscaler(resolved, { backend, threads: threads ?? addon.systemInfo().physicalCores }));
  } catch (err) {
    throw fromNativeError(err);
  }
}

/** Options of `upscale()`: the model (a file or a loaded Upscaler), its load options and the upscale's. */
export interface UpscaleOptions extends UpscaleImageOptions, UpscalerLoadOptions {
  /** Path of the upscaler file, or an Upscaler from `loadUpscaler()` (kept open). */
  model: string | Upscaler;
}

/**
 * Upscales one image with an ESRGAN-family model. A model given as a path is loaded for this call
 * and closed after it; load it once with `loadUpscaler()` to upscale many images.
 */
export async function upscale(image: ImageInput, options: UpscaleOptions): Promise<UpscaledImage> {
  if (typeof options !== 'object' || options === null) throw new TypeError('upscale(image, options) needs an options object with model');
  const { model, backend, threads, ...rest } = options;
  normalizeUpscaleOptions(rest, 'upscale');
  if (model instanceof Upscaler) {
    if (backend !== undefined || threads !== undefined) throw new TypeError('backend and threads are load options: give them to loadUpscaler(), not with a loaded Upscaler');
    return model.upscale(image, rest);
  }
  const loaded = await loadUpscaler(nonEmptyString(model, 'model'), { backend, threads });
  try {
    return await loaded.upscale(image, rest);
  } finally {
    await loaded.close();
  }
}
