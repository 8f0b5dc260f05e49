// The stage API's values and option checks: conditioning, latents and the sampler call, as
// Model.encodePrompt / emptyLatent / encodeImage / sample / decode take and return them. Values are
// plain typed arrays the garbage collector frees; no native handle outlives a call.
import path from 'node:path';

import sharp from 'sharp';

import type {
  NativeControlUnit, NativeEncodedText, NativeEncodeImageRequest, NativeLatent, NativeSampleRequest, NativeTextRequest,
} from '../bindings/native.js';
import { flowTextConditioning, llmTextConditioning } from './flow-text.js';
import { decodeImage, imageSize } from './images.js';
import type { ImageInput, Progress } from './option-types.js';
import { familyDefaults, invalid, isFlowFamily, loraList, resolveSampler } from './options.js';
import { buildConditioning } from './prompt.js';
import type { T5Tokenizer } from './t5-tokenizer.js';
import type { QwenTokenizer } from './qwen-tokenizer.js';
import { findSampler } from './samplers.js';

/** A prompt through a model's text encoders (`model.encodePrompt()`), for `model.sample()`. */
export interface PromptConditioning {
  /** The encoders' hidden states, [tokens, contextDim]. */
  readonly hidden: Float32Array;
  /** Token positions: 77 per chunk of the prompt. */
  readonly tokens: number;
  /** SDXL's pooled text vector; empty for SD 1.x / 2.x. */
  readonly pooled: Float32Array;
  /** Width of the hidden states: the model's `info.contextDim`. */
  readonly contextDim: number;
  /** Chroma's attention mask over the text tokens; absent for other families. */
  readonly mask?: Float32Array;
  /**
   * ControlNet units steering every UNet pass this conditioning conditions in `sample()` (ComfyUI's
   * ControlNetApply attaches them): SD 1.x, SD 2.x and SDXL models. At most 8.
   */
  readonly controlNets?: readonly ConditioningControlNet[];
}

/** A ControlNet unit on a conditioning (ComfyUI's ControlNetApply / ControlNetApplyAdvanced). */
export interface ConditioningControlNet {
  /** Path of the ControlNet file (original or diffusers layout, .safetensors or .gguf). */
  readonly model: string;
  /** The control image (a map: edges, pose, depth …), any size: it is scaled to cover the sampled size and centre-cropped. */
  readonly image: DecodedImage;
  /** How strongly it steers. Range 0–10, default 1. */
  readonly strength?: number;
  /** The fraction of the steps where it starts and stops steering (ComfyUI's start_percent / end_percent). Range 0–1, defaults 0 and 1. */
  readonly start?: number;
  readonly end?: number;
}

/** Latent images in the diffusion model's scale, `batch` of them, as the stages pass them on. */
export interface Latent {
  /** Width in pixels of the image the latent decodes to (a multiple of `info.vaeScale`). */
  readonly width: number;
  /** Height in pixels of the image the latent decodes to. */
  readonly height: number;
  /** Latent channels: 4 for the UNet families. */
  readonly channels: number;
  /** Latent images held: 1–64. */
  readonly batch: number;
  /** [batch, channels, height / vaeScale, width / vaeScale]. */
  readonly data: Float32Array;
  /** Where `sample()` may change the latent, 0–1 per latent cell (ComfyUI's noise_mask); absent: everywhere. */
  readonly noiseMask?: Float32Array;
}

