/**
 * T5 v1.1's tokenizer (google/t5-v1_1-xxl: the T5-XXL text encoder of FLUX.1, SD3 and Chroma):
 * SentencePiece's unigram model, as its `spiece.model` defines it. The vocabulary is data the user
 * gives (no npm package ships it): the model's `spiece.model`, its Hugging Face `tokenizer.json`, or
 * a T5 GGUF whose metadata carries the vocabulary as llama.cpp's converter writes it.
 *
 * What SentencePiece does, and this file with it: the normaliser maps the text through the model's
 * precompiled character map (T5's is `nmt_nfkc`: NFKC plus a few whitespace and control-character
 * rules), drops leading, trailing and repeated spaces, prefixes one space and writes spaces as `▁`;
 * Viterbi then picks the segmentation with the highest sum of piece scores (float32, ties to the
 * candidate found first); characters no piece covers become the unknown id, a run of them one id.
 * As Hugging Face's T5 tokenizer does, `<extra_id_N>`, `</s>`, `<pad>` and `<unk>` in the text are
 * special tokens, and the text between them is encoded as separate sentences.
 */
import type { FileHandle } from 'node:fs/promises';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SdnodeError } from './errors.js';

/** SentencePiece's piece types (ModelProto.SentencePiece.Type). */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;
const BYTE = 6;

/** SentencePiece scores an unknown character at the lowest piece score minus this. */
const UNKNOWN_PENALTY = 10;
const FLOAT_MAX = 3.4028234663852886e38;
/** C's FLT_MIN (the smallest normal float), which SentencePiece starts its highest score from. */
const FLOAT_MIN_NORMAL = 1.1754943508222875e-38;
/** T5 numbers its 100 sentinels down from the top: `<extra_id_0>` is the last id. */
const EXTRA_ID_COUNT = 100;
const SPACE_SYMBOL = Buffer.from('\u2581', 'utf8');

/** tokenizer.json and spiece.model files are a few MB; anything far larger is not one. */
const TEXT_FILE_LIMIT = 64 * 1024 * 1024;
/** A GGUF's key-value section is read in growing windows up to this size. */
const GGUF_FIRST_WINDOW = 4 * 1024 * 1024;
const GGUF_WINDOW_LIMIT = 256 * 1024 * 1024;

const MISSING_VOCABULARY =
  "The T5-XXL text encoder needs T5's SentencePiece vocabulary, which sdnode does not ship (no npm " +
  'package carries it). Get `spiece.model` or `tokenizer.json` of google/t5-v1_1-xxl from Hugging Face ' +
  "(FLUX.1's `tokenizer_2/` folder holds the same files; Apache-2.0), or use a T5 GGUF that carries " +
  'tokenizer metadata (tokenizer.ggml.tokens), and pass its path as the option `t5Tokenizer`, ' +
  "e.g. { t5Tokenizer: './spiece.model' }.";

/** A run of prompt text and its emphasis weight, as `parseEmphasis` in lib/prompt.ts returns them. */
export interface T5WeightedSpan {
  text: string;
  /** Multiplier for the tokens' embeddings; 1 is neutral. A BREAK marker (text 'BREAK', -1) is skipped. */
  weight: number;
}

/** Token ids of a prompt and one weight per id. */
export interface T5WeightedTokens {
  ids: number[];
  weights: number[];
}

/** One T5 encoder input: ids, EOS, then padding; one weight per entry. */
export interface T5EncoderInput {
  tokens: Int32Array;
  /** 1 on EOS and padding. */
  weights: Float32Array;
  /** Entries before the padding, EOS included. */
  length: number;
}

interface NormalizerSpec {
  /** SentencePiece's compiled rules: a double-array trie of UTF-8 keys and NUL-ended replacements. */
  charsmap?: Uint8Array;
  /** With no charsmap in the file: NFKC plus SentencePiece's nmt rules, as `nmt_nfkc` compiles them. */
  approximateNfkc: boolean;
  addDummyPrefix: boolean;
  /** Hugging Face's Metaspace `prepend_scheme: "first"`: no ▁ for text after a special token. */
  dummyPrefixFirstOnly: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

interface Vocabulary {
  /** The file (or bytes) it came from, for error messages. */
  source: string;
  pieces: string[];
  /** float32 values. */
  scores: number[];
  types: number[];
  normalizer: NormalizerSpec;
  byteFallback: boolean;
  eosId: number;
  padId: number;
  /** Sentinel ids where the file does not list `<extra_id_N>`: T5's `<extra_id_0>` is this + 99. */
  extraIdBase: number;
}

function formatError(source: string, detail: string): SdnodeError {
  return new SdnodeError('ERR_MODEL_FORMAT', `${source} is not a usable T5 tokenizer file: ${detail}. ${MISSING_VOCABULARY}`);
}

// ---- spiece.model (protobuf ModelProto) --------------------------------------------------------

class ProtoReader {
  pos: number;
  constructor(private readonly buf: Uint8Array, start: number, readonly end: number, private readonly source: string) {
    this.pos = start;
  }

