// Every user-facing option is checked here, in one place, and normalised into the plain request the
// addon takes (its NativeRequest, less the prompt conditioning and the decoded pixels, which need
// async work). Wrong types are TypeErrors, values out of range RangeErrors, and every message names
// the option, what is allowed and what was received. An option set to undefined counts as omitted.
import { randomInt } from 'node:crypto';
import path from 'node:path';

import type { NativeRequest } from '../bindings/native.js';
import type { ModelCard } from './catalogue.js';
import { hiresSize, hiresUpscalerNames, type HiresUpscaler } from './hires.js';
import {
  controlModes, controlPreprocessors, controlResizeModes, maskedStarts, weightTypes, type ControlNetUnit, type ConvertOptions,
  type ImageInput, type LoadOptions, type Progress, type PromptTokens, type WeightType,
} from './option-types.js';
import { SafetyChecker } from './safety-checker.js';
import {
  defaultScheduler, findSampler, findScheduler, flowSamplerNames, flowSchedulerNames, samplerAliases, samplerDisplayNames,
  samplerNames, schedulerNames, unetSchedulerNames,
} from './samplers.js';

export type GenerateMode = 'txt2img' | 'img2img' | 'inpaint';

/**
 * What the defaults depend on: the model's family and prediction type. Family 'any' checks values
 * without asking whether they apply to the model (before one is loaded).
 */
export interface ModelTraits {
  family: string;
  prediction: string;
  /** Whether a TAESD is loaded; absent when not known yet (options checked before a load). */
  taesd?: boolean;
  /** The text encoders a prompt goes through ('clipL', 'clipG', 't5xxl'); absent when not known. */
  textEncoders?: readonly string[];
  /** The model card's settings, for a model pulled by a catalogue name that has them: they replace the family's defaults. */
  card?: ModelCard;
}

/** The request the addon takes, before the prompts are tokenised and the images decoded. */
export type RequestSettings = Required<Omit<NativeRequest,
  'prompt' | 'negative' | 'image' | 'mask' | 'hires' | 'loras' | 'refiner' | 't5Prompt' | 't5Negative' | 'clipGPrompt' | 'clipGNegative' | 'llmPrompt' | 'llmNegative'
  | 'referenceImages' | 'skipLayers' | 'controlNets' | 'cache'>> & Pick<NativeRequest, 'cache'>;

/** A ControlNet unit of the `controlNets` option, every default filled in; the model not resolved yet. */
export type NormalizedControlNet = Required<ControlNetUnit>;

/** A LoRA of the `loras` option, its path resolved. */
export interface NormalizedLora {
  path: string;
  weight: number;
}

/** The checked hires fix: sizes resolved, and how they were asked for (the parameters text says it). */
export interface NormalizedHires {
  /** Final size in pixels. */
  width: number;
  height: number;
  /** Size the first pass is resized to before the centre crop to width × height. */
  upscaleWidth: number;
  upscaleHeight: number;
  /**
   * How the size was asked for, as the parameters text records it: by scale ("Hires upscale"), or by
   * width and/or height ("Hires resize", 0 for the one not given).
   */
  sizedBy: { scale: number } | { width: number; height: number };
  /** A built-in upscaler, or the name (file stem) of the ESRGAN model at upscalerPath. */
  upscaler: HiresUpscaler | string;
  /** The ESRGAN-family model file, for an upscaler given as a file. */
  upscalerPath?: string;
  /** 0: the first pass's steps. */
  steps: number;
  denoisingStrength: number;
  /** Absent: the call's own. */
  prompt?: string;
  negativePrompt?: string;
}

