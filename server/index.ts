// sdnode's HTTP server: the M1 REST API over the library. `startServer()` wires the task store,
// the queue, the model and the Express app together; `createApp()` is the app alone.

import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { loadModel, Model, type LoadOptions } from '../lib/index.js';
import { createApp } from './app.js';
import { terminalTaskLog, type WriteLine } from './log.js';
import { EmbeddedQueue, type TaskProcessor } from './queue.js';
import { createTaskProcessor, type ImageModel } from './task-runner.js';
import { TaskStore } from './task-store.js';
import { TaskService } from './tasks.js';

export { createApp, type AppContext } from './app.js';
export type { ImageModel } from './task-runner.js';
export type { TaskQueue, TaskProcessor, TaskJob, QueueCounts } from './queue.js';

export interface ServerOptions {
  /** Checkpoint to load once at start. Without it (and without `model`) generation answers 503. */
  modelPath?: string;
  /** A model already loaded; the caller keeps it (close() does not close it). Wins over `modelPath`. */
  model?: ImageModel;
  /** TCP port; 0 picks a free one. Default 8888. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Tasks generated at the same time. Default 1. */
  concurrency?: number;
  /** Folder holding one sub-folder per task. Default ./output. */
  outputDir?: string;
  /** PEM certificate and key files; HTTPS when both are given. */
  cert?: string;
  key?: string;
  /** Delete tasks an earlier run left unfinished instead of resuming them. */
  deleteIncomplete?: boolean;
  /** Passed to loadModel(). */
  threads?: number;
  backend?: LoadOptions['backend'];
  prediction?: LoadOptions['prediction'];
  weightType?: LoadOptions['weightType'];
  /** Tasks that may wait for a worker; beyond that POSTs answer 503. Default 100. */
  maxQueue?: number;
  /** Largest upload per file, in MB. Default 20. */
  maxUploadMb?: number;
  /** Where progress and errors are written. Default console.log. */
  log?: WriteLine;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:8888 */
  url: string;
  server: http.Server | https.Server;
  /** Tasks resumed or deleted from an earlier run. */
  unfinished: { resumed: number; deleted: number };
  /**
   * Stops taking tasks (503), lets running images finish (or abandons them with `abort`; either
   * way the tasks resume at the next start), then closes the server and the model it loaded.
   */
  close(options?: { abort?: boolean }): Promise<void>;
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => console.log(line));
  const store = await TaskStore.open(options.outputDir ?? 'output');
  const tls = options.cert !== undefined || options.key !== undefined ? await readTls(options) : undefined;
  const ownModel = options.model === undefined && options.modelPath !== undefined;
  const model = options.model ?? (options.modelPath === undefined ? undefined : await loadModel(options.modelPath, {
    ...(options.backend !== undefined && { backend: options.backend }),
    ...(options.threads !== undefined && { threads: options.threads }),
    ...(options.prediction !== undefined && { prediction: options.prediction }),
    ...(options.weightType !== undefined && { weightType: options.weightType }),
  }));

  if (ownModel && model instanceof Model) log(describeModel(model));

  const processor: TaskProcessor = model
    ? createTaskProcessor({ store, model, log: terminalTaskLog(log) })
    : async () => {
      throw new Error('No model is loaded');
    };
  const queue = new EmbeddedQueue(processor, {
    concurrency: options.concurrency ?? 1,
    maxWaiting: options.maxQueue ?? 100,
    onProcessorError: (taskId, error) => log(`[${taskId.slice(0, 8)}] error: ${describe(error)}`),
  });
  const tasks = new TaskService(store, queue);

  let accepting = true;
  const app = createApp({
    tasks,
    modelName: model === undefined ? undefined : path.basename(model.path),
    maxUploadBytes: Math.round((options.maxUploadMb ?? 20) * 1024 * 1024),
    acceptingTasks: () => accepting,
    log,
  });
  const server = tls ? https.createServer(tls, app) : http.createServer(app);
  try {
    await listen(server, options.port ?? 8888, options.host ?? '127.0.0.1');
  } catch (error) {
    if (ownModel) await model?.close();
    throw error;
  }
  // Only once the port is ours: a second server started by mistake must not touch the tasks.
  await store.removeLeftovers();
  // Without a model, unfinished tasks wait on disk for a start that has one.
  const unfinished = model !== undefined || options.deleteIncomplete
    ? await tasks.resumeUnfinished({ deleteIncomplete: options.deleteIncomplete ?? false })
    : { resumed: 0, deleted: 0 };

  let closing: Promise<void> | undefined;
  const close = (closeOptions: { abort?: boolean } = {}): Promise<void> => {
    accepting = false;
    const drained = queue.close(closeOptions);
    closing ??= (async () => {
      await drained;
      await closeServer(server);
      if (ownModel) await model?.close();
    })();
    return closing;
  };
  return { url: serverUrl(server, tls !== undefined), server, unfinished, close };
}

async function readTls(options: ServerOptions): Promise<{ cert: Buffer; key: Buffer }> {
  if (options.cert === undefined || options.key === undefined) {
    throw new TypeError('HTTPS needs both cert and key (--cert and --key)');
  }
  return { cert: await readFile(options.cert), key: await readFile(options.key) };
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

// In-flight requests are short (uploads and status polls); give them a moment, then cut the rest.
function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), 2000);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

function serverUrl(server: http.Server, secure: boolean): string {
  const { address, port } = server.address() as AddressInfo;
  const host = address === '0.0.0.0' || address === '::' ? 'localhost' : address.includes(':') ? `[${address}]` : address;
  return `${secure ? 'https' : 'http'}://${host}:${port}`;
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

// "Loaded v1-5.gguf: SD 1.x, eps prediction, 1642 MB of weights on cpu".
function describeModel(model: Model): string {
  const { family, prediction, inpainting, weightBytes, backend } = model.info;
  const kind = `${family === 'sd1' ? 'SD 1.x' : 'SD 2.x'}${inpainting ? ' inpainting' : ''}`;
  return `Loaded ${path.basename(model.path)}: ${kind}, ${prediction} prediction, `
    + `${(weightBytes / 2 ** 20).toFixed(weightBytes < 2 ** 30 ? 1 : 0)} MB of weights on ${backend}`;
}
