// The card a pulled model was downloaded under. `sdnode pull <catalogue name>` records the name in
// the model's source record (`<file>.source.json`, or `source.json` in a component model's
// folder); the catalogue holds what that model's card says to run it with (ModelCard). Read on
// every load, so a card corrected in a later release applies to models pulled before it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { catalogue, type ModelCard } from './catalogue.js';
import { sidecarOf, sourceFile } from './pull.js';

/**
 * The card of the model whose checkpoint (or, for a component model, diffusion model) is `file`,
 * when it was pulled by a catalogue name that has one; undefined for any other file, and for a
 * source record that is missing or unreadable (the model then loads as its family's).
 */
export async function modelCardOf(file: string, components: boolean): Promise<ModelCard | undefined> {
  const records = components ? [sidecarOf(file), path.join(path.dirname(file), sourceFile)] : [sidecarOf(file)];
  for (const record of records) {
    let reference: unknown;
    try {
      reference = (JSON.parse(await readFile(record, 'utf8')) as { reference?: unknown }).reference;
    } catch {
      continue;
    }
    if (typeof reference === 'string' && Object.hasOwn(catalogue, reference)) return catalogue[reference]!.card;
  }
  return undefined;
}
