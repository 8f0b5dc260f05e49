// POST /generate: a JSON request; the answer is a PNG (a grid for several images) or JSON.
// Fields sdnode does not know are ignored, as the pydantic models of such servers ignore them.

import { z } from 'zod';

/** Seeds as large as 2^53 are taken and reduced modulo 2^32 (the generator's range). */
export const maxRequestSeed = 2 ** 53;

export const generateSchema = z.object({
  prompt: z.string({ error: (issue) => (issue.input === undefined ? 'prompt is required' : 'prompt must be a string') })
    .meta({ description: 'What to draw', examples: ['a photo of a cat'] }),
  width: z.number().int().min(64).max(2048).multipleOf(8).optional().meta({ description: 'Width in pixels, a multiple of 8 (default 512)', examples: [512] }),
  height: z.number().int().min(64).max(2048).multipleOf(8).optional().meta({ description: 'Height in pixels, a multiple of 8 (default 512)', examples: [512] }),
  cfg_scale: z.number().min(0).max(30).optional().meta({ description: 'Classifier-free guidance scale, 0–30 (default 7)', examples: [7] }),
  guidance: z.number().min(0).max(30).optional()
    .meta({ description: 'FLUX.1 dev\'s distilled guidance, 0–30 (default 3.5); other models ignore it', examples: [3.5] }),
  steps: z.number().int().min(1).max(150).optional().meta({ description: 'Sampling steps, 1–150 (default 20)', examples: [20] }),
  number_of_images: z.number().int().min(1).max(16).optional()
    .meta({ description: 'Images to make, 1–16 (default 1); several come back as one PNG grid', examples: [1] }),
  seed: z.number().refine(Number.isInteger, 'seed must be an integer').min(-1).max(maxRequestSeed).optional().meta({
    description: 'Seed of the first image, -1 to 2^53; -1 or absent: a random one. Reduced modulo 2^32; the seeds used '
      + 'are reported (X-Seeds, or each image\'s seed)',
    examples: [-1],
  }),
});
export type GenerateRequest = z.output<typeof generateSchema>;

export const generateResponseSchema = z.object({
  images: z.array(z.object({
    base64: z.string().meta({ description: 'The PNG, base64-encoded' }),
    seed: z.number().int().meta({ description: 'The seed it was made with (after the reduction modulo 2^32)' }),
  })),
});
