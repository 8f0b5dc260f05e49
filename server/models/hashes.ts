// SHA-256 of checkpoint files, as AUTOMATIC1111 shows them ("v1-5.safetensors [6ce0161689]": the
// first ten hex digits). Hashing a 2 GB file takes seconds, so each is computed once per file
// version (path, size, modification time), in the background of the request that first needs it.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

export class FileHashes {
  readonly #known = new Map<string, Promise<string>>();

  /** The file's SHA-256 in hex. */
  async sha256(file: string): Promise<string> {
    const { size, mtimeMs } = await stat(file);
    const key = `${file}\n${size}\n${mtimeMs}`;
    let hash = this.#known.get(key);
    if (!hash) {
      hash = digest(file);
      this.#known.set(key, hash);
      hash.catch(() => this.#known.delete(key));
    }
    return hash;
  }

  /** AUTOMATIC1111's short hash: the first ten hex digits. */
  async shortHash(file: string): Promise<string> {
    return (await this.sha256(file)).slice(0, 10);
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
