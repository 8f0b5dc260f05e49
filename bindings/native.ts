// The shape of the compiled addon (native/addon). lib/ is the only caller; it validates and
// normalises everything before it crosses this line, so the addon trusts field types and only
// re-checks what memory safety needs.

/** What `systemInfo()` reports about the compiled engine and this machine. */
export interface SystemInfo {
  /** sdnode's engine version. */
  engineVersion: string;
  /** ggml version the addon was built against, e.g. "0.25.1". */
  ggmlVersion: string;
  /** Backends compiled into this build, e.g. ["cpu"] or ["cpu", "cuda"]. */
  backends: string[];
  /** Devices usable now, CPU first. */
  devices: DeviceInfo[];
  /** CPU features the CPU backend uses, e.g. ["AVX2", "F16C", "FMA"]. */
  cpuFeatures: string[];
  /** Physical cores (the default thread count). */
  physicalCores: number;
}

export interface DeviceInfo {
  /** Backend name: "cpu", "metal" or "cuda". */
  backend: string;
  /** Device name as the backend reports it. */
  name: string;
  description: string;
  /** Total and free device memory in bytes (0 where the backend cannot tell). */
  memoryTotal: number;
  memoryFree: number;
}

export interface NativeLoadOptions {
  /** 'auto' | 'cpu' | 'metal' | 'cuda' */
  backend: string;
  /** Worker threads for the CPU backend, >= 1. */
  threads: number;
  /** 'auto' (from the checkpoint), 'eps' or 'v'. */
  prediction: string;
  /** Resident type of the weight matrices: 'auto' (as stored), 'f32', 'f16', 'q8_0', … Absent: 'auto'. */
  weightType?: string;
  /** Path of a TAESD decoder file to load with the model. Absent: none. */
  taesd?: string;
  /** A model given as components (FLUX.1): the diffusion model's file selects this; the path argument is then unused. */
  diffusionModel?: string;
  clipL?: string;
  clipG?: string;
  t5xxl?: string;
  /** Z-Image: the Qwen3 text model's file. */
  llm?: string;
  vae?: string;
  /** Flow models: keep the text encoders resident between calls. Absent: false (loaded per new prompt, then freed). */
  keepTextEncoders?: boolean;
  /** Flow models: the transformer and the text encoders are never resident at once. Absent: false. */
  lowMemory?: boolean;
}

/** What the engine read from the checkpoint. */
/** An image a model reads beside the prompt: RGB bytes, width*height*3. */
export interface NativeReferenceImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface NativeModelInfo {
  /** 'sd1' | 'sd2' */
  family: string;
  /** 'eps' | 'v' | 'flow' */
  prediction: string;
  /** UNet input channels: 4, or 9 for inpainting checkpoints. */
  unetInChannels: number;
  /** Width of the text encoder's hidden states (768 SD 1.x, 1024 SD 2.x). */
  contextDim: number;
  /** Token id used to pad to 77 tokens (49407 SD 1.x, 0 SD 2.x). */
  padToken: number;
  /** Pixels per latent cell (8). */
  vaeScale: number;
  /** Bytes of weights resident for this model, after any weightType conversion. */
  weightBytes: number;
  /** The text encoders a prompt goes through: 'clipL', 'clipG', 't5xxl', 'llm' (Z-Image's Qwen3). */
  textEncoders: string[];
  /** Models loaded from components: each component's file by role ('diffusionModel', 'clipL', 't5xxl', 'llm', 'vae'). */
  componentFiles: Record<string, string>;
  /** Backend the model runs on: 'cpu' | 'metal' | 'cuda'. */
  backend: string;
  /** 'safetensors' | 'gguf' */
  format: string;
  /** Size of the checkpoint file in bytes. */
  fileBytes: number;
  /** Loaded weights by the type the file stores them in (ggml's names: 'f16', 'q8_0', 'q4_K'): tensor counts. */
  storedTypes: Record<string, number>;
  /** Weights of the model's components that no part of the network used (a sign of an unknown variant). */
  unusedTensors: string[];
  /** Whether a TAESD decoder was loaded with the model. */
  taesd: boolean;
}