/** One image `model.decode()` made: RGB bytes, row-major, 3 a pixel. */
export interface DecodedImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Options of `model.sample()`. */
export interface SampleOptions {
  /** The latent to start from: `emptyLatent()`, `encodeImage()` or an earlier `sample()`. */
  latent: Latent;
  /**
   * The prompt's conditioning, from `encodePrompt()`; several (at most 16) are combined as ComfyUI's
   * ConditioningCombine combines them: the prediction is the mean of each one's.
   */
  positive: PromptConditioning | PromptConditioning[];
  /** The negative prompt's conditioning (or several); needed unless cfgScale is 1. */
  negative?: PromptConditioning | PromptConditioning[];
  /** Sampler, as the image calls take it. Default: the family's, as for the image calls ('euler_a'; 'euler' for flow models). */
  sampler?: string;
  /** Noise schedule. Default: the sampler's, or the family's ('flux' for FLUX.1). */
  scheduler?: string;
  /** Sampling steps of the schedule. Range 1–1000, default the family's (20 for the UNet families). */
  steps?: number;
  /** Guidance scale; 1 disables CFG. Range 0–100 (ComfyUI's), default the family's (7; 1 for FLUX.1). */
  cfgScale?: number;
  /** FLUX.1 dev's distilled guidance (ComfyUI's FluxGuidance); other models ignore it. Range 0–100, default 3.5. */
  guidance?: number;
  /** Flow models' schedule shift; 0: the family's. Range 0–100, default 0. */
  flowShift?: number;
  /** Seed of the noise: one draw for the whole batch, then the ancestral samplers' draws. Default 0. */
  seed?: number;
  /** Random generator: 'gpu' (torch's CUDA Philox, the image calls' default) or 'cpu' (torch's CPU generator, ComfyUI's). */
  rng?: 'gpu' | 'cpu';
  /** ComfyUI's denoise: below 1, the schedule is made for steps / denoise steps and only its last `steps` run. Range (0, 1], default 1. */
  denoise?: number;
  /** First step of the schedule to run (ComfyUI's start_at_step). Default 0. */
  startStep?: number;
  /** Step to stop at (ComfyUI's end_at_step); default: the end. */
  endStep?: number;
  /** Whether noise is added to the latent first; false when it still holds an earlier pass's. Default true. */
  addNoise?: boolean;
  /** Stopping at `endStep`, keep the remaining noise in the latent (for a later pass). Default false. */
  returnWithLeftoverNoise?: boolean;
  /** Where the sampler may change the latent (0–1 per latent cell), overriding the latent's own `noiseMask`. */
  noiseMask?: Float32Array;
  /** Attach a preview to every n-th step's progress. Range 0 (off)–1000, default 0. */
  previewEvery?: number;
  /** LoRA files merged into the UNet for this call, each with its weight (default 1, range −10–10). */
  loras?: { path: string; weight?: number }[];
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

/** What `sample()` checked: the engine's request and the latent. */
export interface NormalizedSample {
  request: NativeSampleRequest;
  latent: NativeLatent;
  /** Fits the conditionings' control images to the latent's size and hands them to the request's conditionings. */
  fitControls: () => Promise<void>;
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

const sampleKeys = new Set([
  'latent', 'positive', 'negative', 'sampler', 'scheduler', 'steps', 'cfgScale', 'guidance', 'flowShift', 'seed', 'rng', 'denoise', 'startStep', 'endStep',
  'addNoise', 'returnWithLeftoverNoise', 'noiseMask', 'previewEvery', 'loras', 'signal', 'onProgress',
]);

function integer(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw invalid(TypeError, name, `integer between ${min} and ${max}`, value);
  if (value < min || value > max) throw invalid(RangeError, name, `integer between ${min} and ${max}`, value);
  return value;
}

function number(value: unknown, name: string, min: number, max: number, fallback: number, minExclusive = false): number {
  if (value === undefined) return fallback;
  const range = `number ${minExclusive ? 'above' : 'from'} ${min} ${minExclusive ? 'and at most' : 'to'} ${max}`;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(TypeError, name, range, value);
  if (value > max || value < min || (minExclusive && value === min)) throw invalid(RangeError, name, range, value);
  return value;
}

function boolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(TypeError, name, 'boolean', value);
  return value;
}

/** Checks a latent's shape against the model: the message names `name`. */
export function checkLatent(value: unknown, name: string, vaeScale: number, channels: number): NativeLatent {
  const expected = 'Latent from emptyLatent(), encodeImage() or sample()';
  if (typeof value !== 'object' || value === null) throw invalid(TypeError, name, expected, value);
  const latent = value as Partial<Latent>;
  const { width, height, batch, data, noiseMask } = latent;
  if (typeof width !== 'number' || typeof height !== 'number' || typeof batch !== 'number' || !(data instanceof Float32Array)) {
    throw invalid(TypeError, name, expected, value);
  }
  if (latent.channels !== channels) {
    throw new RangeError(`${name} has ${latent.channels} channels but this model's latents have ${channels}`);
  }
  const w = width / vaeScale, h = height / vaeScale;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1 || data.length !== batch * channels * w * h) {
    throw new RangeError(`${name}.data must hold batch × ${channels} × ${h} × ${w} values for ${width}×${height} pixels`);
  }
  if (noiseMask !== undefined && (!(noiseMask instanceof Float32Array) || noiseMask.length !== w * h)) {
    throw invalid(TypeError, `${name}.noiseMask`, `Float32Array of ${w * h} values (one per latent cell)`, noiseMask);
  }
  return { width: w, height: h, channels, batch, data, ...(noiseMask && { noiseMask }) };
}

/** A conditioning's ControlNet units, checked, waiting for the latent's size. */
interface PendingControls {
  target: NativeEncodedText;
  units: Required<ConditioningControlNet>[];
}