/** Checked options with every default filled in. */
export interface NormalizedImageOptions {
  settings: RequestSettings;
  prompt: string;
  negativePrompt: string;
  hires?: NormalizedHires;
  image?: ImageInput;
  mask?: ImageInput;
  /** Mask blur sigma in pixels (inpaint). */
  maskBlur: number;
  /** Folder `<lora:NAME>` tags are looked up in (absolute); absent: the model's. */
  loraDir?: string;
  /** Folder of textual-inversion embeddings (absolute); absent: the model's. */
  embeddingsDir?: string;
  /** LoRAs given by path, applied besides the prompt's tags. */
  loras: NormalizedLora[];
  /** ControlNet units. */
  controlNets: NormalizedControlNet[];
  /** Folder ControlNet units name their model in (absolute); absent: the model's. */
  controlNetDir?: string;
  /** The refiner hand-off; `model` is checked to be a loaded Model by the caller (model.ts). */
  refiner?: { model: unknown; switchAt: number };
  /** The safety checker to run on each image, and whether a flagged image is blacked out. */
  safety?: { checker: SafetyChecker; filter: boolean };
  /** Token ids that replace the tokenizers' output, per text encoder. */
  promptTokens?: PromptTokens;
  /** FLUX.1 Kontext's reference images, not decoded yet. */
  referenceImages?: ImageInput[];
  negativePromptTokens?: PromptTokens;
  /** The transformer blocks skip-layer guidance leaves out (used when settings.slgScale > 0). */
  skipLayers: number[];
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

const DEFAULT_STEPS = 20;
const DEFAULT_CFG_SCALE = 7;
const DEFAULT_STRENGTH = 0.75;
const DEFAULT_MASK_BLUR = 4;
const MAX_SEED = 2 ** 32 - 1;

const DEFAULT_HIRES_SCALE = 2;
const DEFAULT_HIRES_STRENGTH = 0.7;
const MAX_SIDE = 2048;

const imageOptionKeys = [
  'prompt', 'negativePrompt', 'width', 'height', 'steps', 'cfgScale', 'sampler', 'scheduler', 'seed',
  'subseed', 'subseedStrength', 'seedResizeFromWidth', 'seedResizeFromHeight', 'count', 'rng', 'clipSkip',
  'vaeTiling', 'tiling', 'vaeDecoder', 'previews', 'previewEvery', 'loraDir', 'embeddingsDir', 'loras', 'safetyChecker', 'safetyCheck', 'signal', 'onProgress',
  'controlNets', 'controlNetDir',
  'originalSize', 'cropTopLeft', 'targetSize', 'aestheticScore', 'negativeAestheticScore', 'refiner',
  'guidance', 'flowShift', 'promptTokens', 'negativePromptTokens', 'referenceImages',
  'slgScale', 'skipLayers', 'slgStart', 'slgEnd', 'cache',
] as const;
const hiresOptionKeys = [
  'scale', 'width', 'height', 'upscaler', 'steps', 'denoisingStrength', 'prompt', 'negativePrompt',
] as const;
const optionKeysByMode: Readonly<Record<GenerateMode, readonly string[]>> = {
  txt2img: [...imageOptionKeys, 'hires'],
  img2img: [...imageOptionKeys, 'image', 'strength'],
  inpaint: [...imageOptionKeys, 'image', 'strength', 'mask', 'maskBlur', 'maskedStart'],
};
export const loadOptionKeys = ['backend', 'threads', 'prediction', 'weightType', 'taesd', 't5Tokenizer', 'qwenTokenizer', 'keepTextEncoders', 'lowMemory', 'pull'] as const;
/** Load options that a model keeps as the default of its calls rather than in its weights. */
const modelDefaultKeys = ['loraDir', 'embeddingsDir', 'controlNetDir'] as const;

/** Image side in pixels the model makes when `width`/`height` are not given. */
export function defaultImageSize(model: ModelTraits): number {
  return familyDefaults(model).size;
}

/** Whether the model is a flow-matching transformer (FLUX.1, SD3, SD3.5, Chroma, Z-Image). */
export function isFlowFamily(family: string): boolean {
  return family.startsWith('flux') || family.startsWith('sd3') || family === 'chroma' || family === 'z-image';
}

/**
 * What a call gets for what it does not give, per family, as the model cards and
 * stable-diffusion.cpp choose: FLUX.1 schnell 4 steps, dev 20, both at cfg 1 (one pass, no
 * negative prompt) with euler on the flux schedule at 1024²; SDXL 1024²; SD 2.x v-models 768².
 */
export function familyDefaults(model: ModelTraits): { size: number; steps: number; cfgScale: number; sampler?: string; scheduler?: string } {
  const { prediction: _prediction, ...card } = model.card ?? {};
  return { ...familyOwnDefaults(model), ...card };
}

function familyOwnDefaults(model: ModelTraits): { size: number; steps: number; cfgScale: number; sampler?: string; scheduler?: string } {
  if (model.family === 'flux-schnell') return { size: 1024, steps: 4, cfgScale: 1, sampler: 'euler', scheduler: 'flux' };
  if (model.family === 'flux-dev') return { size: 1024, steps: 20, cfgScale: 1, sampler: 'euler', scheduler: 'flux' };
  // Chroma's card: about 26 steps at cfg 4, with a negative prompt (it is not guidance-distilled).
  if (model.family === 'chroma') return { size: 1024, steps: 26, cfgScale: 4, sampler: 'euler', scheduler: 'flux' };
  // SD3 medium's card: 28 steps at cfg 7; SD3.5 medium's: 40 at 4.5; both on the discrete flow schedule (shift 3).
  if (model.family === 'sd3') return { size: 1024, steps: 28, cfgScale: 7, sampler: 'euler', scheduler: 'discrete' };
  if (model.family === 'sd3.5') return { size: 1024, steps: 40, cfgScale: 4.5, sampler: 'euler', scheduler: 'discrete' };
  // Z-Image Turbo's card: 8 steps without guidance (cfg 1); the discrete flow schedule with shift 3.
  if (model.family === 'z-image') return { size: 1024, steps: 8, cfgScale: 1, sampler: 'euler', scheduler: 'discrete' };
  if (model.family === 'sdxl' || model.family === 'sdxl-refiner') return { size: 1024, steps: DEFAULT_STEPS, cfgScale: DEFAULT_CFG_SCALE };
  return { size: model.family === 'sd2' && model.prediction === 'v' ? 768 : 512, steps: DEFAULT_STEPS, cfgScale: DEFAULT_CFG_SCALE };
}

/**
 * Checks the options of one image call and fills in the defaults. `caller` names the call in
 * messages ('textToImage', 'generate', …); `extraKeys` are keys the caller handles itself.
 */
export function normalizeImageOptions(
  options: unknown, mode: GenerateMode, model: ModelTraits, caller: string, extraKeys: readonly string[] = [],
): NormalizedImageOptions {
  const o = checkOptionsObject(options, caller, [...optionKeysByMode[mode], ...extraKeys]);
  const defaults = familyDefaults(model);
  const size = defaults.size;
  const flow = isFlowFamily(model.family);
  const { sampler, scheduler } = flow
    ? flowSamplerAndScheduler(o.sampler, o.scheduler, defaults)
    : samplerAndScheduler(o.sampler, o.scheduler);
  if (!flow && model.family !== 'any' && !unetSchedulerNames.includes(scheduler as never)) {
    throw invalid(RangeError, 'scheduler', `one of ${unetSchedulerNames.join(', ')} for this model`, o.scheduler);
  }
  const isImageMode = mode !== 'txt2img';
  // FLUX.1 takes 2x2 patches of 8-pixel latent cells.
  const sizeStep = flow ? 16 : 8;
  const width = integer(o.width, 'width', 64, MAX_SIDE, size, sizeStep);
  const height = integer(o.height, 'height', 64, MAX_SIDE, size, sizeStep);
  const subseedStrength = number(o.subseedStrength, 'subseedStrength', 0, 1, 0);
  const seedResize = seedResizeFrom(o.seedResizeFromWidth, o.seedResizeFromHeight);
  const normalized: NormalizedImageOptions = {
    settings: {
      mode,
      width,
      height,
      steps: integer(o.steps, 'steps', 1, 150, defaults.steps),
      cfgScale: number(o.cfgScale, 'cfgScale', 0, 30, defaults.cfgScale),
      sampler,
      scheduler,
      seed: integer(o.seed, 'seed', 0, MAX_SEED, undefined) ?? randomInt(0, MAX_SEED + 1),
      subseed: integer(o.subseed, 'subseed', 0, MAX_SEED, undefined) ?? randomInt(0, MAX_SEED + 1),
      subseedStrength,
      seedResizeWidth: seedResize.width,
      seedResizeHeight: seedResize.height,
      rng: oneOf(o.rng, 'rng', ['gpu', 'cpu'], 'gpu'),
      clipSkip: integer(o.clipSkip, 'clipSkip', 0, 12, 0),
      count: integer(o.count, 'count', 1, 16, 1),
      strength: isImageMode ? number(o.strength, 'strength', 0, 1, DEFAULT_STRENGTH) : 1,
      vaeTiling: boolean(o.vaeTiling, 'vaeTiling', false),
      tiling: seamlessTiling(o.tiling, o.vaeTiling),
      vaeDecoder: vaeDecoder(o.vaeDecoder, model),
      previewEvery: previewInterval(o.previews, o.previewEvery),
      maskedStart: mode === 'inpaint' ? oneOf(o.maskedStart, 'maskedStart', maskedStarts, 'original') : 'original',
      ...sdxlConditioning(o, model.family),
      guidance: number(o.guidance, 'guidance', 0, 30, 3.5),
      flowShift: o.flowShift === undefined ? 0 : number(o.flowShift, 'flowShift', 0.1, 100, 0),
      ...skipLayerGuidance(o, model.family),
      ...cacheOption(o.cache, model.family),
    },
    prompt: text(o.prompt, 'prompt'),
    negativePrompt: text(o.negativePrompt, 'negativePrompt'),
    maskBlur: mode === 'inpaint' ? integer(o.maskBlur, 'maskBlur', 0, 64, DEFAULT_MASK_BLUR) : 0,
    loras: loraList(o.loras),
    controlNets: controlNetList(o.controlNets, model.family),
    skipLayers: skipLayers(o.skipLayers),
  };
  if (o.controlNetDir !== undefined) normalized.controlNetDir = path.resolve(nonEmptyString(o.controlNetDir, 'controlNetDir'));
  if (o.loraDir !== undefined) normalized.loraDir = path.resolve(nonEmptyString(o.loraDir, 'loraDir'));
  if (o.embeddingsDir !== undefined) normalized.embeddingsDir = path.resolve(nonEmptyString(o.embeddingsDir, 'embeddingsDir'));
  if (o.hires !== undefined) normalized.hires = hiresOptions(o.hires, width, height);
  if (o.refiner !== undefined) {
    if (o.hires !== undefined) throw new TypeError('refiner cannot be combined with hires; give one of them');
    normalized.refiner = refinerOptions(o.refiner);
  }
  if (isImageMode) normalized.image = imageInput(o.image, 'image');
  if (mode === 'inpaint') normalized.mask = imageInput(o.mask, 'mask');
  const safety = safetyOptions(o.safetyChecker, o.safetyCheck);
  if (safety) normalized.safety = safety;
  if (o.signal !== undefined) normalized.signal = abortSignal(o.signal, 'signal');
  if (o.onProgress !== undefined) normalized.onProgress = progressCallback(o.onProgress, 'onProgress');
  if (o.promptTokens !== undefined) normalized.promptTokens = promptTokens(o.promptTokens, 'promptTokens');
  if (o.referenceImages !== undefined) normalized.referenceImages = referenceImages(o.referenceImages, model.family);
  if (o.negativePromptTokens !== undefined) normalized.negativePromptTokens = promptTokens(o.negativePromptTokens, 'negativePromptTokens');
  if (model.family !== 'any') checkPromptTokens(o, model);
  return normalized;
}

const promptTokenEncoders = ['clipL', 'clipG', 't5xxl', 'llm'] as const;

/** Skip-layer guidance's scale and where in the schedule it runs; flow transformers only. */
function skipLayerGuidance(o: Record<string, unknown>, family: string): { slgScale: number; slgStart: number; slgEnd: number } {
  const slgScale = number(o.slgScale, 'slgScale', 0, 100, 0);
  if (slgScale > 0 && family !== 'any' && !isFlowFamily(family)) {
    throw new RangeError(`slgScale (skip-layer guidance) is for flow transformers (SD3.5, SD3, FLUX.1); this is a ${family} model`);
  }
  const slgStart = number(o.slgStart, 'slgStart', 0, 1, 0.01);
  const slgEnd = number(o.slgEnd, 'slgEnd', 0, 1, 0.2);
  if (slgStart > slgEnd) throw new RangeError(`slgStart (${slgStart}) must not be after slgEnd (${slgEnd})`);
  return { slgScale, slgStart, slgEnd };
}

const cacheKeys = ['mode', 'threshold', 'start', 'end', 'decay', 'relative', 'reset'];

/** Step caching, checked against the model's family (easycache for flow transformers, ucache for UNets); none when not asked for. */
function cacheOption(value: unknown, family: string): { cache?: NonNullable<NativeRequest['cache']> } {
  if (value === undefined) return {};
  return { cache: cacheSettings(value, family) };
}

function cacheSettings(value: unknown, family: string): NonNullable<NativeRequest['cache']> {
  const o = checkOptionsObject(value, 'cache', cacheKeys, 'cache');
  if (o.mode === undefined) throw invalid(TypeError, 'cache.mode', 'one of none, easycache, ucache', o.mode);
  const mode = oneOf(o.mode, 'cache.mode', ['none', 'easycache', 'ucache'], 'none');
  if (family !== 'any' && mode !== 'none' && (mode === 'easycache') !== isFlowFamily(family)) {
    throw new RangeError(`cache.mode ${mode} is for ${mode === 'easycache' ? 'flow transformers (FLUX.1, Chroma, SD3)' : 'UNet models (SD 1.x, 2.x, SDXL)'}; `
      + `this ${family} model takes ${mode === 'easycache' ? 'ucache' : 'easycache'}`);
  }
  const start = number(o.start, 'cache.start', 0, 0.999, 0.15);
  const end = number(o.end, 'cache.end', 0.001, 1, 0.95);
  if (start >= end) throw new RangeError(`cache.start (${start}) must be before cache.end (${end})`);
  return {
    mode: mode === 'none' ? '' : mode,
    threshold: o.threshold === undefined ? -1 : number(o.threshold, 'cache.threshold', 0, 1000, 0),
    start,
    end,
    decay: number(o.decay, 'cache.decay', 0, 1, 1),
    relative: boolean(o.relative, 'cache.relative', true),
    reset: boolean(o.reset, 'cache.reset', true),
  };
}

/** The blocks skip-layer guidance leaves out: SD3.5 medium's card uses 7, 8 and 9 (the default). */
function skipLayers(value: unknown): number[] {
  if (value === undefined) return [7, 8, 9];
  const expected = 'array of 1–64 block indices, integers 0–255';
  if (!Array.isArray(value) || value.length < 1 || value.length > 64) throw invalid(TypeError, 'skipLayers', expected, value);
  value.forEach((layer, i) => {
    if (!Number.isInteger(layer) || layer < 0 || layer > 255) throw invalid(RangeError, `skipLayers[${i}]`, 'integer block index 0–255', layer);
  });
  return [...value as number[]];
}

function referenceImages(value: unknown, family: string): ImageInput[] {
  if (!Array.isArray(value) || value.length > 4) throw invalid(TypeError, 'referenceImages', 'array of at most 4 images', value);
  if (family !== 'any' && !family.startsWith('flux')) {
    throw new RangeError(`referenceImages are for FLUX.1 (Kontext) models; this is a ${family} model`);
  }
  return value.map((image, i) => imageInput(image, `referenceImages[${i}]`));
}

/** Ids for an encoder the model does not have would be silently unused: refused, naming the encoders it has. */
function checkPromptTokens(o: Record<string, unknown>, model: ModelTraits): void {
  const encoders = model.textEncoders ?? [];
  for (const name of ['promptTokens', 'negativePromptTokens']) {
    const given = o[name];
    if (typeof given !== 'object' || given === null) continue;
    for (const [encoder, ids] of Object.entries(given)) {
      if (ids !== undefined && !encoders.includes(encoder)) {
        const has = encoders.length > 0 ? `its encoders are ${encoders.join(', ')}` : 'it takes no token ids';
        throw new RangeError(`${name}.${encoder} is for a text encoder this model does not have; ${has}`);
      }
    }
  }
}
const MAX_PROMPT_TOKENS = 4096;

function promptTokens(value: unknown, name: string): PromptTokens {
  const o = checkOptionsObject(value, name, promptTokenEncoders, name);
  const out: PromptTokens = {};
  for (const encoder of promptTokenEncoders) {
    const ids = o[encoder];
    if (ids === undefined) continue;
    const expected = `array of at most ${MAX_PROMPT_TOKENS} integer token ids 0–${2 ** 31 - 1}`;
    if (!Array.isArray(ids) || ids.length > MAX_PROMPT_TOKENS) throw invalid(TypeError, `${name}.${encoder}`, expected, ids);
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id > 2 ** 31 - 1) throw invalid(RangeError, `${name}.${encoder}[${i}]`, 'integer token id 0–2147483647', id);
    });
    out[encoder] = [...ids as number[]];
  }
  return out;
}

