// The models `sdnode pull <name>` knows by a short name: data, nothing else. Each file is a file of
// a Hugging Face repository at a revision. `bytes` and `sha256` are given only where a published
// source states them; without them the download is checked against the hub's own checksum header
// (x-linked-etag, the file's sha256) and its announced size.

/** One file of a catalogue model, on the Hugging Face hub. */
export interface CatalogueFile {
  /** Repository, `owner/name`. */
  repo: string;
  /** Path of the file inside the repository. */
  file: string;
  /** Branch, tag or commit; 'main' when not pinned. */
  revision: string;
  /** Size in bytes, where published. */
  bytes?: number;
  /** sha256 of the file (64 hex digits), where published. */
  sha256?: string;
}

/**
 * How a model's card says to run it, where that is not what its family's defaults and the weights
 * tell: SD-Turbo is an SD 2.x model that predicts noise (the engine takes SD 2.x for v-prediction)
 * and makes its image in one step at cfg 1. A model pulled by its catalogue name is loaded with its
 * card: the prediction unless the load options name one, the rest as the defaults of every call.
 */
export interface ModelCard {
  /** What the network predicts, when the family's usual guess is wrong for it. */
  prediction?: 'eps' | 'v';
  /** Width and height in pixels. */
  size?: number;
  steps?: number;
  cfgScale?: number;
  sampler?: string;
  scheduler?: string;
}

/** A model of the catalogue: one checkpoint file, or a set of component files. */
export interface CatalogueEntry {
  /** What it is, in a few words. */
  description: string;
  /** The licence as the repository names it. */
  licence: string;
  /** Model family, as `ModelInfo.family` names it ('sd1', 'sd2', 'sdxl', 'flux-schnell', …). */
  family: string;
  /** Whether the licence must be accepted on the repository's page before the hub serves the files (then HF_TOKEN is needed). */
  gated: boolean;
  /** A single-file checkpoint. */
  file?: CatalogueFile;
  /** The model card's settings (see ModelCard), from the repository's model card and scheduler config. */
  card?: ModelCard;
  /** Component files by their load key (diffusionModel, clipL, t5xxl, llm, vae) and t5Tokenizer. */
  components?: Partial<Record<'diffusionModel' | 'clipL' | 'clipG' | 't5xxl' | 'llm' | 'vae' | 't5Tokenizer', CatalogueFile>>;
}

/** The catalogue's default model: small, fast, and served by the hub without a licence to accept. */
export const defaultCatalogueModel = 'sd-turbo';

const main = 'main';

/** Models by short name. */
export const catalogue: Readonly<Record<string, CatalogueEntry>> = {
  'sd-turbo': {
    description: 'SD-Turbo (SD 2.1 distilled): 512×512 in 1–4 steps at cfg 1',
    licence: 'Stability AI Community License (stability.ai/license)',
    family: 'sd2',
    gated: false,
    // The repository's scheduler config: prediction_type "epsilon"; its card: 512×512, one step, guidance off.
    card: { prediction: 'eps', size: 512, steps: 1, cfgScale: 1 },
    file: { repo: 'stabilityai/sd-turbo', file: 'sd_turbo.safetensors', revision: main },
  },
  'sdxl-turbo': {
    description: 'SDXL-Turbo: 512×512 in 1–4 steps at cfg 1',
    licence: 'Stability AI Community License (stability.ai/license)',
    family: 'sdxl',
    gated: false,
    // Its card: 512×512, one step, guidance off (the SDXL default of 1024² is not what it was distilled for).
    card: { size: 512, steps: 1, cfgScale: 1 },
    file: { repo: 'stabilityai/sdxl-turbo', file: 'sd_xl_turbo_1.0_fp16.safetensors', revision: main },
  },
  sd15: {
    description: 'Stable Diffusion 1.5 (pruned, EMA weights): 512×512, 20 steps',
    licence: 'CreativeML OpenRAIL-M',
    family: 'sd1',
    gated: false,
    file: { repo: 'stable-diffusion-v1-5/stable-diffusion-v1-5', file: 'v1-5-pruned-emaonly.safetensors', revision: main },
  },
  'flux-schnell-q4': {
    description: 'FLUX.1 schnell, transformer in GGUF Q4_K_S, T5-XXL in fp8: 1024×1024 in 4 steps',
    licence: 'Apache-2.0 (FLUX.1 schnell); T5 Apache-2.0; CLIP-L MIT',
    family: 'flux-schnell',
    gated: false,
    components: {
      diffusionModel: { repo: 'city96/FLUX.1-schnell-gguf', file: 'flux1-schnell-Q4_K_S.gguf', revision: main },
      clipL: { repo: 'comfyanonymous/flux_text_encoders', file: 'clip_l.safetensors', revision: main },
      t5xxl: { repo: 'comfyanonymous/flux_text_encoders', file: 't5xxl_fp8_e4m3fn.safetensors', revision: main },
      vae: { repo: 'black-forest-labs/FLUX.1-schnell', file: 'ae.safetensors', revision: main },
      t5Tokenizer: { repo: 'black-forest-labs/FLUX.1-schnell', file: 'tokenizer_2/spiece.model', revision: main },
    },
  },
  'z-image-turbo': {
    description: 'Z-Image Turbo (bf16) with its Qwen3-4B text encoder: 1024×1024 in 8 steps at cfg 1',
    licence: 'Apache-2.0 (Z-Image Turbo); Qwen3 Apache-2.0; FLUX.1 schnell VAE Apache-2.0',
    family: 'z-image',
    gated: false,
    // Comfy-Org's repackaging, the files stable-diffusion.cpp's and ComfyUI's instructions name.
    components: {
      diffusionModel: { repo: 'Comfy-Org/z_image_turbo', file: 'split_files/diffusion_models/z_image_turbo_bf16.safetensors', revision: main },
      llm: { repo: 'Comfy-Org/z_image_turbo', file: 'split_files/text_encoders/qwen_3_4b.safetensors', revision: main },
      vae: { repo: 'Comfy-Org/z_image_turbo', file: 'split_files/vae/ae.safetensors', revision: main },
    },
  },
};
