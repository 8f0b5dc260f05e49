// stable-diffusion.cpp's sd-server native API (/sdcpp/v1): the img_gen request with its field
// names and nesting, and the job object it answers. Fields sdnode has no use for (ControlNet,
// IP-Adapter, SLG) are accepted and ignored, as sd-server ignores what a model lacks.

import { z } from 'zod';

const image = z.string().nullable().optional().meta({ description: 'Base64 image data or a data: URL' });

export const imgGenSchema = z.object({
  prompt: z.string({ error: (issue) => (issue.input === undefined ? 'prompt is required' : 'prompt must be a string') }),
  negative_prompt: z.string().optional(),
  clip_skip: z.number().int().min(-1).max(12).optional().meta({ description: 'CLIP skip; -1 or 0: the model\'s default' }),
  width: z.number().int().min(64).max(4096).multipleOf(8).optional(),
  height: z.number().int().min(64).max(4096).multipleOf(8).optional(),
  strength: z.number().min(0).max(1).optional().meta({ description: 'How much init_image changes, 0–1 (default 0.75)' }),
  seed: z.number().int().min(-1).max(2 ** 53).optional().meta({ description: '-1: random; reduced modulo 2^32' }),
  batch_count: z.number().int().min(1).max(16).optional(),
  init_image: image,
  mask_image: image,
  sample_params: z.object({
    scheduler: z.string().optional(),
    sample_method: z.string().optional(),
    sample_steps: z.number().int().min(1).max(150).optional(),
    flow_shift: z.number().min(0).max(100).nullable().optional(),
    guidance: z.object({
      txt_cfg: z.number().min(0).max(30).optional(),
      distilled_guidance: z.number().min(0).max(30).optional(),
    }).optional(),
  }).optional(),
  lora: z.array(z.object({
    path: z.string().min(1).meta({ description: 'File under the LoRA folder, with its extension' }),
    multiplier: z.number().min(-10).max(10).default(1),
  })).optional(),
  hires: z.object({
    enabled: z.boolean().default(false),
    upscaler: z.string().optional(),
    scale: z.number().min(1).max(4).optional(),
    target_width: z.number().int().min(0).max(4096).optional(),
    target_height: z.number().int().min(0).max(4096).optional(),
    steps: z.number().int().min(0).max(150).optional(),
    denoising_strength: z.number().min(0).max(1).optional(),
  }).optional(),
  vae_tiling_params: z.object({ enabled: z.boolean().default(false) }).optional(),
  cache_mode: z.string().max(64).optional().meta({ description: 'Step caching: easycache (FLUX.1, SD3), ucache (SD 1.x, 2.x, SDXL), or disabled' }),
  cache_option: z.string().max(1024).optional().meta({ description: 'Its settings, "threshold=0.25,start=0.15,end=0.95" (ucache also decay, relative, reset)' }),
  output_format: z.enum(['png']).optional().meta({ description: 'png (the only format sdnode writes)' }),
});
export type ImgGenRequest = z.output<typeof imgGenSchema>;

export const jobStatuses = ['queued', 'generating', 'completed', 'failed', 'cancelled'] as const;

export const jobSchema = z.object({
  id: z.string(),
  kind: z.literal('img_gen'),
  status: z.enum(jobStatuses),
  created: z.number().int(),
  started: z.number().int().nullable(),
  completed: z.number().int().nullable(),
  queue_position: z.number().int(),
  result: z.object({ output_format: z.literal('png'), images: z.array(z.object({ index: z.number().int(), b64_json: z.string() })) }).nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type SdcppJob = z.output<typeof jobSchema>;

export const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