/** Token ids and per-token weights of one prompt: `chunks` rows of 77 (BOS … EOS pad). */
export interface NativeConditioning {
  tokens: Int32Array;
  weights: Float32Array;
  /** Textual-inversion vectors, rows of the first text encoder's width: token id vocab + k is row k. */
  embeddings?: Float32Array;
  /** The same rows for the second text encoder (SDXL's bigG), in its width. */
  embeddings2?: Float32Array;
}

/** A LoRA file and its multipliers (A1111's unet and te weights). */
export interface NativeLora {
  /** Absolute path of a .safetensors or .gguf LoRA. */
  path: string;
  unetMultiplier: number;
  textMultiplier: number;
}

/** A ControlNet unit as the engine takes it: the control image already preprocessed and at the request's size. */
export interface NativeControlUnit {
  /** Absolute path of a ControlNet file (original layout). */
  path: string;
  /** RGB bytes, width*height*3 of the request. */
  image: Uint8Array;
  /** With hires: RGB bytes at the hires fix's width*height, so the unit steers its second pass too. Absent: the first pass only. */
  hiresImage?: Uint8Array;
  /** Scale of its residuals, −10–10. */
  strength: number;
  /** The fraction of the steps where it starts and stops steering, 0 ≤ start ≤ end ≤ 1. */
  guidanceStart: number;
  guidanceEnd: number;
  /** 'balanced' | 'prompt' | 'control' */
  mode: string;
}

export interface NativeRequest {
  /** 'txt2img' | 'img2img' | 'inpaint' */
  mode: string;
  width: number;
  height: number;
  steps: number;
  cfgScale: number;
  /** Engine sampler name, e.g. 'euler_a'. */
  sampler: string;
  /** 'discrete' | 'karras' | 'exponential' */
  scheduler: string;
  /** First image's seed; image i uses seed + i. 0 … 2^53-1. */
  seed: number;
  /** 'gpu' (Philox) | 'cpu' (mt19937) */
  rng: string;
  /** CLIP skip in AUTOMATIC1111's numbering (1 = last layer, 2 = the one before); 0 = the family default. */
  clipSkip: number;
  /** Images to make. */
  count: number;
  prompt: NativeConditioning;
  negative: NativeConditioning;
  /** img2img / inpaint: RGB bytes, width*height*3. */
  image?: Uint8Array;
  /** inpaint: one byte per pixel, width*height; 255 = repaint, 0 = keep. */
  mask?: Uint8Array;
  /** img2img / inpaint: 0–1. */
  strength: number;
  /** Run the VAE (decode, and encode for img2img/inpaint) in overlapping 512-pixel tiles. Absent: false. */
  vaeTiling?: boolean;
  /** Attach a preview to every n-th step's progress and the last step's; 0 or absent: none. 0–1000. */
  previewEvery?: number;
  /** Variation seed of the first image; image i uses subseed + i. 0 … 2^53-1. Absent: 0. */
  subseed?: number;
  /** How far the initial noise is slerped from the seed's towards the subseed's: 0–1. Absent: 0. */
  subseedStrength?: number;
  /** Size in pixels the noise is drawn at, centred in the latent (both or neither; multiples of 8). Absent: 0, off. */
  seedResizeWidth?: number;
  seedResizeHeight?: number;
  /** Convolutions pad circularly, so the image tiles seamlessly. Not with vaeTiling. Absent: false. */
  tiling?: boolean;
  /** LoRA files merged into the weights for this call only. Absent: none. */
  loras?: NativeLora[];
  /** ControlNet units steering the first pass (UNet models). Absent: none. */
  controlNets?: NativeControlUnit[];
  /** Flow models: the T5 encoder's ids (no end token, no padding) and weights for the prompt and the negative prompt. */
  t5Prompt?: NativeConditioning;
  t5Negative?: NativeConditioning;
  /** SD3: CLIP-G rows of 77 when they differ from prompt / negative (ids given per encoder). Absent: the same rows. */
  clipGPrompt?: NativeConditioning;
  clipGNegative?: NativeConditioning;
  /** Z-Image: the Qwen3 ids (chat template included; the engine adds nothing) and weights for the prompt and the negative prompt. */
  llmPrompt?: NativeConditioning;
  llmNegative?: NativeConditioning;
  /** FLUX.1 Kontext: reference images (sides multiples of 16). Absent: none. */
  referenceImages?: NativeReferenceImage[];
  /** FLUX.1 dev's distilled guidance. Absent: 3.5. */
  guidance?: number;
  /** Flow models: the shift of the discrete schedule and its kin; 0 or absent: the family's. */
  flowShift?: number;
  /** Flow models' skip-layer guidance: its scale (0 or absent: off), the blocks left out, and the part of the schedule it runs in. */
  slgScale?: number;
  skipLayers?: Int32Array;
  slgStart?: number;
  slgEnd?: number;
  /** Step caching; mode '' is off, threshold < 0 the mode's default. Absent: off. */
  cache?: { mode: string; threshold: number; start: number; end: number; decay: number; relative: boolean; reset: boolean };