/** Sampler and schedule of a flow model: the family's when not given, and only those that run flow models. */
function flowSamplerAndScheduler(
  samplerValue: unknown, schedulerValue: unknown, defaults: { sampler?: string; scheduler?: string },
): { sampler: string; scheduler: string } {
  const chosen = samplerAndScheduler(samplerValue ?? defaults.sampler, schedulerValue);
  if (!flowSamplerNames.includes(chosen.sampler as never)) {
    throw invalid(RangeError, 'sampler', `one of ${flowSamplerNames.join(', ')} for flow models (FLUX.1, SD3)`, samplerValue);
  }
  // A sampler that implies its schedule (" Karras") keeps it; otherwise the family's.
  const implied = typeof samplerValue === 'string' && findSampler(samplerValue)?.scheduler;
  const scheduler = schedulerValue !== undefined || implied ? chosen.scheduler : defaults.scheduler ?? chosen.scheduler;
  if (!flowSchedulerNames.includes(scheduler as never)) {
    throw invalid(RangeError, 'scheduler', `one of ${flowSchedulerNames.join(', ')} for flow models (FLUX.1, SD3)`, schedulerValue ?? scheduler);
  }
  return { sampler: chosen.sampler, scheduler };
}

/** Load options with every default filled in but the thread count, which needs the addon. */
export type NormalizedLoadOptions = Required<Omit<LoadOptions,
  'threads' | 'loraDir' | 'embeddingsDir' | 'controlNetDir' | 'taesd' | 't5Tokenizer' | 'qwenTokenizer' | 'keepTextEncoders' | 'lowMemory' | 'pull'>>
  & Pick<LoadOptions, 'threads' | 'loraDir' | 'embeddingsDir' | 'controlNetDir' | 'taesd' | 't5Tokenizer' | 'qwenTokenizer' | 'keepTextEncoders' | 'lowMemory'>;

