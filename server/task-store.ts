// Tasks on disk: one folder per task under the output folder.
//
//   <root>/<id>/task.json      kind, parameters, state, error
//   <root>/<id>/image.<ext>    uploads, named by slot
//   <root>/<id>/1.png, 2.png…  results, numbered from 1
//
// Every file is written under a temporary name in the same folder and renamed into place, and a
// new task is assembled in a temporary folder that is renamed to <id> once complete, so a crash
// never leaves a half-written file or task behind under a real name. The PNG files are the truth
// about which images are done.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

import { isTaskId } from './ids.js';
import { isTaskKind, type TaskError, type TaskKind, type TaskParameters, type TaskRecord, type TaskState,
  type UploadSlot } from './task.js';

const taskFile = 'task.json';
const newTaskPrefix = '.new-';
const tempSuffix = '.tmp';

export interface NewTask {
  id: string;
  kind: TaskKind;
  parameters: TaskParameters;
  uploads: Partial<Record<UploadSlot, Upload>>;
}

export interface Upload {
  /** File extension without the dot, chosen by the server from the decoded format. */
  ext: string;
  data: Uint8Array;
}

export class TaskStore {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Creates the folder if needed. */
  static async open(root: string): Promise<TaskStore> {
    const absolute = path.resolve(root);
    await mkdir(absolute, { recursive: true });
    return new TaskStore(absolute);
  }

  /** Removes what an earlier run that crashed left half-written: staged tasks and temporary files. */
  async removeLeftovers(): Promise<void> {
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (entry.isDirectory() && entry.name.startsWith(newTaskPrefix)) {
        await rm(path.join(this.root, entry.name), { recursive: true, force: true });
      } else if (entry.isDirectory() && isTaskId(entry.name)) {
        await removeTempFiles(path.join(this.root, entry.name));
      }
    }
  }

  async create(task: NewTask): Promise<TaskRecord> {
    const now = new Date().toISOString();
    const record: TaskRecord = {
      id: task.id,
      kind: task.kind,
      parameters: task.parameters,
      uploads: {},
      state: 'QUEUED',
      error: null,
      createdAt: now,
      updatedAt: now,
    };
    const staging = path.join(this.root, `${newTaskPrefix}${task.id}`);
    await mkdir(staging);
    try {
      for (const [slot, upload] of Object.entries(task.uploads) as [UploadSlot, Upload][]) {
        const name = `${slot}.${upload.ext}`;
        await writeAtomically(staging, name, upload.data);
        record.uploads[slot] = name;
      }
      await writeAtomically(staging, taskFile, JSON.stringify(record, null, 2));
      await rename(staging, this.taskDir(task.id));
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    return record;
  }

  /** The task, or undefined for an unknown or malformed id or an unreadable task folder. */
  async read(id: string): Promise<TaskRecord | undefined> {
    if (!isTaskId(id)) return undefined;
    let text: string;
    try {
      text = await readFile(path.join(this.taskDir(id), taskFile), 'utf8');
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    return parseRecord(id, text);
  }

  async setState(id: string, state: TaskState, error: TaskError | null = null): Promise<TaskRecord> {
    const record = await this.read(id);
    if (!record) throw new Error(`Task ${id} is not in ${this.root}`);
    const updated: TaskRecord = { ...record, state, error, updatedAt: new Date().toISOString() };
    await writeAtomically(this.taskDir(id), taskFile, JSON.stringify(updated, null, 2));
    return updated;
  }

  async readUpload(id: string, slot: UploadSlot): Promise<Buffer | undefined> {
    const name = (await this.read(id))?.uploads[slot];
    return name === undefined ? undefined : readFile(path.join(this.taskDir(id), name));
  }

  /** Writes result image `n` (1-based). */
  async writeImage(id: string, n: number, png: Uint8Array): Promise<void> {
    await writeAtomically(this.taskDir(id), `${n}.png`, png);
  }

  /** Images done: the length of the unbroken run 1.png, 2.png, … */
  async countImages(id: string): Promise<number> {
    if (!isTaskId(id)) return 0;
    let names: Set<string>;
    try {
      names = new Set(await readdir(this.taskDir(id)));
    } catch (error) {
      if (isNotFound(error)) return 0;
      throw error;
    }
    let count = 0;
    while (names.has(`${count + 1}.png`)) count++;
    return count;
  }

  /** Absolute path of result image `n`; callers check `n` against countImages first. */
  imagePath(id: string, n: number): string {
    if (!isTaskId(id) || !Number.isSafeInteger(n) || n < 1) throw new Error(`No image ${n} of task ${id}`);
    return path.join(this.taskDir(id), `${n}.png`);
  }

  async remove(id: string): Promise<void> {
    if (!isTaskId(id)) return;
    await rm(this.taskDir(id), { recursive: true, force: true });
  }

  /** Every readable task, oldest first. */
  async list(): Promise<TaskRecord[]> {
    const records: TaskRecord[] = [];
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !isTaskId(entry.name)) continue;
      const record = await this.read(entry.name);
      if (record) records.push(record);
    }
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  private taskDir(id: string): string {
    return path.join(this.root, id);
  }
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

// task.json is ours, but a folder may have been edited by hand: anything that is not a plausible
// record is treated as absent rather than trusted.
function parseRecord(id: string, text: string): TaskRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Partial<TaskRecord>;
  const states: readonly TaskState[] = ['QUEUED', 'IN_PROGRESS', 'COMPLETE', 'FAILED'];
  const plausible = record.id === id
    && typeof record.kind === 'string' && isTaskKind(record.kind)
    && typeof record.state === 'string' && states.includes(record.state)
    && typeof record.parameters === 'object' && record.parameters !== null
    && Number.isSafeInteger(record.parameters.iterations)
    && typeof record.uploads === 'object' && record.uploads !== null
    && Object.values(record.uploads).every((name) => typeof name === 'string' && isUploadName(name));
  return plausible ? (record as TaskRecord) : undefined;
}

// Upload names are `<slot>.<ext>`; checked again on read so that an edited task.json cannot point
// outside its folder.
function isUploadName(name: string): boolean {
  return /^(image|mask)\.[a-z0-9]{1,5}$/.test(name);
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT';
}
