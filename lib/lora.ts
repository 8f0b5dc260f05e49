/**
 * LoRA as AUTOMATIC1111 takes it: `<lora:NAME:weight>` tags in the prompt, removed from the text
 * before tokenising and looked up by file name in a folder; each file's short hash for the
 * parameters text ("Lora hashes"). The engine gets file paths and multipliers only.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';

import { SdnodeError } from './errors.js';
import { filesUnder } from './folder-files.js';

/** A LoRA file and how strongly it applies. */
export interface LoraSelection {
  /** File path. */
  path: string;
  /** Name the parameters text gives it: as the prompt wrote it, else the file name without extension. */
  name: string;
  /** Multiplier of the UNet's updates. */
  unetWeight: number;
  /** Multiplier of the text encoder's updates. */
  textWeight: number;
}

/** One `<lora:…>` tag of a prompt. */
export interface LoraTag {
  name: string;
  textWeight: number;
  unetWeight: number;
}

/** A LoRA file in a folder, as `/sdapi/v1/loras` lists it. */
export interface LoraFileInfo {
  /** File name without extension: what `<lora:NAME>` selects. */
  name: string;
  /** kohya's `ss_output_name` from the file's metadata, else `name`; `<lora:ALIAS>` selects it too. */
  alias: string;
  /** Absolute path. */
  path: string;
  /** The safetensors `__metadata__` block (string values), or {} for other files. */
  metadata: Record<string, string>;
}

/** File extensions a LoRA may have. */
export const loraExtensions = ['.safetensors', '.gguf'] as const;

// A1111's extra-network syntax is <kind:arg:arg…> (kind: word characters, args: anything up to
// the next '>'); every such tag leaves the prompt. It is read by a scanner rather than the
// pattern /<(\w+):([^>]+)>/g, which backtracks over the rest of the prompt at every '<' of a
// "<a:<a:<a:…" without a '>': quadratic time from one request.
// A1111 reads LyCORIS tags (<lyco:…>) as LoRA too.
const LORA_KINDS = new Set(['lora', 'lyco']);
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Largest LoRA weight, in either direction: a tag's as the `loras` option's. */
export const MAX_LORA_WEIGHT = 10;

/**
 * Most LoRAs one prompt may select (after merging tags of the same name): each costs a float
 * copy of the layers it touches while the call runs.
 */
export const MAX_LORA_TAGS = 8;

const isWordChar = (code: number): boolean =>
  (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95;

/**
 * Replaces every `<kind:args>` tag of `prompt` with what `replace` returns, in one pass: each
 * character is looked at a bounded number of times.
 */
function replaceExtraNetworks(prompt: string, replace: (tag: string, kind: string, args: string) => string): string {
  let out = '';
  let copied = 0;
  let nextClose = -1;
  for (let open = prompt.indexOf('<'); open !== -1; open = prompt.indexOf('<', open + 1)) {
    let colon = open + 1;
    while (colon < prompt.length && isWordChar(prompt.charCodeAt(colon))) colon++;
    if (colon === open + 1 || prompt[colon] !== ':') continue;
    if (nextClose <= colon) nextClose = prompt.indexOf('>', colon + 1);
    if (nextClose === -1) break;
    // An empty argument list (<kind:>) is no tag; the scan goes on after this '<'.
    if (nextClose === colon + 1) continue;
    out += prompt.slice(copied, open)
      + replace(prompt.slice(open, nextClose + 1), prompt.slice(open + 1, colon), prompt.slice(colon + 1, nextClose));
    copied = nextClose + 1;
    open = nextClose;
  }
  return out + prompt.slice(copied);
}

function multiplier(text: string, tag: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new RangeError(`Expected a number for a LoRA weight in the prompt, as in "<lora:name:0.8>", but received "${text}" in ${tag}`);
  }
  return checkedWeight(value, tag);
}

