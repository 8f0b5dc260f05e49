// Property-based fuzzing (fast-check) of the parsers that read what users send: the PNG text reader
// (uploads' A1111 parameters) and the prompt emphasis parser. Whatever the input, each returns or
// throws its documented error type (TypeError for a PNG that is not one, RangeError for a prompt
// over its limits), and each call finishes in bounded time. The native readers' fuzzers are in
// test/fuzz.test.ts.
import { deflateSync } from 'node:zlib';

import fc from 'fast-check';
import t from 'tap';

import { insertPngText, readPngText } from '../lib/png-metadata.js';
import { encodeChunk, encodeRgbPng, PNG_SIGNATURE } from '../lib/png.js';
import { buildConditioning, MAX_PROMPT_CHUNKS, parseEmphasis } from '../lib/prompt.js';

const RUNS = Number(process.env.SDNODE_FC_RUNS ?? 400);
// Generous for a busy 2-core machine: the point is "not seconds", the typical call takes < 1 ms.
const SLOWEST_CALL_MS = 500;

/** Calls `fn`; returns what it threw (undefined if nothing) and fails the property if it was slow. */
function outcome(fn: () => unknown): unknown {
  const started = performance.now();
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  const ms = performance.now() - started;
  if (ms > SLOWEST_CALL_MS) throw new Error(`took ${ms.toFixed(0)} ms`);
  return thrown;
}

const onlyTypeError = (error: unknown) => error === undefined || (error instanceof TypeError && error.constructor === TypeError);
const onlyRangeError = (error: unknown) => error === undefined || (error instanceof RangeError && error.constructor === RangeError);

// ---- PNG text ------------------------------------------------------------------------------------

const basePng = encodeRgbPng(new Uint8Array(2 * 2 * 3).fill(128), 2, 2);
const chunkTypes = ['tEXt', 'zTXt', 'iTXt', 'IHDR', 'IDAT', 'IEND', 'tIME'];

/** A text chunk's data as the spec lays it out, with every field arbitrary. */
const textChunkData = fc.oneof(
  fc.tuple(fc.uint8Array({ maxLength: 80 }), fc.uint8Array({ maxLength: 200 }))
    .map(([keyword, text]) => Buffer.concat([keyword, Buffer.from([0]), text])),
  fc.tuple(fc.uint8Array({ maxLength: 20 }), fc.integer({ min: 0, max: 255 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.boolean())
    .map(([keyword, method, text, corrupt]) => {
      const z = deflateSync(Buffer.from(text, 'utf8'));
      if (corrupt && z.length > 4) z[z.length >> 1] ^= 0x5a;
      return Buffer.concat([keyword, Buffer.from([0, method]), z]);
    }),
  fc.tuple(fc.uint8Array({ maxLength: 20 }), fc.integer({ min: 0, max: 2 }), fc.uint8Array({ maxLength: 10 }), fc.uint8Array({ maxLength: 10 }),
    fc.string({ unit: 'binary', maxLength: 300 }))
    .map(([keyword, compressed, language, translated, text]) => {
      const body = compressed === 1 ? deflateSync(Buffer.from(text, 'utf8')) : Buffer.from(text, 'utf8');
      return Buffer.concat([keyword, Buffer.from([0, compressed, 0]), language, Buffer.from([0]), translated, Buffer.from([0]), body]);
    }),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
);

/** A chunk stream: well framed chunks of arbitrary types and data, or raw bytes that lie about lengths. */
const chunkStream = fc.array(fc.oneof(
  fc.tuple(fc.constantFrom(...chunkTypes), textChunkData).map(([type, data]) => encodeChunk(type, data)),
  fc.tuple(fc.string({ unit: 'binary-ascii', minLength: 4, maxLength: 4 }), fc.uint8Array({ maxLength: 64 }))
    .map(([type, data]) => encodeChunk(type, Buffer.from(data))),
  fc.uint8Array({ minLength: 1, maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
), { maxLength: 12 });

t.test('reading PNG text from arbitrary bytes returns or throws a TypeError, quickly', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => onlyTypeError(outcome(() => readPngText(bytes)))), { numRuns: RUNS });
  t.pass(`${RUNS} inputs`);
});

t.test('reading PNG text from a signature and arbitrary chunks returns or throws a TypeError, quickly', async (t) => {
  fc.assert(fc.property(chunkStream, fc.boolean(), (chunks, withHeader) => {
    const png = Buffer.concat([withHeader ? basePng.subarray(0, 33) : PNG_SIGNATURE, ...chunks]);
    const thrown = outcome(() => {
      const entries = readPngText(png);
      for (const [keyword, text] of Object.entries(entries)) {
        if (typeof keyword !== 'string' || typeof text !== 'string') throw new Error('an entry that is not a string');
      }
    });
    return onlyTypeError(thrown);
  }), { numRuns: RUNS });
  t.pass(`${RUNS} inputs`);
});

t.test('reading PNG text from a damaged PNG with text chunks returns or throws a TypeError, quickly', async (t) => {
  const zTxt = encodeChunk('zTXt', Buffer.concat([Buffer.from('comment\0\0'), deflateSync(Buffer.from('x'.repeat(5000)))]));
  const withText = insertPngText(insertPngText(basePng, 'parameters', 'a cat\nSteps: 20, Seed: 1'), 'Title', 'ünïcödé ✓');
  const png = Buffer.concat([withText.subarray(0, 33), zTxt, withText.subarray(33)]);
  const damage = fc.record({
    flips: fc.array(fc.tuple(fc.nat({ max: png.length - 1 }), fc.integer({ min: 1, max: 255 })), { maxLength: 8 }),
    cut: fc.option(fc.nat({ max: png.length }), { nil: undefined }),
  });
  fc.assert(fc.property(damage, ({ flips, cut }) => {
    const bytes = Buffer.from(png);
    for (const [at, mask] of flips) bytes[at]! ^= mask;
    return onlyTypeError(outcome(() => readPngText(bytes.subarray(0, cut))));
  }), { numRuns: RUNS });
  t.pass(`${RUNS} inputs`);
});

t.test('text written into a PNG reads back unchanged, whatever the keyword and text', async (t) => {
  const keyword = fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 79 });
  fc.assert(fc.property(keyword, fc.string({ unit: 'binary', maxLength: 500 }), (key, text) => {
    const entries = readPngText(insertPngText(basePng, key, text));
    return Object.hasOwn(entries, key) && entries[key] === text;
  }), { numRuns: RUNS });
  t.pass(`${RUNS} inputs`);
});

