// The OpenAI Images API's requests and responses, as the official SDKs send and read them.

import { z } from 'zod';

import { formBoolean, formInteger } from '../../http/schema.js';

const size = z.string().meta({
  description: '"WIDTHxHEIGHT" (each 64–2048) or "auto". Sizes over the preset\'s pixel budget are generated within it, '
    + 'keeping the aspect ratio, and scaled to the size asked for when the preset says so',
  examples: ['1024x1024', '512x768', 'auto'],
});
const responseFormat = z.enum(['url', 'b64_json']).meta({ description: 'url: a link to this server that expires (--url-ttl); b64_json: the image inline' });
const outputFormat = z.enum(['png', 'jpeg', 'webp']);
const quality = z.enum(['standard', 'hd', 'low', 'medium', 'high', 'auto'])
  .meta({ description: 'Picks the preset\'s variant of that name (e.g. more steps for hd)' });
const background = z.enum(['auto', 'opaque', 'transparent'])
  .meta({ description: 'transparent is refused: sdnode makes opaque images' });
const model = z.string().meta({
  description: 'A preset name (dall-e-2, dall-e-3, gpt-image-1, or one from --presets: its sampler, steps, checkpoint, refiner, … apply) '
    + 'or a checkpoint name from /v1/models',
});

export const generationSchema = z.strictObject({
  prompt: z.string({ error: (issue) => (issue.input === undefined ? 'prompt is required' : 'prompt must be a string') })
    .min(1, 'prompt must not be empty').meta({ description: 'What to draw' }),
  model: model.optional(),
  n: z.number().int().min(1).max(10).optional().meta({ description: 'Images to make, 1–10 (default 1)' }),
  size: size.optional(),
  quality: quality.optional(),
  style: z.enum(['vivid', 'natural']).optional().meta({ description: 'Picks the preset\'s variant of that name' }),
  response_format: responseFormat.optional(),
  output_format: outputFormat.optional(),
  output_compression: z.number().int().min(0).max(100).optional().meta({ description: 'JPEG / WebP quality, 0–100 (default 100)' }),
  background: background.optional(),
  moderation: z.enum(['low', 'auto']).optional().meta({
    description: 'With a safety checker (--safety-checker): auto (the default) blacks out flagged images, low only flags them (nsfw)',
  }),
  user: z.string().optional(),
  stream: z.boolean().optional().meta({ description: 'Answer with Server-Sent Events: partial images, then each image' }),
  partial_images: z.number().int().min(0).max(3).optional().meta({ description: 'Partial images per image when streaming, 0–3' }),
  seed: z.number().int().min(-1).max(2 ** 32 - 1).optional().meta({ description: 'sdnode extension: seed of the first image; image i uses seed + i' }),
  negative_prompt: z.string().optional().meta({ description: 'sdnode extension: what to steer away from (replaces the preset\'s)' }),
});
export type GenerationRequest = z.output<typeof generationSchema>;

function formFields() {
  return {
    model: model.optional(),
    n: formInteger('n', { min: 1, max: 10 }, 'Images to make, 1–10 (default 1)').optional(),
    size: size.optional(),
    response_format: responseFormat.optional(),
    output_format: outputFormat.optional(),
    output_compression: formInteger('output_compression', { min: 0, max: 100 }, 'JPEG / WebP quality, 0–100').optional(),
    user: z.string().optional(),
  };
}

export const editSchema = z.strictObject({
  ...formFields(),
  prompt: z.string({ error: (issue) => (issue.input === undefined ? 'prompt is required' : 'prompt must be a string') })
    .meta({ description: 'What the edited image should show' }),
  quality: quality.optional(),
  background: background.optional(),
  input_fidelity: z.enum(['low', 'high']).optional().meta({ description: 'Accepted and ignored' }),
  stream: formBoolean('stream', 'Answer with Server-Sent Events').optional(),
  partial_images: formInteger('partial_images', { min: 0, max: 3 }, 'Partial images per image when streaming').optional(),
  seed: formInteger('seed', { min: -1, max: 2 ** 32 - 1 }, 'sdnode extension: seed of the first image').optional(),
});
export type EditRequest = z.output<typeof editSchema>;

export const variationSchema = z.strictObject({
  ...formFields(),
  seed: formInteger('seed', { min: -1, max: 2 ** 32 - 1 }, 'sdnode extension: seed of the first image').optional(),
});
export type VariationRequest = z.output<typeof variationSchema>;

export const imageDataSchema = z.object({
  b64_json: z.string().optional().meta({ description: 'The image, base64-encoded (response_format b64_json)' }),
  url: z.string().optional().meta({ description: 'Where to fetch the image; expires (response_format url)' }),
  revised_prompt: z.string().optional(),
  nsfw: z.boolean().nullable().optional()
    .meta({ description: 'sdnode extension: whether the safety checker flagged the image; null: no checker, not checked (see warning)' }),
});

export const imagesResponseSchema = z.object({
  created: z.number().int().meta({ description: 'Unix time in seconds' }),
  data: z.array(imageDataSchema),
  output_format: outputFormat.optional(),
  size: z.string().optional(),
  quality: z.string().optional(),
  background: z.string().optional(),
  warning: z.string().optional().meta({ description: 'sdnode extension: why nsfw is null' }),
});

export const streamEventSchema = z.object({
  type: z.enum(['image_generation.partial_image', 'image_generation.completed', 'image_edit.partial_image', 'image_edit.completed']),
  b64_json: z.string(),
  created_at: z.number().int(),
  size: z.string(),
  quality: z.string(),
  background: z.string(),
  output_format: outputFormat,
  partial_image_index: z.number().int().optional(),
  nsfw: z.boolean().nullable().optional().meta({ description: 'completed events: as nsfw of a JSON answer\'s image' }),
  warning: z.string().optional().meta({ description: 'completed events: why nsfw is null' }),
}).meta({ description: 'One Server-Sent Event\'s data when stream is true' });

export const modelSchema = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.string(),
  family: z.enum(['flux-schnell', 'flux-dev', 'chroma', 'sd3', 'sd3.5', 'z-image']).optional()
    .meta({ description: 'sdnode: the flow family of a model given as components; absent for other checkpoints and presets' }),
  defaults: z.object({
    steps: z.number().int(), cfgScale: z.number(), size: z.number().int(), sampler: z.string(), scheduler: z.string(), guidance: z.number(),
  }).optional().meta({ description: 'sdnode: with family, what a request that leaves these out gets' }),
  kontext: z.literal(true).optional().meta({
    description: 'sdnode: a FLUX.1 Kontext model: image edits (edits, img2img) send their images as reference images beside the prompt',
  }),
});

export const modelListSchema = z.object({ object: z.literal('list'), data: z.array(modelSchema) });

export const openaiErrorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
});

export const modelIdParams = z.object({ id: z.string().meta({ description: 'A preset or checkpoint name' }) });
export const fileParams = z.object({
  id: z.string().meta({ description: 'Job id' }),
  file: z.string().meta({ description: '<n>.<png|jpeg|webp>' }),
});
export const signedUrlQuery = z.object({
  expires: z.string().meta({ description: 'Unix time after which the link stops working' }),
  signature: z.string(),
});
