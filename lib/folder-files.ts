// The files of a model folder (LoRAs, embeddings, ControlNets): what its subfolders hold too, by
// extension, in any case.
import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Absolute paths of the files under `dir` ending in one of `extensions` (lower case), sorted; [] when the folder does not exist. */
export async function filesUnder(dir: string, extensions: readonly string[]): Promise<string[]> {
  const root = path.resolve(dir);
  let entries: string[];
  try {
    entries = await readdir(root, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((entry) => extensions.some((ext) => entry.toLowerCase().endsWith(ext)))
    .map((entry) => path.join(root, entry))
    .sort();
}