// ---- prompts -------------------------------------------------------------------------------------

/** Prompts heavy in the syntax: brackets, escapes, weights, colons, BREAK, commas, any text. */
const promptPiece = fc.oneof(
  fc.constantFrom('(', ')', '[', ']', '\\', '\\(', '\\)', ':', ',', ' ', 'BREAK', ' BREAK ', '(a:1.2)', ':-0.5)', ':.)', ':1e5)', ':9999)'),
  fc.stringMatching(/^:\s*[+-]?[.\d]{1,40}\s*\)$/),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const prompt = fc.oneof(fc.array(promptPiece, { maxLength: 200 }).map((pieces) => pieces.join('')), fc.string({ unit: 'binary', maxLength: 3000 }));

t.test('parsing an arbitrary prompt returns spans or throws a RangeError, quickly', async (t) => {
  fc.assert(fc.property(prompt, (text) => {
    const thrown = outcome(() => {
      const spans = parseEmphasis(text);
      if (spans.length === 0 || spans.some((s) => typeof s.text !== 'string' || Number.isNaN(s.weight))) {
        throw new Error(`bad spans ${JSON.stringify(spans)}`);
      }
    });
    return onlyRangeError(thrown);
  }), { numRuns: RUNS });
  t.pass(`${RUNS} inputs`);
});

t.test('conditioning an arbitrary prompt gives whole chunks or throws a RangeError, quickly', async (t) => {
  buildConditioning('the tokenizer loads its vocabulary on first use', 49407);
  fc.assert(fc.property(prompt, fc.constantFrom(0, 49407), (text, pad) => {
    const thrown = outcome(() => {
      const c = buildConditioning(text, pad);
      if (c.chunks < 1 || c.chunks > MAX_PROMPT_CHUNKS || c.tokens.length !== 77 * c.chunks || c.weights.length !== 77 * c.chunks) {
        throw new Error(`bad conditioning: ${c.chunks} chunks, ${c.tokens.length} tokens, ${c.weights.length} weights`);
      }
    });
    return onlyRangeError(thrown);
  }), { numRuns: RUNS });
  t.pass(`${RUNS} inputs`);
});