  more(): boolean {
    return this.pos < this.end;
  }

  private need(n: number): void {
    if (n > this.end - this.pos) throw formatError(this.source, `the protobuf is truncated at byte ${this.pos}`);
  }

  /** Returns the value as a number and its low 32 bits as a signed int (int32 fields: -1 is ten bytes). */
  varint(): { value: number; int32: number } {
    let value = 0;
    let low = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      this.need(1);
      const byte = this.buf[this.pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (shift < 32) low |= (byte & 0x7f) << shift;
      if (byte < 0x80) return { value, int32: low | 0 };
    }
    throw formatError(this.source, `a varint at byte ${this.pos} is longer than 10 bytes`);
  }

  tag(): { field: number; wire: number } {
    const { value } = this.varint();
    return { field: Math.floor(value / 8), wire: value % 8 };
  }

  bytes(): Uint8Array {
    const { value: length } = this.varint();
    this.need(length);
    const slice = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return slice;
  }

  message(): ProtoReader {
    const { value: length } = this.varint();
    this.need(length);
    const reader = new ProtoReader(this.buf, this.pos, this.pos + length, this.source);
    this.pos += length;
    return reader;
  }

  float(): number {
    this.need(4);
    const value = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 4).readFloatLE(0);
    this.pos += 4;
    return value;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) { this.need(8); this.pos += 8; }
    else if (wire === 2) this.bytes();
    else if (wire === 5) { this.need(4); this.pos += 4; }
    else throw formatError(this.source, `protobuf wire type ${wire} at byte ${this.pos}`);
  }
}

const utf8 = new TextDecoder();

function readSentencePieceModel(buf: Uint8Array, source: string): Vocabulary {
  const pieces: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  let modelType = 1;
  let byteFallback = false;
  let eosId = 2;
  let padId = -1;
  const normalizer: NormalizerSpec = {
    approximateNfkc: false, addDummyPrefix: true, dummyPrefixFirstOnly: false, removeExtraWhitespaces: true, escapeWhitespaces: true,
  };
  const model = new ProtoReader(buf, 0, buf.length, source);
  while (model.more()) {
    const { field, wire } = model.tag();
    if (field === 1 && wire === 2) {
      const piece = model.message();
      let text = '';
      let score = 0;
      let type = NORMAL;
      while (piece.more()) {
        const t = piece.tag();
        if (t.field === 1 && t.wire === 2) text = utf8.decode(piece.bytes());
        else if (t.field === 2 && t.wire === 5) score = piece.float();
        else if (t.field === 3 && t.wire === 0) type = piece.varint().int32;
        else piece.skip(t.wire);
      }
      pieces.push(text);
      scores.push(score);
      types.push(type);
    } else if (field === 2 && wire === 2) {
      const trainer = model.message();
      while (trainer.more()) {
        const t = trainer.tag();
        if (t.wire !== 0) trainer.skip(t.wire);
        else if (t.field === 3) modelType = trainer.varint().int32;
        else if (t.field === 35) byteFallback = trainer.varint().value !== 0;
        else if (t.field === 42) eosId = trainer.varint().int32;
        else if (t.field === 43) padId = trainer.varint().int32;
        else trainer.skip(t.wire);
      }
    } else if (field === 3 && wire === 2) {
      const spec = model.message();
      while (spec.more()) {
        const t = spec.tag();
        if (t.field === 2 && t.wire === 2) normalizer.charsmap = spec.bytes();
        else if (t.field === 3 && t.wire === 0) normalizer.addDummyPrefix = spec.varint().value !== 0;
        else if (t.field === 4 && t.wire === 0) normalizer.removeExtraWhitespaces = spec.varint().value !== 0;
        else if (t.field === 5 && t.wire === 0) normalizer.escapeWhitespaces = spec.varint().value !== 0;
        else spec.skip(t.wire);
      }
    } else {
      model.skip(wire);
    }
  }
  if (pieces.length === 0) throw formatError(source, 'it holds no SentencePiece pieces');
  if (modelType !== 1) {
    throw new SdnodeError('ERR_MODEL_UNSUPPORTED', `${source} is a SentencePiece model of type ${modelType}; T5 needs a unigram model (type 1)`);
  }
  if (normalizer.charsmap?.length === 0) delete normalizer.charsmap;
  const named = (id: number, piece: string) => (pieces[id] === piece ? id : pieces.indexOf(piece));
  return { source, pieces, scores, types, normalizer, byteFallback, eosId: named(eosId, '</s>'), padId: named(padId, '<pad>'), extraIdBase: pieces.length };
}

