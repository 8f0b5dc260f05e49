// AUTOMATIC1111's /sdapi/v1 requests and responses, with its field names and its defaults (the
// API's own: 50 steps, "Euler a" when no sampler is named), so that a client written for it gets
// the same kind of answers.

import { z } from 'zod';

const seed = z.number().int().min(-1).max(2 ** 32 - 1);

/** Fields txt2img and img2img share, with A1111's defaults. */
const common = {
  prompt: z.string().default(''),
  negative_prompt: z.string().default(''),
  styles: z.array(z.string()).default([]).meta({ description: 'Prompt styles; sdnode has none, so any given are reported as ignored' }),
  seed: seed.default(-1).meta({ description: 'Seed of the first image; -1: random. Image i uses seed + i' }),
  subseed: seed.default(-1).meta({ description: 'Variation seed; -1: random' }),
  subseed_strength: z.number().min(0).max(1).default(0).meta({ description: 'How far the noise moves toward the variation seed\'s, 0–1' }),
  seed_resize_from_h: z.number().int().min(-1).max(2048).default(-1),
  seed_resize_from_w: z.number().int().min(-1).max(2048).default(-1),
  sampler_name: z.string().nullable().default(null).meta({ description: 'A1111 sampler name, e.g. "DPM++ 2M Karras" or "Euler a" (default)' }),
  sampler_index: z.string().nullable().default(null).meta({ description: 'Older name of sampler_name' }),
  scheduler: z.string().nullable().default(null).meta({ description: 'Automatic, Uniform, Karras, Exponential, SGM Uniform, Simple or Beta (A1111 1.9+)' }),
  batch_size: z.number().int().min(1).max(16).default(1),
  n_iter: z.number().int().min(1).max(16).default(1),
  steps: z.number().int().min(1).max(150).default(50),
  cfg_scale: z.number().min(0).max(30).default(7),
  distilled_cfg_scale: z.number().min(0).max(30).nullable().default(null)
    .meta({ description: 'FLUX.1 dev\'s distilled guidance, as Forge names it (default 3.5); other models ignore it' }),
  width: z.number().int().min(64).max(2048).default(512),
  height: z.number().int().min(64).max(2048).default(512),
  restore_faces: z.boolean().nullable().default(null),
  tiling: z.boolean().nullable().default(null).meta({ description: 'Seamless tiling: the image repeats without seams' }),
  do_not_save_samples: z.boolean().default(false),
  do_not_save_grid: z.boolean().default(false),
  denoising_strength: z.number().min(0).max(1).nullable().default(null),
  override_settings: z.record(z.string(), z.unknown()).default({})
    .meta({ description: 'sd_model_checkpoint switches the checkpoint for this request; CLIP_stop_at_last_layers sets clip skip' }),
  override_settings_restore_afterwards: z.boolean().default(true),
  send_images: z.boolean().default(true),
  save_images: z.boolean().default(false),
  script_name: z.string().nullable().default(null),
  script_args: z.array(z.unknown()).default([]),
  alwayson_scripts: z.record(z.string(), z.unknown()).default({}),
  refiner_checkpoint: z.string().nullable().default(null).meta({
    description: 'A checkpoint name (as sd_model_checkpoint), usually an SDXL refiner, that takes over the sampling at '
      + 'refiner_switch_at; null or "None": no refiner',
  }),
  refiner_switch_at: z.number().nullable().default(null)
    .meta({ description: 'With refiner_checkpoint: the fraction of the steps before the refiner takes over, above 0 and at most 1 (default 0.8)' }),
  eta: z.number().nullable().default(null),
  force_task_id: z.string().nullable().default(null),
};

export const txt2imgSchema = z.looseObject({
  ...common,
  enable_hr: z.boolean().default(false),
  hr_scale: z.number().min(1).max(4).default(2),
  hr_upscaler: z.string().nullable().default('Latent'),
  hr_second_pass_steps: z.number().int().min(0).max(150).default(0),
  hr_resize_x: z.number().int().min(0).max(2048).default(0),
  hr_resize_y: z.number().int().min(0).max(2048).default(0),
  hr_prompt: z.string().default(''),
  hr_negative_prompt: z.string().default(''),
  hr_checkpoint_name: z.string().nullable().default(null),
  hr_sampler_name: z.string().nullable().default(null),
  firstphase_width: z.number().int().default(0),
  firstphase_height: z.number().int().default(0),
});
export type Txt2ImgRequest = z.output<typeof txt2imgSchema>;

export const img2imgSchema = z.looseObject({
  ...common,
  init_images: z.array(z.string()).min(1, 'init_images needs one base64 image').meta({
    description: 'Base64 images, with or without a data: URL prefix; the first is used (a FLUX.1 Kontext model reads up to 4, '
      + 'as reference images beside the prompt, and makes the first one\'s size unless width and height are given)',
  }),
  resize_mode: z.number().int().min(0).max(3).default(0)
    .meta({ description: '0 just resize, 1 crop and resize, 2 resize and fill, 3 latent upscale (as just resize)' }),
  mask: z.string().nullable().default(null).meta({ description: 'Base64 mask: white repaints, black keeps' }),
  mask_blur: z.number().int().min(0).max(64).nullable().default(null),
  mask_blur_x: z.number().int().min(0).max(64).default(4),
  mask_blur_y: z.number().int().min(0).max(64).default(4),
  inpainting_fill: z.number().int().min(0).max(3).default(0)
    .meta({ description: 'Masked content: 0 fill, 1 original, 2 latent noise, 3 latent nothing' }),
  inpaint_full_res: z.union([z.boolean(), z.number().int().min(0).max(1)]).default(true)
    .meta({ description: 'Inpaint only the masked region at full resolution, then paste it back' }),
  inpaint_full_res_padding: z.number().int().min(0).max(256).default(32),
  inpainting_mask_invert: z.number().int().min(0).max(1).default(0),
  initial_noise_multiplier: z.number().min(0).max(2).nullable().default(null),
  include_init_images: z.boolean().default(false),
  image_cfg_scale: z.number().nullable().default(null),
});
export type Img2ImgRequest = z.output<typeof img2imgSchema>;

