// sdnode's HTTP server: one job queue, one model registry, many API dialects. `startServer()`
// wires the job store, the queue, the models and the Express app together.

import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';

import type { LoadOptions } from '../lib/index.js';
import { dialectNames, selectDialects, type DialectName } from './dialects/index.js';
import type { TaskAuthSettings } from './dialects/tasks/users.js';
import { ApiRegistry } from './http/api.js';
import { checkApiPrefix } from './http/api-prefix.js';
import { createApp } from './http/app.js';
import { ApiKeys } from './http/auth.js';
import type { Dialect, ServerContext, WriteLine } from './http/context.js';
import { AllowedHosts } from './http/origin.js';
import { terminalJobLog } from './jobs/log.js';
import { EmbeddedQueue, type JobQueue } from './jobs/queue.js';
import { defaultRetentionMs, sweepEvery } from './jobs/retention.js';
import { createWorkflowRunner } from './dialects/comfyui/executor.js';
import { createJobProcessor, type ImageModel } from './jobs/runner.js';
import type { ImageSafetyChecker } from './jobs/safety.js';
import { JobService } from './jobs/service.js';
import { FileJobStore, type JobStore } from './jobs/store.js';
import type { ModelComponentSet } from './models/components.js';
import { controlNetFolder, embeddingsFolder, loraFolder, openModelsAndChecker, upscalerFolder } from './models/loader.js';
import { loadPresets, type PresetTable } from './models/presets.js';
import type { ModelCatalog } from './models/registry.js';
import { UpscalerCatalog } from './models/upscalers.js';
import { redisJobSystem } from './redis-jobs.js';
import { packageVersion } from './version.js';

export type { ImageModel } from './jobs/runner.js';
export type { JobQueue, JobProcessor, QueuedJob, QueueCounts } from './jobs/queue.js';
export { dialectNames, type DialectName } from './dialects/index.js';

