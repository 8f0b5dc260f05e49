// Getting models: `hf:<owner>/<repo>/<file>[@<revision>]`, https URLs and catalogue names resolved to
// files in a models folder, downloaded when asked. A download is written to `<file>.part` and renamed
// only once its size and sha256 are verified, so a file under its own name is always complete. An
// interrupted download (dropped connection, Ctrl-C, an aborted signal) keeps its `.part` so that
// the next pull resumes it with an HTTP Range request; a `.part` whose size or checksum turns out
// wrong is deleted. Models folders list only .safetensors / .gguf / .json, never a `.part`.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { catalogue, type CatalogueEntry, type CatalogueFile } from './catalogue.js';
import { abortError, SdnodeError } from './errors.js';
import type { ModelComponents } from './option-types.js';

/** Options of `pullModel`. */
export interface PullOptions {
  /** Folder the model is written to. Default: `SDNODE_MODELS`, else `$XDG_CACHE_HOME/sdnode/models` (`~/.cache/sdnode/models`). */
  modelsDir?: string;
  /** Called as bytes arrive (at most a few times a second per file, and once at each file's end). */
  onProgress?: (progress: PullProgress) => void;
  /** Stops the download; the `.part` file stays for the next pull to resume. */
  signal?: AbortSignal;
  /** Hugging Face access token for gated models; default `HF_TOKEN`. Sent only to the hub. */
  token?: string;
}

/** How far a pull is. */
export interface PullProgress {
  /** The file being downloaded, as it will be named in the models folder (relative to it). */
  file: string;
  /** Which file of the model this is, from 1, and how many there are. */
  index: number;
  files: number;
  /** Bytes of this file on disk so far, a resumed part included. */
  receivedBytes: number;
  /** Bytes this file has in all, when the server says. */
  totalBytes: number | undefined;
  /** Bytes of this file that were already on disk when the download (re)started. */
  resumedFromBytes: number;
}

/** A model in the models folder, as a reference resolves to it. */
export interface PulledModel {
  /** Its name in the models folder: what `--models` lists and requests pick. */
  name: string;
  /** The checkpoint file, or the component JSON file of a model given as components (absolute). */
  path: string;
  /** For a model of several files: each component file (absolute). */
  components?: ModelComponents;
  /** T5's tokenizer file of a component model that has one (absolute). */
  t5Tokenizer?: string;
}

/** Where sdnode keeps models when not told: `SDNODE_MODELS`, else the per-user cache. */
export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SDNODE_MODELS) return path.resolve(env.SDNODE_MODELS);
  const cache = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(cache, 'sdnode', 'models');
}

/** Whether `text` is a model reference (hf:, http(s):// or a catalogue name) rather than a file path. */
export function isModelReference(text: string): boolean {
  return /^hf:/i.test(text) || /^https?:\/\//i.test(text) || Object.hasOwn(catalogue, text);
}

interface Download { url: string; target: string; relative: string; sha256?: string; bytes?: number }
interface Plan { name: string; reference: string; downloads: Download[]; componentJson?: string; entry?: CatalogueEntry }

const hexSha256 = /^[0-9a-f]{64}$/;

function hubEndpoint(): URL {
  const text = process.env.SDNODE_HF_ENDPOINT ?? 'https://huggingface.co';
  try {
    return new URL(text.endsWith('/') ? text : `${text}/`);
  } catch {
    throw new TypeError(`Expected an http(s) URL for SDNODE_HF_ENDPOINT but received ${JSON.stringify(text)}`);
  }
}

function hubUrl({ repo, file, revision }: CatalogueFile): string {
  const encoded = file.split('/').map(encodeURIComponent).join('/');
  return new URL(`${repo}/resolve/${encodeURIComponent(revision)}/${encoded}`, hubEndpoint()).href;
}

function parseHf(reference: string): CatalogueFile {
  const body = reference.slice('hf:'.length);
  const [owner, repo, ...rest] = body.split('/');
  let file = rest.join('/');
  let revision = 'main';
  const at = file.lastIndexOf('@');
  if (at > 0) {
    revision = file.slice(at + 1);
    file = file.slice(0, at);
  }
  const segments = file.split('/');
  if (!owner || !repo || file === '' || revision === '' || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new TypeError(`Expected hf:<owner>/<repo>/<file>[@<revision>] for the model reference but received ${JSON.stringify(reference)}`);
  }
  return { repo: `${owner}/${repo}`, file, revision };
}