// ---- tokenizer.json (Hugging Face) -------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first object in a normalizer tree (`Sequence` nests them) whose `type` is `type`. */
function findComponent(node: unknown, type: string): Record<string, unknown> | undefined {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = findComponent(item, type);
      if (found) return found;
    }
    return undefined;
  }
  if (!isRecord(node)) return undefined;
  if (node.type === type) return node;
  return findComponent(node.normalizers ?? node.pretokenizers, type);
}

function readTokenizerJson(text: string, source: string): Vocabulary {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw formatError(source, `its JSON does not parse (${(error as Error).message})`);
  }
  const model = isRecord(json) ? json.model : undefined;
  if (!isRecord(model) || model.type !== 'Unigram' || !Array.isArray(model.vocab)) {
    throw formatError(source, 'it has no "model": { "type": "Unigram", "vocab": [...] } section');
  }
  const pieces: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  for (const entry of model.vocab as unknown[]) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
      throw formatError(source, `vocab entry ${pieces.length} is not a [piece, score] pair`);
    }
    pieces.push(entry[0]);
    scores.push(entry[1]);
    types.push(NORMAL);
  }
  if (pieces.length === 0) throw formatError(source, 'its vocab is empty');
  const byteFallback = model.byte_fallback === true;
  if (byteFallback) pieces.forEach((piece, id) => { if (/^<0x[0-9A-F]{2}>$/.test(piece)) types[id] = BYTE; });
  const added = isRecord(json) && Array.isArray(json.added_tokens) ? json.added_tokens : [];
  for (const token of added) {
    if (isRecord(token) && token.special === true && Number.isInteger(token.id) && pieces[token.id as number] === token.content) {
      types[token.id as number] = CONTROL;
    }
  }
  const unkId = model.unk_id;
  if (!Number.isInteger(unkId) || (unkId as number) < 0 || (unkId as number) >= pieces.length) {
    throw formatError(source, `its "unk_id" ${String(unkId)} is not an id of its vocab`);
  }
  types[unkId as number] = UNKNOWN;

  const root = json as Record<string, unknown>;
  const precompiled = findComponent(root.normalizer, 'Precompiled');
  const charsmapText = precompiled?.precompiled_charsmap;
  const metaspace = findComponent(root.pre_tokenizer, 'Metaspace');
  const normalizer: NormalizerSpec = {
    approximateNfkc: typeof charsmapText !== 'string' && findComponent(root.normalizer, 'NFKC') !== undefined,
    addDummyPrefix: metaspace ? metaspace.add_prefix_space !== false && metaspace.prepend_scheme !== 'never' : true,
    dummyPrefixFirstOnly: metaspace?.prepend_scheme === 'first',
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  if (typeof charsmapText === 'string' && charsmapText.length > 0) normalizer.charsmap = Buffer.from(charsmapText, 'base64');
  return {
    source, pieces, scores, types, normalizer, byteFallback,
    eosId: pieces.indexOf('</s>'), padId: pieces.indexOf('<pad>'), extraIdBase: pieces.length,
  };
}

// ---- GGUF key-value metadata -------------------------------------------------------------------

/** Thrown while parsing a window that ends before the metadata does; the caller reads more. */
class NeedMoreBytes extends Error {}

const GGUF_TYPE_SIZES: Readonly<Record<number, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const GGUF_STRING = 8;
const GGUF_ARRAY = 9;

class GgufReader {
  pos = 0;
  constructor(private readonly buf: Buffer, private readonly fileLength: number, private readonly source: string) {}

  private need(n: number): void {
    if (n <= this.buf.length - this.pos) return;
    if (n > this.fileLength - this.pos) throw formatError(this.source, `the GGUF header is truncated at byte ${this.pos}`);
    throw new NeedMoreBytes();
  }

  /** A count or length, bounded by what the file can hold at `bytesEach` bytes per item. */
  count(bytesEach: number, what: string): number {
    this.need(8);
    const value = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (value > BigInt(Math.floor((this.fileLength - this.pos) / Math.max(bytesEach, 1)))) {
      throw formatError(this.source, `${what} count ${value} at byte ${this.pos - 8} exceeds the file's length`);
    }
    return Number(value);
  }

  u32(): number {
    this.need(4);
    const value = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return value;
  }

  string(keep = true): string {
    const length = this.count(1, 'string length');
    this.need(length);
    const value = keep ? this.buf.toString('utf8', this.pos, this.pos + length) : '';
    this.pos += length;
    return value;
  }

  scalar(type: number): number | bigint | boolean {
    const size = GGUF_TYPE_SIZES[type];
    if (size === undefined) throw formatError(this.source, `GGUF value type ${type} at byte ${this.pos}`);
    this.need(size);
    const b = this.buf;
    const at = this.pos;
    this.pos += size;
    switch (type) {
      case 0: return b.readUInt8(at);
      case 1: return b.readInt8(at);
      case 2: return b.readUInt16LE(at);
      case 3: return b.readInt16LE(at);
      case 4: return b.readUInt32LE(at);
      case 5: return b.readInt32LE(at);
      case 6: return b.readFloatLE(at);
      case 7: return b[at] !== 0;
      case 10: return b.readBigUInt64LE(at);
      case 11: return b.readBigInt64LE(at);
      default: return b.readDoubleLE(at);
    }
  }