/** Checks a conditioning against the model's text width; its ControlNet units join `pending`. */
export function checkConditioning(value: unknown, name: string, contextDim: number, pending: PendingControls[] = []): NativeEncodedText {
  const expected = 'PromptConditioning from encodePrompt()';
  if (typeof value !== 'object' || value === null) throw invalid(TypeError, name, expected, value);
  const { hidden, tokens, pooled, mask, contextDim: width, controlNets } = value as Partial<PromptConditioning>;
  if (!(hidden instanceof Float32Array) || typeof tokens !== 'number' || !(pooled instanceof Float32Array)) {
    throw invalid(TypeError, name, expected, value);
  }
  if (width !== contextDim || hidden.length !== tokens * contextDim) {
    throw new RangeError(`${name} was encoded by a model of text width ${width}; this model's is ${contextDim}`);
  }
  const target: NativeEncodedText = { hidden, tokens, pooled, ...(mask instanceof Float32Array && { mask }) };
  if (controlNets !== undefined) pending.push({ target, units: checkControlNets(controlNets, `${name}.controlNets`) });
  return target;
}

function checkControlNets(value: unknown, name: string): Required<ConditioningControlNet>[] {
  const expected = 'array of at most 8 { model, image, strength, start, end }';
  if (!Array.isArray(value) || value.length > 8) throw invalid(TypeError, name, expected, value);
  return value.map((unit: unknown, i) => {
    const at = `${name}[${i}]`;
    if (typeof unit !== 'object' || unit === null) throw invalid(TypeError, at, '{ model, image, strength, start, end }', unit);
    const { model, image, strength, start, end } = unit as Partial<ConditioningControlNet>;
    if (typeof model !== 'string' || model === '') throw invalid(TypeError, `${at}.model`, 'path of a ControlNet file', model);
    const { width, height, data } = (image ?? {}) as Partial<DecodedImage>;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width! < 1 || height! < 1 || !(data instanceof Uint8Array)
      || data.length !== width! * height! * 3) {
      throw invalid(TypeError, `${at}.image`, '{ width, height, data } of RGB bytes (a DecodedImage)', image);
    }
    const checked = {
      model: path.resolve(model), image: image!, strength: number(strength, `${at}.strength`, 0, 10, 1),
      start: number(start, `${at}.start`, 0, 1, 0), end: number(end, `${at}.end`, 0, 1, 1),
    };
    if (checked.start > checked.end) throw new RangeError(`${at}.start (${checked.start}) must not be after ${at}.end (${checked.end})`);
    return checked;
  });
}

/** The pending units' images scaled to cover width × height pixels and centre-cropped, as ComfyUI fits a hint, on their conditionings. */
async function fitControls(pending: PendingControls[], width: number, height: number): Promise<void> {
  await Promise.all(pending.map(async ({ target, units }) => {
    target.controls = await Promise.all(units.map(async (unit): Promise<NativeControlUnit> => {
      const { image } = unit;
      const fitted = image.width === width && image.height === height ? image.data
        : await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
          .resize(width, height, { fit: 'cover', position: 'centre', kernel: 'nearest' }).raw().toBuffer();
      return { path: unit.model, image: fitted, strength: unit.strength, guidanceStart: unit.start, guidanceEnd: unit.end, mode: 'balanced' };
    }));
  }));
}

/** What the model is, for the checks and defaults of `sample()`. */
export interface SampleTraits {
  family: string;
  prediction: string;
  vaeScale: number;
  channels: number;
  contextDim: number;
}

/** One conditioning or a list of 1–16, each checked. */
function conditioningList(value: unknown, name: string, contextDim: number, pending: PendingControls[]): NativeEncodedText[] {
  if (!Array.isArray(value)) return [checkConditioning(value, name, contextDim, pending)];
  if (value.length < 1 || value.length > 16) throw invalid(RangeError, name, 'PromptConditioning or a list of 1 to 16 of them', value);
  return value.map((entry: unknown, i) => checkConditioning(entry, `${name}[${i}]`, contextDim, pending));
}

