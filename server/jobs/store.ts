// Where jobs are kept: the JobStore interface, and its default implementation on disk (Redis:
// redis-store.ts). On disk, one folder per job under the output folder:
//
//   <root>/<id>/job.json       mode, dialect, model, parameters, state, error
//   <root>/<id>/image.<ext>    uploads, named by slot
//   <root>/<id>/1.png, 2.png…  results, numbered from 1
//
// Every file is written under a temporary name in the same folder and renamed into place, and a
// new job is assembled in a temporary folder that is renamed to <id> once complete, so a crash
// never leaves a half-written file or job behind under a real name. The PNG files are the truth
// about which images are done. Folders written by sdnode 0.1 (task.json, M1 kinds) are read too.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

import { isJobId } from './ids.js';
import { isFinished, isJobMode, type JobError, type JobMode, type JobParameters, type JobRecord, type JobState,
  type UploadSlot } from './job.js';

const jobFile = 'job.json';
/** sdnode 0.1's name for it, read when job.json is absent. */
const legacyTaskFile = 'task.json';
const secretFile = '.url-secret';
const newJobPrefix = '.new-';
const tempSuffix = '.tmp';

export interface NewJob {
  id: string;
  mode: JobMode;
  dialect: string;
  model?: string;
  owner?: string;
  parameters: JobParameters;
  uploads: Partial<Record<UploadSlot, Upload>>;
}

export interface Upload {
  /** File extension without the dot, chosen by the server from the decoded format. */
  ext: string;
  data: Uint8Array;
}

/** Job records, uploads and result images, wherever they are kept. */
export interface JobStore {
  /** Where jobs are kept, for people: a folder, or Redis's URL. */
  readonly location: string;
  /** A random key shared by every process using this store, for signing result URLs. */
  secret(): Promise<Buffer>;
  /** Removes what an earlier run that crashed left half-written. */
  removeLeftovers(): Promise<void>;
  create(job: NewJob): Promise<JobRecord>;
  /** The job, or undefined for an unknown or malformed id. */
  read(id: string): Promise<JobRecord | undefined>;
  /** Throws when the job is not in the store (any more). */
  setState(id: string, state: JobState, error?: JobError | null): Promise<JobRecord>;
  readUpload(id: string, slot: UploadSlot): Promise<Buffer | undefined>;
  /** Writes result image `n` (1-based); throws when the job is not in the store (any more). */
  writeImage(id: string, n: number, png: Uint8Array): Promise<void>;
  /** Images done: the length of the unbroken run 1, 2, … */
  countImages(id: string): Promise<number>;
  /** Result image `n` (1-based), or undefined when it has not been written. */
  readImage(id: string, n: number): Promise<Buffer | undefined>;
  /** Where image `n` is kept, for log lines. */
  imageLocation(id: string, n: number): string;
  remove(id: string): Promise<void>;
  /** Every readable job, oldest first. */
  list(): Promise<JobRecord[]>;
}

export class FileJobStore implements JobStore {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Creates the folder if needed. */
  static async open(root: string): Promise<FileJobStore> {
    const absolute = path.resolve(root);
    await mkdir(absolute, { recursive: true });
    return new FileJobStore(absolute);
  }

  get location(): string {
    return this.root;
  }

  /**
   * A random key kept in the folder (created on first use), for signing result URLs that must
   * stay valid across restarts.
   */
  async secret(): Promise<Buffer> {
    const file = path.join(this.root, secretFile);
    try {
      const existing = await readFile(file);
      if (existing.length >= 32) return existing;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    await writeAtomically(this.root, secretFile, randomBytes(32));
    return readFile(file);
  }

  /** Removes what an earlier run that crashed left half-written: staged jobs and temporary files. */
  async removeLeftovers(): Promise<void> {
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (entry.isDirectory() && entry.name.startsWith(newJobPrefix)) {
        await rm(path.join(this.root, entry.name), { recursive: true, force: true });
      } else if (entry.isDirectory() && isJobId(entry.name)) {
        await removeTempFiles(path.join(this.root, entry.name));
      }
    }
  }