  /** inpaint: what the masked region's latent starts from: 'original' | 'noise' | 'zeros'. Absent: 'original'. */
  maskedStart?: string;
  /** What decodes the final latent: 'vae' | 'taesd' (needs a TAESD loaded with the model). Absent: 'vae'. */
  vaeDecoder?: string;
  /** txt2img only: the hires fix's second pass. Absent: none. */
  hires?: NativeHires;
  /** The refiner hand-off (not with hires). Absent: none. */
  refiner?: NativeRefiner;
  /** SDXL: the original size the UNet is told, pixels (both or neither); 0 or absent: the generated size. */
  originalWidth?: number;
  originalHeight?: number;
  /** SDXL: the crop's top-left corner the UNet is told, pixels. Absent: 0. */
  cropTop?: number;
  cropLeft?: number;
  /** SDXL: the target size the UNet is told, pixels (both or neither); 0 or absent: the generated size. */
  targetWidth?: number;
  targetHeight?: number;
  /** SDXL refiner: the aesthetic score the prompt's pass is told. Absent: 6. */
  aestheticScore?: number;
  /** SDXL refiner: the aesthetic score the negative prompt's pass is told. Absent: 2.5. */
  negativeAestheticScore?: number;
}

/** The refiner hand-off as the engine takes it: the prompts tokenised with the refiner's pad token. */
export interface NativeRefiner {
  /** An open SDXL-family model other than the one generating. */
  model: NativeModel;
  /** Above 0, at most 1: the generating model runs round(steps × switchAt) of the pass's steps. */
  switchAt: number;
  prompt: NativeConditioning;
  negative: NativeConditioning;
}

/** The hires fix as the engine takes it: every size already resolved, in pixels (multiples of 8). */
export interface NativeHires {
  /** Final size of the image. */
  width: number;
  height: number;
  /** Size the first pass is resized to before its centre is cropped to width × height (>= them). */
  upscaleWidth: number;
  upscaleHeight: number;
  /**
   * 'latent-bilinear' | 'latent-bilinear-antialiased' | 'latent-bicubic' | 'latent-bicubic-antialiased' |
   * 'latent-nearest' | 'latent-nearest-exact' | 'lanczos' | 'esrgan'
   */
  upscaler: string;
  /** With 'esrgan': the upscaler file. */
  upscalerPath?: string;
  /** Steps of the second pass; 0: the request's steps. */
  steps: number;
  /** Above 0, at most 1. */
  denoisingStrength: number;
  /** The second pass's prompts; absent: the request's. */
  prompt?: NativeConditioning;
  negative?: NativeConditioning;
}

export interface NativeProgress {
  /** 1-based step just finished, counted over all of the image's passes. */
  step: number;
  steps: number;
  /** 0: the first pass; 1: the hires fix's second pass. */
  pass: number;
  /** 1-based step within the pass, and the pass's steps. */
  passStep: number;
  passSteps: number;
  /** 0-based index of the image being made. */
  image: number;
  images: number;
  elapsedMs: number;
  /** Present on the steps `previewEvery` asks for. */
  preview?: NativePreview;
}