export const imagesResponseSchema = z.object({
  images: z.array(z.string()).meta({ description: 'Base64 PNGs' }),
  parameters: z.record(z.string(), z.unknown()).meta({ description: 'The request with its defaults filled in' }),
  info: z.string().meta({
    description: 'A JSON string: prompts, seeds, sizes, infotexts (one A1111 parameters text per image) …, and nsfw: per image, '
      + 'whether the safety checker (--safety-checker) flagged it (null: not checked; sdnode_warnings says why)',
  }),
});

export const progressQuery = z.object({
  skip_current_image: z.enum(['true', 'false']).optional().meta({ description: 'Leave out current_image' }),
});

export const progressSchema = z.object({
  progress: z.number(),
  eta_relative: z.number(),
  state: z.object({
    skipped: z.boolean(),
    interrupted: z.boolean(),
    job: z.string(),
    job_count: z.number().int(),
    job_timestamp: z.string(),
    job_no: z.number().int(),
    sampling_step: z.number().int(),
    sampling_steps: z.number().int(),
  }),
  current_image: z.string().nullable(),
  textinfo: z.string().nullable(),
});

export const optionsSchema = z.record(z.string(), z.unknown());

export const pngInfoSchema = z.object({ image: z.string().meta({ description: 'Base64 PNG (data URL prefix allowed)' }) });
export const pngInfoResponseSchema = z.object({
  info: z.string(),
  items: z.record(z.string(), z.string()),
  parameters: z.record(z.string(), z.unknown()),
});

export const sdModelSchema = z.object({
  title: z.string(),
  model_name: z.string(),
  hash: z.string().nullable(),
  sha256: z.string().nullable(),
  filename: z.string(),
  config: z.string().nullable(),
});

/** One entry of /sdapi/v1/loras, as AUTOMATIC1111's Lora extension lists it. */
export const loraListSchema = z.array(z.object({
  name: z.string(),
  alias: z.string(),
  path: z.string(),
  metadata: z.record(z.string(), z.string()),
}));

/** FastAPI's error bodies: a list of problems for a 422, a message otherwise. */
export const detailSchema = z.object({
  detail: z.union([
    z.string(),
    z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() })),
  ]),
});

/** Fields of AUTOMATIC1111's extras (postprocessing) requests, with its defaults. Face restoration is not offered. */
const extrasCommon = {
  resize_mode: z.union([z.literal(0), z.literal(1)]).default(0)
    .meta({ description: '0: scale by upscaling_resize; 1: to upscaling_resize_w × upscaling_resize_h' }),
  show_extras_results: z.boolean().default(true),
  gfpgan_visibility: z.number().min(0).max(1).default(0).meta({ description: 'Face restoration; sdnode has none, so it must be 0' }),
  codeformer_visibility: z.number().min(0).max(1).default(0).meta({ description: 'Face restoration; sdnode has none, so it must be 0' }),
  codeformer_weight: z.number().min(0).max(1).default(0),
  upscaling_resize: z.number().min(1).max(8).default(2).meta({ description: 'Factor of the input size (resize_mode 0)' }),
  upscaling_resize_w: z.number().int().min(1).max(8192).default(512),
  upscaling_resize_h: z.number().int().min(1).max(8192).default(512),
  upscaling_crop: z.boolean().default(true).meta({ description: 'resize_mode 1: cover the size and crop the centre (else stretch)' }),
  upscaler_1: z.string().default('None').meta({ description: 'An upscaler of /sdapi/v1/upscalers; None leaves the image as it is' }),
  upscaler_2: z.string().default('None'),
  extras_upscaler_2_visibility: z.number().min(0).max(1).default(0).meta({ description: 'Weight of upscaler_2\'s image blended over upscaler_1\'s' }),
  upscale_first: z.boolean().default(false),
};

export const extraSingleImageSchema = z.object({ ...extrasCommon, image: z.string().meta({ description: 'Base64 image (data URL prefix allowed)' }) });
export const extraBatchImagesSchema = z.object({
  ...extrasCommon,
  imageList: z.array(z.object({ data: z.string(), name: z.string().default('') })).min(1).max(64)
    .meta({ description: 'Base64 images (data URL prefix allowed) with their file names' }),
});
export type ExtrasRequest = z.infer<typeof extraSingleImageSchema> | z.infer<typeof extraBatchImagesSchema>;
export const extraSingleImageResponseSchema = z.object({ html_info: z.string(), image: z.string() });
export const extraBatchImagesResponseSchema = z.object({ html_info: z.string(), images: z.array(z.string()) });
export const upscalerListSchema = z.array(z.object({
  name: z.string(), model_name: z.string().nullable(), model_path: z.string().nullable(), model_url: z.string().nullable(), scale: z.number(),
}));
