// Shared by the server tests: start a server per test, send real multipart requests, poll
// tasks, run the CLI in a child process, and a fake model for the tests that exercise the HTTP
// and queue behaviour rather than the engine.

import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import sharp from 'sharp';
import type { Test } from 'tap';

import type { GeneratedImage, ImageOptions, Progress, TextToImageOptions } from '../lib/index.js';
import { startServer, type ImageModel, type RunningServer, type ServerOptions } from '../server/index.js';

export interface TestServer {
  url: string;
  outputDir: string;
  close: RunningServer['close'];
}

/**
 * A fresh folder for server output. tap deletes a testdir when the test ends, before teardowns
 * registered after it run; registering one first puts every teardown (closing servers that still
 * write there) ahead of the deletion.
 */
export function outputTestdir(t: Test): string {
  t.teardown(() => {});
  return t.testdir();
}

/** A server on a free port with its output in a fresh test folder, closed after the test. */
export async function startTestServer(t: Test, options: ServerOptions = {}): Promise<TestServer> {
  const outputDir = options.outputDir ?? outputTestdir(t);
  // One thread per model, as the library tests use: two test files run at once on two cores.
  const running = await startServer({ port: 0, log: () => {}, threads: 1, backend: 'cpu', ...options, outputDir });
  t.teardown(() => running.close({ abort: true }));
  return { url: running.url, outputDir, close: running.close };
}

/** The entries of an output folder, less the key it keeps for signing result links. */
export async function jobFolders(outputDir: string): Promise<string[]> {
  return (await readdir(outputDir)).filter((name) => name !== '.url-secret');
}

export interface FileField {
  data: Uint8Array;
  type?: string;
  filename?: string;
}

/** Every field any endpoint answers with; which are present is what the tests check. */
export interface ApiBody {
  status?: string;
  resultUrl?: string;
  imageUrls?: string[];
  previewUrl?: string;
  loaded?: string[];
  progress?: { currentImageIndex: number; currentImageProgress: number; totalImages: number };
  error?: { code: string; message: string };
  ready?: boolean;
  model?: string | null;
  hint?: string;
  queue?: { waiting: number; running: number };
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: ApiBody;
}

/** POSTs a multipart/form-data body, as `curl -F` does. */
export async function postForm(url: string, fields: Record<string, string>, files: Record<string, FileField> = {}):
  Promise<JsonResponse> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const [name, file] of Object.entries(files)) {
    form.append(name, new Blob([Uint8Array.from(file.data)], { type: file.type ?? 'application/octet-stream' }), file.filename ?? `${name}.png`);
  }
  return json(await fetch(url, { method: 'POST', body: form }));
}

export async function getJson(url: string, init?: RequestInit): Promise<JsonResponse> {
  return json(await fetch(url, init));
}

async function json(response: Response): Promise<JsonResponse> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as ApiBody };
}