/** The checked options of `sample()`, with the family's defaults (steps, cfg, sampler and schedule) for what is not given. */
export function normalizeSampleOptions(options: unknown, model: SampleTraits): NormalizedSample {
  const { vaeScale, channels, contextDim } = model;
  const defaults = familyDefaults(model);
  if (typeof options !== 'object' || options === null) throw invalid(TypeError, 'the options of sample', 'object', options);
  const o = options as SampleOptions;
  for (const key of Object.keys(o)) {
    if (!sampleKeys.has(key)) throw new TypeError(`Unknown option ${JSON.stringify(key)} for sample; known options: ${[...sampleKeys].join(', ')}`);
  }
  const latent = checkLatent(o.latent, 'latent', vaeScale, channels);
  if (o.noiseMask !== undefined) {
    const cells = latent.width * latent.height;
    if (!(o.noiseMask instanceof Float32Array) || o.noiseMask.length !== cells) {
      throw invalid(TypeError, 'noiseMask', `Float32Array of ${cells} values (one per latent cell)`, o.noiseMask);
    }
    latent.noiseMask = o.noiseMask;
  }
  const cfgScale = number(o.cfgScale, 'cfgScale', 0, 100, defaults.cfgScale);
  const pending: PendingControls[] = [];
  const positive = conditioningList(o.positive, 'positive', contextDim, pending);
  if (o.negative === undefined && cfgScale !== 1) throw new TypeError('negative is needed unless cfgScale is 1 (received cfgScale ' + cfgScale + ')');
  const negative = o.negative === undefined ? undefined : conditioningList(o.negative, 'negative', contextDim, pending);
  // The family's schedule unless one is given or the sampler's name implies one ("DPM++ 2M Karras").
  const implied = typeof o.sampler === 'string' && findSampler(o.sampler)?.scheduler !== undefined;
  const { sampler, scheduler } = resolveSampler(o.sampler ?? defaults.sampler, o.scheduler ?? (implied ? undefined : defaults.scheduler));
  const steps = integer(o.steps, 'steps', 1, 1000, defaults.steps);
  const startStep = integer(o.startStep, 'startStep', 0, 10000, 0);
  const endStep = integer(o.endStep, 'endStep', 0, 10000, 10000);
  const rng = o.rng ?? 'gpu';
  if (rng !== 'gpu' && rng !== 'cpu') throw invalid(RangeError, 'rng', "'gpu' or 'cpu'", rng);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalid(TypeError, 'signal', 'AbortSignal', o.signal);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalid(TypeError, 'onProgress', 'function', o.onProgress);
  const request: NativeSampleRequest = {
    sampler, scheduler, steps, cfgScale, rng,
    seed: integer(o.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0),
    denoise: number(o.denoise, 'denoise', 0, 1, 1, true),
    startStep, endStep,
    addNoise: boolean(o.addNoise, 'addNoise', true),
    forceFullDenoise: !boolean(o.returnWithLeftoverNoise, 'returnWithLeftoverNoise', false),
    previewEvery: integer(o.previewEvery, 'previewEvery', 0, 1000, 0),
    guidance: number(o.guidance, 'guidance', 0, 100, 3.5),
    flowShift: number(o.flowShift, 'flowShift', 0, 100, 0),
    loras: loraList(o.loras).map(({ path, weight }) => ({ path, unetMultiplier: weight, textMultiplier: 0 })),
    positive,
    ...(negative && { negative }),
  };
  const fit = () => fitControls(pending, latent.width * vaeScale, latent.height * vaeScale);
  return { request, latent, fitControls: fit, ...(o.signal && { signal: o.signal }), ...(o.onProgress && { onProgress: o.onProgress }) };
}

/** Pixel size of an empty latent or an encoded image, checked: multiples of the VAE scale, up to 4096. */
export function latentSize(value: unknown, name: string, vaeScale: number): number {
  const expected = `multiple of ${vaeScale} from ${vaeScale} to 4096`;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw invalid(TypeError, name, expected, value);
  if (value < vaeScale || value > 4096 || value % vaeScale !== 0) throw invalid(RangeError, name, expected, value);
  return value;
}

/** A latent as the engine returned it, in the stage API's pixel sizes. */
export function publicLatent(native: NativeLatent, vaeScale: number): Latent {
  const { width, height, channels, batch, data, noiseMask } = native;
  return { width: width * vaeScale, height: height * vaeScale, channels, batch, data, ...(noiseMask && { noiseMask }) };
}

export { boolean as stageBoolean };

/** Options every stage call takes. */
export interface StageCallOptions {
  signal?: AbortSignal;
}

/** Options of `model.encodePrompt()`. */
export interface EncodePromptOptions extends StageCallOptions {
  /** CLIP skip as the image calls take it; 0: the family's default. Range 0–12. */
  clipSkip?: number;
  /** LoRA files merged into the text encoders for this call, each with its weight (default 1, range −10–10). */
  loras?: { path: string; weight?: number }[];
}

/** Options of `model.encodeImage()`. */
export interface EncodeImageOptions extends StageCallOptions {
  /** Size in pixels the image is resized to; default its own, cut down to the model's multiple. */
  width?: number;
  height?: number;
  /** Sample the VAE posterior with this seed (as the image calls do); absent: its mean (as ComfyUI's VAEEncode). */
  seed?: number;
  /** Generator of the posterior sample: 'gpu' (default) or 'cpu'. */
  rng?: 'gpu' | 'cpu';
  /** Encode in tiles (the image calls' `vaeTiling`). */
  vaeTiling?: boolean;
}

