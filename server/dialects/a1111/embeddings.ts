// /sdapi/v1/embeddings: the embeddings folder as AUTOMATIC1111 lists it for the current model,
// those it takes under `loaded` and the others under `skipped` (with sdnode's reason added).

import path from 'node:path';

import { z } from 'zod';

import { loadEmbeddings } from '../../../lib/index.js';
import type { ModelEntry } from '../../models/registry.js';
import { modelTraitsOf } from '../model-family.js';

const embeddingSchema = z.object({
  step: z.null(),
  sd_checkpoint: z.null(),
  sd_checkpoint_name: z.null(),
  /** Width of a vector (the first text encoder's for SDXL files); null where the file could not be read. */
  shape: z.number().nullable(),
  vectors: z.number().nullable(),
  /** The file inside the embeddings folder (sdnode's addition). */
  filename: z.string(),
  /** Why a skipped embedding is not used (sdnode's addition). */
  reason: z.string().optional(),
});

export const embeddingListSchema = z.object({
  loaded: z.record(z.string(), embeddingSchema),
  skipped: z.record(z.string(), embeddingSchema),
});

export async function embeddingList(dir: string | undefined, model: ModelEntry | undefined): Promise<z.infer<typeof embeddingListSchema>> {
  const answer: z.infer<typeof embeddingListSchema> = { loaded: {}, skipped: {} };
  if (dir === undefined) return answer;
  const traits = model === undefined ? undefined : await modelTraitsOf(model);
  // No model to check the files against: listed as skipped, the reason saying so.
  const set = await loadEmbeddings(dir, traits ?? { family: 'none', contextDim: 0 }, { warn: traits !== undefined });
  const common = { step: null, sd_checkpoint: null, sd_checkpoint_name: null };
  for (const embedding of set.loaded) {
    answer.loaded[embedding.name] = {
      ...common, shape: embedding.first.length / embedding.vectors, vectors: embedding.vectors, filename: path.relative(dir, embedding.path),
    };
  }
  for (const skipped of set.skipped) {
    answer.skipped[skipped.name] = {
      ...common, shape: skipped.shape ?? null, vectors: skipped.vectors ?? null, filename: path.relative(dir, skipped.path),
      reason: traits === undefined ? 'no model to check it against: give --model or --models' : skipped.reason,
    };
  }
  return answer;
}