/** Polls a result URL until `done` says so; returns every distinct status body seen, in order. */
export async function pollTask(url: string, done: (body: ApiBody) => boolean, timeoutMs = 60_000): Promise<ApiBody[]> {
  const seen: ApiBody[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await getJson(url);
    if (status !== 200) throw new Error(`GET ${url} answered ${status}: ${JSON.stringify(body)}`);
    if (JSON.stringify(seen.at(-1)) !== JSON.stringify(body)) seen.push(body);
    if (done(body)) return seen;
    if (Date.now() > deadline) throw new Error(`Timed out polling ${url}; last: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resolves once `check` holds, looking every 10 ms; throws after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('Timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function solidPng(width: number, height: number, gray = 128): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: gray, g: gray, b: gray } } }).png().toBuffer();
}

/** Which library method a FakeModel call went to. */
export type FakeCall = TextToImageOptions & { method: 'textToImage' | 'imageToImage' | 'inpaint' };

/**
 * A stand-in for the library's Model: each image takes `steps` progress callbacks that wait for
 * `release()` (or run freely once `open` is set), honours the abort signal, and sends a preview
 * with the progress when the call asks for them (`previewEvery`).
 */
export class FakeModel implements ImageModel {
  readonly path: string;
  readonly calls: FakeCall[] = [];
  failWith: Error | undefined;
  closed = false;
  #gate = new Gate();

  constructor(options: { open?: boolean; path?: string } = {}) {
    if (options.open ?? true) this.#gate.openForever();
    this.path = options.path ?? '/models/fake-model.safetensors';
  }

  /**
   * Lets one step go on, whether it waits already or reaches its wait later (a permit is never
   * lost); with `open`, every step from now on.
   */
  release(options: { open?: boolean } = {}): void {
    if (options.open) this.#gate.openForever();
    else this.#gate.release();
  }

  async textToImage(options: ImageOptions): Promise<GeneratedImage[]> {
    return this.#generate({ ...options, method: 'textToImage' });
  }

  async imageToImage(options: ImageOptions): Promise<GeneratedImage[]> {
    return this.#generate({ ...options, method: 'imageToImage' });
  }

  async inpaint(options: ImageOptions): Promise<GeneratedImage[]> {
    return this.#generate({ ...options, method: 'inpaint' });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async #generate(options: FakeCall): Promise<GeneratedImage[]> {
    this.calls.push(options);
    if (this.failWith) throw this.failWith;
    const steps = options.steps ?? 4;
    const width = options.width ?? 64;
    const height = options.height ?? 64;
    const seed = options.seed ?? 0;
    const every = options.previewEvery ?? 0;
    for (let step = 1; step <= steps; step++) {
      await this.#gate.acquire(options.signal);
      if (options.signal?.aborted) throw Object.assign(new Error('aborted'), { code: 'ERR_ABORTED' });
      const wantsPreview = every > 0 && (step % every === 0 || step === steps);
      const preview = wantsPreview
        ? { png: await solidPng(width / 8, height / 8, (seed + step) % 256), width: width / 8, height: height / 8, step }
        : undefined;
      const progress: Progress = {
        step, steps, pass: 'first', passStep: step, passSteps: steps, image: 0, images: 1, elapsedMs: 1, ...(preview && { preview }),
      };
      options.onProgress?.(progress);
    }
    return [{ png: await solidPng(width, height, seed % 256), seed, subseed: 0, subseedStrength: 0, width, height, parameters: '' }];
  }
}

/**
 * A counting semaphore: `release()` adds a permit, `acquire()` takes one or waits for one (or for
 * the abort signal). A release that comes before the wait stays counted.
 */
export class Gate {
  #permits = 0;
  #forever = false;
  #waiters: (() => void)[] = [];

  release(): void {
    this.#permits++;
    this.#waiters.shift()?.();
  }

  openForever(): void {
    this.#forever = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    while (!this.#forever && this.#permits === 0) {
      if (signal?.aborted) return;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          this.#waiters = this.#waiters.filter((waiter) => waiter !== wake);
          resolve();
        };
        this.#waiters.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    if (!this.#forever) this.#permits--;
  }
}

const cliModule = fileURLToPath(new URL('../server/cli.ts', import.meta.url));

/**
 * Runs `sdnode <args>` in a child process, straight from the TypeScript sources (bin/sdnode.js
 * needs dist/, which tests do not build).
 */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess & { output: () => string } {
  const script = `import { main } from ${JSON.stringify(cliModule)}; process.exitCode = await main(process.argv.slice(1));`;
  const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', script, '--', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return Object.assign(child, { output: () => output });
}

/** Resolves when the child has printed text matching `pattern`. */
export function waitForOutput(child: ChildProcess & { output: () => string }, pattern: RegExp, timeoutMs = 60_000):
  Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const match = child.output().match(pattern);
      if (match) {
        cleanup();
        resolve(match);
      }
    };
    const onExit = (): void => {
      cleanup();
      reject(new Error(`The CLI exited before printing ${pattern}:\n${child.output()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Timed out waiting for ${pattern}:\n${child.output()}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', check);
      child.stderr?.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.on('exit', onExit);
    check();
  });
}

export function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