  async create(job: NewJob): Promise<JobRecord> {
    const record = newRecord(job);
    const staging = path.join(this.root, `${newJobPrefix}${job.id}`);
    await mkdir(staging);
    try {
      for (const [slot, upload] of Object.entries(job.uploads) as [UploadSlot, Upload][]) {
        const name = `${slot}.${upload.ext}`;
        await writeAtomically(staging, name, upload.data);
        record.uploads[slot] = name;
      }
      await writeAtomically(staging, jobFile, JSON.stringify(record, null, 2));
      await rename(staging, this.jobDir(job.id));
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    return record;
  }

  /** The job, or undefined for an unknown or malformed id or an unreadable job folder. */
  async read(id: string): Promise<JobRecord | undefined> {
    if (!isJobId(id)) return undefined;
    for (const name of [jobFile, legacyTaskFile]) {
      let text: string;
      try {
        text = await readFile(path.join(this.jobDir(id), name), 'utf8');
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      return parseRecord(id, name === jobFile ? text : upgradeLegacyRecord(text));
    }
    return undefined;
  }

  async setState(id: string, state: JobState, error: JobError | null = null): Promise<JobRecord> {
    const record = await this.read(id);
    if (!record) throw new Error(`Job ${id} is not in ${this.root}`);
    const updated: JobRecord = { ...record, state, error, updatedAt: new Date().toISOString() };
    await writeAtomically(this.jobDir(id), jobFile, JSON.stringify(updated, null, 2));
    await rm(path.join(this.jobDir(id), legacyTaskFile), { force: true });
    return updated;
  }

  async readUpload(id: string, slot: UploadSlot): Promise<Buffer | undefined> {
    const name = (await this.read(id))?.uploads[slot];
    return name === undefined ? undefined : readFile(path.join(this.jobDir(id), name));
  }

  /** Writes result image `n` (1-based). */
  async writeImage(id: string, n: number, png: Uint8Array): Promise<void> {
    await writeAtomically(this.jobDir(id), `${n}.png`, png);
  }

  /** Images done: the length of the unbroken run 1.png, 2.png, … */
  async countImages(id: string): Promise<number> {
    if (!isJobId(id)) return 0;
    let names: Set<string>;
    try {
      names = new Set(await readdir(this.jobDir(id)));
    } catch (error) {
      if (isNotFound(error)) return 0;
      throw error;
    }
    let count = 0;
    while (names.has(`${count + 1}.png`)) count++;
    return count;
  }

  async readImage(id: string, n: number): Promise<Buffer | undefined> {
    if (!isJobId(id) || !Number.isSafeInteger(n) || n < 1) return undefined;
    try {
      return await readFile(this.imagePath(id, n));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  imageLocation(id: string, n: number): string {
    return path.relative(process.cwd(), this.imagePath(id, n));
  }

  /** Absolute path of result image `n`. */
  imagePath(id: string, n: number): string {
    if (!isJobId(id) || !Number.isSafeInteger(n) || n < 1) throw new Error(`No image ${n} of job ${id}`);
    return path.join(this.jobDir(id), `${n}.png`);
  }

  async remove(id: string): Promise<void> {
    if (!isJobId(id)) return;
    await rm(this.jobDir(id), { recursive: true, force: true });
  }

  /** Deletes the jobs that finished (COMPLETE or FAILED) before `cutoffMs` (epoch ms), images and all; returns how many. */
  async removeFinishedBefore(cutoffMs: number): Promise<number> {
    let removed = 0;
    for (const record of await this.list()) {
      if (!isFinished(record.state) || Date.parse(record.updatedAt) >= cutoffMs) continue;
      await this.remove(record.id);
      removed++;
    }
    return removed;
  }

  /** Every readable job, oldest first. */
  async list(): Promise<JobRecord[]> {
    const records: JobRecord[] = [];
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !isJobId(entry.name)) continue;
      const record = await this.read(entry.name);
      if (record) records.push(record);
    }
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  private jobDir(id: string): string {
    return path.join(this.root, id);
  }
}

/** A new job's record, QUEUED, before its uploads are stored. */
export function newRecord(job: NewJob): JobRecord {
  const now = new Date().toISOString();
  return {
    id: job.id,
    mode: job.mode,
    dialect: job.dialect,
    ...(job.model !== undefined && { model: job.model }),
    ...(job.owner !== undefined && { owner: job.owner }),
    parameters: job.parameters,
    uploads: {},
    state: 'QUEUED',
    error: null,
    createdAt: now,
    updatedAt: now,
  };
}

async function writeAtomically(dir: string, name: string, data: string | Uint8Array): Promise<void> {
  const temp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}${tempSuffix}`);
  const file = await open(temp, 'w');
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temp, path.join(dir, name));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function removeTempFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith('.') && name.endsWith(tempSuffix)) await rm(path.join(dir, name), { force: true });
  }
}

// job.json is ours, but a folder may have been edited by hand: anything that is not a plausible
// record is treated as absent rather than trusted.
export function parseRecord(id: string, text: string): JobRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Partial<JobRecord>;
  const states: readonly JobState[] = ['QUEUED', 'IN_PROGRESS', 'COMPLETE', 'FAILED'];
  const plausible = record.id === id
    && typeof record.mode === 'string' && isJobMode(record.mode)
    && typeof record.dialect === 'string'
    && (record.model === undefined || typeof record.model === 'string')
    && (record.owner === undefined || typeof record.owner === 'string')
    && typeof record.state === 'string' && states.includes(record.state)
    && typeof record.parameters === 'object' && record.parameters !== null
    && Number.isSafeInteger(record.parameters.count)
    && typeof record.uploads === 'object' && record.uploads !== null
    && Object.values(record.uploads).every((name) => typeof name === 'string' && isUploadName(name));
  return plausible ? (record as JobRecord) : undefined;
}

// sdnode 0.1 stored M1 tasks: `kind` instead of mode + dialect, `iterations` instead of count.
function upgradeLegacyRecord(text: string): string {
  const modeByKind: Readonly<Record<string, JobMode>> = {
    'text-to-image': 'txt2img', 'image-to-image': 'img2img', 'inpaint-image': 'inpaint',
  };
  try {
    const { kind, parameters, ...rest } = JSON.parse(text) as { kind?: string; parameters?: { iterations?: number } };
    const { iterations, ...other } = parameters ?? {};
    return JSON.stringify({ ...rest, mode: modeByKind[kind ?? ''], dialect: 'm1', parameters: { ...other, count: iterations } });
  } catch {
    return text;
  }
}

// Upload names are `<slot>.<ext>`; checked again on read so that an edited job.json cannot point
// outside its folder.
function isUploadName(name: string): boolean {
  return /^(image|mask|reference[1-4]|control[1-8])\.[a-z0-9]{1,5}$/.test(name);
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT';
}