  /** A value of `type`; with `keep` false it is only skipped over. */
  value(type: number, keep: boolean, depth = 0): unknown {
    if (type === GGUF_STRING) return this.string(keep);
    if (type !== GGUF_ARRAY) return this.scalar(type);
    if (depth > 8) throw formatError(this.source, `GGUF arrays nested more than 8 deep at byte ${this.pos}`);
    const elementType = this.u32();
    const size = GGUF_TYPE_SIZES[elementType];
    const count = this.count(size ?? 8, 'array');
    if (size !== undefined && (!keep || size === 1)) {
      this.need(count * size);
      const bytes = this.buf.subarray(this.pos, this.pos + count * size);
      this.pos += count * size;
      return keep ? Uint8Array.from(bytes) : undefined;
    }
    const values: unknown[] = [];
    for (let i = 0; i < count; i++) {
      const value = this.value(elementType, keep, depth + 1);
      if (keep) values.push(value);
    }
    return keep ? values : undefined;
  }
}

function readGgufMetadata(buf: Buffer, fileLength: number, source: string): Map<string, unknown> {
  const r = new GgufReader(buf, fileLength, source);
  if (r.u32() !== 0x46554747) throw formatError(source, 'it does not start with "GGUF"');
  const version = r.u32();
  if (version !== 2 && version !== 3) {
    throw new SdnodeError('ERR_MODEL_UNSUPPORTED', `${source} is GGUF version ${version}; versions 2 and 3 are supported`);
  }
  r.count(1, 'tensor');
  const keyCount = r.count(8 + 4, 'key-value');
  const metadata = new Map<string, unknown>();
  for (let i = 0; i < keyCount; i++) {
    const key = r.string();
    const keep = key.startsWith('tokenizer.ggml.');
    const value = r.value(r.u32(), keep);
    if (keep) metadata.set(key, value);
  }
  return metadata;
}

function readGgufVocabulary(metadata: Map<string, unknown>, source: string): Vocabulary {
  const tokens = metadata.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens)) {
    throw formatError(source, 'this GGUF has no tokenizer metadata (tokenizer.ggml.tokens)');
  }
  const kind = metadata.get('tokenizer.ggml.model');
  if (kind !== 't5') {
    throw new SdnodeError('ERR_MODEL_UNSUPPORTED', `${source} holds a "${String(kind)}" tokenizer; T5 needs tokenizer.ggml.model "t5" (SentencePiece unigram)`);
  }
  const scores = metadata.get('tokenizer.ggml.scores');
  const types = metadata.get('tokenizer.ggml.token_type');
  const isList = (list: unknown, type: string): list is unknown[] =>
    Array.isArray(list) && list.length === tokens.length && list.every((item) => typeof item === type);
  if (!tokens.every((token) => typeof token === 'string') || !isList(scores, 'number') || !isList(types, 'number')) {
    throw formatError(source, 'tokenizer.ggml.tokens, .scores and .token_type must be arrays of equal length (strings, floats, ints)');
  }
  const pieces = tokens as string[];
  const flag = (key: string) => metadata.get(`tokenizer.ggml.${key}`) !== false;
  const charsmap = metadata.get('tokenizer.ggml.precompiled_charsmap');
  const normalizer: NormalizerSpec = {
    approximateNfkc: !(charsmap instanceof Uint8Array),
    addDummyPrefix: flag('add_space_prefix'),
    dummyPrefixFirstOnly: false,
    removeExtraWhitespaces: flag('remove_extra_whitespaces'),
    escapeWhitespaces: true,
  };
  if (charsmap instanceof Uint8Array && charsmap.length > 0) normalizer.charsmap = charsmap;
  const specialId = (key: string, piece: string) => {
    const id = metadata.get(`tokenizer.ggml.${key}_token_id`);
    return typeof id === 'number' && id < pieces.length ? id : pieces.indexOf(piece);
  };
  // llama.cpp's converter fills ids past the SentencePiece model with `[PAD<id>]` placeholders.
  const placeholder = pieces.findIndex((piece, id) => piece === `[PAD${id}]` && types[id] === UNUSED);
  return {
    source,
    pieces,
    scores: scores as number[],
    types: types as number[],
    normalizer,
    byteFallback: (types as number[]).includes(BYTE),
    eosId: specialId('eos', '</s>'),
    padId: specialId('padding', '<pad>'),
    extraIdBase: placeholder === -1 ? pieces.length : placeholder,
  };
}

