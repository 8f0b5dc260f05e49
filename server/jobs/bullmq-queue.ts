// The job queue with --redis, as API processes see it: one BullMQ queue per model (a worker takes
// only jobs for models it has; FIFO per model), carrying job ids only. Live progress and previews
// come from Redis (redis-live.ts), cancel and skip go to whichever worker runs the job, and jobs
// for a model no worker offers fail after --no-worker-timeout.

import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { WorkerDirectory } from '../models/remote-registry.js';
import { jobErrorCodes, type JobPreview, type JobProgress } from './job.js';
import type { WriteLine } from './log.js';
import { QueueClosedError, QueueFullError, type AddOptions, type JobQueue, type QueueCounts, type QueueEvent } from './queue.js';
import type { RedisConnection, RedisKeys } from './redis.js';
import { LiveJobs, subscribeEvents } from './redis-live.js';
import type { JobStore } from './store.js';

/** BullMQ's queue for a model: its name, escaped (BullMQ's keys use ':' as separator). */
export function queueName(model: string): string {
  return encodeURIComponent(model);
}

export interface BullMqQueueOptions {
  /** Jobs that may wait for a worker, all models together. */
  maxWaiting: number;
  /** Times a job is started before it fails (a worker that dies mid-job costs one). */
  attempts: number;
  /** A job waits this long for a worker offering its model, then fails. */
  noWorkerTimeoutMs: number;
  /** How long a dead worker's job stays locked: cancel waits that long for a worker to answer. */
  lockDurationMs: number;
  log: WriteLine;
}

const sweepEveryMs = 1000;

export class BullMqQueue implements JobQueue {
  readonly #connection: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #store: JobStore;
  readonly #workers: WorkerDirectory;
  readonly #live: LiveJobs;
  readonly #options: BullMqQueueOptions;
  readonly #queues = new Map<string, Queue>();
  readonly #listeners = new Set<(event: QueueEvent) => void>();
  /** When this process last saw a worker offering each model (or its start). */
  readonly #lastOffered = new Map<string, number>();
  readonly #startedAt = Date.now();
  #unsubscribe: (() => Promise<void>) | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #closing = false;
  /** The last admission under --max-queue; the next waits for it. */
  #admissions: Promise<unknown> = Promise.resolve();

  private constructor(connection: RedisConnection, keys: RedisKeys, store: JobStore, workers: WorkerDirectory, options: BullMqQueueOptions) {
    this.#connection = connection;
    this.#keys = keys;
    this.#store = store;
    this.#workers = workers;
    this.#live = new LiveJobs(connection, keys);
    this.#options = options;
  }

