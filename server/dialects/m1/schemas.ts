// The M1 REST API's requests and responses. Form fields are snake_case text (multipart), parsed
// strictly, so "12abc" is a 400 that names the field rather than a silent 12.

import { z } from 'zod';

import { maskedStarts, samplers, schedulers } from '../../../lib/index.js';
import { formBoolean, formInteger, formNumber } from '../../http/schema.js';
import { maxSeed, refinerSwitchAtRange } from '../../jobs/parameters.js';

/** The three M1 endpoints; each is also the first segment of its jobs' URLs. */
export const m1Kinds = ['text-to-image', 'image-to-image', 'inpaint-image'] as const;
export type M1Kind = (typeof m1Kinds)[number];


function prompt(kind: M1Kind) {
  const required = kind !== 'inpaint-image';
  const schema = z.string({
    error: (issue) => (issue.input === undefined
      ? `prompt is required for /${kind}, e.g. curl -F prompt="a photo of a cat"`
      : 'prompt must be text'),
  }).meta({ description: `What to draw, with AUTOMATIC1111 emphasis syntax${required ? '' : ' (optional for inpainting)'}` });
  return required ? schema : schema.optional();
}

function commonFields(kind: M1Kind) {
  return {
    prompt: prompt(kind),
    negative_prompt: z.string().optional().meta({ description: 'What to steer away from' }),
    iterations: formInteger('iterations', { min: 1, max: 16 }, 'Images to make (default 1)').optional(),
    steps: formInteger('steps', { min: 1, max: 150 }, 'Sampling steps (default 20)').optional(),
    seed: formInteger('seed', { min: -1, max: maxSeed }, 'Seed of the first image; image i uses seed + i. -1 or absent: random').optional(),
    width: formInteger('width', { min: 64, max: 2048 }, 'Width in pixels, a multiple of 8 (default 512, 768 for SD 2.x v-models, 1024 for SDXL)').optional(),
    height: formInteger('height', { min: 64, max: 2048 }, 'Height in pixels, a multiple of 8').optional(),
    cfg_scale: formNumber('cfg_scale', { min: 0, max: 30 }, 'Guidance scale; 1 disables guidance (default 7; FLUX.1: 1)').optional(),
    guidance: formNumber('guidance', { min: 0, max: 30 },
      'FLUX.1 dev\'s distilled guidance, 0–30 (default 3.5; sdnode extension); other models ignore it').optional(),
    sampler: z.string().optional().meta({ description: `Sampler: ${samplers().join(', ')}, or an AUTOMATIC1111 name such as "DPM++ 2M Karras"` }),
    scheduler: z.string().optional().meta({ description: `Noise schedule: ${schedulers().join(', ')}` }),
    vae_tiling: formBoolean('vae_tiling', 'Run the VAE in 512-pixel tiles: less memory for large images').optional(),
    model: z.string().optional().meta({ description: 'Checkpoint name from GET /models (sdnode extension); default: the server\'s default model' }),
    refiner_checkpoint: z.string().optional().meta({
      description: 'A checkpoint name from GET /models, usually an SDXL refiner, that takes over the sampling at refiner_switch_at '
        + '(sdnode extension); absent or "none": no refiner',
    }),
    refiner_switch_at: formNumber('refiner_switch_at', refinerSwitchAtRange,
      'With refiner_checkpoint: the fraction of the steps before the refiner takes over, above 0 and at most 1 (default 0.8)').optional(),
  };
}

const strength = formNumber('strength', { min: 0, max: 1 }, 'How much to change the image: 0 keeps it, 1 replaces it (default 0.75)').optional();

export const m1FormSchemas = {
  'text-to-image': z.strictObject(commonFields('text-to-image')),
  'image-to-image': z.strictObject({ ...commonFields('image-to-image'), strength }),
  'inpaint-image': z.strictObject({
    ...commonFields('inpaint-image'),
    strength,
    mask_blur: formInteger('mask_blur', { min: 0, max: 64 }, 'Blur the mask edge by this many pixels (default 4)').optional(),
    masked_start: z.enum(maskedStarts, {
      error: (issue) => `masked_start must be one of ${maskedStarts.join(', ')}, got ${JSON.stringify(issue.input)}`,
    }).optional().meta({
      description: 'What the masked area starts from: original (the image, default), noise (AUTOMATIC1111\'s "latent noise") or zeros ("latent nothing")',
    }),
  }),
} as const;

export type M1Form = z.output<(typeof m1FormSchemas)['inpaint-image']>;

/** File fields each endpoint takes; all of them are required. */
export const m1UploadSlots: Readonly<Record<M1Kind, readonly ('image' | 'mask')[]>> = {
  'text-to-image': [],
  'image-to-image': ['image'],
  'inpaint-image': ['image', 'mask'],
};

const progressSchema = z.object({
  currentImageIndex: z.number().int().meta({ description: '0-based index of the image being made' }),
  currentImageProgress: z.number().meta({ description: '0–1 within the current image' }),
  totalImages: z.number().int(),
});

const errorBody = z.object({ code: z.string(), message: z.string() });

export const m1StatusSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('QUEUED'), resultUrl: z.string() }),
  z.object({
    status: z.literal('IN_PROGRESS'),
    resultUrl: z.string(),
    progress: progressSchema,
    imageUrls: z.array(z.string()),
    previewUrl: z.string().optional().meta({ description: 'A small PNG of the image being made (sdnode extension)' }),
  }),
  z.object({ status: z.literal('COMPLETE'), resultUrl: z.string(), imageUrls: z.array(z.string()) }),
  z.object({ status: z.literal('FAILED'), resultUrl: z.string(), error: errorBody, imageUrls: z.array(z.string()) }),
]);

export type M1Status = z.output<typeof m1StatusSchema>;

export const m1ErrorSchema = z.object({ error: errorBody });

export const jobIdParams = z.object({ id: z.string().meta({ description: 'The job id from the resultUrl' }) });
export const imageParams = z.object({
  id: z.string().meta({ description: 'The job id from the resultUrl' }),
  file: z.string().meta({ description: '<n>.png, numbered from 1, or preview.png while the job runs' }),
});