function checkedWeight(value: number, where: string): number {
  if (Math.abs(value) > MAX_LORA_WEIGHT) {
    throw new RangeError(`Expected a LoRA weight between -${MAX_LORA_WEIGHT} and ${MAX_LORA_WEIGHT} but received ${value} in ${where}`);
  }
  return value;
}

/** Tags of one LoRA added up (their updates add up in the weights), first-seen order kept. */
function mergeTags<T extends LoraTag>(tags: T[], key: (tag: T) => string): T[] {
  const merged = new Map<string, T>();
  for (const tag of tags) {
    const seen = merged.get(key(tag));
    if (!seen) {
      merged.set(key(tag), { ...tag });
      continue;
    }
    const where = `the prompt's tags for LoRA "${seen.name}" added up`;
    seen.textWeight = checkedWeight(seen.textWeight + tag.textWeight, where);
    seen.unetWeight = checkedWeight(seen.unetWeight + tag.unetWeight, where);
  }
  return [...merged.values()];
}

/**
 * Removes every `<kind:…>` tag from `prompt`, as A1111 does, and reads the `<lora:…>` ones:
 * `<lora:NAME>` (weight 1), `<lora:NAME:w>` (both parts), `<lora:NAME:te:unet>`, and the named
 * forms `te=w` / `unet=w`. Tags of one name merge into one (weights added); weights beyond
 * ±10 and more than `maxTags` LoRAs (default 8) are a RangeError. Tags of other kinds
 * (hypernetworks) are a RangeError: they would be dropped silently otherwise.
 */
export function extractLoraTags(prompt: string, maxTags = MAX_LORA_TAGS): { text: string; tags: LoraTag[] } {
  const tags: LoraTag[] = [];
  const text = replaceExtraNetworks(prompt, (tag, kind, args) => {
    if (!LORA_KINDS.has(kind)) {
      throw new RangeError(`The prompt's ${tag} is a "${kind}" extra network; sdnode applies <lora:NAME:weight> only`);
    }
    const positional: string[] = [];
    const named = new Map<string, string>();
    for (const item of args.split(':')) {
      const eq = item.indexOf('=');
      if (eq >= 0) named.set(item.slice(0, eq).trim(), item.slice(eq + 1));
      else positional.push(item);
    }
    const name = (positional[0] ?? '').trim();
    if (!name) throw new RangeError(`The prompt's ${tag} names no LoRA; write <lora:NAME:weight>`);
    const te = named.get('te');
    const unet = named.get('unet');
    let textWeight = positional.length > 1 ? multiplier(positional[1] as string, tag) : 1;
    if (te !== undefined) textWeight = multiplier(te, tag);
    let unetWeight = positional.length > 2 ? multiplier(positional[2] as string, tag) : textWeight;
    if (unet !== undefined) unetWeight = multiplier(unet, tag);
    tags.push({ name, textWeight, unetWeight });
    return '';
  });
  const merged = mergeTags(tags, (tag) => tag.name);
  if (merged.length > maxTags) {
    throw new RangeError(`Expected at most ${maxTags} LoRAs in the prompt but received ${merged.length} `
      + `(${merged.map((tag) => tag.name).join(', ')})`);
  }
  return { text, tags: merged };
}

/** The prompt's text without its extra-network tags: what gets tokenised. */
export function withoutLoraTags(prompt: string): string {
  return replaceExtraNetworks(prompt, () => '');
}

/** The LoRA files under `dir` (and its subfolders), by name; [] when the folder does not exist. */
export async function listLoras(dir: string): Promise<LoraFileInfo[]> {
  const loras = await Promise.all((await filesUnder(dir, loraExtensions)).map(async (file) => {
    const metadata = await readSafetensorsMetadata(file);
    const name = path.basename(file, path.extname(file));
    return { name, alias: metadata.ss_output_name || name, path: file, metadata };
  }));
  return loras.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.path < b.path ? -1 : 1));
}

/**
 * The files of a prompt's tags, looked up in `dir` by file name (then by alias, as A1111 does).
 * Unknown names are a RangeError naming the folder and the names it has.
 */
