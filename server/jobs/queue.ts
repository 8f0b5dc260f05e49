// The job queue as the HTTP layer and the worker side see it. Only job ids travel through it:
// everything else about a job lives in the job store, so a Redis-backed queue with workers in
// other processes can replace the embedded one without touching dialects or the job runner.

import type { JobPreview, JobProgress } from './job.js';

/** One job handed to a processor. */
export interface QueuedJob {
  readonly jobId: string;
  /** Aborted when the job is cancelled or the queue closes with `abort`. */
  readonly signal: AbortSignal;
  /** A signal for the next image: aborted with the job, or by `skip()` for this image alone. */
  imageSignal(): AbortSignal;
  /** True once the job was cancelled: it ends FAILED with code CANCELLED and is not resumed. */
  cancelled(): boolean;
  /** True once the queue is closing: finish the current image, then return. */
  stopRequested(): boolean;
  reportProgress(progress: JobProgress): void;
  reportPreview(preview: JobPreview): void;
  /** Image `n` (1-based) has been written to the store. */
  reportImage(n: number): void;
}

/** How a queue stops a running job: the whole job, or the image it is making. */
export interface JobControls {
  controller: AbortController;
  imageController: AbortController;
  cancelled: boolean;
}

export function newJobControls(): JobControls {
  return { controller: new AbortController(), imageController: new AbortController(), cancelled: false };
}

/** The QueuedJob a processor gets, over a running job's controls and the queue's reporting. */
export function queuedJob(jobId: string, controls: JobControls,
  queue: Pick<QueuedJob, 'stopRequested' | 'reportProgress' | 'reportPreview' | 'reportImage'>): QueuedJob {
  return {
    jobId,
    signal: controls.controller.signal,
    imageSignal: () => {
      controls.imageController = new AbortController();
      return AbortSignal.any([controls.controller.signal, controls.imageController.signal]);
    },
    cancelled: () => controls.cancelled,
    ...queue,
  };
}

/** Runs one job to its end (or until asked to stop); never rejects for a job's own failure. */
export type JobProcessor = (job: QueuedJob) => Promise<void>;

export interface QueueCounts {
  /** Jobs accepted but not started. */
  waiting: number;
  /** Jobs a worker is on now. */
  running: number;
}

/** What happens to queued jobs, in the order it happens. */
export type QueueEvent =
  | { type: 'progress'; jobId: string; progress: JobProgress }
  | { type: 'preview'; jobId: string; preview: JobPreview }
  | { type: 'image'; jobId: string; n: number }
  /** The processor returned: the job is finished, failed, cancelled, or stopped for a shutdown. */
  | { type: 'settled'; jobId: string };

export interface AddOptions {
  /** Accept even when the queue is full: for jobs resumed at start-up, which were accepted before. */
  ignoreLimit?: boolean;
}

export interface JobQueue {
  /** Rejects with QueueFullError or QueueClosedError; adding a job already queued is a no-op. */
  add(jobId: string, options?: AddOptions): Promise<void>;
  /**
   * Takes a waiting job out of the queue ('removed') or aborts a running one between steps and
   * resolves once its processor has returned ('aborted'); 'absent' when the queue does not hold it.
   */
  cancel(jobId: string): Promise<'removed' | 'aborted' | 'absent'>;
  /** Stops the image a running job is making; the job goes on with its next image. False when not running. */
  skip(jobId: string): Promise<boolean>;
  /** Ids of the jobs a worker is on, oldest first. */
  running(): Promise<string[]>;
  /** Live progress of a running job; undefined when it is not running. */
  progress(jobId: string): Promise<JobProgress | undefined>;
  /** The latest preview of a running job. */
  preview(jobId: string): Promise<JobPreview | undefined>;
  /** 0-based place among the waiting jobs; undefined when not waiting. */
  position(jobId: string): Promise<number | undefined>;
  counts(): Promise<QueueCounts>;
  /** Calls `listener` for every event from now on; returns the function that stops it. */
  subscribe(listener: (event: QueueEvent) => void): () => void;
  /**
   * Stops taking jobs and resolves once no worker is busy. Waiting jobs stay as they are in the
   * store (resumed at the next start); running ones finish their current image, or stop at once
   * with `abort`.
   */
  close(options?: { abort?: boolean }): Promise<void>;
}

export class QueueFullError extends Error {
  constructor(maxWaiting: number) {
    super(`The queue is full (${maxWaiting} jobs waiting); retry later`);
    this.name = 'QueueFullError';
  }
}

export class QueueClosedError extends Error {
  constructor() {
    super('The server is shutting down and takes no new jobs; retry later');
    this.name = 'QueueClosedError';
  }
}

/** The queue's shared storage (Redis) cannot be reached now; the request may be retried. */
export class QueueUnavailableError extends Error {
  constructor(detail: string) {
    super(`The job queue is unreachable (${detail}); retry later`);
    this.name = 'QueueUnavailableError';
  }
}

