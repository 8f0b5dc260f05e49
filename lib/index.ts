// sdnode's public API: everything users import comes from here.
import type { SystemInfo } from '../bindings/native.js';
import { fromNativeError } from './errors.js';
import { addonOrThrow } from './model.js';
import { samplerNames, schedulerNames } from './samplers.js';

export { samplerDisplayNames } from './samplers.js';

export type { DeviceInfo, SystemInfo } from '../bindings/native.js';
export { convertModel, type ConvertResult } from './convert.js';
export { SdnodeError } from './errors.js';
export { generate, type GenerateOptions } from './generate.js';
export { familyNames, loadModel, Model, type GeneratedImage, type ModelInfo } from './model.js';
export type {
  ConditioningControlNet, DecodedImage, EncodeImageOptions, EncodePromptOptions, Latent, PromptConditioning, SampleOptions, StageCallOptions,
} from './stages.js';
export { listLoras, type LoraFileInfo } from './lora.js';
export { catalogue, defaultCatalogueModel, type CatalogueEntry, type CatalogueFile, type ModelCard } from './catalogue.js';
export {
  defaultModelsDir, findPulledModel, isModelReference, pullModel, sidecarOf, sourceFile, unfinishedDownloads,
  type PulledModel, type PullOptions, type PullProgress,
} from './pull.js';
export { loadEmbeddings, type Embedding, type EmbeddingSet, type EmbeddingTarget, type SkippedEmbedding } from './embeddings.js';
export { hiresUpscalerNames, type HiresUpscaler } from './hires.js';
export {
  loadUpscaler, upscale, Upscaler, type UpscaledImage, type UpscaleImageOptions, type UpscaleOptions, type UpscalerInfo,
  type UpscalerLoadOptions,
} from './upscale.js';
export type {
  CacheOptions, ControlMode, ControlNetUnit, ControlPreprocessor, ControlResizeMode, ConvertOptions, ConvertProgress, HiresOptions,
  ImageInput, ImageOptions, ImageToImageOptions, InpaintOptions, LoadOptions, MaskedStart, ModelComponents, Preview, Progress,
  PromptTokens, RefinerOptions, TextToImageOptions, WeightType,
} from './option-types.js';
export { canny, type CannyOptions } from './canny.js';
export { listControlNets, type ControlNetFileInfo } from './controlnet.js';
export { loadT5Tokenizer, type T5Tokenizer } from './t5-tokenizer.js';
export { loadQwenTokenizer, QwenTokenizer, zImagePromptTokens } from './qwen-tokenizer.js';
export { controlModes, controlPreprocessors, controlResizeModes, maskedStarts, weightTypes } from './option-types.js';
export { resolveSampler } from './options.js';
export { insertPngText, readPngText } from './png-metadata.js';
export { parseParameters, type ParsedParameters } from './parameters-text.js';
export {
  loadSafetyChecker, SafetyChecker, type ImageInputs, type SafetyCheckerInfo, type SafetyCheckerLoadOptions, type SafetyResult,
} from './safety-checker.js';

/** Engine sampler names; `sampler` also takes AUTOMATIC1111's names for them ("Euler a", "DPM++ 2M Karras"). */
export function samplers(): string[] {
  return [...samplerNames];
}

/** Noise schedule names `scheduler` takes. */
export function schedulers(): string[] {
  return [...schedulerNames];
}

/** The compiled engine, its backends and this machine's devices. Throws SdnodeError 'ERR_ADDON_LOAD' when the addon is not built. */
export function systemInfo(): SystemInfo {
  const addon = addonOrThrow();
  try {
    return addon.systemInfo();
  } catch (err) {
    throw fromNativeError(err);
  }
}
