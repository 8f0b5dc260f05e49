/**
 * Textual-inversion embeddings as AUTOMATIC1111 takes them: files of a folder, each named by its
 * file stem, whose vectors stand in for the name wherever it appears in a prompt.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { filesUnder } from './folder-files.js';
import type { PromptEmbeddings } from './prompt.js';
import { halfToFloat, isTensor, readTorchFile, type PickleValue } from './torch-file.js';

/** File extensions read as embeddings: safetensors, and torch files (`.pt`, diffusers' `.bin`) read without unpickling. */
export const embeddingExtensions = ['.safetensors', '.pt', '.bin'] as const;

/** Largest embedding file read: real ones are a few kB to a few hundred kB. */
const MAX_EMBEDDING_BYTES = 16 * 1024 * 1024;
/** Most vectors one embedding may hold (a 75-token chunk must take it whole). */
const MAX_VECTORS = 75;

/** An embedding that fits the model: its vectors for each text encoder. */
export interface Embedding {
  /** The file stem: what a prompt names it by (matched without regard to case). */
  name: string;
  path: string;
  /** How many tokens it stands for. */
  vectors: number;
  /** [vectors × width] of the model's first text encoder (CLIP-L, or OpenCLIP-H for SD 2.x). */
  first: Float32Array;
  /** [vectors × 1280] for SDXL's second encoder (bigG); absent for other families. */
  second?: Float32Array;
}

/** An embedding file of the folder that cannot be used with this model, and why. */
export interface SkippedEmbedding {
  name: string;
  path: string;
  reason: string;
  /** Vector width and count where the file could be read. */
  shape?: number;
  vectors?: number;
}

export interface EmbeddingSet {
  loaded: Embedding[];
  skipped: SkippedEmbedding[];
}

interface Tensor {
  shape: number[];
  values: Float32Array;
}

function decodeTensor(bytes: Buffer, dtype: string, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (dtype === 'F32') out[i] = bytes.readFloatLE(i * 4);
    else if (dtype === 'F16') out[i] = halfToFloat(bytes.readUInt16LE(i * 2));
    else out[i] = new Float32Array(new Uint32Array([bytes.readUInt16LE(i * 2) << 16]).buffer)[0]; // BF16
  }
  return out;
}

/** The float tensors of a safetensors file; an Error with a plain reason when it is not one. */
function readSafetensors(bytes: Buffer): Map<string, Tensor> {
  if (bytes.length < 8) throw new Error('the file is too short to be a safetensors file');
  const length = Number(bytes.readBigUInt64LE(0));
  if (length > bytes.length - 8) throw new Error('the safetensors header runs past the end of the file');
  let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as typeof header;
  } catch {
    throw new Error('the safetensors header is not JSON');
  }
  const tensors = new Map<string, Tensor>();
  const data = bytes.subarray(8 + length);
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = entry;
    const size = dtype === 'F32' ? 4 : dtype === 'F16' || dtype === 'BF16' ? 2 : 0;
    if (size === 0) throw new Error(`tensor "${name}" has dtype ${String(dtype)}; embeddings must be F32, F16 or BF16`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0) || !Array.isArray(offsets)) {
      throw new Error(`tensor "${name}" has no valid shape or data offsets`);
    }
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const [begin, end] = offsets as number[];
    if (!Number.isSafeInteger(begin) || end !== begin + count * size || end > data.length) {
      throw new Error(`tensor "${name}"'s data does not match its shape or lies past the end of the file`);
    }
    tensors.set(name, { shape: shape as number[], values: decodeTensor(data.subarray(begin, end), dtype as string, count) });
  }
  return tensors;
}

/**
 * The tensors of a torch embedding file by the names the safetensors layouts use: A1111's `.pt`
 * (`string_to_param`: its one entry as emb_params), or a dict of tensors (diffusers' `<token>`,
 * SDXL's clip_l / clip_g, emb_params).
 */
function torchEmbeddingTensors(root: PickleValue): Map<string, Tensor> {
  if (!(root instanceof Map)) throw new Error('it holds no dict of tensors');
  const tensorsOf = (dict: PickleValue) => (dict instanceof Map
    ? [...dict].filter((entry): entry is [string, Tensor] => typeof entry[0] === 'string' && isTensor(entry[1]))
    : []);
  const params = tensorsOf(root.get('string_to_param') ?? null);
  if (params.length > 0) return new Map([['emb_params', params[0]![1]]]);
  return new Map(tensorsOf(root));
}