export interface ServerOptions {
  /** Checkpoint to serve as the default model, or a JSON file naming its component files (README, Flux). */
  modelPath?: string;
  /**
   * The default model as component files (`sdnode serve --diffusion-model … --clip-l … --t5xxl …
   * --vae …`), in place of modelPath; named after the diffusion model's file.
   */
  modelComponents?: ModelComponentSet;
  /** T5's spiece.model or tokenizer.json for models with a T5 encoder whose components name none. */
  t5Tokenizer?: string;
  /**
   * Folder whose checkpoints (.safetensors, .gguf, subfolders too) are all served by name, and the
   * models in it given as component files (a JSON file naming them, or a folder of them).
   */
  modelsDir?: string;
  /**
   * Requests may name a model reference (a catalogue name such as sd-turbo, hf:…, https://…) that
   * is not downloaded yet: its job downloads it into `modelsDir` (else SDNODE_MODELS or the per-user
   * cache) first (`--allow-pull`). Not with `redis`: there the workers load the models.
   */
  allowPull?: boolean;
  /** A model already loaded: the default; the caller keeps it (close() does not close it). */
  model?: ImageModel;
  /** Models resident at once (least recently used unloaded first). Default 1. */
  maxLoaded?: number;
  /** How models are loaded (`components` for a model given as component files); default the library's loadModel with the options below. */
  loadModel?: (checkpointPath: string, components?: ModelComponentSet) => Promise<ImageModel>;
  /** TCP port; 0 picks a free one. Default 8888. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /**
   * Host names (besides IP addresses and localhost) that requests may name in Host, and web pages
   * in Origin (".example.com": any name under it). Others get 403: DNS rebinding and cross-site
   * form posts stop there.
   */
  allowedHosts?: string[];
  /**
   * Path every route is served under (APIs, /docs, /openapi.json, /health, the web page), e.g. '/sd':
   * then POST /sd/sdapi/v1/txt2img, and the URLs in answers start with /sd. Starts with /, no
   * trailing slash, letters, digits, - . _ ~ in its segments. Default none.
   */
  apiPrefix?: string;
  /** Jobs generated at the same time. Default 1. */
  concurrency?: number;
  /** Folder holding one sub-folder per job. Default ./output. */
  outputDir?: string;
  /** Folder ComfyUI's /upload/image writes and its LoadImage node reads. Default <outputDir>/comfyui-input. */
  comfyuiInputDir?: string;
  /** PEM certificate and key files; HTTPS when both are given. */
  cert?: string;
  key?: string;
  /** Delete jobs an earlier run left unfinished instead of resuming them. */
  deleteIncomplete?: boolean;
  /** Passed to loadModel(). */
  threads?: number;
  backend?: LoadOptions['backend'];
  prediction?: LoadOptions['prediction'];
  weightType?: LoadOptions['weightType'];
  /**
   * Folder of LoRA files that prompts select with <lora:NAME:weight>. Default: the models folder's
   * `Lora` when it exists, else its `loras`; none without `modelsDir`.
   */
  loraDir?: string;
  /** Folder of textual-inversion embeddings that prompts name. Default: the models folder's `embeddings`; none without `modelsDir`. */
  embeddingsDir?: string;
  /**
   * Folder of ESRGAN-family upscalers (.safetensors, .gguf) for A1111's extras routes and
   * /sdapi/v1/upscalers, by file name. Default: the models folder's `ESRGAN` when it exists, else its
   * `upscale_models`; none without `modelsDir`.
   */
  upscalerDir?: string;
  /**
   * Folder of ControlNet files that requests name (A1111's alwayson_scripts.controlnet and its
   * /controlnet routes). Default: the models folder's `ControlNet` when it exists, else its
   * `controlnet`; none without `modelsDir`.
   */
  controlNetDir?: string;
  /** A TAESD decoder file loaded with every model (`--taesd`): live previews show its decode. */
  taesd?: string;
  /**
   * Models given as components (FLUX.1, SD3): never hold the transformer and the text encoders at
   * once (`--low-memory`; the library's `lowMemory` load option).
   */
  lowMemory?: boolean;
  /** Jobs that may wait for a worker, all dialects together; beyond that requests are refused. Default 100. */
  maxQueue?: number;
  /** Largest upload per file, in MB. Default 20. */
  maxUploadMb?: number;
  /** API keys; when any is given, routes that generate, list or return images need one. */
  apiKeys?: string[];
  /**
   * AUTOMATIC1111's --api-auth: "user:pass" pairs for HTTP basic auth, taken wherever an API key is
   * (every generating route of every API once any credential is set).
   */
  apiAuth?: string[];
  /** Hosts whose image URLs the task API may fetch (--allow-fetch). */
  allowFetch?: string[];
  /** The task API's users and tokens (SECRET_KEY, ENABLE_PUBLIC_ACCESS, … in the environment). */
  tasks?: Partial<TaskAuthSettings>;
  /** Dialects to mount. Default all. */
  apis?: DialectName[];
  /** OpenAI model names → generation settings (AUTOMATIC1111 field names): a file path or the table. */
  presets?: string | PresetTable;
  /** Lifetime of OpenAI `url` results, in seconds. Default 3600. */
  urlTtlSeconds?: number;
  /** Sampling steps between live previews; 0 turns them off. Default 1. */
  previewEvery?: number;
  /**
   * Safety checker file (CompVis/stable-diffusion-safety-checker, .safetensors), loaded at start;
   * the APIs that report `nsfw` use it. Without one they report null.
   */
  safetyCheckerPath?: string;
  /** A safety checker already loaded (the caller keeps it); takes the place of safetyCheckerPath. */
  safetyChecker?: ImageSafetyChecker;
  /** Where progress and errors are written. Default console.log. */
  log?: WriteLine;
  /**
   * Redis URL (redis://host:6379/0): jobs, uploads, results and progress live there, shared with
   * other API processes and `sdnode worker` processes on any machine; `outputDir` is not used.
   */
  redis?: string;
  /** With `redis`: jobs this process generates itself; 0 makes it API-only. Default 1 with a model, else 0. */
  workers?: number;
  /**
   * Hours finished jobs and their images are kept (files or Redis), and the task API's blobs and
   * its events in memory. Default 24.
   */
  retentionHours?: number;
  /** With `redis`: seconds a job waits for a worker that offers its model before it fails. Default 60. */
  noWorkerTimeoutSeconds?: number;
  /** With `redis`: times a job is started before it fails (a worker that dies mid-job costs one). Default 3. */
  attempts?: number;
  /** With `redis`: seconds after which the job of a worker that stopped answering goes to another. Default 30. */
  stalledSeconds?: number;
}

