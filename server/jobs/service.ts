// What the dialects ask of jobs: submit one, look one up, find its images, wait for one (the
// synchronous APIs), cancel one, and at start-up pick up the ones a previous run left unfinished.
// Job state comes from the store, live progress and previews from the queue, so this works the
// same whether workers run in this process or elsewhere.

import { newJobId } from './ids.js';
import { checkJobLimits } from './limits.js';
import { QueueUnavailableError, type JobQueue, type QueueCounts, type QueueEvent } from './queue.js';
import type { JobStore, NewJob } from './store.js';
import { isFinished, jobErrorCodes, type JobPreview, type JobProgress, type JobRecord } from './job.js';

export interface JobSnapshot {
  record: JobRecord;
  /** Result images written so far: 1.png … <imagesDone>.png. */
  imagesDone: number;
  /** Live progress while a worker is on it. */
  progress: JobProgress | undefined;
  /** Whether a preview of the running image exists (fetch it with `preview()`). */
  hasPreview: boolean;
  /** 0-based place in the queue while waiting. */
  position: number | undefined;
}

export interface WaitCallbacks {
  onProgress?: (progress: JobProgress) => void;
  onPreview?: (preview: JobPreview) => void;
  /** Image `n` (1-based) is in the store. */
  onImage?: (n: number) => void;
}

/** The client of a synchronous request went away before its job finished. */
export class JobAbandonedError extends Error {
  constructor(id: string) {
    super(`The client of job ${id} went away; the job was cancelled`);
    this.name = 'JobAbandonedError';
  }
}

export class JobService {
  readonly #store: JobStore;
  readonly #queue: JobQueue;

  constructor(store: JobStore, queue: JobQueue) {
    this.#store = store;
    this.#queue = queue;
  }

  /**
   * Stores the job and queues it; a job the queue refuses is removed again. Parameters over the
   * job limits (jobs/limits.ts) are an InvalidFieldError before anything is stored.
   */
  async submit(job: Omit<NewJob, 'id' | 'uploads'> & { uploads?: NewJob['uploads'] }): Promise<JobRecord> {
    checkJobLimits(job.parameters);
    const record = await this.#store.create({ ...job, uploads: job.uploads ?? {}, id: newJobId() });
    try {
      await this.#queue.add(record.id);
    } catch (error) {
      await this.#store.remove(record.id);
      throw error;
    }
    return record;
  }

  async find(id: string): Promise<JobSnapshot | undefined> {
    const record = await this.#store.read(id);
    if (!record) return undefined;
    const imagesDone = await this.#store.countImages(id);
    const finished = isFinished(record.state);
    const progress = finished ? undefined : await this.#queue.progress(id);
    const hasPreview = !finished && (await this.#queue.preview(id)) !== undefined;
    const position = finished ? undefined : await this.#queue.position(id);
    return { record, imagesDone, progress, hasPreview, position };
  }

  /** Every queue event from now on (progress, previews, images, settled jobs); returns the unsubscribe. */
  subscribe(listener: (event: QueueEvent) => void): () => void {
    return this.#queue.subscribe(listener);
  }

  /** Every stored job, oldest first. */
  list(): Promise<JobRecord[]> {
    return this.#store.list();
  }

  /** The latest preview of a running job. */
  preview(id: string): Promise<JobPreview | undefined> {
    return this.#queue.preview(id);
  }

  /** Image `n` (1-based) if it has been written. */
  image(id: string, n: number): Promise<Buffer | undefined> {
    return this.#store.readImage(id, n);
  }

  /** Image `n` (1-based); callers know it exists (a finished job, or after its image event). */
  async readImage(id: string, n: number): Promise<Buffer> {
    const image = await this.#store.readImage(id, n);
    if (!image) throw new Error(`Job ${id} has no image ${n}`);
    return image;
  }

  /**
   * Resolves with the finished job (COMPLETE or FAILED) and reports its progress on the way. When
   * `signal` aborts first (the client went away) the job is cancelled and removed, and the promise
   * rejects with JobAbandonedError.
   */
  async wait(id: string, signal: AbortSignal, callbacks: WaitCallbacks = {}): Promise<JobSnapshot> {
    let wake: () => void = () => {};
    const unsubscribe = this.#queue.subscribe((event: QueueEvent) => {
      if (event.jobId !== id) return;
      if (event.type === 'progress') callbacks.onProgress?.(event.progress);
      else if (event.type === 'preview') callbacks.onPreview?.(event.preview);
      else if (event.type === 'image') callbacks.onImage?.(event.n);
      else wake();
    });
    const abandoned = (): void => wake();
    signal.addEventListener('abort', abandoned, { once: true });
    // Events say when to look again; the store says what happened. A slow tick covers a state
    // written just after the event that announced it.
    const tick = setInterval(() => wake(), 1000);
    try {
      for (;;) {
        const settled = new Promise<void>((resolve) => { wake = resolve; });
        if (signal.aborted) {
          await this.cancel(id, { remove: true });
          throw new JobAbandonedError(id);
        }
        // While the store is unreachable (Redis restarting) the job may well go on: keep waiting.
        const snapshot = await this.find(id).catch((error: unknown) => {
          if (error instanceof QueueUnavailableError) return 'unavailable' as const;
          throw error;
        });
        if (!snapshot) throw new Error(`Job ${id} disappeared from the store`);
        if (snapshot !== 'unavailable' && isFinished(snapshot.record.state)) return snapshot;
        await settled;
      }
    } finally {
      clearInterval(tick);
      unsubscribe();
      signal.removeEventListener('abort', abandoned);
    }
  }

  /** `wait()` for synchronous routes: undefined when the client went away (its job is then gone). */
  async waitForClient(id: string, signal: AbortSignal, callbacks: WaitCallbacks = {}): Promise<JobSnapshot | undefined> {
    try {
      return await this.wait(id, signal, callbacks);
    } catch (error) {
      if (error instanceof JobAbandonedError) return undefined;
      throw error;
    }
  }

  /**
   * Cancels a job: a waiting one leaves the queue, a running one stops between steps. It ends
   * FAILED with code CANCELLED, or is deleted with `remove`. False when the job is unknown or
   * already finished.
   */
  async cancel(id: string, options: { remove?: boolean } = {}): Promise<boolean> {
    const record = await this.#store.read(id);
    if (!record || isFinished(record.state)) {
      if (record && options.remove) await this.#store.remove(id);
      return false;
    }
    const outcome = await this.#queue.cancel(id);
    if (options.remove) {
      await this.#store.remove(id);
    } else if (outcome !== 'aborted') {
      // The runner marks the jobs it stopped; this one never reached a runner.
      await this.#store.setState(id, 'FAILED', { code: jobErrorCodes.cancelled, message: 'The job was cancelled' });
    }
    return true;
  }

  /** Stops the image a running job is making; it goes on with the next. */
  skip(id: string): Promise<boolean> {
    return this.#queue.skip(id);
  }

  /** Ids of the running jobs, oldest first. */
  running(): Promise<string[]> {
    return this.#queue.running();
  }

  counts(): Promise<QueueCounts> {
    return this.#queue.counts();
  }

  /**
   * Queues the jobs an earlier run left QUEUED or IN_PROGRESS (their runner continues from the
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