async function readGgufFile(file: FileHandle, fileLength: number, source: string): Promise<Vocabulary> {
  for (let window = GGUF_FIRST_WINDOW; ; window *= 2) {
    const length = Math.min(window, fileLength);
    const buf = Buffer.alloc(length);
    await file.read(buf, 0, length, 0);
    try {
      return readGgufVocabulary(readGgufMetadata(buf, fileLength, source), source);
    } catch (error) {
      if (!(error instanceof NeedMoreBytes)) throw error;
      if (window >= GGUF_WINDOW_LIMIT) {
        throw formatError(source, `its GGUF metadata is larger than ${GGUF_WINDOW_LIMIT / 2 ** 20} MiB`);
      }
    }
  }
}

// ---- normalisation -----------------------------------------------------------------------------

/** Characters `nmt_nfkc` adds to NFKC: more whitespace, and control characters that vanish. */
const NMT_SPACES = /[\t\n\f\r\u1680\u200b\u200c\u200e\u200f\u2028\u2029\u2581\ufeff\ufffd]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const NMT_REMOVED = /[\u0001-\u0008\u000b\u000e-\u001f\u007f\u008f\u009f]/g;

/** `nmt_nfkc` without its compiled table; it keeps U+FF5E, which Japanese text tells apart from `~`. */
function approximateNmtNfkc(text: string): string {
  const mapped = text.replace(LONE_SURROGATE, '\ufffd').replace(NMT_SPACES, ' ').replace(NMT_REMOVED, '');
  return mapped.split('\uff5e').map((part) => part.normalize('NFKC')).join('\uff5e');
}

/** SentencePiece's compiled character map: longest-prefix rules over UTF-8 bytes. */
class Charsmap {
  private readonly units: Uint32Array;
  private readonly replacements: Uint8Array;
  private readonly cache = new Map<number, Uint8Array>();

  constructor(blob: Uint8Array, private readonly source: string) {
    if (blob.length <= 4) throw formatError(source, 'its precompiled_charsmap is too short');
    const trieBytes = Buffer.from(blob.buffer, blob.byteOffset, blob.length).readUInt32LE(0);
    if (trieBytes >= blob.length - 4 || trieBytes % 4 !== 0) {
      throw formatError(source, `its precompiled_charsmap claims a ${trieBytes}-byte trie in ${blob.length} bytes`);
    }
    const trie = Buffer.from(blob.buffer, blob.byteOffset + 4, trieBytes);
    this.units = new Uint32Array(trieBytes / 4);
    for (let i = 0; i < this.units.length; i++) this.units[i] = trie.readUInt32LE(i * 4);
    this.replacements = blob.subarray(4 + trieBytes);
  }

  /** The longest rule at `input[at…]`: bytes consumed and the replacement, or undefined. */
  match(input: Uint8Array, at: number): { consumed: number; replacement: Uint8Array } | undefined {
    const units = this.units;
    const offset = (unit: number) => ((unit >>> 10) << ((unit & (1 << 9)) >>> 6)) >>> 0;
    if (units.length === 0) return undefined;
    let node = offset(units[0]!);
    let consumed = 0;
    let value = -1;
    for (let i = at; i < input.length; i++) {
      node = (node ^ input[i]!) >>> 0;
      if (node >= units.length) break;
      const unit = units[node]!;
      if (((unit & 0x800000ff) >>> 0) !== input[i]) break;
      node = (node ^ offset(unit)) >>> 0;
      if ((unit >>> 8) & 1) {
        if (node >= units.length) break;
        consumed = i - at + 1;
        value = units[node]! & 0x7fffffff;
      }
    }
    return consumed === 0 ? undefined : { consumed, replacement: this.replacement(value) };
  }

  private replacement(value: number): Uint8Array {
    let bytes = this.cache.get(value);
    if (bytes) return bytes;
    const end = this.replacements.indexOf(0, value);
    if (value >= this.replacements.length || end === -1) {
      throw formatError(this.source, `its precompiled_charsmap points at byte ${value} outside its ${this.replacements.length} replacement bytes`);
    }
    bytes = this.replacements.subarray(value, end);
    this.cache.set(value, bytes);
    return bytes;
  }
}

function utf8Length(leadByte: number): number {
  return leadByte < 0x80 ? 1 : leadByte < 0xe0 ? 2 : leadByte < 0xf0 ? 3 : 4;
}

