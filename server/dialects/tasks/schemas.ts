// The task API's parameters, the same in JSON bodies and query strings (so numbers may arrive as
// text), and its events.

import { z } from 'zod';

import { rangeKeywords } from '../../http/schema.js';
import { refinerSwitchAtRange } from '../../jobs/parameters.js';
import { parseDecimal, parseInteger, type NumberRange } from '../../parse.js';

function checkedNumber(name: string, range: NumberRange, integer: boolean, description: string) {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    try {
      const text = String(value);
      return integer ? parseInteger(name, text, range) : parseDecimal(name, text, range);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
      return z.NEVER;
    }
  }).meta({ type: integer ? 'integer' : 'number', ...rangeKeywords(range), description });
}

const booleanText = (description: string) => z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
  .transform((value) => value === true || value === 'true' || value === '1').meta({ type: 'boolean', description });

export const taskTypes = ['txt2img', 'img2img', 'inpaint'] as const;
export type TaskType = (typeof taskTypes)[number];

const parameterFields = {
  prompt: z.string({ error: (issue) => (issue.input === undefined ? 'Field required' : 'prompt must be text') })
    .min(1, 'prompt must not be empty').meta({ description: 'What to draw' }),
  negative_prompt: z.string().optional(),
  model: z.string().optional().meta({ description: 'A checkpoint name from GET /models; default the server\'s' }),
  steps: checkedNumber('steps', { min: 1, max: 150 }, true, 'Sampling steps (default 20; flow models their family\'s, e.g. 4 for FLUX.1 schnell)').optional(),
  guidance: checkedNumber('guidance', { min: 1, max: 30 }, false,
    'Guidance scale (CFG), ≥ 1; 1 disables guidance and the negative prompt (default 7.5; flow models their family\'s: 1 for FLUX.1)').optional(),
  distilled_guidance: checkedNumber('distilled_guidance', { min: 0, max: 30 }, false,
    'FLUX.1 dev\'s distilled guidance, which it runs in one pass (Forge\'s "Distilled CFG Scale"; default 3.5); other models ignore it').optional(),
  scheduler: z.string().optional().meta({ description: 'plms, ddim, k-lms, or any sdnode sampler name (default euler_a; flow models euler)' }),
  seed: checkedNumber('seed', { min: 0, max: 2 ** 32 - 1 }, true, 'Seed (default random; reported back)').optional(),
  safety_filter: booleanText('Check each image with the safety checker (--safety-checker) and black out flagged ones '
    + '(default true; without a checker the answer says it was not applied)').optional(),
  width: checkedNumber('width', { min: 64, max: 2048 }, true, 'Width, a multiple of 8 (16 for flow models; txt2img; default 512, flow models 1024)').optional(),
  height: checkedNumber('height', { min: 64, max: 2048 }, true, 'Height, a multiple of 8 (16 for flow models; txt2img; default 512, flow models 1024)').optional(),
  initial_image: z.string().optional().meta({
    description: 'img2img / inpaint: a blob id or the URL of a blob on this server (a FLUX.1 Kontext model\'s img2img reads it as a '
      + 'reference image beside the prompt, without strength, and makes its size unless width and height are given)',
  }),
  strength: checkedNumber('strength', { min: 0, max: 1 }, false, 'img2img: how much to change the image (default 0.8)').optional(),
  mask: z.string().optional().meta({ description: 'inpaint: a blob id or blob URL; white repaints, black keeps' }),
  refiner_model: z.string().optional().meta({
    description: 'A checkpoint name from GET /models, usually an SDXL refiner, that takes over the sampling at refiner_switch_at; '
      + 'absent or "none": no refiner',
  }),
  refiner_switch_at: checkedNumber('refiner_switch_at', refinerSwitchAtRange, false,
    'With refiner_model: the fraction of the steps before the refiner takes over, above 0 and at most 1 (default 0.8)').optional(),
};

export const parametersSchema = z.strictObject(parameterFields);
export type TaskParameters = z.output<typeof parametersSchema>;

export const taskSchema = z.strictObject({
  ...parameterFields,
  task_type: z.enum(taskTypes).meta({ description: 'txt2img, img2img or inpaint' }),
});

export const taskIdParams = z.object({ task_id: z.string() });
export const blobIdParams = z.object({ blob_id: z.string() });
export const tokenQuery = z.object({ token: z.string().optional().meta({ description: 'A token, instead of the Authorization header' }) });

export const eventSchema = z.object({
  event_type: z.enum(['pending', 'started', 'progress', 'finished', 'aborted']),
  task_id: z.string(),
  timestamp: z.string().meta({ description: 'ISO 8601' }),
  step: z.number().int().optional(),
  steps: z.number().int().optional(),
  preview_blob_url: z.string().optional(),
  blob_url: z.string().optional(),
  blob_urls: z.array(z.string()).optional(),
  parameters_used: z.record(z.string(), z.unknown()).optional(),
  nsfw: z.array(z.boolean().nullable()).optional()
    .meta({ description: 'finished, with safety_filter: per image (as blob_urls), whether the checker flagged it (its blob is black); null: not checked' }),
  warnings: z.array(z.string()).optional(),
  reason: z.string().optional(),
});
export type TaskEvent = z.output<typeof eventSchema>;

export const userSchema = z.strictObject({
  username: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'username: 1–64 letters, digits, _ . -'),
  password: z.string().min(8, 'password must have at least 8 characters').max(1024),
});

export const passwordFormSchema = z.looseObject({
  username: z.string(),
  password: z.string(),
  grant_type: z.string().optional(),
});

export const tokenResponseSchema = z.object({ access_token: z.string(), token_type: z.literal('bearer') });
export const blobResponseSchema = z.object({ blob_id: z.string(), blob_url: z.string() });
export const modelsResponseSchema = z.array(z.object({ id: z.string(), name: z.string(), description: z.string(), author: z.string() }));
