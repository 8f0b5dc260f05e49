// A worker with --redis (`sdnode worker`, and the local workers of `sdnode serve --redis`): it
// offers the checkpoints it has in Redis with a heartbeat, takes jobs for them from their BullMQ
// queues, and runs them with the same job runner as the embedded queue.

import { hostname } from 'node:os';
import path from 'node:path';

import { isKontext } from './dialects/kontext.js';
import { JobWorkers } from './jobs/bullmq-worker.js';
import { terminalJobLog, type WriteLine } from './jobs/log.js';
import { RedisConnection, redisKeys } from './jobs/redis.js';
import { RedisJobStore } from './jobs/redis-store.js';
import { createWorkflowRunner } from './dialects/comfyui/executor.js';
import { createJobProcessor, type ImageModel } from './jobs/runner.js';
import type { ModelComponentSet } from './models/components.js';
import { FileHashes } from './models/hashes.js';
import {
  controlNetFolder, loraFolder, upscalerFolder, openModelsAndChecker, type ModelSources, type SafetyCheckerSource,
} from './models/loader.js';
import type { ModelEntry } from './models/registry.js';
import { heartbeatMs, newWorkerId, WorkerDirectory } from './models/remote-registry.js';

export interface WorkerOptions extends ModelSources, SafetyCheckerSource {
  /** Redis URL, e.g. redis://host:6379/0. */
  redis: string;
  /** A checkpoint (or a JSON file naming a model's components) to offer, loaded at start. */
  modelPath?: string;
  /** A folder whose checkpoints (subfolders too) are all offered, by name. */
  modelsDir?: string;
  /** A model already loaded, offered as the default; the caller keeps it. */
  model?: ImageModel;
  /** Models resident at once. Default 1. */
  maxLoaded?: number;
  /** How models are loaded (`components` for a model given as component files); default the library's loadModel with the engine options. */
  loadModel?: (checkpointPath: string, components?: ModelComponentSet) => Promise<ImageModel>;
  /** Jobs run at once. Default 1. */
  concurrency?: number;
  /** Times a job is started before it fails (a worker that dies mid-job costs one). Default 3. */
  attempts?: number;
  /** A worker that stopped answering loses its job to another after this long. Default 30 000. */
  lockDurationMs?: number;
  /** Sampling steps between live previews; 0 turns them off. Default 1. */
  previewEvery?: number;
  /** The API processes' ComfyUI input folder (shared), which LoadImage reads. Default ./output/comfyui-input. */
  comfyuiInputDir?: string;
  log?: WriteLine;
}

export interface RunningWorker {
  id: string;
  /** Names of the models offered now. */
  models(): string[];
  /** Takes no more jobs; running ones finish their image (or stop with `abort`) and go back to their queue. */
  close(options?: { abort?: boolean }): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const log = options.log ?? ((line: string) => console.log(line));
  const { models, safety } = await openModelsAndChecker(options, log);

  const keys = redisKeys();
  let connection: RedisConnection;
  try {
    connection = await RedisConnection.open(options.redis, 'worker', log);
  } catch (error) {
    await models.closeAll();
    await safety.close();
    throw error;
  }
  const id = newWorkerId();
  const concurrency = options.concurrency ?? 1;
  const attempts = options.attempts ?? 3;
  let workers: JobWorkers;
  try {
    const store = new RedisJobStore(connection, keys, { retentionMs: 0 });
    const processor = createJobProcessor({
      store, models, log: terminalJobLog(log), previewEvery: options.previewEvery ?? 1, safetyChecker: safety.checker,
      runWorkflow: createWorkflowRunner({
        inputDir: path.resolve(options.comfyuiInputDir ?? 'output/comfyui-input'), loraDir: loraFolder(options.loraDir, options.modelsDir),
        upscalerDir: upscalerFolder(undefined, options.modelsDir), controlNetDir: controlNetFolder(options.controlNetDir, options.modelsDir),
      }),
    });
    workers = await JobWorkers.start(connection, await connection.duplicate(), keys, store, processor, {
      concurrency, attempts, lockDurationMs: options.lockDurationMs ?? 30_000, name: id, log,
    });
  } catch (error) {
    await connection.close();
    await models.closeAll();
    await safety.close();
    throw error;
  }

  const directory = new WorkerDirectory(connection, keys);
  const hashes = new FileHashes();
  const known = new Map<string, string>();
  let offered: string[] = [];
  const heartbeat = async (): Promise<void> => {
    const entries = await models.list();
    const offers = await Promise.all(entries.map(async (entry): Promise<ModelEntry> => {
      // The API processes cannot read the files that tell Kontext apart (--kontext, "kontext": true, the family).
      const kontext = await isKontext(entry);
      const sha256 = known.get(entry.path);
      // A hash, once computed, is offered at once rather than at the next beat.
      if (sha256 === undefined) {
        void hashes.sha256(entry.path).then((hash) => {
          known.set(entry.path, hash);
          void heartbeat().catch(() => {});
        }, () => {});
      }
      return { ...entry, kontext, ...(sha256 !== undefined && { sha256 }) };
    }));
    await directory.advertise({ id, host: hostname(), pid: process.pid, concurrency, models: offers, loaded: models.loadedNames() });
    offered = entries.map((entry) => entry.name);
    await workers.offer(offered);
  };
  await heartbeat();
  // Redis being away is reported by the connection; the next beat after it returns re-offers.
  const timer = setInterval(() => void heartbeat().catch(() => {}), heartbeatMs);

  let closing: Promise<void> | undefined;
  return {
    id,
    models: () => offered,
    close: (closeOptions = {}) => {
      clearInterval(timer);
      const drained = workers.close(closeOptions);
      closing ??= (async () => {
        await directory.withdraw(id).catch(() => {});
        await drained;
        await connection.close();
        await models.closeAll();
        await safety.close();
      })();
      return closing;
    },
  };
}