function parseUrl(reference: string): URL {
  let url: URL;
  try {
    url = new URL(reference);
  } catch {
    throw new TypeError(`Expected a valid URL for the model reference but received ${JSON.stringify(reference)}`);
  }
  // Plain http only where nothing can sit in between: the same machine (tests, a local mirror).
  if (url.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new TypeError(`Expected an https:// URL for the model reference but received ${reference} (plain http only for this machine)`);
  }
  return url;
}

function fileNameOf(url: URL, reference: string): string {
  const name = decodeURIComponent(url.pathname.split('/').pop() ?? '');
  if (name === '' || name === '.' || name === '..' || /[\\/]/.test(name)) {
    throw new TypeError(`The model reference ${reference} names no file: its URL must end in the file's name`);
  }
  return name;
}

function stem(file: string): string {
  return file.replace(/\.(safetensors|gguf)$/i, '');
}

/** What a reference means in `modelsDir`: the files to fetch, where they go, and the model's name. */
function plan(reference: string, modelsDir: string): Plan {
  if (typeof reference !== 'string' || reference.trim() === '') {
    throw new TypeError(`Expected a model reference (hf:<owner>/<repo>/<file>, an https:// URL or one of ${Object.keys(catalogue).join(', ')}) `
      + `but received ${JSON.stringify(reference)}`);
  }
  if (/^hf:/i.test(reference)) {
    const file = parseHf(reference);
    const base = path.posix.basename(file.file);
    return { name: stem(base), reference, downloads: [{ url: hubUrl(file), target: path.join(modelsDir, base), relative: base }] };
  }
  if (/^https?:\/\//i.test(reference)) {
    const url = parseUrl(reference);
    const base = fileNameOf(url, reference);
    return { name: stem(base), reference, downloads: [{ url: url.href, target: path.join(modelsDir, base), relative: base }] };
  }
  const entry = Object.hasOwn(catalogue, reference) ? catalogue[reference] : undefined;
  if (!entry) {
    throw new TypeError(`Unknown model ${JSON.stringify(reference)}: expected hf:<owner>/<repo>/<file>[@<revision>], an https:// URL `
      + `or one of the catalogue's ${Object.keys(catalogue).join(', ')}`);
  }
  const download = (file: CatalogueFile, relative: string): Download => ({
    url: hubUrl(file), target: path.join(modelsDir, relative), relative,
    ...(file.sha256 !== undefined && { sha256: file.sha256 }), ...(file.bytes !== undefined && { bytes: file.bytes }),
  });
  if (entry.file) {
    const relative = `${reference}${path.posix.extname(entry.file.file)}`;
    return { name: reference, reference, entry, downloads: [download(entry.file, relative)] };
  }
  const downloads = Object.values(entry.components ?? {}).map((file) => download(file, `${reference}/${file.file}`));
  return { name: reference, reference, entry, downloads, componentJson: path.join(modelsDir, reference, 'model.json') };
}

/** The name a reference's model has in a models folder once pulled (what `--models` lists it as). */
export function pulledModelName(reference: string): string {
  return plan(reference, '.').name;
}

