// The task queue as the HTTP layer and the worker side see it. Only task ids travel through it:
// everything else about a task lives in the task store, so a Redis-backed queue with workers in
// other processes can replace the embedded one without touching routes or the task runner.

import type { TaskProgress } from './task.js';

/** One task handed to a processor. */
export interface TaskJob {
  readonly taskId: string;
  /** Aborted when the queue closes with `abort`: stop mid-image; the task stays resumable. */
  readonly signal: AbortSignal;
  /** True once the queue is closing: finish the current image, then return. */
  stopRequested(): boolean;
  reportProgress(progress: TaskProgress): void;
}

/** Runs one task to its end (or until asked to stop); never rejects for a task's own failure. */
export type TaskProcessor = (job: TaskJob) => Promise<void>;

export interface QueueCounts {
  /** Tasks accepted but not started. */
  waiting: number;
  /** Tasks a worker is on now. */
  running: number;
}

export interface AddOptions {
  /** Accept even when the queue is full: for tasks resumed at start-up, which were accepted before. */
  ignoreLimit?: boolean;
}

export interface TaskQueue {
  /** Rejects with QueueFullError or QueueClosedError; adding a task already queued is a no-op. */
  add(taskId: string, options?: AddOptions): Promise<void>;
  /** Live progress of a running task; undefined when it is not running. */
  progress(taskId: string): Promise<TaskProgress | undefined>;
  counts(): Promise<QueueCounts>;
  /**
   * Stops taking tasks and resolves once no worker is busy. Waiting tasks stay as they are in the
   * store (resumed at the next start); running ones finish their current image, or stop at once
   * with `abort`.
   */
  close(options?: { abort?: boolean }): Promise<void>;
}

export class QueueFullError extends Error {
  constructor(maxWaiting: number) {
    super(`The queue is full (${maxWaiting} tasks waiting); retry later`);
    this.name = 'QueueFullError';
  }
}

export class QueueClosedError extends Error {
  constructor() {
    super('The server is shutting down and takes no new tasks; retry later');
    this.name = 'QueueClosedError';
  }
}

export interface EmbeddedQueueOptions {
  /** Tasks run at the same time, >= 1. */
  concurrency: number;
  /** Tasks that may wait for a worker before `add` rejects with QueueFullError, >= 0. */
  maxWaiting: number;
  /** Receives what a processor threw; processors handle task failures themselves. */
  onProcessorError: (taskId: string, error: unknown) => void;
}

interface RunningTask {
  controller: AbortController;
  progress: TaskProgress | undefined;
}

/** FIFO queue with a fixed number of workers inside this process. */
export class EmbeddedQueue implements TaskQueue {
  readonly #processor: TaskProcessor;
  readonly #options: EmbeddedQueueOptions;
  readonly #waiting: string[] = [];
  readonly #running = new Map<string, RunningTask>();
  #closing = false;
  #idle: Promise<void> | undefined;
  #resolveIdle: (() => void) | undefined;

  constructor(processor: TaskProcessor, options: EmbeddedQueueOptions) {
    this.#processor = processor;
    this.#options = options;
  }

  async add(taskId: string, options: AddOptions = {}): Promise<void> {
    if (this.#closing) throw new QueueClosedError();
    if (this.#running.has(taskId) || this.#waiting.includes(taskId)) return;
    const workerFree = this.#running.size < this.#options.concurrency;
    if (!options.ignoreLimit && !workerFree && this.#waiting.length >= this.#options.maxWaiting) {
      throw new QueueFullError(this.#options.maxWaiting);
    }
    this.#waiting.push(taskId);
    this.#startWorkers();
  }

  async progress(taskId: string): Promise<TaskProgress | undefined> {
    return this.#running.get(taskId)?.progress;
  }

  async counts(): Promise<QueueCounts> {
    return { waiting: this.#waiting.length, running: this.#running.size };
  }

  close(options: { abort?: boolean } = {}): Promise<void> {
    this.#closing = true;
    this.#waiting.length = 0;
    if (options.abort) {
      for (const task of this.#running.values()) task.controller.abort();
    }
    if (this.#running.size === 0) return Promise.resolve();
    this.#idle ??= new Promise((resolve) => {
      this.#resolveIdle = resolve;
    });
    return this.#idle;
  }

  // Starts tasks synchronously, so that counts() is exact as soon as add() returns.
  #startWorkers(): void {
    while (!this.#closing && this.#running.size < this.#options.concurrency && this.#waiting.length > 0) {
      this.#run(this.#waiting.shift() as string);
    }
  }

  #run(taskId: string): void {
    const running: RunningTask = { controller: new AbortController(), progress: undefined };
    this.#running.set(taskId, running);
    const job: TaskJob = {
      taskId,
      signal: running.controller.signal,
      stopRequested: () => this.#closing,
      reportProgress: (progress) => {
        running.progress = progress;
      },
    };
    const finished = (): void => {
      this.#running.delete(taskId);
      if (this.#closing) {
        if (this.#running.size === 0) this.#resolveIdle?.();
      } else {
        this.#startWorkers();
      }
    };
    this.#processor(job).then(finished, (error: unknown) => {
      this.#options.onProcessorError(taskId, error);
      finished();
    });
  }
}