export interface EmbeddedQueueOptions {
  /** Jobs run at the same time, >= 1. */
  concurrency: number;
  /** Jobs that may wait for a worker before `add` rejects with QueueFullError, >= 0. */
  maxWaiting: number;
  /** Receives what a processor threw; processors handle job failures themselves. */
  onProcessorError: (jobId: string, error: unknown) => void;
}

interface RunningJob extends JobControls {
  progress: JobProgress | undefined;
  preview: JobPreview | undefined;
  settled: Promise<void>;
}

/** FIFO queue with a fixed number of workers inside this process. */
export class EmbeddedQueue implements JobQueue {
  readonly #processor: JobProcessor;
  readonly #options: EmbeddedQueueOptions;
  readonly #waiting: string[] = [];
  readonly #running = new Map<string, RunningJob>();
  readonly #listeners = new Set<(event: QueueEvent) => void>();
  #closing = false;
  #idle: Promise<void> | undefined;
  #resolveIdle: (() => void) | undefined;

  constructor(processor: JobProcessor, options: EmbeddedQueueOptions) {
    this.#processor = processor;
    this.#options = options;
  }

  async add(jobId: string, options: AddOptions = {}): Promise<void> {
    if (this.#closing) throw new QueueClosedError();
    if (this.#running.has(jobId) || this.#waiting.includes(jobId)) return;
    const workerFree = this.#running.size < this.#options.concurrency;
    if (!options.ignoreLimit && !workerFree && this.#waiting.length >= this.#options.maxWaiting) {
      throw new QueueFullError(this.#options.maxWaiting);
    }
    this.#waiting.push(jobId);
    this.#startWorkers();
  }

  async cancel(jobId: string): Promise<'removed' | 'aborted' | 'absent'> {
    const index = this.#waiting.indexOf(jobId);
    if (index >= 0) {
      this.#waiting.splice(index, 1);
      this.#emit({ type: 'settled', jobId });
      return 'removed';
    }
    const running = this.#running.get(jobId);
    if (!running) return 'absent';
    running.cancelled = true;
    running.controller.abort();
    await running.settled;
    return 'aborted';
  }

  async skip(jobId: string): Promise<boolean> {
    const running = this.#running.get(jobId);
    running?.imageController.abort();
    return running !== undefined;
  }

  async running(): Promise<string[]> {
    return [...this.#running.keys()];
  }

  async progress(jobId: string): Promise<JobProgress | undefined> {
    return this.#running.get(jobId)?.progress;
  }

  async preview(jobId: string): Promise<JobPreview | undefined> {
    return this.#running.get(jobId)?.preview;
  }

  async position(jobId: string): Promise<number | undefined> {
    const index = this.#waiting.indexOf(jobId);
    return index < 0 ? undefined : index;
  }

  async counts(): Promise<QueueCounts> {
    return { waiting: this.#waiting.length, running: this.#running.size };
  }

  subscribe(listener: (event: QueueEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(options: { abort?: boolean } = {}): Promise<void> {
    this.#closing = true;
    this.#waiting.length = 0;
    if (options.abort) {
      for (const job of this.#running.values()) job.controller.abort();
    }
    if (this.#running.size === 0) return Promise.resolve();
    this.#idle ??= new Promise((resolve) => {
      this.#resolveIdle = resolve;
    });
    return this.#idle;
  }

  #emit(event: QueueEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  // Starts jobs synchronously, so that counts() is exact as soon as add() returns.
  #startWorkers(): void {
    while (!this.#closing && this.#running.size < this.#options.concurrency && this.#waiting.length > 0) {
      this.#run(this.#waiting.shift() as string);
    }
  }

  #run(jobId: string): void {
    let settle!: () => void;
    const running: RunningJob = {
      ...newJobControls(),
      progress: undefined,
      preview: undefined,
      settled: new Promise((resolve) => { settle = resolve; }),
    };
    this.#running.set(jobId, running);
    const job = queuedJob(jobId, running, {
      stopRequested: () => this.#closing,
      reportProgress: (progress) => {
        running.progress = progress;
        this.#emit({ type: 'progress', jobId, progress });
      },
      reportPreview: (preview) => {
        running.preview = preview;
        this.#emit({ type: 'preview', jobId, preview });
      },
      reportImage: (n) => this.#emit({ type: 'image', jobId, n }),
    });
    const finished = (): void => {
      this.#running.delete(jobId);
      settle();
      this.#emit({ type: 'settled', jobId });
      if (this.#closing) {
        if (this.#running.size === 0) this.#resolveIdle?.();
      } else {
        this.#startWorkers();
      }
    };
    this.#processor(job).then(finished, (error: unknown) => {
      this.#options.onProcessorError(jobId, error);
      finished();
    });
  }
}