/** SentencePiece's Normalizer::Normalize, on UTF-8 bytes. */
function normalize(
  text: string, spec: NormalizerSpec, addDummyPrefix: boolean, charsmap: Charsmap | undefined, userDefined: readonly Buffer[],
): string {
  const input = Buffer.from(spec.approximateNfkc ? approximateNmtNfkc(text) : text, 'utf8');
  const prefix = (at: number): { consumed: number; replacement: Uint8Array } => {
    const symbol = userDefined.find((s) => s.length <= input.length - at && s.equals(input.subarray(at, at + s.length)));
    if (symbol) return { consumed: symbol.length, replacement: symbol };
    const rule = charsmap?.match(input, at);
    if (rule) return rule;
    const consumed = Math.min(utf8Length(input[at]!), input.length - at);
    return { consumed, replacement: input.subarray(at, at + consumed) };
  };
  const isSpace = (bytes: Uint8Array) => bytes.length === 1 && bytes[0] === 0x20;

  let at = 0;
  while (spec.removeExtraWhitespaces && at < input.length) {
    const p = prefix(at);
    if (!isSpace(p.replacement)) break;
    at += p.consumed;
  }
  if (at >= input.length) return '';

  const space = spec.escapeWhitespaces ? SPACE_SYMBOL : Buffer.from(' ');
  const out: number[] = [];
  if (addDummyPrefix) out.push(...space);
  let isPrevSpace = spec.removeExtraWhitespaces;
  while (at < input.length) {
    const { consumed, replacement } = prefix(at);
    let start = 0;
    if (isPrevSpace) while (start < replacement.length && replacement[start] === 0x20) start++;
    if (start < replacement.length) {
      for (let i = start; i < replacement.length; i++) {
        if (replacement[i] === 0x20) out.push(...space);
        else out.push(replacement[i]!);
      }
      isPrevSpace = replacement[replacement.length - 1] === 0x20;
    }
    at += consumed;
    if (!spec.removeExtraWhitespaces) isPrevSpace = false;
  }
  if (spec.removeExtraWhitespaces) {
    const endsWithSpace = () => out.length >= space.length && space.every((b, i) => out[out.length - space.length + i] === b);
    while (endsWithSpace()) out.length -= space.length;
  }
  return utf8.decode(Uint8Array.from(out));
}

// ---- the tokenizer -----------------------------------------------------------------------------

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A loaded T5 vocabulary; `loadT5Tokenizer` makes one. */
export interface T5Tokenizer {
  /** `</s>`, which ends every T5 input (1 for T5). */
  readonly eosId: number;
  /** `<pad>`, which fills a T5 input up to its length (0 for T5). */
  readonly padId: number;
  /** `<unk>`, which stands for characters no piece covers (2 for T5). */
  readonly unkId: number;
  /** Token ids of `text`, without EOS or padding; `''` gives `[]`. */
  encode(text: string): number[];
  encodeWeighted(spans: readonly T5WeightedSpan[]): T5WeightedTokens;
  /**
   * The encoder's input as Hugging Face's T5 tokenizer builds it: the ids cut to `maxLength - 1`,
   * then EOS, then padding up to `maxLength` (FLUX.1 dev: 512, schnell: 256). Without
   * `maxLength`: all ids and EOS. `maxLength` is an integer of at least 1.
   */
  toEncoderInput(tokens: T5WeightedTokens | readonly number[], maxLength?: number): T5EncoderInput;
}

class UnigramTokenizer implements T5Tokenizer {
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;

  private readonly pieceIds = new Map<string, number>();
  private readonly byteIds = new Map<number, number>();
  private readonly scores: number[];
  private readonly types: number[];
  private readonly normalizer: NormalizerSpec;
  private readonly charsmap: Charsmap | undefined;
  private readonly userDefined: Buffer[] = [];
  private readonly byteFallback: boolean;
  private readonly maxPieceChars: number;
  private readonly unknownScore: number;
  private readonly highestScore: number;
  private readonly specialIds = new Map<string, number>();
  private readonly specialPattern: RegExp;