/** What the stage helpers need to know of a model (its ModelInfo's fields). */
interface StageModel {
  family: string;
  vaeScale: number;
  padToken: number;
}

/** Latent channels of the model's family: 4, 16 for the flow transformers. */
export function latentChannels(model: { family: string }): number {
  return isFlowFamily(model.family) ? 16 : 4;
}

/** Pixels a latent's sides are multiples of: the VAE scale, twice that for the transformers' 2×2 patches. */
function sizeStep(model: StageModel): number {
  return isFlowFamily(model.family) ? 2 * model.vaeScale : model.vaeScale;
}

/** The engine's text request for `prompt`: CLIP rows, and T5 ids for flow models. */
export function textRequest(
  model: StageModel, t5: T5Tokenizer | undefined, prompt: unknown, options: EncodePromptOptions, qwen?: () => QwenTokenizer,
): NativeTextRequest {
  if (typeof prompt !== 'string') throw invalid(TypeError, 'prompt', 'string', prompt);
  const { tokens, weights } = buildConditioning(prompt, model.padToken);
  const zImage = model.family === 'z-image';
  return {
    prompt: { tokens, weights },
    ...(isFlowFamily(model.family) && !zImage && { t5: flowTextConditioning(prompt, undefined, t5, 'prompt') }),
    ...(zImage && qwen && { llm: llmTextConditioning(prompt, undefined, qwen(), 'promptTokens') }),
    clipSkip: integer(options.clipSkip, 'clipSkip', 0, 12, 0),
    loras: loraList(options.loras).map(({ path, weight }) => ({ path, unetMultiplier: 0, textMultiplier: weight })),
  };
}

/** Zeros for `batch` images of width × height pixels. */
export function emptyLatentFor(model: StageModel, options: { width: number; height: number; batch?: number }): Latent {
  if (typeof options !== 'object' || options === null) throw invalid(TypeError, 'the options of emptyLatent', 'object', options);
  const step = sizeStep(model);
  const width = latentSize(options.width, 'width', step), height = latentSize(options.height, 'height', step);
  const batch = integer(options.batch, 'batch', 1, 64, 1);
  const channels = latentChannels(model);
  const cells = (width / model.vaeScale) * (height / model.vaeScale);
  return { width, height, channels, batch, data: new Float32Array(batch * channels * cells) };
}

/** The checked options of `encodeImage()`: its pixels (decoded off the queue) and the engine's settings. */
export function encodeImageInputs(model: StageModel, image: ImageInput | DecodedImage, options: EncodeImageOptions):
  { pixels: Promise<DecodedImage>; request: Omit<NativeEncodeImageRequest, 'data' | 'width' | 'height'> } {
  const seed = options.seed === undefined ? undefined : integer(options.seed, 'seed', 0, Number.MAX_SAFE_INTEGER, 0);
  const rng = options.rng ?? 'gpu';
  if (rng !== 'gpu' && rng !== 'cpu') throw invalid(RangeError, 'rng', "'gpu' or 'cpu'", rng);
  const tiled = boolean(options.vaeTiling, 'vaeTiling', false);
  const step = sizeStep(model);
  const pixels = rawImage(image, step) ?? (async () => {
    const own = await imageSize(image as ImageInput, 'image');
    const width = latentSize(options.width ?? Math.floor(own.width / step) * step, 'width', step);
    const height = latentSize(options.height ?? Math.floor(own.height / step) * step, 'height', step);
    return { width, height, data: await decodeImage(image as ImageInput, 'image', width, height) };
  })();
  return { pixels, request: { tiled, sampled: seed !== undefined, seed: seed ?? 0, rng } };
}

/** RGB bytes given as { width, height, data }, checked; undefined for a file or encoded image. */
function rawImage(image: unknown, step: number): Promise<DecodedImage> | undefined {
  if (typeof image !== 'object' || image === null || image instanceof Uint8Array) return undefined;
  const { width, height, data } = image as Partial<DecodedImage>;
  latentSize(width, 'image.width', step);
  latentSize(height, 'image.height', step);
  if (!(data instanceof Uint8Array) || data.length !== width! * height! * 3) {
    throw invalid(TypeError, 'image.data', `Uint8Array of width × height × 3 = ${width! * height! * 3} RGB bytes`, data);
  }
  return Promise.resolve({ width: width!, height: height!, data });
}
