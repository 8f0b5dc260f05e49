// SHA-256 of checkpoint files, as AUTOMATIC1111 shows them ("v1-5.safetensors [6ce0161689]": the
// first ten hex digits). Hashing a 2 GB file takes seconds, so each is computed once per file
// version (path, size, modification time), in the background of the request that first needs it.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';

import type { ModelEntry } from './registry.js';

export class FileHashes {
  // One hash per file, of its latest version: an edited file's old hash is dropped.
  readonly #known = new Map<string, { version: string; hash: Promise<string> }>();

  /** The file's SHA-256 in hex; concurrent calls for one version of a file share one pass over it. */
  async sha256(file: string): Promise<string> {
    const { size, mtimeMs } = await stat(file);
    const version = `${size}\n${mtimeMs}`;
    const known = this.#known.get(file);
    if (known?.version === version) return known.hash;
    const hash = digest(file);
    this.#known.set(file, { version, hash });
    hash.catch(() => {
      if (this.#known.get(file)?.hash === hash) this.#known.delete(file);
    });
    return hash;
  }

  /**
   * A model's SHA-256: the one its entry carries (a worker's), else its file's when the entry names
   * a file of this machine (an absolute path), else undefined. Never throws.
   */
  async ofEntry(entry: ModelEntry): Promise<string | undefined> {
    if (entry.sha256 !== undefined) return entry.sha256;
    if (!path.isAbsolute(entry.path)) return undefined;
    return this.sha256(entry.path).catch(() => undefined);
  }
}

function digest(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
