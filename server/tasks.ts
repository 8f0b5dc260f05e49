// What the HTTP layer asks of tasks: submit one, look one up, find its images, and, at start-up,
// pick up the ones a previous run left unfinished. Task state comes from the store, live progress
// from the queue, so this works the same whether workers run in this process or elsewhere.

import { newTaskId } from './ids.js';
import type { QueueCounts, TaskQueue } from './queue.js';
import type { TaskStore, Upload } from './task-store.js';
import { isFinished, type TaskKind, type TaskParameters, type TaskProgress, type TaskRecord,
  type UploadSlot } from './task.js';

export interface TaskSnapshot {
  record: TaskRecord;
  /** Result images written so far: 1.png … <imagesDone>.png. */
  imagesDone: number;
  /** Live progress while a worker is on it. */
  progress: TaskProgress | undefined;
}

export class TaskService {
  readonly #store: TaskStore;
  readonly #queue: TaskQueue;

  constructor(store: TaskStore, queue: TaskQueue) {
    this.#store = store;
    this.#queue = queue;
  }

  /** Stores the task and queues it; a task the queue refuses is removed again. */
  async submit(kind: TaskKind, parameters: TaskParameters, uploads: Partial<Record<UploadSlot, Upload>>):
    Promise<TaskRecord> {
    const record = await this.#store.create({ id: newTaskId(), kind, parameters, uploads });
    try {
      await this.#queue.add(record.id);
    } catch (error) {
      await this.#store.remove(record.id);
      throw error;
    }
    return record;
  }

  /** The task with this id if it is of this kind (a result URL names both). */
  async find(kind: TaskKind, id: string): Promise<TaskSnapshot | undefined> {
    const record = await this.#store.read(id);
    if (!record || record.kind !== kind) return undefined;
    const imagesDone = await this.#store.countImages(id);
    const progress = isFinished(record.state) ? undefined : await this.#queue.progress(id);
    return { record, imagesDone, progress };
  }

  /** Absolute path of image `n` (1-based) if it has been written. */
  async imageFile(kind: TaskKind, id: string, n: number): Promise<string | undefined> {
    const record = await this.#store.read(id);
    if (!record || record.kind !== kind || n < 1 || n > await this.#store.countImages(id)) return undefined;
    return this.#store.imagePath(id, n);
  }

  counts(): Promise<QueueCounts> {
    return this.#queue.counts();
  }

  /**
   * Queues the tasks an earlier run left QUEUED or IN_PROGRESS (their runner continues from the
   * first missing image), or deletes them.
   */
  async resumeUnfinished(options: { deleteIncomplete: boolean }): Promise<{ resumed: number; deleted: number }> {
    let resumed = 0;
    let deleted = 0;
    for (const record of await this.#store.list()) {
      if (isFinished(record.state)) continue;
      if (options.deleteIncomplete) {
        await this.#store.remove(record.id);
        deleted++;
      } else {
        await this.#queue.add(record.id, { ignoreLimit: true });
        resumed++;
      }
    }
    return { resumed, deleted };
  }
}
