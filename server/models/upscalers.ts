// The server's ESRGAN-family upscalers: the files of the upscaler folder by name, and a queue that
// runs one upscale at a time with the last used upscaler kept loaded. Upscales run on the addon's
// worker threads, never on the event loop; a request that goes away aborts its own.

import { readdir } from 'node:fs/promises';
import path from 'node:path';

import { loadUpscaler, type LoadOptions, type Upscaler } from '../../lib/index.js';

export interface UpscalerEntry {
  /** The path inside the folder without the extension, '/' between folders. */
  name: string;
  path: string;
}

const extensions = ['.safetensors', '.gguf'];

export class UnknownUpscalerError extends Error {
  constructor(readonly requested: string, readonly available: readonly string[]) {
    super(`Unknown upscaler ${JSON.stringify(requested)}; available: ${available.length > 0 ? available.join(', ') : 'none'}`);
  }
}

export class UpscalerCatalog {
  readonly #dir: string | undefined;
  readonly #load: Pick<LoadOptions, 'backend' | 'threads'>;
  #loaded: { path: string; upscaler: Upscaler } | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string | undefined, load: Pick<LoadOptions, 'backend' | 'threads'> = {}) {
    this.#dir = dir;
    this.#load = load;
  }

  /** The upscaler files, by name. Reads the folder; loads nothing. */
  async list(): Promise<UpscalerEntry[]> {
    if (this.#dir === undefined) return [];
    let entries: string[];
    try {
      entries = await readdir(this.#dir, { recursive: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return entries
      .filter((entry) => extensions.some((ext) => entry.toLowerCase().endsWith(ext)))
      .map((entry) => ({ name: entry.slice(0, -path.extname(entry).length).split(path.sep).join('/'), path: path.join(this.#dir!, entry) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The entry named `name` (or whose file name is `name`); UnknownUpscalerError listing the names otherwise. */
  async resolve(name: string): Promise<UpscalerEntry> {
    const entries = await this.list();
    const found = entries.find((entry) => entry.name === name) ?? entries.find((entry) => path.basename(entry.path) === name);
    if (!found) throw new UnknownUpscalerError(name, entries.map((entry) => entry.name));
    return found;
  }

  /** Runs `work` with the upscaler of `entry` once the upscales before it are done. */
  run<T>(entry: UpscalerEntry, work: (upscaler: Upscaler) => Promise<T>): Promise<T> {
    const turn = this.#queue.then(async () => work(await this.#upscaler(entry.path)));
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  /** Frees the loaded upscaler once the queue is empty. */
  async close(): Promise<void> {
    await this.#queue;
    await this.#loaded?.upscaler.close();
    this.#loaded = undefined;
  }

  async #upscaler(file: string): Promise<Upscaler> {
    if (this.#loaded?.path === file) return this.#loaded.upscaler;
    await this.#loaded?.upscaler.close();
    this.#loaded = undefined;
    const upscaler = await loadUpscaler(file, this.#load);
    this.#loaded = { path: file, upscaler };
    return upscaler;
  }
}