function pulledOf(p: Plan): PulledModel {
  if (p.componentJson === undefined) return { name: p.name, path: p.downloads[0]!.target };
  const keys = Object.keys(p.entry?.components ?? {});
  const components = {} as ModelComponents;
  let t5Tokenizer: string | undefined;
  keys.forEach((key, i) => {
    if (key === 't5Tokenizer') t5Tokenizer = p.downloads[i]!.target;
    else (components as unknown as Record<string, string>)[key] = p.downloads[i]!.target;
  });
  return { name: p.name, path: p.componentJson, components, ...(t5Tokenizer !== undefined && { t5Tokenizer }) };
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The model a reference names, if it is in `modelsDir` complete (every file verified, and for a
 * model of several files its component JSON, written last). Loads and downloads nothing.
 */
export async function findPulledModel(reference: string, options: { modelsDir?: string } = {}): Promise<PulledModel | undefined> {
  const p = plan(reference, path.resolve(options.modelsDir ?? defaultModelsDir()));
  const complete = p.componentJson !== undefined ? await exists(p.componentJson) : await exists(p.downloads[0]!.target);
  return complete ? pulledOf(p) : undefined;
}

/** The unfinished downloads (`.part` files) of the model a reference names in `modelsDir`. */
export async function unfinishedDownloads(reference: string, options: { modelsDir?: string } = {}): Promise<string[]> {
  const p = plan(reference, path.resolve(options.modelsDir ?? defaultModelsDir()));
  const parts = p.downloads.map((download) => `${download.target}.part`);
  return (await Promise.all(parts.map(async (part) => (await exists(part) ? part : undefined)))).filter((part) => part !== undefined);
}

/**
 * Downloads the model a reference names into the models folder (each file verified by size and
 * sha256 before it takes its name) and resolves to where it is. A model already there complete is
 * not downloaded again. Failures are SdnodeErrors: 'ERR_MODEL_GATED' (401/403: accept the licence,
 * set HF_TOKEN), 'ERR_MODEL_NOT_FOUND' (404), 'ERR_CHECKSUM' (wrong size or sha256; the part is
 * deleted), 'ERR_DOWNLOAD' (network or server; the part is kept to resume), 'ERR_ABORTED'.
 */
export async function pullModel(reference: string, options: PullOptions = {}): Promise<PulledModel> {
  const modelsDir = path.resolve(options.modelsDir ?? defaultModelsDir());
  const p = plan(reference, modelsDir);
  const already = await findPulledModel(reference, { modelsDir });
  if (already) return already;
  const token = options.token ?? process.env.HF_TOKEN;
  const sources: { file: string; url: string; sha256: string | undefined; bytes: number }[] = [];
  for (const [i, download] of p.downloads.entries()) {
    const report = (receivedBytes: number, totalBytes: number | undefined, resumedFromBytes: number): void => options.onProgress?.({
      file: download.relative, index: i + 1, files: p.downloads.length, receivedBytes, totalBytes, resumedFromBytes,
    });
    if (await exists(download.target)) {
      const { size } = await stat(download.target);
      report(size, size, size);
      sources.push({ file: download.relative, url: download.url, sha256: download.sha256, bytes: size });
      continue;
    }
    sources.push({ file: download.relative, url: download.url, ...await downloadFile(reference, download, token, options.signal, report) });
  }
  const pulled = pulledOf(p);
  const sidecar = { reference, name: p.name, ...(p.entry && { licence: p.entry.licence, family: p.entry.family }), files: sources, pulledAt: new Date().toISOString() };
  if (p.componentJson !== undefined) {
    const dir = path.dirname(p.componentJson);
    await writeFile(path.join(dir, sourceFile), `${JSON.stringify(sidecar, null, 2)}\n`);
    const json: Record<string, string> = {};
    for (const [key, file] of Object.entries({ ...pulled.components, ...(pulled.t5Tokenizer !== undefined && { t5Tokenizer: pulled.t5Tokenizer }) })) {
      json[key] = path.relative(dir, file).split(path.sep).join('/');
    }
    // Written last and under a temporary name: its presence is what says the model is complete.
    await writeFile(`${p.componentJson}.part`, `${JSON.stringify(json, null, 2)}\n`);
    await rename(`${p.componentJson}.part`, p.componentJson);
  } else {
    await writeFile(sidecarOf(pulled.path), `${JSON.stringify(sidecar, null, 2)}\n`);
  }
  return pulled;
}

/** Name of a component model folder's record of where its files came from. */
export const sourceFile = 'source.json';

/** Where a checkpoint's record of where it came from is kept: `<file>.source.json`. */
export function sidecarOf(checkpoint: string): string {
  return `${checkpoint}.source.json`;
}

interface Answer { response: Response; linkedEtag: string | undefined; linkedSize: number | undefined }

// Redirects are followed by hand: the hub's own answer (before the CDN) carries the file's sha256
// and size, and the token must not follow the request to another host.
async function request(url: string, from: number, token: string | undefined, signal: AbortSignal | undefined): Promise<Answer> {
  const hub = hubEndpoint().host;
  let linkedEtag: string | undefined;
  let linkedSize: number | undefined;
  let current = new URL(url);
  for (let hop = 0; hop < 10; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'sdnode' };
    if (from > 0) headers.range = `bytes=${from}-`;
    if (token && current.host === hub) headers.authorization = `Bearer ${token}`;
    const response = await fetch(current, { headers, redirect: 'manual', ...(signal && { signal }) });
    linkedEtag ??= response.headers.get('x-linked-etag') ?? undefined;
    const size = Number(response.headers.get('x-linked-size') ?? NaN);
    if (linkedSize === undefined && Number.isSafeInteger(size)) linkedSize = size;
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      current = new URL(location, current);
      continue;
    }
    return { response, linkedEtag, linkedSize };
  }
  throw new SdnodeError('ERR_DOWNLOAD', `${url}: more than 10 redirects`);
}

