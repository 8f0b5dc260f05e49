/**
 * AUTOMATIC1111's prompt emphasis syntax and its 75-token chunking, so that a
 * prompt weighs and splits here exactly as it does in the webui.
 */
import { BOS, EOS, tokenize } from './tokenizer.js';

/** A run of prompt text and the attention weight its tokens get. */
export interface WeightedSpan {
  text: string;
  /** Multiplier for the tokens' embeddings; 1 is neutral. A BREAK marker has -1. */
  weight: number;
}

/** Token ids and weights for the text encoder, 77 per chunk. */
export interface Conditioning {
  /** `[BOS, up to 75 ids, EOS, pad…]` for each chunk, chunks one after another. */
  tokens: Int32Array;
  /** One weight per entry of `tokens`; 1 on BOS, EOS and padding. */
  weights: Float32Array;
  /** How many 77-token chunks `tokens` holds; at least 1. */
  chunks: number;
}

/** Largest prompt (each of prompt and negative prompt), in UTF-8 bytes. */
export const MAX_PROMPT_BYTES = 8192;
/** Most 75-token chunks one prompt may make (1,500 tokens). */
export const MAX_PROMPT_CHUNKS = 20;
/**
 * Most brackets open at once. Each closing bracket reweighs the text since its opener, so the
 * work grows with the nesting depth: bounding it keeps the parser linear in the prompt's length.
 */
export const MAX_EMPHASIS_DEPTH = 32;

const ROUND_MULTIPLIER = 1.1;
const SQUARE_MULTIPLIER = 1 / 1.1;

// A1111's tokens: escapes, a lone backslash, openers, `:weight)`, closers,
// plain text, and a lone colon. Together they cover every character.
const ATTENTION_TOKEN = /\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()[\]:]+|:/g;

// Python's `\bBREAK\b` counts Unicode letters and digits as word characters;
// JavaScript's `\b` knows only ASCII ones, hence the lookarounds.
const BREAK_WORD = /\s*(?<![\p{L}\p{N}_])BREAK(?![\p{L}\p{N}_])\s*/u;

const isBreak = (span: WeightedSpan) => span.text === 'BREAK' && span.weight === -1;

/** Ids between BOS and EOS in one chunk. */
const CHUNK_LENGTH = 75;
/** Length of one chunk as the text encoder sees it. */
const CHUNK_WITH_ENDS = CHUNK_LENGTH + 2;
/** `,</w>`: a full chunk is cut after the last comma if it is this close to the end. */
const COMMA = 267;
const COMMA_BACKTRACK = 20;

function parseWeight(text: string): number {
  const weight = Number(text);
  if (Number.isNaN(weight)) {
    throw new RangeError(`Expected a number for an emphasis weight in the prompt, as in "(word:1.2)", but received "${text}"`);
  }
  return weight;
}

/** Throws a RangeError naming `name` when `text` is longer than MAX_PROMPT_BYTES. */
export function checkPromptSize(text: string, name = 'prompt'): void {
  // Cheap bound first: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (text.length * 3 <= MAX_PROMPT_BYTES) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_PROMPT_BYTES) {
    throw new RangeError(`Expected at most ${MAX_PROMPT_BYTES} bytes (UTF-8) for ${name} but received ${bytes}`);
  }
}

/**
 * Splits a prompt into runs of equal attention weight, as A1111's
 * `parse_prompt_attention`: `(a)` ×1.1, `[a]` ÷1.1, `(a:w)` ×w, `\(` etc. are
 * literals, unclosed brackets close at the end, and a standalone `BREAK`
 * becomes the span `{ text: 'BREAK', weight: -1 }`. More than MAX_EMPHASIS_DEPTH brackets open
 * at once are a RangeError.
 */
export function parseEmphasis(prompt: string, name = 'prompt'): WeightedSpan[] {
  const spans: WeightedSpan[] = [];
  const openRound: number[] = [];
  const openSquare: number[] = [];
  const multiplyFrom = (start: number, multiplier: number) => {
    for (let i = start; i < spans.length; i++) spans[i].weight *= multiplier;
  };

  for (const [token, weightText] of prompt.matchAll(ATTENTION_TOKEN)) {
    if (token.startsWith('\\')) spans.push({ text: token.slice(1), weight: 1 });
    else if (token === '(' || token === '[') {
      if (openRound.length + openSquare.length === MAX_EMPHASIS_DEPTH) {
        throw new RangeError(`Expected at most ${MAX_EMPHASIS_DEPTH} brackets open at once in ${name}, as in "((word))", but received more`);
      }
      (token === '(' ? openRound : openSquare).push(spans.length);
    }
    else if (weightText !== undefined && openRound.length > 0) multiplyFrom(openRound.pop()!, parseWeight(weightText));
    else if (token === ')' && openRound.length > 0) multiplyFrom(openRound.pop()!, ROUND_MULTIPLIER);
    else if (token === ']' && openSquare.length > 0) multiplyFrom(openSquare.pop()!, SQUARE_MULTIPLIER);
    else {
      token.split(BREAK_WORD).forEach((part, i) => {
        // A marker inside brackets gets multiplied too, and then is no marker
        // any more: A1111 reads it as the word "break" with that weight.
        if (i > 0) spans.push({ text: 'BREAK', weight: -1 });
        spans.push({ text: part, weight: 1 });
      });
    }
  }
  for (const start of openRound) multiplyFrom(start, ROUND_MULTIPLIER);
  for (const start of openSquare) multiplyFrom(start, SQUARE_MULTIPLIER);

  const merged: WeightedSpan[] = [];
  for (const span of spans) {
    const last = merged.at(-1);
    if (last && last.weight === span.weight) last.text += span.text;
    else merged.push(span);
  }
  return merged.length > 0 ? merged : [{ text: '', weight: 1 }];
}

