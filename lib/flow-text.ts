// The text conditioning of flow models besides CLIP's: T5's ids and per-token weights, from the
// prompt through the T5 tokenizer, or from ids the caller gives (`promptTokens.t5xxl`); Z-Image's
// Qwen3 ids, the prompt in its chat template through Qwen's tokenizer, or given (`promptTokens.llm`).
// Also CLIP rows built from given ids. A leaf: no engine, no files.
import type { NativeConditioning } from '../bindings/native.js';
import { SdnodeError } from './errors.js';
import { parseEmphasis } from './prompt.js';
import { zImagePromptTokens, type QwenTokenizer } from './qwen-tokenizer.js';
import type { T5Tokenizer } from './t5-tokenizer.js';

const CLIP_BEGIN = 49406;
const CLIP_END = 49407;
const CLIP_ROW = 77;

/** CLIP rows of 77 from ids without special tokens: BOS, up to 75 ids per row, EOS, padding. */
export function conditioningFromIds(ids: readonly number[], padToken: number): NativeConditioning {
  const rows: number[] = [];
  const perRow = CLIP_ROW - 2;
  for (let from = 0; from === 0 || from < ids.length; from += perRow) {
    const row = [CLIP_BEGIN, ...ids.slice(from, from + perRow), CLIP_END];
    while (row.length < CLIP_ROW) row.push(padToken);
    rows.push(...row);
  }
  return { tokens: Int32Array.from(rows), weights: new Float32Array(rows.length).fill(1) };
}

/**
 * T5's ids (without the end token or padding, which the engine adds) and weights for `text`:
 * `ids` when given, else the tokenizer's, with AUTOMATIC1111 emphasis weights. Without either, an
 * SdnodeError 'ERR_TOKENIZER_MISSING' that says which file to get and how to pass it.
 */
export function flowTextConditioning(
  text: string, ids: readonly number[] | undefined, tokenizer: T5Tokenizer | undefined, tokensOption: string,
): NativeConditioning {
  if (ids) return { tokens: Int32Array.from(ids), weights: new Float32Array(ids.length).fill(1) };
  if (!tokenizer) {
    if (text.trim() === '') return { tokens: new Int32Array(0), weights: new Float32Array(0) };
    throw new SdnodeError('ERR_TOKENIZER_MISSING', 'This model\'s T5-XXL text encoder needs T5\'s SentencePiece vocabulary, which sdnode '
      + 'does not ship: load the model with the option t5Tokenizer set to google/t5-v1_1-xxl\'s spiece.model or tokenizer.json '
      + `(FLUX.1's tokenizer_2/ folder holds them), or give the T5 ids yourself as ${tokensOption}.t5xxl`);
  }
  const spans = parseEmphasis(text).filter((span) => span.weight >= 0);
  const weighted = tokenizer.encodeWeighted(spans);
  return { tokens: Int32Array.from(weighted.ids), weights: Float32Array.from(weighted.weights) };
}

/**
 * Z-Image's Qwen3 ids and weights for `text`: `ids` when given (every id the model reads), else the
 * prompt's emphasis spans in the chat template through the tokenizer.
 */
export function llmTextConditioning(
  text: string, ids: readonly number[] | undefined, tokenizer: QwenTokenizer | undefined, tokensOption: string,
): NativeConditioning {
  if (ids) {
    if (ids.length === 0) throw new RangeError(`${tokensOption}.llm must hold at least one id (the chat template's included)`);
    return { tokens: Int32Array.from(ids), weights: new Float32Array(ids.length).fill(1) };
  }
  if (!tokenizer) throw new TypeError(`llmTextConditioning needs a tokenizer or ${tokensOption}.llm`);
  const weighted = zImagePromptTokens(tokenizer, parseEmphasis(text).filter((span) => span.weight >= 0));
  return { tokens: Int32Array.from(weighted.ids), weights: Float32Array.from(weighted.weights) };
}
