// Blobs of the task API: uploaded images under <output>/blobs/ (names the server chooses, an
// owner each), and the results and live previews of tasks, which are blobs too: "<task>-<n>" is
// image n of a task and "<task>-preview" its latest preview, read through the job service.

import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { isJobId, newJobId } from '../../jobs/ids.js';
import type { JobService } from '../../jobs/service.js';
import type { Upload } from '../../jobs/store.js';

export interface Blob {
  data: Buffer;
  contentType: string;
}

interface BlobMeta {
  owner: string;
  contentType: string;
  createdAt: string;
}

const contentTypes: Readonly<Record<string, string>> = { png: 'image/png', jpg: 'image/jpeg', webp: 'image/webp' };
const resultPattern = /^([A-Za-z0-9_-]{22})-(preview|[1-9]\d{0,5})$/;

export class BlobStore {
  readonly #dir: string;
  readonly #jobs: JobService;

  constructor(outputDir: string, jobs: JobService) {
    this.#dir = path.join(path.resolve(outputDir), 'blobs');
    this.#jobs = jobs;
  }

  /** Stores an uploaded image for `owner`; returns its id. */
  async put(owner: string, upload: Upload): Promise<string> {
    await mkdir(this.#dir, { recursive: true });
    const id = newJobId();
    const meta: BlobMeta = { owner, contentType: contentTypes[upload.ext] ?? 'application/octet-stream', createdAt: new Date().toISOString() };
    await writeAtomically(path.join(this.#dir, id), upload.data);
    await writeAtomically(path.join(this.#dir, `${id}.json`), JSON.stringify(meta));
    return id;
  }

  /** Deletes the uploaded blobs stored before `cutoffMs` (epoch ms); returns how many. */
  async removeBefore(cutoffMs: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw error;
    }
    let removed = 0;
    for (const name of names) {
      const id = name.endsWith('.json') ? name.slice(0, -'.json'.length) : undefined;
      if (id === undefined || !isJobId(id)) continue;
      const meta = await readFile(path.join(this.#dir, name), 'utf8').then((text) => JSON.parse(text) as BlobMeta, () => undefined);
      if (meta !== undefined && Date.parse(meta.createdAt) >= cutoffMs) continue;
      await rm(path.join(this.#dir, id), { force: true });
      await rm(path.join(this.#dir, name), { force: true });
      removed++;
    }
    return removed;
  }

  /** The blob if it exists and belongs to `owner` (undefined otherwise: another user's blob is not found). */
  async get(owner: string, id: string): Promise<Blob | undefined> {
    const result = resultPattern.exec(id);
    if (result) return this.#result(owner, result[1] as string, result[2] as string);
    if (!isJobId(id)) return undefined;
    let meta: BlobMeta;
    try {
      meta = JSON.parse(await readFile(path.join(this.#dir, `${id}.json`), 'utf8')) as BlobMeta;
    } catch {
      return undefined;
    }
    if (meta.owner !== owner) return undefined;
    return { data: await readFile(path.join(this.#dir, id)), contentType: meta.contentType };
  }

  async #result(owner: string, jobId: string, which: string): Promise<Blob | undefined> {
    const snapshot = await this.#jobs.find(jobId);
    if (!snapshot || snapshot.record.owner !== owner) return undefined;
    if (which === 'preview') {
      const preview = await this.#jobs.preview(jobId);
      return preview && { data: preview.png, contentType: 'image/png' };
    }
    const n = Number(which);
    if (n > snapshot.imagesDone) return undefined;
    return { data: await this.#jobs.readImage(jobId, n), contentType: 'image/png' };
  }
}

/** The blob id of image `n` of a task, and of its preview. */
export function resultBlobId(jobId: string, n: number | 'preview'): string {
  return `${jobId}-${n}`;
}

async function writeAtomically(file: string, data: string | Uint8Array): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, data);
  await rename(temp, file);
}