/** [vectors, width] of a tensor: a single vector [width] counts as one row. */
function rows(tensor: Tensor): [number, number] {
  const width = tensor.shape.at(-1) ?? 0;
  return [width === 0 ? 0 : tensor.values.length / width, width];
}

/** What an embedding must fit: the model's family and its text encoders' width (SDXL: both together). */
export interface EmbeddingTarget {
  family: string;
  contextDim: number;
}

const embeddingFamilies = new Set(['sd1', 'sd2', 'sdxl', 'sdxl-refiner']);

/**
 * Reads one embedding file for a model: A1111's `.safetensors` (`emb_params`), SDXL's (`clip_l` +
 * `clip_g`) and diffusers' (one tensor named by its token, `<token>`).
 */
export async function readEmbedding(file: string, { family, contextDim }: EmbeddingTarget): Promise<Embedding | SkippedEmbedding> {
  const name = path.basename(file, path.extname(file));
  const skip = (reason: string, shape?: number, vectors?: number): SkippedEmbedding => ({
    name, path: file, reason, ...(shape !== undefined && { shape, vectors }),
  });
  const ext = path.extname(file).toLowerCase();
  let tensors: Map<string, Tensor>;
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_EMBEDDING_BYTES) return skip(`the file is over ${MAX_EMBEDDING_BYTES} bytes, too large for an embedding`);
    tensors = ext === '.safetensors' ? readSafetensors(bytes) : torchEmbeddingTensors(readTorchFile(bytes));
  } catch (error) {
    return skip(`cannot read it: ${(error as Error).message}`);
  }
  if (!embeddingFamilies.has(family)) return skip(`textual-inversion embeddings apply to SD 1.x, SD 2.x and SDXL models, not to ${family}`);
  const l = tensors.get('clip_l');
  const g = tensors.get('clip_g');
  const single = tensors.get('emb_params') ?? (tensors.size === 1 ? [...tensors.values()][0] : undefined);
  if (l && g) {
    const [count, widthL] = rows(l);
    const [countG, widthG] = rows(g);
    if (count !== countG) return skip(`its clip_l and clip_g hold different numbers of vectors (${count} and ${countG})`);
    // The SDXL refiner's one encoder is base's second (bigG): it takes clip_g.
    if (family === 'sdxl-refiner' && widthG === contextDim) return checkCount({ name, path: file, vectors: count, first: g.values }, skip);
    if (family !== 'sdxl' || widthL + widthG !== contextDim) {
      return skip(`it is an SDXL embedding (clip_l ${widthL} + clip_g ${widthG} wide), which does not fit this ${family} model`, widthL, count);
    }
    return checkCount({ name, path: file, vectors: count, first: l.values, second: g.values }, skip);
  }
  if (!single) {
    return skip(`it holds no embedding tensor (expected emb_params, clip_l + clip_g, or a single tensor); found ${[...tensors.keys()].join(', ') || 'none'}`);
  }
  const [count, width] = rows(single);
  if (family.startsWith('sdxl')) return skip(`it has one ${width}-wide tensor; SDXL embeddings hold clip_l and clip_g`, width, count);
  if (width !== contextDim) return skip(`its vectors are ${width} wide; this ${family} model's text encoder takes ${contextDim}`, width, count);
  return checkCount({ name, path: file, vectors: count, first: single.values }, skip);
}

function checkCount(embedding: Embedding, skip: (reason: string, shape?: number, vectors?: number) => SkippedEmbedding) {
  if (embedding.vectors >= 1 && embedding.vectors <= MAX_VECTORS) return embedding;
  return skip(`it holds ${embedding.vectors} vectors; an embedding takes 1 to ${MAX_VECTORS}`, embedding.first.length / Math.max(1, embedding.vectors), embedding.vectors);
}

const warned = new Set<string>();