/** The latent's "Approximate cheap" RGB projection: one pixel per latent cell. */
export interface NativePreview {
  /** Latent width and height: the image's divided by 8. */
  width: number;
  height: number;
  /** RGB bytes, width*height*3. */
  data: Uint8Array;
}

export interface NativeImage {
  width: number;
  height: number;
  /** RGB bytes, width*height*3. */
  data: Uint8Array;
  seed: number;
  subseed: number;
}

/** One prompt through the text encoders (the stage API). */
export interface NativeEncodedText {
  /** [tokens, contextDim] */
  hidden: Float32Array;
  tokens: number;
  /** SDXL's, FLUX.1's and SD3's pooled vector; empty otherwise. */
  pooled: Float32Array;
  /** Chroma's text-token attention mask; absent otherwise. */
  mask?: Float32Array;
  /** ControlNet units steering the UNet passes this text conditions (images at the sampled size). Absent: none. */
  controls?: NativeControlUnit[];
}

/** One prompt's ids for each text encoder (the stage API's encodeText). */
export interface NativeTextRequest {
  /** The CLIP encoders' rows of 77. */
  prompt: NativeConditioning;
  /** SD3's CLIP-G rows when they differ; absent: the same rows. */
  clipG?: NativeConditioning;
  /** Flow models' T5 ids (no end token, no padding). */
  t5?: NativeConditioning;
  /** Z-Image's Qwen3 ids, as NativeRequest's llmPrompt. */
  llm?: NativeConditioning;
  clipSkip: number;
  /** Merged into the text encoders for the call. */
  loras?: NativeLora[];
}

/** Latents in the diffusion model's scale; sizes in latent cells. */
export interface NativeLatent {
  width: number;
  height: number;
  channels: number;
  batch: number;
  /** [batch, channels, height, width] */
  data: Float32Array;
  /** [height, width], 0 keeps, 1 repaints; absent: everywhere. */
  noiseMask?: Float32Array;
}

export interface NativeSampleRequest {
  sampler: string;
  scheduler: string;
  steps: number;
  cfgScale: number;
  seed: number;
  /** 'gpu' | 'cpu' */
  rng: string;
  /** (0, 1] */
  denoise: number;
  startStep: number;
  endStep: number;
  forceFullDenoise: boolean;
  addNoise: boolean;
  previewEvery: number;
  /** FLUX.1 dev's distilled guidance; absent: 3.5. */
  guidance?: number;
  /** Flow models' schedule shift; absent or 0: the family's. */
  flowShift?: number;
  /** Merged into the UNet for this call; absent: none. */
  loras?: NativeLora[];
  /** One or more (combined: the mean of their predictions). */
  positive: NativeEncodedText[];
  /** Absent or empty at cfgScale 1. */
  negative?: NativeEncodedText[];
}

export interface NativeEncodeImageRequest {
  /** RGB bytes, width*height*3 */
  data: Uint8Array;
  width: number;
  height: number;
  tiled: boolean;
  /** Sample the VAE posterior with a generator of kind `rng` seeded with `seed`; false: its mean. */
  sampled: boolean;
  seed: number;
  rng: string;
}

export interface NativeModel {
  readonly info: NativeModelInfo;
  /** Runs off the main thread; rejects with code 'ERR_ABORTED' after `abort()`. */
  generate(request: NativeRequest, onProgress: (progress: NativeProgress) => void): Promise<NativeImage[]>;
  /** The stage API. */
  encodeText(request: NativeTextRequest): Promise<NativeEncodedText>;
  encodeImage(request: NativeEncodeImageRequest): Promise<NativeLatent>;
  sampleLatent(request: NativeSampleRequest, latent: NativeLatent, onProgress?: (progress: NativeProgress) => void): Promise<NativeLatent>;
  decodeLatent(latent: NativeLatent, tiled: boolean): Promise<NativeImage[]>;
  /** Asks the generation started by the latest generate() call to stop within one step (each call has its own flag). */
  abort(): void;
  /** Frees the weights now; later calls reject with 'ERR_MODEL_CLOSED'. */
  close(): void;
}