  constructor(vocabulary: Vocabulary) {
    const { source, pieces, types } = vocabulary;
    this.scores = vocabulary.scores.map(Math.fround);
    this.types = types;
    this.normalizer = vocabulary.normalizer;
    this.charsmap = vocabulary.normalizer.charsmap && new Charsmap(vocabulary.normalizer.charsmap, source);
    this.byteFallback = vocabulary.byteFallback;

    let lowest = FLOAT_MAX;
    let highest = FLOAT_MIN_NORMAL;
    let longest = 1;
    let unkId = -1;
    pieces.forEach((piece, id) => {
      const type = types[id];
      if (type === UNKNOWN) {
        if (unkId !== -1) throw formatError(source, `it has two unknown pieces (ids ${unkId} and ${id})`);
        unkId = id;
      }
      if (type === BYTE) {
        const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
        if (byte) this.byteIds.set(parseInt(byte[1]!, 16), id);
      }
      if (type === CONTROL || type === UNKNOWN) this.specialIds.set(piece, id);
      if (type !== NORMAL && type !== USER_DEFINED) return;
      if (piece.length === 0) throw formatError(source, `piece ${id} is empty`);
      if (this.pieceIds.has(piece)) throw formatError(source, `piece "${piece}" appears twice (ids ${this.pieceIds.get(piece)} and ${id})`);
      this.pieceIds.set(piece, id);
      longest = Math.max(longest, [...piece].length);
      if (type === USER_DEFINED) this.userDefined.push(Buffer.from(piece, 'utf8'));
      else {
        lowest = Math.min(lowest, this.scores[id]!);
        highest = Math.max(highest, this.scores[id]!);
      }
    });
    if (unkId === -1) throw formatError(source, 'it has no unknown piece (<unk>)');
    const isSpecial = (id: number, piece: string) => id >= 0 && id < pieces.length && pieces[id] === piece;
    if (!isSpecial(vocabulary.eosId, '</s>')) throw formatError(source, 'it has no </s> piece, so it is not a T5 vocabulary');
    if (!isSpecial(vocabulary.padId, '<pad>')) throw formatError(source, 'it has no <pad> piece, so it is not a T5 vocabulary');
    this.unkId = unkId;
    this.eosId = vocabulary.eosId;
    this.padId = vocabulary.padId;
    this.maxPieceChars = longest;
    this.unknownScore = Math.fround(lowest - UNKNOWN_PENALTY);
    this.highestScore = highest;
    // Longest first, so that the larger user-defined symbol wins where one is a prefix of another.
    this.userDefined.sort((a, b) => b.length - a.length);

    for (let n = 0; n < EXTRA_ID_COUNT; n++) {
      const name = `<extra_id_${n}>`;
      const listed = pieces.indexOf(name);
      this.specialIds.set(name, listed !== -1 ? listed : vocabulary.extraIdBase + EXTRA_ID_COUNT - 1 - n);
    }
    const names = [...this.specialIds.keys()].sort((a, b) => b.length - a.length);
    this.specialPattern = new RegExp(names.map(escapeRegExp).join('|'), 'g');
  }

  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError(`Expected a string for the T5 prompt but received ${typeof text}`);
    const ids: number[] = [];
    let from = 0;
    for (const match of text.matchAll(this.specialPattern)) {
      ids.push(...this.encodeSentence(text.slice(from, match.index), from === 0), this.specialIds.get(match[0])!);
      from = match.index + match[0].length;
    }
    ids.push(...this.encodeSentence(text.slice(from), from === 0));
    return ids;
  }

  encodeWeighted(spans: readonly T5WeightedSpan[]): T5WeightedTokens {
    const ids: number[] = [];
    const weights: number[] = [];
    for (const span of spans) {
      if (span.text === 'BREAK' && span.weight === -1) continue;
      for (const id of this.encode(span.text)) {
        ids.push(id);
        weights.push(span.weight);
      }
    }
    return { ids, weights };
  }

  toEncoderInput(tokens: T5WeightedTokens | readonly number[], maxLength?: number): T5EncoderInput {
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 1)) {
      throw new RangeError(`Expected an integer of at least 1 for maxLength but received ${String(maxLength)}`);
    }
    const ids = 'ids' in tokens ? tokens.ids : tokens;
    const weights = 'ids' in tokens ? tokens.weights : undefined;
    const kept = maxLength === undefined ? ids.length : Math.min(ids.length, maxLength - 1);
    const total = maxLength ?? kept + 1;
    const input: T5EncoderInput = {
      tokens: new Int32Array(total).fill(this.padId),
      weights: new Float32Array(total).fill(1),
      length: kept + 1,
    };
    input.tokens.set(ids.slice(0, kept));
    if (weights) input.weights.set(weights.slice(0, kept));
    input.tokens[kept] = this.eosId;
    return input;
  }

  /** One sentence: normalise, then Viterbi over the pieces, then merge runs of unknowns. */
  private encodeSentence(text: string, isFirst: boolean): number[] {
    const spec = this.normalizer;
    const prefix = spec.addDummyPrefix && (isFirst || !spec.dummyPrefixFirstOnly);
    const normalized = normalize(text, spec, prefix, this.charsmap, this.userDefined);
    if (normalized.length === 0) return [];
    const chars = Array.from(normalized);
    const n = chars.length;
    // Best path ending at each character boundary: its float32 score, last piece's start and id.
    const bestScore = new Float64Array(n + 1);
    const bestStart = new Int32Array(n + 1).fill(-1);
    const bestId = new Int32Array(n + 1);
    const consider = (end: number, start: number, id: number, score: number) => {
      const candidate = score + bestScore[start]!;
      if (bestStart[end] === -1 || candidate > bestScore[end]!) {
        bestScore[end] = Math.fround(candidate);
        bestStart[end] = start;
        bestId[end] = id;
      }
    };
    for (let start = 0; start < n; start++) {
      let piece = '';
      let bytes = 0;
      let hasSingleChar = false;
      for (let end = start + 1; end <= Math.min(n, start + this.maxPieceChars); end++) {
        piece += chars[end - 1];
        bytes += Buffer.byteLength(chars[end - 1]!);
        const id = this.pieceIds.get(piece);
        if (id === undefined) continue;
        // SentencePiece's bonus that makes a user-defined symbol win over any split of it.
        const score = this.types[id] === USER_DEFINED ? Math.fround(bytes * this.highestScore) - 0.1 : this.scores[id]!;
        consider(end, start, id, score);
        if (end === start + 1) hasSingleChar = true;
      }
      if (!hasSingleChar) consider(start + 1, start, this.unkId, this.unknownScore);
    }

    const path: { id: number; start: number; end: number }[] = [];
    for (let end = n; end > 0; end = bestStart[end]!) path.push({ id: bestId[end]!, start: bestStart[end]!, end });
    path.reverse();
    const ids: number[] = [];
    for (const { id, start, end } of path) {
      if (id !== this.unkId) ids.push(id);
      else if (this.byteFallback) {
        for (const byte of Buffer.from(chars.slice(start, end).join(''), 'utf8')) ids.push(this.byteIds.get(byte) ?? this.unkId);
      } else if (ids.at(-1) !== this.unkId) ids.push(id);
    }
    return ids;
  }
}