/**
 * The embeddings of `dir` (subfolders included) for a model of `family`: those that fit, and those
 * that do not with the reason. When two files share a name (case aside) the first in path order wins
 * and the others are skipped. A missing folder holds none. Each skipped file is warned about once
 * (process warning SDNODE_EMBEDDING_SKIPPED) unless `warn` is false.
 */
export async function loadEmbeddings(dir: string, model: EmbeddingTarget, { warn = true } = {}): Promise<EmbeddingSet> {
  const read = await Promise.all((await filesUnder(dir, embeddingExtensions)).map((file) => readEmbedding(file, model)));
  const set: EmbeddingSet = { loaded: [], skipped: [] };
  const seen = new Map<string, string>();
  for (const entry of read) {
    const key = entry.name.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      set.skipped.push({ name: entry.name, path: entry.path, reason: `another file has the same name: ${first}` });
    } else if ('reason' in entry) {
      set.skipped.push(entry);
    } else {
      seen.set(key, entry.path);
      set.loaded.push(entry);
    }
  }
  for (const skipped of warn ? set.skipped : []) {
    // Once per file and reason: the folder is read again for every call.
    const warning = `Textual-inversion embedding ${skipped.path} skipped: ${skipped.reason}`;
    if (warned.has(warning)) continue;
    warned.add(warning);
    process.emitWarning(warning, { code: 'SDNODE_EMBEDDING_SKIPPED' });
  }
  return set;
}

/**
 * The "TI hashes" value A1111 writes for the embeddings a prompt used: `name: hash` with the first
 * 12 hex digits of the file's SHA-256, names without ':' and ','.
 */
export async function embeddingHashes(used: Embedding[]): Promise<string | undefined> {
  if (used.length === 0) return undefined;
  const entries = await Promise.all(used.map(async (embedding) => {
    const hash = createHash('sha256').update(await readFile(embedding.path)).digest('hex').slice(0, 12);
    return `${embedding.name.replace(/[:,]/g, '')}: ${hash}`;
  }));
  return entries.join(', ');
}

/** CLIP's vocabulary size: ids from here on stand for embedding vectors. */
const CLIP_VOCABULARY = 49408;

/**
 * The embeddings of one call as the prompt parser and the text encoder take them: names become ids
 * from CLIP_VOCABULARY on, given out in order of first use, and the rows of those ids are the
 * used embeddings' vectors.
 */
export class EmbeddingVocabulary implements PromptEmbeddings {
  readonly pattern: RegExp;
  /** The embeddings named so far, in order of first use. */
  readonly used: Embedding[] = [];
  readonly #byName: Map<string, Embedding>;
  readonly #ids = new Map<Embedding, number[]>();
  #next = CLIP_VOCABULARY;

  constructor(embeddings: Embedding[]) {
    this.#byName = new Map(embeddings.map((embedding) => [embedding.name.toLowerCase(), embedding]));
    // Longest names first, so that "bad-hands-5" wins over "bad-hands".
    const names = [...this.#byName.keys()].sort((a, b) => b.length - a.length)
      .map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.pattern = names.length === 0 ? /(?!)/g : new RegExp(`(?<![\\p{L}\\p{N}_])(?:${names.join('|')})(?![\\p{L}\\p{N}_])`, 'giu');
  }

  idsOf(name: string): number[] {
    const embedding = this.#byName.get(name.toLowerCase());
    if (!embedding) throw new Error(`no embedding named ${name}`);
    let ids = this.#ids.get(embedding);
    if (!ids) {
      ids = Array.from({ length: embedding.vectors }, (_, i) => this.#next + i);
      this.#next += embedding.vectors;
      this.#ids.set(embedding, ids);
      this.used.push(embedding);
    }
    return ids;
  }

  /** The rows of the ids given out, for each text encoder; {} when none was. */
  tables(): { embeddings?: Float32Array; embeddings2?: Float32Array } {
    if (this.used.length === 0) return {};
    const join = (parts: Float32Array[]) => {
      const out = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
      let at = 0;
      for (const part of parts) {
        out.set(part, at);
        at += part.length;
      }
      return out;
    };
    const second = this.used.map((embedding) => embedding.second);
    return {
      embeddings: join(this.used.map((embedding) => embedding.first)),
      ...(second.every((part): part is Float32Array => part !== undefined) && { embeddings2: join(second) }),
    };
  }
}
