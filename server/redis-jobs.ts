// `sdnode serve --redis`: the job system in Redis. Jobs, uploads and results in RedisJobStore, one
// BullMQ queue per model, models as the workers offer them, and (unless --workers 0) workers in
// this process too. API processes hold no job state of their own: restarting one loses nothing.

import type { JobSystem, ServerOptions } from './index.js';
import { BullMqQueue } from './jobs/bullmq-queue.js';
import type { WriteLine } from './jobs/log.js';
import { RedisConnection, redisKeys } from './jobs/redis.js';
import { RedisJobStore } from './jobs/redis-store.js';
import { hasDefaultModel } from './models/loader.js';
import { RemoteModelRegistry, WorkerDirectory } from './models/remote-registry.js';
import { startWorker, type RunningWorker } from './worker.js';

export async function redisJobSystem(redis: string, options: ServerOptions, log: WriteLine): Promise<JobSystem> {
  const keys = redisKeys();
  const connection = await RedisConnection.open(redis, 'client', log);
  const attempts = options.attempts ?? 3;
  const lockDurationMs = (options.stalledSeconds ?? 30) * 1000;
  let queue: BullMqQueue | undefined;
  let worker: RunningWorker | undefined;
  try {
    const store = new RedisJobStore(connection, keys, { retentionMs: (options.retentionHours ?? 24) * 3600 * 1000 });
    const directory = new WorkerDirectory(connection, keys);
    const defaultName = options.model?.path ?? options.modelPath ?? options.modelComponents?.diffusionModel;
    const noWorkerTimeoutMs = (options.noWorkerTimeoutSeconds ?? 60) * 1000;
    const models = new RemoteModelRegistry(directory, connection, keys, { defaultName, rememberMs: noWorkerTimeoutMs });
    queue = await BullMqQueue.open(connection, await connection.duplicate(), keys, store, directory, {
      maxWaiting: options.maxQueue ?? 100,
      attempts,
      noWorkerTimeoutMs,
      lockDurationMs,
      log,
    });
    const hasModel = hasDefaultModel(options) || options.modelsDir !== undefined;
    const localWorkers = options.workers ?? (hasModel ? 1 : 0);
    if (localWorkers > 0) {
      worker = await startWorker({
        ...options,
        redis,
        concurrency: localWorkers * (options.concurrency ?? 1),
        attempts,
        lockDurationMs,
        log,
      });
    }
    const running = { queue, worker };
    return {
      store,
      queue,
      models,
      resume: async () => ({ resumed: 0, deleted: 0 }),
      drain: async (drainOptions) => {
        await Promise.all([running.queue.close(), running.worker?.close(drainOptions)]);
      },
      dispose: () => connection.close(),
    };
  } catch (error) {
    await worker?.close({ abort: true });
    await queue?.close();
    await connection.close();
    throw error;
  }
}