/** Where jobs are kept and run: files and an in-process queue, or Redis and BullMQ. */
export interface JobSystem {
  store: JobStore;
  queue: JobQueue;
  models: ModelCatalog;
  /** Once the port is ours: picks up (or deletes) what an earlier run left unfinished. */
  resume(jobs: JobService): Promise<{ resumed: number; deleted: number }>;
  /** Stops taking jobs; resolves once this process's workers are idle. */
  drain(options: { abort?: boolean }): Promise<void>;
  /** Closes models and connections, after the HTTP server. */
  dispose(): Promise<void>;
}

export interface RunningServer {
  /** Base URL of the routes, e.g. http://127.0.0.1:8888 (with apiPrefix '/sd': http://127.0.0.1:8888/sd). */
  url: string;
  server: http.Server | https.Server;
  /** Jobs resumed or deleted from an earlier run. */
  unfinished: { resumed: number; deleted: number };
  /** Where jobs are kept, for people: the output folder, or Redis. */
  jobsLocation: string;
  /** Preset fields sdnode does not use, one line each (also logged at start). */
  presetWarnings: string[];
  /** What the dialects want said at start-up (e.g. a link with a token). */
  welcome: string[];
  /** The APIs where anyone who reaches the server can generate: no credential is needed there. */
  openApis: string[];
  /**
   * Stops taking jobs (503), lets running images finish (or abandons them with `abort`; either
   * way the jobs resume at the next start), then closes the server and the models it loaded.
   */
  close(options?: { abort?: boolean }): Promise<void>;
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => console.log(line));
  const apiPrefix = checkApiPrefix(options.apiPrefix ?? '', 'apiPrefix');
  const system = options.redis !== undefined ? await redisJobSystem(options.redis, options, log) : await embeddedJobSystem(options, log);
  const { store, queue, models } = system;
  const tls = options.cert !== undefined || options.key !== undefined ? await readTls(options) : undefined;
  const presets = await loadPresets(options.presets);
  for (const warning of presets.warnings) log(`presets: ${warning}`);
  const jobs = new JobService(store, queue);

  let accepting = true;
  const context: ServerContext = {
    jobs,
    models,
    api: new ApiRegistry(),
    keys: new ApiKeys(options.apiKeys ?? [], options.apiAuth ?? []),
    // The name the server listens on is one it answers for.
    allowedHosts: new AllowedHosts([...(options.allowedHosts ?? []), ...(isIP(options.host ?? '') === 0 && options.host ? [options.host] : [])]),
    maxUploadBytes: Math.round((options.maxUploadMb ?? 20) * 1024 * 1024),
    acceptingJobs: () => accepting,
    log,
    apiPrefix,
  };
  const dialects = selectDialects(options.apis ?? [...dialectNames], context, {
    openai: { presets: presets.table, urlTtlSeconds: options.urlTtlSeconds ?? 3600, urlSecret: await store.secret() },
    a1111: {
      loraDir: loraFolder(options.loraDir, options.modelsDir),
      embeddingsDir: embeddingsFolder(options.embeddingsDir, options.modelsDir),
      controlNetDir: controlNetFolder(options.controlNetDir, options.modelsDir),
      upscalers: new UpscalerCatalog(upscalerFolder(options.upscalerDir, options.modelsDir), { threads: options.threads, backend: options.backend }),
    },
    comfyui: {
      inputDir: comfyuiInputDir(options), loraDir: loraFolder(options.loraDir, options.modelsDir),
      upscalerDir: upscalerFolder(options.upscalerDir, options.modelsDir), controlNetDir: controlNetFolder(options.controlNetDir, options.modelsDir),
    },
    sdcpp: { loraDir: loraFolder(options.loraDir, options.modelsDir), maxQueue: options.maxQueue ?? 100 },
    tasks: {
      outputDir: path.resolve(options.outputDir ?? 'output'),
      retentionMs: retention(options),
      allowFetch: options.allowFetch ?? [],
      tokenTtlSeconds: options.tasks?.tokenTtlSeconds ?? 7 * 24 * 3600,
      enablePublicAccess: options.tasks?.enablePublicAccess ?? false,
      enableSignup: options.tasks?.enableSignup ?? false,
      printLinkWithToken: options.tasks?.printLinkWithToken ?? false,
      ...(options.tasks?.secretKey !== undefined && { secretKey: options.tasks.secretKey }),
      ...(options.tasks?.baseUrl !== undefined && { baseUrl: options.tasks.baseUrl }),
    },
  });
  const app = createApp(context, dialects, packageVersion());
  const server = tls ? https.createServer(tls, app) : http.createServer(app);
  for (const dialect of dialects) dialect.attach?.(server);
  closeOtherUpgrades(server, dialects);
  try {
    await listen(server, options.port ?? 8888, options.host ?? '127.0.0.1');
  } catch (error) {
    await system.drain({ abort: true });
    await system.dispose();
    throw error;
  }
  // Only once the port is ours: a second server started by mistake must not touch the jobs.
  const unfinished = await system.resume(jobs);

  let closing: Promise<void> | undefined;
  const close = (closeOptions: { abort?: boolean } = {}): Promise<void> => {
    accepting = false;
    const drained = system.drain(closeOptions);
    closing ??= (async () => {
      await drained;
      await closeServer(server);
      for (const dialect of dialects) await dialect.close?.();
      await system.dispose();
    })();
    return closing;
  };
  const url = serverUrl(server, tls !== undefined) + apiPrefix;
  const welcome = (await Promise.all(dialects.map((dialect) => dialect.welcome?.(url) ?? Promise.resolve([])))).flat();
  const openApis = dialects.filter((dialect) => dialect.open?.() ?? !context.keys.enabled).map((dialect) => dialect.name);
  return { url, server, unfinished, jobsLocation: store.location, presetWarnings: presets.warnings, welcome, openApis, close };
}