  /** Subscribes to the job events on `subscriber` (a connection of its own) and starts the sweeper. */
  static async open(connection: RedisConnection, subscriber: Redis, keys: RedisKeys, store: JobStore, workers: WorkerDirectory,
    options: BullMqQueueOptions): Promise<BullMqQueue> {
    const queue = new BullMqQueue(connection, keys, store, workers, options);
    queue.#unsubscribe = await subscribeEvents(subscriber, keys, (event) => {
      for (const listener of queue.#listeners) listener(event);
    });
    queue.#sweeper = setInterval(() => {
      queue.#failJobsWithoutWorker().catch((error: unknown) => {
        options.log(`queue: ${error instanceof Error ? error.message : String(error)}`);
      });
    }, sweepEveryMs);
    return queue;
  }

  async add(jobId: string, options: AddOptions = {}): Promise<void> {
    if (this.#closing) throw new QueueClosedError();
    const model = await this.#modelOf(jobId);
    if (model === undefined) throw new Error(`Job ${jobId} is not in the store or names no model`);
    if (options.ignoreLimit) return this.#enqueue(jobId, model);
    // Checking the bound and adding are several Redis calls: done one job at a time, so that
    // requests arriving together each count the jobs admitted before them. (Several API
    // processes still check side by side: each may let one job past the bound at one instant.)
    const admitted = this.#admissions.then(() => this.#admit(jobId, model));
    this.#admissions = admitted.catch(() => undefined);
    return admitted;
  }

  // As the embedded queue: full when enough jobs wait beyond those the free workers for this
  // model are about to take (a worker takes a job a moment after it is added, not at once).
  async #admit(jobId: string, model: string): Promise<void> {
    const [counts, offers, active] = await Promise.all([
      this.counts(), this.#workers.live(), this.#connection.call(() => this.#queue(model).getActiveCount()),
    ]);
    const capacity = offers.filter((offer) => offer.models.some((entry) => entry.name === model))
      .reduce((sum, offer) => sum + offer.concurrency, 0);
    const freeWorkers = Math.max(0, capacity - active);
    if (counts.waiting >= this.#options.maxWaiting + freeWorkers) throw new QueueFullError(this.#options.maxWaiting);
    await this.#enqueue(jobId, model);
  }

  async #enqueue(jobId: string, model: string): Promise<void> {
    await this.#connection.call(async (redis) => {
      await redis.sadd(this.#keys.models, model);
      await this.#queue(model).add('generate', {}, {
        jobId, attempts: this.#options.attempts, removeOnComplete: true, removeOnFail: true,
      });
    });
  }

  async cancel(jobId: string): Promise<'removed' | 'aborted' | 'absent'> {
    const model = await this.#modelOf(jobId);
    if (model === undefined) return 'absent';
    const queue = this.#queue(model);
    const state = await this.#connection.call(() => queue.getJobState(jobId));
    if (state === 'waiting' || state === 'prioritized' || state === 'delayed') {
      if (await this.#connection.call(() => queue.remove(jobId)) === 1) {
        await this.#live.finish(jobId);
        return 'removed';
      }
    } else if (state !== 'active') {
      return 'absent';
    }
    // A worker has it (or took it just now): ask it to stop, and wait until it has.
    const settled = this.#settled(jobId, this.#options.lockDurationMs + 5000);
    await this.#live.requestCancel(jobId);
    return (await settled) ? 'aborted' : 'absent';
  }

  async skip(jobId: string): Promise<boolean> {
    const model = await this.#modelOf(jobId);
    if (model === undefined || await this.#connection.call(() => this.#queue(model).getJobState(jobId)) !== 'active') return false;
    await this.#live.requestSkip(jobId);
    return true;
  }

  async running(): Promise<string[]> {
    const active = await this.#connection.call(async () => {
      const queues = await this.#allQueues();
      return (await Promise.all(queues.map((queue) => queue.getActive()))).flat();
    });
    return active.sort((a, b) => (a.processedOn ?? 0) - (b.processedOn ?? 0)).map((job) => job.id as string);
  }

  progress(jobId: string): Promise<JobProgress | undefined> {
    return this.#live.progress(jobId);
  }

  preview(jobId: string): Promise<JobPreview | undefined> {
    return this.#live.preview(jobId);
  }

  /** Place among the jobs waiting for the same model (BullMQ pushes on the left, workers take from the right). */
  async position(jobId: string): Promise<number | undefined> {
    const model = await this.#modelOf(jobId);
    if (model === undefined) return undefined;
    const waitKey = this.#queue(model).keys.wait as string;
    return this.#connection.call(async (redis) => {
      const [index, length] = await Promise.all([redis.lpos(waitKey, jobId), redis.llen(waitKey)]);
      return index === null ? undefined : length - 1 - index;
    });
  }

  async counts(): Promise<QueueCounts> {
    return this.#connection.call(async () => {
      const queues = await this.#allQueues();
      const counts = await Promise.all(queues.map((queue) => queue.getJobCounts('wait', 'prioritized', 'delayed', 'active')));
      const total: QueueCounts = { waiting: 0, running: 0 };
      for (const count of counts) {
        total.waiting += (count.wait ?? 0) + (count.prioritized ?? 0) + (count.delayed ?? 0);
        total.running += count.active ?? 0;
      }
      return total;
    });
  }

  subscribe(listener: (event: QueueEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops taking jobs. Queued and running jobs are the workers' business and go on. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#sweeper);
    await this.#unsubscribe?.();
    await Promise.all([...this.#queues.values()].map((queue) => queue.close()));
  }

  #queue(model: string): Queue {
    let queue = this.#queues.get(model);
    if (!queue) {
      queue = new Queue(queueName(model), { connection: this.#connection.redis, prefix: this.#keys.bullPrefix, skipWaitingForReady: true });
      queue.on('error', () => {});
      this.#queues.set(model, queue);
    }
    return queue;
  }

  async #allQueues(): Promise<Queue[]> {
    const models = await this.#connection.redis.smembers(this.#keys.models);
    return models.map((model) => this.#queue(model));
  }

  async #modelOf(jobId: string): Promise<string | undefined> {
    return (await this.#store.read(jobId))?.model;
  }

  // Resolves true once the job's worker says it settled (or the job left BullMQ), false on timeout.
  #settled(jobId: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (result: boolean): void => {
        clearTimeout(timer);
        clearInterval(poll);
        unsubscribe();
        resolve(result);
      };
      const unsubscribe = this.subscribe((event) => {
        if (event.jobId === jobId && event.type === 'settled') done(true);
      });
      const timer = setTimeout(() => done(false), timeoutMs);
      // A worker that settled between the state read and the subscription sent its event already.
      const poll = setInterval(() => {
        void this.#modelOf(jobId).then(async (model) => {
          if (model === undefined || await this.#queue(model).getJobState(jobId) !== 'active') done(true);
        }, () => {});
      }, 500);
    });
  }

  // Jobs for a model that no live worker has offered for --no-worker-timeout fail with NO_WORKER.
  // Every API process sweeps; BullMQ's remove() lets exactly one of them have each job.
  async #failJobsWithoutWorker(): Promise<void> {
    const models = await this.#connection.call((redis) => redis.smembers(this.#keys.models));
    const offers = await this.#workers.live();
    const now = Date.now();
    const offered = new Set(offers.flatMap((offer) => offer.models.map((entry) => entry.name)));
    for (const model of models) {
      if (offered.has(model)) {
        this.#lastOffered.set(model, now);
        continue;
      }
      const since = this.#lastOffered.get(model) ?? this.#startedAt;
      const queue = this.#queue(model);
      for (const job of await queue.getJobs(['wait', 'prioritized', 'delayed', 'active'])) {
        if (!job.id || now - Math.max(since, job.timestamp) < this.#options.noWorkerTimeoutMs) continue;
        if (await queue.remove(job.id) !== 1) continue;
        const names = [...offered].sort();
        await this.#store.setState(job.id, 'FAILED', {
          code: jobErrorCodes.noWorker,
          message: `No worker offers model ${JSON.stringify(model)} (waited ${Math.round(this.#options.noWorkerTimeoutMs / 1000)} s, `
            + `--no-worker-timeout); ${names.length > 0 ? `workers offer: ${names.join(', ')}` : 'no worker is running'}`,
        }).catch(() => undefined);
        await this.#live.finish(job.id);
      }
    }
  }
}
