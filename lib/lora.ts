/**
 * LoRA as AUTOMATIC1111 takes it: `<lora:NAME:weight>` tags in the prompt, removed from the text
 * before tokenising and looked up by file name in a folder; each file's short hash for the
 * parameters text ("Lora hashes"). The engine gets file paths and multipliers only.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { SdnodeError } from './errors.js';

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

// A1111's extra-network syntax: <kind:arg:arg…>; every such tag leaves the prompt.
const EXTRA_NETWORK = /<(\w+):([^>]+)>/g;
// A1111 reads LyCORIS tags (<lyco:…>) as LoRA too.
const LORA_KINDS = new Set(['lora', 'lyco']);
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function multiplier(text: string, tag: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new RangeError(`Expected a number for a LoRA weight in the prompt, as in "<lora:name:0.8>", but received "${text}" in ${tag}`);
  }
  return value;
}

/**
 * Removes every `<kind:…>` tag from `prompt`, as A1111 does, and reads the `<lora:…>` ones:
 * `<lora:NAME>` (weight 1), `<lora:NAME:w>` (both parts), `<lora:NAME:te:unet>`, and the named
 * forms `te=w` / `unet=w`. Tags of other kinds (hypernetworks) are a RangeError: they would be
 * dropped silently otherwise.
 */
export function extractLoraTags(prompt: string): { text: string; tags: LoraTag[] } {
  const tags: LoraTag[] = [];
  const text = prompt.replace(EXTRA_NETWORK, (tag: string, kind: string, args: string) => {
    if (!LORA_KINDS.has(kind)) {
      throw new RangeError(`The prompt's ${tag} is a "${kind}" extra network; sdnode applies <lora:NAME:weight> only`);
    }
    const positional: string[] = [];
    const named: Record<string, string> = {};
    for (const item of args.split(':')) {
      const eq = item.indexOf('=');
      if (eq >= 0) named[item.slice(0, eq).trim()] = item.slice(eq + 1);
      else positional.push(item);
    }
    const name = (positional[0] ?? '').trim();
    if (!name) throw new RangeError(`The prompt's ${tag} names no LoRA; write <lora:NAME:weight>`);
    let textWeight = positional.length > 1 ? multiplier(positional[1] as string, tag) : 1;
    if (named.te !== undefined) textWeight = multiplier(named.te, tag);
    let unetWeight = positional.length > 2 ? multiplier(positional[2] as string, tag) : textWeight;
    if (named.unet !== undefined) unetWeight = multiplier(named.unet, tag);
    tags.push({ name, textWeight, unetWeight });
    return '';
  });
  return { text, tags };
}

/** The prompt's text without its extra-network tags: what gets tokenised. */
export function withoutLoraTags(prompt: string): string {
  return prompt.replace(EXTRA_NETWORK, '');
}

/** The LoRA files under `dir` (and its subfolders), by name; [] when the folder does not exist. */
export async function listLoras(dir: string): Promise<LoraFileInfo[]> {
  const root = path.resolve(dir);
  let entries: string[];
  try {
    entries = await readdir(root, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files = entries.filter((entry) => loraExtensions.some((ext) => entry.toLowerCase().endsWith(ext)));
  const loras = await Promise.all(files.map(async (entry) => {
    const file = path.join(root, entry);
    const metadata = await readSafetensorsMetadata(file);
    const name = path.basename(entry, path.extname(entry));
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
  return tags.map((tag) => {
    const found = available.find((lora) => lora.name === tag.name) ?? available.find((lora) => lora.alias === tag.name);
    if (!found) {
      const names = available.map((lora) => lora.name);
      throw new RangeError(`Unknown LoRA "${tag.name}" in the prompt: no ${loraExtensions.join(' or ')} file of that name in `
        + `${path.resolve(dir)}; available: ${names.length > 0 ? names.join(', ') : '(none)'}`);
    }
    return { path: found.path, name: tag.name, textWeight: tag.textWeight, unetWeight: tag.unetWeight };
  });
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
    hash = hashFrom(file, await tensorDataOffset(file)).then((hex) => hex.slice(0, 12));
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