export async function resolveLoraTags(tags: LoraTag[], dir: string | undefined): Promise<LoraSelection[]> {
  if (tags.length === 0) return [];
  if (dir === undefined) {
    throw new RangeError(`The prompt selects LoRA "${tags[0]?.name}" but no LoRA folder is set; give loraDir `
      + '(loadModel or generate option; --lora-dir for the server and the CLI)');
  }
  const available = await listLoras(dir);
  const selected = tags.map((tag) => {
    const found = available.find((lora) => lora.name === tag.name) ?? available.find((lora) => lora.alias === tag.name);
    if (!found) {
      const names = available.map((lora) => lora.name);
      throw new RangeError(`Unknown LoRA "${tag.name}" in the prompt: no ${loraExtensions.join(' or ')} file of that name in `
        + `${path.resolve(dir)}; available: ${names.length > 0 ? names.join(', ') : '(none)'}`);
    }
    return { path: found.path, name: tag.name, textWeight: tag.textWeight, unetWeight: tag.unetWeight };
  });
  // A name and an alias of one file are one LoRA too.
  return mergeTags(selected, (lora) => lora.path);
}

/** The string keys of a safetensors file's `__metadata__` block; {} for other files or none. */
export async function readSafetensorsMetadata(file: string): Promise<Record<string, string>> {
  if (!file.toLowerCase().endsWith('.safetensors')) return {};
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await handle.read(head, 0, 8, 0);
    if (bytesRead < 8) return {};
    const length = head.readBigUInt64LE(0);
    if (length > BigInt(MAX_HEADER_BYTES)) return {};
    const header = Buffer.alloc(Number(length));
    const read = await handle.read(header, 0, header.length, 8);
    if (read.bytesRead < header.length) return {};
    const parsed: unknown = JSON.parse(header.toString('utf8'));
    const block = (parsed as { __metadata__?: unknown } | null)?.__metadata__;
    if (typeof block !== 'object' || block === null) return {};
    return Object.fromEntries(Object.entries(block).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  } catch {
    return {};
  } finally {
    await handle.close();
  }
}

const shortHashes = new Map<string, Promise<string>>();

/**
 * A1111's short hash of a LoRA file, as "Lora hashes" records it: the first 12 hex digits of the
 * SHA-256 of the tensor data (a safetensors file less its 8-byte length and JSON header, the
 * "addnet" hash), or of the whole file otherwise. Kept per file version (path, size, mtime).
 */
export async function loraShortHash(file: string): Promise<string> {
  let size: number;
  let mtimeMs: number;
  try {
    ({ size, mtimeMs } = await stat(file));
  } catch (error) {
    throw new SdnodeError('ERR_MODEL_IO', `Cannot read LoRA file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const key = `${file}\n${size}\n${mtimeMs}`;
  let hash = shortHashes.get(key);
  if (!hash) {
    // Set before any await: concurrent calls for one file share this one pass over it.
    hash = tensorDataOffset(file).then((start) => hashFrom(file, start)).then((hex) => hex.slice(0, 12));
    shortHashes.set(key, hash);
    hash.catch(() => shortHashes.delete(key));
  }
  return hash;
}

async function tensorDataOffset(file: string): Promise<number> {
  if (!file.toLowerCase().endsWith('.safetensors')) return 0;
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await handle.read(head, 0, 8, 0);
    const length = bytesRead === 8 ? head.readBigUInt64LE(0) : 0n;
    return length > BigInt(MAX_HEADER_BYTES) ? 0 : 8 + Number(length);
  } finally {
    await handle.close();
  }
}

function hashFrom(file: string, start: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file, { start })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** The "Lora hashes" value: `name: hash` per LoRA, names without ':' and ',' as A1111 writes them. */
export async function loraHashes(loras: LoraSelection[]): Promise<string | undefined> {
  if (loras.length === 0) return undefined;
  const entries = await Promise.all(loras.map(async (lora) => `${lora.name.replace(/[:,]/g, '')}: ${await loraShortHash(lora.path)}`));
  return entries.join(', ');
}