function sha256Of(etag: string | null | undefined): string | undefined {
  const bare = etag?.replace(/^W\//, '').replaceAll('"', '').trim().toLowerCase();
  return bare !== undefined && hexSha256.test(bare) ? bare : undefined;
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

function statusError(reference: string, status: number, tokenSent: boolean): SdnodeError {
  if (status === 401 || status === 403) {
    return new SdnodeError('ERR_MODEL_GATED', `${reference}: the hub answered ${status}: the model is gated. Accept its licence on the `
      + `model's page while logged in to Hugging Face, then set HF_TOKEN to an access token of that account`
      + (tokenSent ? ' (the token given was refused, or its account has not accepted the licence)' : ''));
  }
  if (status === 404) return new SdnodeError('ERR_MODEL_NOT_FOUND', `${reference}: not found (404): check the repository, file name and revision`);
  return new SdnodeError('ERR_DOWNLOAD', `${reference}: the server answered ${status}`);
}

async function downloadFile(
  reference: string, download: Download, token: string | undefined, signal: AbortSignal | undefined,
  report: (received: number, total: number | undefined, resumedFrom: number) => void,
): Promise<{ sha256: string | undefined; bytes: number }> {
  const part = `${download.target}.part`;
  await mkdir(path.dirname(part), { recursive: true });
  let from = (await stat(part).catch(() => undefined))?.size ?? 0;
  if (signal?.aborted) throw abortError(signal);
  let answer: Answer;
  try {
    answer = await request(download.url, from, token, signal);
    // A part as long as the file (the rename was all that was left) gets 416 for the bytes after it.
    if (answer.response.status === 416 || (from > 0 && answer.response.status === 200)) {
      await answer.response.body?.cancel();
      if (answer.response.status === 416) {
        await rm(part, { force: true });
        from = 0;
        answer = await request(download.url, 0, token, signal);
      } else {
        from = 0;  // the server ignored the Range: start again (the part is truncated below)
      }
    }
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    if (error instanceof SdnodeError) throw error;
    throw new SdnodeError('ERR_DOWNLOAD', `${reference}: ${(error as Error).message}${causeOf(error)}`, { cause: error });
  }
  const { response, linkedEtag, linkedSize } = answer;
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw statusError(reference, response.status, token !== undefined && new URL(download.url).host === hubEndpoint().host);
  }
  if (response.status === 206) {
    const start = Number(/^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1] ?? NaN);
    if (start !== from) {
      await response.body.cancel();
      await rm(part, { force: true });
      throw new SdnodeError('ERR_DOWNLOAD', `${reference}: the server resumed at byte ${start}, not ${from}; the partial file was deleted, pull again`);
    }
  }
  const rangeTotal = Number(/\/(\d+)$/.exec(response.headers.get('content-range') ?? '')?.[1] ?? NaN);
  const length = Number(response.headers.get('content-length') ?? NaN);
  const announced = Number.isSafeInteger(rangeTotal) ? rangeTotal : Number.isSafeInteger(length) ? from + length : undefined;
  const expectedBytes = download.bytes ?? linkedSize ?? announced;
  const expectedSha = download.sha256 ?? sha256Of(linkedEtag) ?? sha256Of(response.headers.get('etag'));

  const hash = createHash('sha256');
  if (from > 0) await hashFile(part, hash);
  let received = from;
  let lastReport = 0;
  report(received, expectedBytes, from);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      received += chunk.length;
      const now = performance.now();
      if (now - lastReport >= 100) {
        lastReport = now;
        report(received, expectedBytes, from);
      }
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body as never), counter, createWriteStream(part, { flags: from > 0 ? 'a' : 'w' }));
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    throw new SdnodeError('ERR_DOWNLOAD', `${reference}: the download stopped after ${received} of ${expectedBytes ?? '?'} bytes `
      + `(${(error as Error).message}${causeOf(error)}); pull again to resume it`, { cause: error });
  }
  report(received, expectedBytes, from);
  const actual = hash.digest('hex');
  if (expectedBytes !== undefined && received !== expectedBytes) {
    await rm(part, { force: true });
    throw new SdnodeError('ERR_CHECKSUM', `${reference}: got ${received} bytes, expected ${expectedBytes}; the partial file was deleted`);
  }
  if (expectedSha !== undefined && actual !== expectedSha) {
    await rm(part, { force: true });
    throw new SdnodeError('ERR_CHECKSUM', `${reference}: sha256 ${actual} does not match the published ${expectedSha}; the downloaded file was deleted`);
  }
  await rename(part, download.target);
  return { sha256: actual, bytes: received };
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { message?: string } }).cause;
  return cause?.message ? `: ${cause.message}` : '';
}