/** Checks load options and fills in the defaults, except `threads`, which needs the addon to know the core count. */
export function normalizeLoadOptions(
  options: unknown, caller: string, extraKeys: readonly string[] = [],
): NormalizedLoadOptions {
  const o = checkOptionsObject(options ?? {}, caller, [...loadOptionKeys, ...modelDefaultKeys, ...extraKeys]);
  const normalized: NormalizedLoadOptions = {
    backend: oneOf(o.backend, 'backend', ['auto', 'cpu', 'metal', 'cuda'], 'auto'),
    prediction: oneOf(o.prediction, 'prediction', ['auto', 'eps', 'v'], 'auto'),
    weightType: weightType(o.weightType),
  };
  const threads = integer(o.threads, 'threads', 1, 1024, undefined);
  if (threads !== undefined) normalized.threads = threads;
  if (o.loraDir !== undefined) normalized.loraDir = path.resolve(nonEmptyString(o.loraDir, 'loraDir'));
  if (o.embeddingsDir !== undefined) normalized.embeddingsDir = path.resolve(nonEmptyString(o.embeddingsDir, 'embeddingsDir'));
  if (o.controlNetDir !== undefined) normalized.controlNetDir = path.resolve(nonEmptyString(o.controlNetDir, 'controlNetDir'));
  if (o.taesd !== undefined) normalized.taesd = nonEmptyString(o.taesd, 'taesd');
  if (o.t5Tokenizer !== undefined) normalized.t5Tokenizer = nonEmptyString(o.t5Tokenizer, 't5Tokenizer');
  if (o.qwenTokenizer !== undefined) normalized.qwenTokenizer = nonEmptyString(o.qwenTokenizer, 'qwenTokenizer');
  if (o.keepTextEncoders !== undefined) normalized.keepTextEncoders = boolean(o.keepTextEncoders, 'keepTextEncoders', false);
  if (o.lowMemory !== undefined) normalized.lowMemory = boolean(o.lowMemory, 'lowMemory', false);
  if (normalized.lowMemory && normalized.keepTextEncoders) {
    throw new TypeError('lowMemory and keepTextEncoders exclude each other: lowMemory frees the text encoders whenever the transformer runs');
  }
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

function checkOptionsObject(
  options: unknown, caller: string, known: readonly string[], name = `the options of ${caller}`,
): Record<string, unknown> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid(TypeError, name, 'object', options);
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

function vaeDecoder(value: unknown, model: ModelTraits): 'vae' | 'taesd' {
  const decoder = oneOf(value, 'vaeDecoder', ['vae', 'taesd'], 'vae');
  if (decoder === 'taesd' && model.taesd === false) {
    throw new RangeError("vaeDecoder is 'taesd' but the model was loaded without a TAESD; "
      + 'give its file with the taesd load option (--taesd FILE on the command line)');
  }
  return decoder;
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

// Both sizes or neither: A1111 resizes the seed only when it has both.
function seedResizeFrom(widthValue: unknown, heightValue: unknown): { width: number; height: number } {
  const width = integer(widthValue, 'seedResizeFromWidth', 64, MAX_SIDE, undefined, 8);
  const height = integer(heightValue, 'seedResizeFromHeight', 64, MAX_SIDE, undefined, 8);
  if ((width === undefined) !== (height === undefined)) {
    const [given, missing] = width === undefined ? ['seedResizeFromHeight', 'seedResizeFromWidth'] : ['seedResizeFromWidth', 'seedResizeFromHeight'];
    throw new TypeError(`${given} is given but ${missing} is not; give both to resize the seed, or neither`);
  }
  return { width: width ?? 0, height: height ?? 0 };
}

const MAX_CONDITIONING_SIDE = 16384;
const DEFAULT_AESTHETIC_SCORE = 6;
const DEFAULT_NEGATIVE_AESTHETIC_SCORE = 2.5;
// Which families take each SDXL conditioning option.
const sdxlOptionFamilies = {
  originalSize: ['sdxl', 'sdxl-refiner'],
  cropTopLeft: ['sdxl', 'sdxl-refiner'],
  targetSize: ['sdxl'],
  aestheticScore: ['sdxl-refiner'],
  negativeAestheticScore: ['sdxl-refiner'],
} as const;

// SDXL's size conditioning (0 stands for the generated size, and no crop) and the refiner's
// aesthetic scores.
function sdxlConditioning(o: Record<string, unknown>, family: string): Pick<
  RequestSettings, 'originalWidth' | 'originalHeight' | 'cropTop' | 'cropLeft' | 'targetWidth' | 'targetHeight'
  | 'aestheticScore' | 'negativeAestheticScore'
> {
  // With a refiner hand-off the aesthetic scores condition the refiner, whatever the model's family.
  const refinerTakes = (key: string) => o.refiner !== undefined && (key === 'aestheticScore' || key === 'negativeAestheticScore');
  for (const [key, families] of Object.entries(sdxlOptionFamilies)) {
    if (o[key] !== undefined && family !== 'any' && !(families as readonly string[]).includes(family) && !refinerTakes(key)) {
      const which = families.length === 1 ? `${families[0]} models` : `${families.join(' and ')} models`;
      throw new RangeError(`${key} applies to ${which} only, but this model's family is ${family}; leave it out`);
    }
  }
  const original = pair(o.originalSize, 'originalSize', ['width', 'height'], 1);
  const crop = pair(o.cropTopLeft, 'cropTopLeft', ['top', 'left'], 0);
  const target = pair(o.targetSize, 'targetSize', ['width', 'height'], 1);
  return {
    originalWidth: original?.width ?? 0,
    originalHeight: original?.height ?? 0,
    cropTop: crop?.top ?? 0,
    cropLeft: crop?.left ?? 0,
    targetWidth: target?.width ?? 0,
    targetHeight: target?.height ?? 0,
    aestheticScore: number(o.aestheticScore, 'aestheticScore', 0, 10, DEFAULT_AESTHETIC_SCORE),
    negativeAestheticScore: number(o.negativeAestheticScore, 'negativeAestheticScore', 0, 10, DEFAULT_NEGATIVE_AESTHETIC_SCORE),
  };
}

// An object of exactly two integer fields, both required.
function pair<K extends string>(
  value: unknown, name: string, keys: readonly [K, K], min: number,
): Record<K, number> | undefined {
  if (value === undefined) return undefined;
  const o = checkOptionsObject(value, name, keys, name);
  const result = {} as Record<K, number>;
  for (const key of keys) {
    const field = integer(o[key], `${name}.${key}`, min, MAX_CONDITIONING_SIDE, undefined);
    if (field === undefined) {
      throw new TypeError(`Expected an object { ${keys.join(', ')} } for ${name} but ${name}.${key} is missing`);
    }
    result[key] = field;
  }
  return result;
}

function seamlessTiling(tilingValue: unknown, vaeTilingValue: unknown): boolean {
  const tiling = boolean(tilingValue, 'tiling', false);
  if (tiling && vaeTilingValue === true) {
    throw new RangeError('tiling is true but vaeTiling is true too; the VAE\'s tiles cannot wrap around the image\'s '
      + 'edges, so turn one of them off');
  }
  return tiling;
}

function hiresOptions(value: unknown, baseWidth: number, baseHeight: number): NormalizedHires {
  const o = checkOptionsObject(value, 'hires', hiresOptionKeys, 'hires');
  const width = integer(o.width, 'hires.width', 64, MAX_SIDE, undefined, 8);
  const height = integer(o.height, 'hires.height', 64, MAX_SIDE, undefined, 8);
  const sized = width !== undefined || height !== undefined;
  if (sized && o.scale !== undefined) {
    throw new TypeError(`hires.scale is ${describe(o.scale)} but hires.${width === undefined ? 'height' : 'width'} is given too; `
      + 'give the scale or the size, not both');
  }
  const scale = sized ? undefined : number(o.scale, 'hires.scale', 1, 8, DEFAULT_HIRES_SCALE);
  const size = hiresSize(baseWidth, baseHeight, scale === undefined ? { width, height } : { scale });
  const asked = scale === undefined
    ? [width && `hires.width ${width}`, height && `hires.height ${height}`].filter(Boolean).join(' and ')
    : `hires.scale ${scale}`;
  const outside = (...sides: number[]) => sides.some((side) => side < 64 || side > MAX_SIDE);
  const limit = `the hires fix works with 64 to ${MAX_SIDE} pixels a side`;
  if (outside(size.width, size.height)) {
    throw new RangeError(`${asked} on a ${baseWidth}x${baseHeight} image makes it ${size.width}x${size.height}; ${limit}`);
  }
  if (outside(size.upscaleWidth, size.upscaleHeight)) {
    throw new RangeError(`${asked} on a ${baseWidth}x${baseHeight} image upscale it to `
      + `${size.upscaleWidth}x${size.upscaleHeight} before the crop; ${limit}`);
  }
  const normalized: NormalizedHires = {
    ...size,
    sizedBy: scale === undefined ? { width: width ?? 0, height: height ?? 0 } : { scale },
    ...hiresUpscaler(o.upscaler),
    steps: integer(o.steps, 'hires.steps', 0, 150, 0),
    denoisingStrength: strengthAboveZero(o.denoisingStrength, 'hires.denoisingStrength', DEFAULT_HIRES_STRENGTH),
  };
  if (o.prompt !== undefined) normalized.prompt = text(o.prompt, 'hires.prompt');
  if (o.negativePrompt !== undefined) normalized.negativePrompt = text(o.negativePrompt, 'hires.negativePrompt');
  return normalized;
}

// Case-insensitive, as the A1111 names are typed by hand as often as copied.
const DEFAULT_REFINER_SWITCH_AT = 0.8;

function refinerOptions(value: unknown): { model: unknown; switchAt: number } {
  const o = checkOptionsObject(value, 'refiner', ['model', 'switchAt'], 'refiner');
  if (o.model === undefined) throw invalid(TypeError, 'refiner.model', 'a loaded Model (from loadModel())', o.model);
  return { model: o.model, switchAt: strengthAboveZero(o.switchAt, 'refiner.switchAt', DEFAULT_REFINER_SWITCH_AT) };
}

// A built-in name, or the path of an ESRGAN-family file (named by its stem in the parameters text).
function hiresUpscaler(value: unknown): { upscaler: HiresUpscaler | string; upscalerPath?: string } {
  if (value === undefined) return { upscaler: 'Latent' };
  const expected = `one of ${hiresUpscalerNames.join(', ')}, or the path of an ESRGAN .safetensors or .gguf file`;
  if (typeof value !== 'string') throw invalid(TypeError, 'hires.upscaler', expected, value);
  const found = hiresUpscalerNames.find((name) => name.toLowerCase() === value.toLowerCase());
  if (found) return { upscaler: found };
  if (!/\.(safetensors|gguf)$/i.test(value)) throw invalid(RangeError, 'hires.upscaler', expected, value);
  return { upscaler: path.basename(value, path.extname(value)), upscalerPath: path.resolve(value) };
}

function strengthAboveZero(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const expected = 'number above 0 and at most 1';
  if (!isNumber(value)) throw invalid(TypeError, name, expected, value);
  if (!(value > 0 && value <= 1)) throw invalid(RangeError, name, expected, value);
  return value;
}

const MAX_LORA_WEIGHT = 10;

/** The `loras` option checked: each path resolved, each weight in range (default 1). */
export function loraList(value: unknown): NormalizedLora[] {
  if (value === undefined) return [];
  const expected = 'array of { path, weight } objects';
  if (!Array.isArray(value)) throw invalid(TypeError, 'loras', expected, value);
  return value.map((entry: unknown, i) => {
    const o = checkOptionsObject(entry, `loras[${i}]`, ['path', 'weight'], `loras[${i}]`);
    return {
      path: path.resolve(nonEmptyString(o.path, `loras[${i}].path`)),
      weight: number(o.weight, `loras[${i}].weight`, -MAX_LORA_WEIGHT, MAX_LORA_WEIGHT, 1),
    };
  });
}

const MAX_CONTROL_NETS = 8;
const controlNetKeys = [
  'model', 'image', 'weight', 'guidanceStart', 'guidanceEnd', 'controlMode', 'resizeMode', 'preprocessor', 'cannyLow', 'cannyHigh',
] as const;

/** The `controlNets` option checked, every default filled in; UNet families only. */
export function controlNetList(value: unknown, family: string): NormalizedControlNet[] {
  if (value === undefined) return [];
  const expected = `array of at most ${MAX_CONTROL_NETS} { model, image, weight, … } objects`;
  if (!Array.isArray(value) || value.length > MAX_CONTROL_NETS) throw invalid(TypeError, 'controlNets', expected, value);
  if (value.length > 0 && family !== 'any' && isFlowFamily(family)) {
    throw new RangeError(`controlNets are for SD 1.x, SD 2.x and SDXL models; this is a ${family} model`);
  }
  return value.map((entry: unknown, i) => {
    const name = `controlNets[${i}]`;
    const o = checkOptionsObject(entry, name, controlNetKeys, name);
    const guidanceStart = number(o.guidanceStart, `${name}.guidanceStart`, 0, 1, 0);
    const guidanceEnd = number(o.guidanceEnd, `${name}.guidanceEnd`, 0, 1, 1);
    if (guidanceStart > guidanceEnd) {
      throw new RangeError(`${name}.guidanceStart (${guidanceStart}) must not be after ${name}.guidanceEnd (${guidanceEnd})`);
    }
    const preprocessor = oneOf(o.preprocessor, `${name}.preprocessor`, controlPreprocessors, 'none');
    if (preprocessor !== 'canny') {
      for (const key of ['cannyLow', 'cannyHigh'] as const) {
        if (o[key] !== undefined) throw new TypeError(`${name}.${key} applies to preprocessor 'canny' only, but the unit's preprocessor is '${preprocessor}'`);
      }
    }
    return {
      model: nonEmptyString(o.model, `${name}.model`),
      image: imageInput(o.image, `${name}.image`),
      weight: number(o.weight, `${name}.weight`, 0, 2, 1),
      guidanceStart,
      guidanceEnd,
      controlMode: oneOf(o.controlMode, `${name}.controlMode`, controlModes, 'balanced'),
      resizeMode: oneOf(o.resizeMode, `${name}.resizeMode`, controlResizeModes, 'crop-and-resize'),
      preprocessor,
      cannyLow: integer(o.cannyLow, `${name}.cannyLow`, 1, 255, 100),
      cannyHigh: integer(o.cannyHigh, `${name}.cannyHigh`, 1, 255, 200),
    };
  });
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

function safetyOptions(checker: unknown, mode: unknown): NormalizedImageOptions['safety'] {
  const filter = oneOf(mode, 'safetyCheck', ['report', 'filter'], 'filter') === 'filter';
  if (checker === undefined) {
    if (mode !== undefined) throw new TypeError(`safetyCheck is ${JSON.stringify(mode)} but no safetyChecker was given; load one with loadSafetyChecker()`);
    return undefined;
  }
  if (!(checker instanceof SafetyChecker)) throw invalid(TypeError, 'safetyChecker', 'SafetyChecker from loadSafetyChecker()', checker);
  return { checker, filter };
}

function abortSignal(value: unknown, name: string): AbortSignal {
  if (value instanceof AbortSignal) return value;
  throw invalid(TypeError, name, 'AbortSignal', value);
}

function progressCallback<T>(value: unknown, name: string): (progress: T) => void {
  if (typeof value === 'function') return value as (progress: T) => void;
  throw invalid(TypeError, name, 'function', value);
}

/** Options of an upscale with every default filled in but what needs the model (its scale). */
export interface NormalizedUpscaleOptions {
  scale?: number;
  width?: number;
  height?: number;
  tile: number;
  signal?: AbortSignal;
  onProgress?: (progress: { tile: number; tiles: number; pass: number; passes: number }) => void;
}

/** Checks the per-image options of an upscale (`scale`, or `width`/`height`; `tile`, `signal`, `onProgress`). */
export function normalizeUpscaleOptions(options: unknown, caller: string, extraKeys: readonly string[] = []): NormalizedUpscaleOptions {
  const o = checkOptionsObject(options ?? {}, caller, ['scale', 'width', 'height', 'tile', 'signal', 'onProgress', ...extraKeys]);
  const normalized: NormalizedUpscaleOptions = { tile: integer(o.tile, 'tile', 32, 2048, 128) };
  if (o.scale !== undefined) normalized.scale = number(o.scale, 'scale', 0.25, 16, 1);
  const width = integer(o.width, 'width', 1, 16384, undefined);
  const height = integer(o.height, 'height', 1, 16384, undefined);
  if ((width !== undefined || height !== undefined) && normalized.scale !== undefined) {
    throw new TypeError('scale and width/height exclude each other: give the factor or the size');
  }
  if (width !== undefined) normalized.width = width;
  if (height !== undefined) normalized.height = height;
  if (o.signal !== undefined) normalized.signal = abortSignal(o.signal, 'signal');
  if (o.onProgress !== undefined) normalized.onProgress = progressCallback(o.onProgress, 'onProgress');
  return normalized;
}