// ---- loading -----------------------------------------------------------------------------------

function startsWithJsonObject(head: Uint8Array): boolean {
  const text = utf8.decode(head.subarray(0, 64)).replace(/^\uFEFF/, '').trimStart();
  return text.startsWith('{');
}

const isGguf = (head: Uint8Array) => head.length >= 4 && utf8.decode(head.subarray(0, 4)) === 'GGUF';

/** spiece.model starts with its first piece: field 1, length-delimited. */
const isProtobuf = (head: Uint8Array) => head[0] === 0x0a;

function readVocabularyBytes(bytes: Uint8Array, source: string): Vocabulary {
  if (isGguf(bytes)) return readGgufVocabulary(readGgufMetadata(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), bytes.length, source), source);
  if (startsWithJsonObject(bytes)) return readTokenizerJson(utf8.decode(bytes), source);
  if (isProtobuf(bytes)) return readSentencePieceModel(bytes, source);
  throw formatError(source, 'it is neither a tokenizer.json, a SentencePiece spiece.model nor a GGUF');
}

async function readVocabularyFile(path: string): Promise<Vocabulary> {
  let file: FileHandle | undefined;
  try {
    let target = path;
    if ((await stat(path)).isDirectory()) {
      const inside = ['tokenizer.json', 'spiece.model'].map((name) => join(path, name));
      const found = await Promise.all(inside.map((p) => stat(p).then((s) => s.isFile(), () => false)));
      const index = found.indexOf(true);
      if (index === -1) {
        throw new SdnodeError('ERR_MODEL_IO', `The folder ${path} holds neither tokenizer.json nor spiece.model. ${MISSING_VOCABULARY}`);
      }
      target = inside[index]!;
    }
    file = await open(target, 'r');
    const { size } = await file.stat();
    const head = Buffer.alloc(Math.min(size, 64));
    await file.read(head, 0, head.length, 0);
    if (isGguf(head)) return await readGgufFile(file, size, target);
    if (size > TEXT_FILE_LIMIT) throw formatError(target, `it is ${size} bytes, far more than a tokenizer.json or spiece.model`);
    const bytes = Buffer.alloc(size);
    await file.read(bytes, 0, size, 0);
    return readVocabularyBytes(bytes, target);
  } catch (error) {
    if (error instanceof SdnodeError) throw error;
    throw new SdnodeError('ERR_MODEL_IO', `Cannot read the T5 tokenizer file ${path}: ${(error as Error).message}. ${MISSING_VOCABULARY}`, { cause: error });
  } finally {
    await file?.close();
  }
}

/**
 * Loads T5's vocabulary from `source`: a path to google/t5-v1_1-xxl's `spiece.model` or
 * `tokenizer.json` (or a folder holding one), a T5 GGUF with tokenizer metadata, or such a file's
 * bytes. Rejects with an SdnodeError: 'ERR_TOKENIZER_MISSING' without a source (the message says
 * which file to get), 'ERR_MODEL_IO' (cannot read), 'ERR_MODEL_FORMAT' (not such a file, truncated)
 * or 'ERR_MODEL_UNSUPPORTED' (another tokenizer kind).
 */
export async function loadT5Tokenizer(source: string | Uint8Array | undefined): Promise<T5Tokenizer> {
  if (source === undefined || source === '') throw new SdnodeError('ERR_TOKENIZER_MISSING', MISSING_VOCABULARY);
  if (typeof source === 'string') return new UnigramTokenizer(await readVocabularyFile(source));
  if (!(source instanceof Uint8Array)) {
    throw new TypeError(`Expected a path or a Buffer for t5Tokenizer but received ${typeof source}`);
  }
  return new UnigramTokenizer(readVocabularyBytes(source, 'the T5 tokenizer bytes'));
}
