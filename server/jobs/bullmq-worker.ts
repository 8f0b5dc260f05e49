// The worker side of the --redis queue: a BullMQ worker per model this process offers, feeding
// job ids to the same JobProcessor the embedded queue uses. Progress, previews and images go out
// through Redis; cancel and skip come in on the control channel.
//
// Faults: BullMQ holds a lock per running job, renewed while the process lives. A worker killed
// mid-job loses it, and another worker's stalled-job check puts the job back in its queue (at the
// front); the runner then continues from the first missing image. A job that stalls more than
// --attempts - 1 times, or whose processor keeps throwing, ends FAILED.

import { Worker, WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';

import { withoutPaths } from '../redact.js';
import { queueName } from './bullmq-queue.js';
import { isFinished, jobErrorCodes } from './job.js';
import type { WriteLine } from './log.js';
import { newJobControls, queuedJob, type JobControls, type JobProcessor, type QueuedJob, type QueueEvent } from './queue.js';
import type { RedisConnection, RedisKeys } from './redis.js';
import { LiveJobs, subscribeControl } from './redis-live.js';
import type { JobStore } from './store.js';

export interface JobWorkersOptions {
  /** Jobs this process runs at once, all models together. */
  concurrency: number;
  /** Times a job is started before it fails: a worker that dies mid-job costs one. */
  attempts: number;
  /** A worker that stops renewing its lock loses its job to another after this long. */
  lockDurationMs: number;
  /** Shown in BullMQ's job records: which worker ran a job. */
  name: string;
  log: WriteLine;
}

export class JobWorkers {
  readonly #connection: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #store: JobStore;
  readonly #processor: JobProcessor;
  readonly #options: JobWorkersOptions;
  readonly #live: LiveJobs;
  readonly #workers = new Map<string, Worker>();
  readonly #running = new Map<string, JobControls>();
  readonly #slots: Slots;
  #unsubscribe: (() => Promise<void>) | undefined;
  #stopping = false;
  #closed: Promise<void> | undefined;

  private constructor(connection: RedisConnection, keys: RedisKeys, store: JobStore, processor: JobProcessor, options: JobWorkersOptions) {
    this.#connection = connection;
    this.#keys = keys;
    this.#store = store;
    this.#processor = processor;
    this.#options = options;
    this.#live = new LiveJobs(connection, keys);
    this.#slots = new Slots(options.concurrency);
  }

  /** Listens for cancel and skip on `subscriber` (a connection of its own); takes no job before `offer()`. */
  static async start(connection: RedisConnection, subscriber: Redis, keys: RedisKeys, store: JobStore, processor: JobProcessor,
    options: JobWorkersOptions): Promise<JobWorkers> {
    const workers = new JobWorkers(connection, keys, store, processor, options);
    workers.#unsubscribe = await subscribeControl(subscriber, keys, ({ type, jobId }) => {
      const running = workers.#running.get(jobId);
      if (!running) return;
      if (type === 'cancel') {
        running.cancelled = true;
        running.controller.abort();
      } else {
        running.imageController.abort();
      }
    });
    return workers;
  }

  /** Takes jobs for exactly these models from now on. */
  async offer(models: readonly string[]): Promise<void> {
    if (this.#stopping) return;
    for (const model of models) {
      if (!this.#workers.has(model)) this.#workers.set(model, this.#startWorker(model));
    }
    const gone = [...this.#workers.keys()].filter((model) => !models.includes(model));
    await Promise.all(gone.map(async (model) => {
      const worker = this.#workers.get(model);
      this.#workers.delete(model);
      await worker?.close();
    }));
  }

  /** Ids of the jobs running here. */
  runningJobs(): string[] {
    return [...this.#running.keys()];
  }

  /**
   * Takes no more jobs; running ones finish their current image (or stop at once with `abort`)
   * and go back to the front of their queue for another worker.
   */
  close(options: { abort?: boolean } = {}): Promise<void> {
    this.#stopping = true;
    if (options.abort) {
      for (const running of this.#running.values()) running.controller.abort();
    }
    this.#closed ??= (async () => {
      await Promise.all([...this.#workers.values()].map((worker) => worker.close()));
      this.#workers.clear();
      await this.#unsubscribe?.();
    })();
    return this.#closed;
  }

  #startWorker(model: string): Worker {
    const worker = new Worker(queueName(model), (job, token) => this.#process(job, token), {
      connection: this.#connection.redis,
      prefix: this.#keys.bullPrefix,
      concurrency: this.#options.concurrency,
      lockDuration: this.#options.lockDurationMs,
      stalledInterval: Math.max(500, Math.round(this.#options.lockDurationMs / 2)),
      maxStalledCount: this.#options.attempts - 1,
      name: this.#options.name,
    });
    let reported = false;
    worker.on('error', (error) => {
      // Connection trouble is reported once by the connection itself.
      if (reported || this.#connection.redis.status !== 'ready') return;
      reported = true;
      this.#options.log(`worker ${model}: ${error.message}`);
    });
    worker.on('failed', (job, error) => {
      if (!job?.id) return;
      const final = error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (final) void this.#giveUp(job.id, error).catch((failure: unknown) => this.#options.log(`worker: ${String(failure)}`));
    });
    return worker;
  }

  async #process(bullJob: Job, token: string | undefined): Promise<void> {
    const jobId = bullJob.id as string;
    await this.#slots.acquire();
    const running = newJobControls();
    this.#running.set(jobId, running);
    try {
      if (await this.#live.cancelRequested(jobId)) {
        running.cancelled = true;
        running.controller.abort();
      }
      if (this.#stopping) running.controller.abort();
      await this.#processor(this.#queuedJob(jobId, running));
      const record = await this.#store.read(jobId);
      if (record && !isFinished(record.state)) {
        // Stopped for a shutdown: back to the front of the queue, for the next free worker.
        await this.#live.report({ type: 'settled', jobId });
        await bullJob.moveToWait(token);
        throw new WaitingError();
      }
      await this.#live.finish(jobId);
    } finally {
      this.#running.delete(jobId);
      this.#slots.release();
    }
  }

  #queuedJob(jobId: string, running: JobControls): QueuedJob {
    const report = (event: QueueEvent): void => {
      this.#live.report(event).catch(() => {});
    };
    return queuedJob(jobId, running, {
      stopRequested: () => this.#stopping,
      reportProgress: (progress) => report({ type: 'progress', jobId, progress }),
      reportPreview: (preview) => report({ type: 'preview', jobId, preview }),
      reportImage: (n) => report({ type: 'image', jobId, n }),
    });
  }

  // BullMQ gave up on the job: it stalled too often (its workers died) or its processor kept throwing.
  async #giveUp(jobId: string, error: Error): Promise<void> {
    const record = await this.#store.read(jobId);
    if (record && !isFinished(record.state)) {
      const stalled = error.name === 'UnrecoverableError';
      await this.#store.setState(jobId, 'FAILED', stalled
        ? { code: jobErrorCodes.workerLost, message: `The job was interrupted ${this.#options.attempts} times (its workers stopped or lost Redis); giving up (--attempts)` }
        : { code: jobErrorCodes.generationFailed, message: withoutPaths(error.message) });
    }
    await this.#live.finish(jobId);
  }
}

/** A counting semaphore: jobs of all models together share the process's concurrency. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(count: number) {
    this.#free = count;
  }

  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}