export interface NativeConvertOptions {
  /** 'auto' (as stored), 'f32', 'f16', 'q8_0', …: as NativeLoadOptions.weightType. */
  weightType: string;
  /** Threads that quantize, >= 1. */
  threads: number;
}

export interface NativeConvertProgress {
  /** Tensors written so far. */
  tensor: number;
  tensors: number;
}

export interface NativeConvertResult {
  /** Size of the written file. */
  bytes: number;
  tensors: number;
  /** Tensors written, by ggml type name. */
  types: Record<string, number>;
  /** Tensors of the input that are not model weights and were left out. */
  skipped: string[];
}

export interface NativeConvertJob {
  /** Rejects with code 'ERR_ABORTED' after `abort()`; the output is then untouched. */
  done: Promise<NativeConvertResult>;
  /** Stops the conversion before its next tensor. */
  abort(): void;
}

export interface NativeSafetyCheckerOptions {
  /** 'auto' | 'cpu' | 'metal' | 'cuda' */
  backend: string;
  /** Worker threads for the CPU backend, >= 1. */
  threads: number;
}

/** What the engine read from a safety checker file. */
export interface NativeSafetyCheckerInfo {
  /** Side of the square input in pixels (224 for ViT-L/14). */
  imageSize: number;
  /** Concept embeddings (17) and special-care embeddings (3). */
  concepts: number;
  specialConcepts: number;
  weightBytes: number;
  backend: string;
}

export interface NativeSafetyVerdict {
  nsfw: boolean;
  specialCare: boolean;
  /** Per concept: cosine similarity less its threshold, plus the special-care adjustment. */
  conceptScores: Float32Array;
  specialScores: Float32Array;
}

export interface NativeSafetyChecker {
  readonly info: NativeSafetyCheckerInfo;
  /**
   * `pixels`: `count` images of planes [3, imageSize, imageSize], normalised as CLIP's image
   * processor does. Runs off the main thread.
   */
  check(pixels: Float32Array, count: number): Promise<NativeSafetyVerdict[]>;
  /** Frees the weights now; later calls reject with 'ERR_CHECKER_CLOSED'. */
  close(): void;
}

export interface NativeUpscalerInfo {
  /** 'rrdbnet' | 'srvggnet' */
  architecture: string;
  scale: number;
  blocks: number;
  features: number;
  weightBytes: number;
  backend: string;
}

export interface NativeUpscaleJob {
  /** RGB bytes at info.scale times the size; rejects with code 'ERR_ABORTED' after `abort()`. */
  done: Promise<Buffer>;
  abort(): void;
}

export interface NativeUpscaler {
  readonly info: NativeUpscalerInfo;
  /** `rgb`: width x height x 3 bytes. Tiles of `tile` pixels overlapping by `overlap`. Runs off the main thread. */
  upscale(
    rgb: Uint8Array, width: number, height: number, options: { tile: number; overlap: number },
    onTile?: (progress: { tile: number; tiles: number }) => void,
  ): NativeUpscaleJob;
  /** Frees the weights now; later calls reject with 'ERR_UPSCALER_CLOSED'. */
  close(): void;
}

export interface NativeAddon {
  systemInfo(): SystemInfo;
  /** Runs off the main thread. Rejects with an Error carrying `code` (ERR_MODEL_FORMAT, …). */
  loadModel(path: string, options: NativeLoadOptions): Promise<NativeModel>;
  /** Writes `output` as GGUF off the main thread, under a temporary name renamed into place at the end. */
  convertModel(
    input: string, output: string, options: NativeConvertOptions, onProgress?: (progress: NativeConvertProgress) => void,
  ): NativeConvertJob;
  /** Runs off the main thread. Absent from addons built before the safety checker existed. */
  loadSafetyChecker?(path: string, options: NativeSafetyCheckerOptions): Promise<NativeSafetyChecker>;
  /** Runs off the main thread. Absent from addons built before the upscalers existed. */
  loadUpscaler?(path: string, options: NativeSafetyCheckerOptions): Promise<NativeUpscaler>;
}
