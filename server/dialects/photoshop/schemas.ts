// The Photoshop plug-in's requests and responses: form fields (application/x-www-form-urlencoded,
// as the plug-in sends them; JSON bodies are read as the same fields), images as base64 text.
// Fields the plug-in sends that sdnode does not know are ignored.

import { z } from 'zod';

import { formInteger, formNumber } from '../../http/schema.js';

const required = (name: string, what: string) => (issue: { input: unknown }) =>
  (issue.input === undefined ? `${name} is required: ${what}` : `${name} must be ${what}`);

const base64Image = (name: string, description: string) => z.string({ error: required(name, 'a base64-encoded PNG, JPEG or WebP image') })
  .meta({ description: `${description}; base64, with or without a data: URL prefix`, contentEncoding: 'base64' });

function commonFields() {
  return {
    prompt: z.string({ error: required('prompt', 'text') }).meta({ description: 'What to draw', examples: ['a photo of a cat'] }),
    seed: formInteger('seed', { min: -1, max: 2 ** 32 - 1 }, 'Seed of the first image; image i uses seed + i. -1 or absent: a random one (reported)')
      .optional(),
    num_outputs: formInteger('num_outputs', { min: 1, max: 10 }, 'Images to make, 1–10 (default 1)').optional(),
    num_inference_steps: formInteger('num_inference_steps', { min: 1, max: 150 }, 'Sampling steps, 1–150 (default 20)').optional(),
    guidance_scale: formNumber('guidance_scale', { min: 0, max: 30 }, 'Classifier-free guidance scale, 0–30 (default 7; flow models their family\'s: 1 for FLUX.1)').optional(),
  };
}

export const txt2imgSchema = z.object({
  ...commonFields(),
  width: formInteger('width', { min: 64, max: 2048 }, 'Width in pixels, a multiple of 8 (default 512)').optional(),
  height: formInteger('height', { min: 64, max: 2048 }, 'Height in pixels, a multiple of 8 (default 512)').optional(),
});
export type Txt2ImgRequest = z.output<typeof txt2imgSchema>;

export const img2imgSchema = z.object({
  ...commonFields(),
  init_image: base64Image('init_image', 'The image to start from; the result has its size'),
  strength: formNumber('strength', { min: 0, max: 1 }, 'How much to change it: 0 keeps it, 1 replaces it (default 0.8)').optional(),
});
export type Img2ImgRequest = z.output<typeof img2imgSchema>;

export const maskingSchema = z.object({
  ...commonFields(),
  init_image: base64Image('init_image', 'The image to repaint; the result has its size'),
  mask_image: base64Image('mask_image', 'Of the same size as init_image: white pixels are replaced, black ones kept'),
  strength: formNumber('strength', { min: 0, max: 1 }, 'How much to change the masked pixels (default 1)').optional(),
});
export type MaskingRequest = z.output<typeof maskingSchema>;

export const imagesResponseSchema = z.object({
  status: z.literal('success'),
  images: z.array(z.object({
    base64: z.string().meta({ description: 'The PNG, base64-encoded' }),
    seed: z.number().int(),
    mimetype: z.literal('image/png'),
    nsfw: z.boolean().nullable().meta({
      description: 'Whether the safety checker flagged the image (it is then black); null when the server has no '
        + 'safety checker (--safety-checker): not checked',
    }),
  })),
  warning: z.string().optional().meta({ description: 'Present when nsfw is null: why the images were not checked' }),
});

export const pingSchema = z.object({ status: z.literal('success') });

export const failureSchema = z.object({ status: z.literal('failure'), message: z.string() });