async function embeddedJobSystem(options: ServerOptions, log: WriteLine): Promise<JobSystem> {
  const store = await FileJobStore.open(options.outputDir ?? 'output');
  // Before the port opens, as before: a bad checkpoint stops the start.
  const { models, safety } = await openModelsAndChecker(options, log);

  const processor = createJobProcessor({
    store, models, log: terminalJobLog(log), previewEvery: options.previewEvery ?? 1, safetyChecker: safety.checker,
    runWorkflow: createWorkflowRunner({
      inputDir: comfyuiInputDir(options), loraDir: loraFolder(options.loraDir, options.modelsDir),
      upscalerDir: upscalerFolder(options.upscalerDir, options.modelsDir), controlNetDir: controlNetFolder(options.controlNetDir, options.modelsDir),
    }),
  });
  const queue = new EmbeddedQueue(processor, {
    concurrency: options.concurrency ?? 1,
    maxWaiting: options.maxQueue ?? 100,
    onProcessorError: (jobId, error) => log(`[${jobId.slice(0, 8)}] error: ${describe(error)}`),
  });
  const retentionMs = retention(options);
  const stopSweeping = sweepEvery(retentionMs, () => store.removeFinishedBefore(Date.now() - retentionMs), log);
  return {
    store,
    queue,
    models,
    resume: async (jobs) => {
      await store.removeLeftovers();
      // Without a model, unfinished jobs wait on disk for a start that has one.
      return models.configured || options.deleteIncomplete
        ? jobs.resumeUnfinished({ deleteIncomplete: options.deleteIncomplete ?? false })
        : { resumed: 0, deleted: 0 };
    },
    drain: (drainOptions) => queue.close(drainOptions),
    dispose: async () => {
      stopSweeping();
      await models.closeAll();
      await safety.close();
    },
  };
}

function comfyuiInputDir(options: ServerOptions): string {
  return path.resolve(options.comfyuiInputDir ?? path.join(options.outputDir ?? 'output', 'comfyui-input'));
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

// A websocket upgrade that no API takes would hold its socket open until the client gives up.
function closeOtherUpgrades(server: http.Server | https.Server, dialects: readonly Dialect[]): void {
  const paths = new Set(dialects.flatMap((dialect) => dialect.upgradePaths ?? []));
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    if (!paths.has(new URL(req.url ?? '/', 'http://localhost').pathname)) socket.destroy();
  });
}

/** --retention in milliseconds. */
function retention(options: ServerOptions): number {
  return options.retentionHours === undefined ? defaultRetentionMs : options.retentionHours * 3600 * 1000;
}