/**
 * Textual-inversion embeddings a prompt may name: `pattern` finds their names (whole words, any
 * case), `idsOf` gives the token ids that stand for one (vocabulary size and up).
 */
export interface PromptEmbeddings {
  pattern: RegExp;
  idsOf(name: string): number[];
}

interface Chunk {
  tokens: number[];
  weights: number[];
}

/** A1111's tokenize_line: weighted ids cut into chunks of at most 75; at most MAX_PROMPT_CHUNKS. */
function splitIntoChunks(spans: WeightedSpan[], name: string, embeddings?: PromptEmbeddings): Chunk[] {
  const chunks: Chunk[] = [];
  let chunk: Chunk = { tokens: [], weights: [] };
  let lastComma = -1;
  const endChunk = (next: Chunk = { tokens: [], weights: [] }) => {
    if (chunks.length === MAX_PROMPT_CHUNKS) {
      throw new RangeError(`Expected at most ${MAX_PROMPT_CHUNKS * CHUNK_LENGTH} tokens (${MAX_PROMPT_CHUNKS} chunks of `
        + `${CHUNK_LENGTH}) for ${name} but received more`);
    }
    chunks.push(chunk);
    chunk = next;
    lastComma = -1;
  };

  const addToken = (token: number, weight: number) => {
    if (token === COMMA) {
      lastComma = chunk.tokens.length;
    } else if (chunk.tokens.length === CHUNK_LENGTH && lastComma !== -1 && CHUNK_LENGTH - lastComma <= COMMA_BACKTRACK) {
      // Keeps the phrase after the last comma whole by moving it to the next chunk.
      const cut = lastComma + 1;
      endChunk({ tokens: chunk.tokens.splice(cut), weights: chunk.weights.splice(cut) });
    }
    if (chunk.tokens.length === CHUNK_LENGTH) endChunk();
    chunk.tokens.push(token);
    chunk.weights.push(weight);
  };

  for (const span of spans) {
    if (isBreak(span)) {
      endChunk();
      continue;
    }
    for (const piece of embeddingPieces(span.text, embeddings)) {
      if (typeof piece !== 'string') {
        // As A1111: an embedding is never split across chunks.
        if (chunk.tokens.length + piece.length > CHUNK_LENGTH) endChunk();
        chunk.tokens.push(...piece);
        chunk.weights.push(...piece.map(() => span.weight));
        continue;
      }
      for (const token of tokenize(piece)) addToken(token, span.weight);
    }
  }
  if (chunk.tokens.length > 0 || chunks.length === 0) endChunk();
  return chunks;
}

/** `text` as plain text and the ids of the embeddings named in it, in order. */
function embeddingPieces(text: string, embeddings: PromptEmbeddings | undefined): Array<string | number[]> {
  if (!embeddings) return [text];
  const pieces: Array<string | number[]> = [];
  let at = 0;
  for (const match of text.matchAll(embeddings.pattern)) {
    pieces.push(text.slice(at, match.index), embeddings.idsOf(match[0]));
    at = match.index + match[0].length;
  }
  pieces.push(text.slice(at));
  return pieces;
}

/**
 * Token ids and per-token weights for a prompt, in 77-token chunks as A1111
 * builds them. `padToken` is 49407 for SD 1.x and 0 for SD 2.x; EOS is 49407
 * for both. A prompt over MAX_PROMPT_BYTES or MAX_PROMPT_CHUNKS is a RangeError naming `name`.
 * `embeddings`' names in the text become their ids, weighted as the text around them.
 */
export function buildConditioning(prompt: string, padToken: number, name = 'prompt', embeddings?: PromptEmbeddings): Conditioning {
  checkPromptSize(prompt, name);
  const chunks = splitIntoChunks(parseEmphasis(prompt, name), name, embeddings);
  const tokens = new Int32Array(chunks.length * CHUNK_WITH_ENDS).fill(padToken);
  const weights = new Float32Array(chunks.length * CHUNK_WITH_ENDS).fill(1);
  chunks.forEach((chunk, i) => {
    const start = i * CHUNK_WITH_ENDS;
    tokens[start] = BOS;
    tokens.set(chunk.tokens, start + 1);
    weights.set(chunk.weights, start + 1);
    tokens[start + 1 + chunk.tokens.length] = EOS;
  });
  return { tokens, weights, chunks: chunks.length };
}
