import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import t, { type Test } from 'tap';
import { SdnodeError } from '../lib/errors.js';
import { parseEmphasis } from '../lib/prompt.js';
import { loadT5Tokenizer, type T5Tokenizer } from '../lib/t5-tokenizer.js';
import {
  PieceType, TEST_CHARSMAP_RULES, TEST_PIECES, compileCharsmap, ggufWithMetadata, spieceModel,
  t5GgufMetadata, tokenizerJson, type TestPiece,
} from './fixtures/t5-vocab.js';

const charsmap = compileCharsmap(TEST_CHARSMAP_RULES);
/** Pieces in the test vocabulary; T5's sentinels count down from `<extra_id_0>` = this + 99. */
const N = TEST_PIECES.length;
const extraId = (n: number) => N + 99 - n;

// The ids each case must give, from SentencePiece's unigram algorithm on TEST_PIECES by hand: the
// text is normalised (charsmap, spaces collapsed, "▁" in front), then the segmentation with the
// highest score sum wins; an unknown character costs -18 and a run of them is one <unk> (2).
const cases: [name: string, text: string, ids: number[]][] = [
  ['the empty string gives no ids', '', []],
  ['a string of spaces gives no ids', '  \t\n ', []],
  ['one word gets the ▁ prefix', 'the', [4]],
  ['the best sum wins over the longest piece (▁cat + s = -5.5 beats ▁cats = -7)', 'cats', [5, 6]],
  ['the longest piece wins where its score is best (▁sunflower -8 beats ▁sun + flower -8.5)', 'sunflower', [10]],
  ['a tie keeps the path found first, whose last piece starts earliest (▁a + bc, not ▁ab + c)', 'abc', [13, 14]],
  ['leading, trailing and repeated spaces collapse', '  the   cat  ', [4, 5]],
  ['tabs, newlines, ideographic and no-break spaces are spaces', 'the\tcat\ncats\u3000dog\u00a0dog', [4, 5, 5, 6, 23, 23]],
  ['a ▁ typed in the text is a space', '\u2581the \u2581\u2581cat', [4, 5]],
  ['control characters vanish', 'ca\u0007t', [5]],
  ['full-width letters become ASCII (NFKC)', '\uff43\uff41\uff54\uff53', [5, 6]],
  ['a ligature is split (NFKC: ﬁ → fi)', '\ufb01sh', [17]],
  ['a precomposed accent is kept', 'caf\u00e9', [18, 19]],
  ['a decomposed accent is composed first (e + U+0301 → é)', 'cafe\u0301', [18, 19]],
  ['a CJK character the vocabulary lacks is unknown', '\u65e5\u672c', [3, 20, 2]],
  ['an emoji is unknown', '\u{1f600}', [3, 2]],
  ['a run of unknown characters is one <unk>', 'x\u{1f600}\u{1f600}y', [3, 21, 2, 22]],
  ['an extra id is one token', '<extra_id_0>', [extraId(0)]],
  ['the last extra id is the first after the pieces', '<extra_id_99>', [extraId(99)]],
  ['text around an extra id is encoded as separate sentences', 'the<extra_id_1>cat', [4, extraId(1), 5]],
  ['spaces around an extra id vanish', ' the <extra_id_17> cat ', [4, extraId(17), 5]],
  ['</s> in the text is the EOS token', 'the</s>', [4, 1]],
  ['<extra_id_100> is plain text', '<extra_id_100>', [3, 2, 21, 2, 15, 2]],
];

const sources: [string, () => Buffer | string][] = [
  ['spiece.model', () => spieceModel(TEST_PIECES, { charsmap })],
  ['tokenizer.json', () => tokenizerJson(TEST_PIECES, { charsmap })],
  ['a T5 GGUF', () => ggufWithMetadata(t5GgufMetadata(TEST_PIECES, N + 128, { charsmap }))],
];

async function loadFrom(t: Test, file: string, contents: Buffer | string): Promise<T5Tokenizer> {
  const target = path.join(t.testdir(), file);
  await writeFile(target, contents);
  return loadT5Tokenizer(target);
}

for (const [format, make] of sources) {
  t.test(`gives the ids the unigram algorithm defines, from ${format}`, async (t) => {
    const tokenizer = await loadFrom(t, format.replace('a T5 GGUF', 't5.gguf'), make());
    t.equal(tokenizer.eosId, 1);
    t.equal(tokenizer.padId, 0);
    t.equal(tokenizer.unkId, 2);
    for (const [name, text, ids] of cases) t.same(tokenizer.encode(text), ids, name);
  });
}

t.test('loads the same vocabulary from bytes and from a folder holding spiece.model', async (t) => {
  const fromBytes = await loadT5Tokenizer(spieceModel(TEST_PIECES, { charsmap }));
  t.same(fromBytes.encode('the cats'), [4, 5, 6]);
  const folder = t.testdir({ 'spiece.model': spieceModel(TEST_PIECES, { charsmap }) });
  t.same((await loadT5Tokenizer(folder)).encode('the cats'), [4, 5, 6]);
});

t.test('puts <extra_id_0> at 32099 and <extra_id_99> at 32000 with T5\'s 32000 pieces', async (t) => {
  const pieces: TestPiece[] = [...TEST_PIECES];
  for (let i = pieces.length; i < 32000; i++) pieces.push([`\u2581filler${i}`, -20]);
  const tokenizer = await loadT5Tokenizer(spieceModel(pieces, { charsmap }));
  t.same(tokenizer.encode('<extra_id_0> the <extra_id_99>'), [32099, 4, 32000]);
  t.same(tokenizer.encode('filler31999'), [31999]);
});

t.test('without a charsmap in the file, normalises as the file says: identity', async (t) => {
  const tokenizer = await loadT5Tokenizer(spieceModel(TEST_PIECES));
  t.same(tokenizer.encode('\uff43\uff41\uff54'), [3, 2], 'full-width letters stay unknown');
  t.same(tokenizer.encode('  the   cat '), [4, 5], 'spaces still collapse');
});

t.test('a GGUF without a charsmap falls back to NFKC with nmt rules', async (t) => {
  const tokenizer = await loadT5Tokenizer(ggufWithMetadata(t5GgufMetadata(TEST_PIECES, N + 128)));
  t.same(tokenizer.encode('\uff43\uff41\uff54\uff53\t\ufb01sh cafe\u0301'), [5, 6, 17, 18, 19]);
});

t.test('without a dummy prefix, the first word has no ▁', async (t) => {
  const tokenizer = await loadT5Tokenizer(spieceModel(TEST_PIECES, { charsmap, addDummyPrefix: false }));
  t.same(tokenizer.encode('cat the'), [12, 15, 2, 4]);
});

t.test('a tokenizer.json with prepend_scheme "first" puts no ▁ after a special token', async (t) => {
  const first = await loadT5Tokenizer(Buffer.from(tokenizerJson(TEST_PIECES, { charsmap, prependScheme: 'first' })));
  t.same(first.encode('the<extra_id_0>cat'), [4, extraId(0), 12, 15, 2]);
  const always = await loadT5Tokenizer(Buffer.from(tokenizerJson(TEST_PIECES, { charsmap, prependScheme: 'always' })));
  t.same(always.encode('the<extra_id_0>cat'), [4, extraId(0), 5]);
});

t.test('the [PAD<id>] placeholders of a GGUF are never produced', async (t) => {
  const tokenizer = await loadT5Tokenizer(ggufWithMetadata(t5GgufMetadata([...TEST_PIECES, ['\u2581p', -1, PieceType.UNUSED]], N + 128)));
  t.same(tokenizer.encode('p'), [3, 2], 'an unused piece is not matched');
  t.notOk(tokenizer.encode(`[PAD${N + 5}]`).some((id) => id > N), 'placeholders are text');
});

t.test('with byte fallback, an unknown character becomes its UTF-8 bytes', async (t) => {
  const bytes: TestPiece[] = Array.from({ length: 256 }, (_, b) =>
    [`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0, PieceType.BYTE] as const);
  const emoji = [0xf0, 0x9f, 0x98, 0x80].map((b) => N + b);
  const tokenizer = await loadT5Tokenizer(spieceModel([...TEST_PIECES, ...bytes], { charsmap, byteFallback: true }));
  t.same(tokenizer.encode('\u{1f600}\u{1f600}'), [3, ...emoji, ...emoji]);
  const fromJson = await loadT5Tokenizer(Buffer.from(tokenizerJson([...TEST_PIECES, ...bytes], { charsmap, byteFallback: true })));
  t.same(fromJson.encode('\u{1f600}'), [3, ...emoji]);
});

t.test('a user-defined symbol is never split', async (t) => {
  const tokenizer = await loadT5Tokenizer(spieceModel([...TEST_PIECES, ['\u2605\u2605', 0, PieceType.USER_DEFINED]], { charsmap }));
  t.same(tokenizer.encode('the\u2605\u2605 cat'), [4, N, 5]);
});

t.test('a long prompt is encoded whole; the encoder input cuts it to maxLength with EOS last', async (t) => {
  const tokenizer = await loadT5Tokenizer(spieceModel(TEST_PIECES, { charsmap }));
  const ids = tokenizer.encode('the cat '.repeat(300));
  t.same(ids, Array.from({ length: 600 }, (_, i) => (i % 2 === 0 ? 4 : 5)));
  const input = tokenizer.toEncoderInput(ids, 512);
  t.equal(input.tokens.length, 512);
  t.equal(input.length, 512);
  t.same([...input.tokens.subarray(0, 511)], ids.slice(0, 511));
  t.equal(input.tokens[511], 1);
  t.same([...tokenizer.toEncoderInput(ids).tokens], [...ids, 1], 'without maxLength: all ids and EOS');
});

t.test('pads a short prompt with <pad> after EOS', async (t) => {
  const tokenizer = await loadT5Tokenizer(spieceModel(TEST_PIECES, { charsmap }));
  const input = tokenizer.toEncoderInput(tokenizer.encode('the cat'), 6);
  t.same([...input.tokens], [4, 5, 1, 0, 0, 0]);
  t.same([...input.weights], [1, 1, 1, 1, 1, 1]);
  t.equal(input.length, 3);
  t.same([...tokenizer.toEncoderInput([], 4).tokens], [1, 0, 0, 0]);
  t.throws(() => tokenizer.toEncoderInput([4], 0), new RangeError('Expected an integer of at least 1 for maxLength but received 0'));
});

t.test('emphasis spans from parseEmphasis give per-token weights, each span encoded on its own', async (t) => {
  const tokenizer = await loadT5Tokenizer(spieceModel(TEST_PIECES, { charsmap }));
  const weighted = tokenizer.encodeWeighted(parseEmphasis('the (cat:1.5) [sun]flower'));
  t.same(weighted.ids, [4, 5, 8, 3, 9], '"sun" and "flower" are separate sentences: ▁sun ▁ flower');
  t.same(weighted.weights, [1, 1.5, 1 / 1.1, 1, 1]);
  const input = tokenizer.toEncoderInput(weighted, 8);
  t.same([...input.tokens], [4, 5, 8, 3, 9, 1, 0, 0]);
  t.same([...input.weights], [1, 1.5, Math.fround(1 / 1.1), 1, 1, 1, 1, 1]);
  t.same(tokenizer.encodeWeighted(parseEmphasis('the BREAK cat')), { ids: [4, 5], weights: [1, 1] }, 'BREAK is skipped');
});

// ---- files that are missing, damaged or of another kind -----------------------------------------

async function rejection(promise: Promise<unknown>): Promise<SdnodeError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SdnodeError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

t.test('without a vocabulary, says which file to get and how to pass it', async (t) => {
  const error = await rejection(loadT5Tokenizer(undefined));
  t.equal(error.code, 'ERR_TOKENIZER_MISSING');
  t.match(error.message, /google\/t5-v1_1-xxl/);
  t.match(error.message, /spiece\.model/);
  t.match(error.message, /tokenizer\.json/);
  t.match(error.message, /GGUF/);
  t.match(error.message, /t5Tokenizer/);
});

t.test('a missing file is an ERR_MODEL_IO naming it', async (t) => {
  const missing = path.join(t.testdir(), 'spiece.model');
  const error = await rejection(loadT5Tokenizer(missing));
  t.equal(error.code, 'ERR_MODEL_IO');
  t.match(error.message, missing);
  t.match(error.message, /google\/t5-v1_1-xxl/);
  const folder = await rejection(loadT5Tokenizer(t.testdir({ 'README.md': 'no vocabulary here' })));
  t.equal(folder.code, 'ERR_MODEL_IO');
  t.match(folder.message, /neither tokenizer\.json nor spiece\.model/);
});

t.test('a garbled file is an ERR_MODEL_FORMAT naming it', async (t) => {
  const dir = t.testdir({ 'spiece.model': 'this is not a vocabulary', 'tokenizer.json': '{"model": {"type": "BPE"}}', 'broken.json': '{"model": ' });
  for (const [file, detail] of [
    ['spiece.model', /neither a tokenizer\.json, a SentencePiece spiece\.model nor a GGUF/],
    ['tokenizer.json', /no "model": \{ "type": "Unigram"/],
    ['broken.json', /JSON does not parse/],
  ] as const) {
    const error = await rejection(loadT5Tokenizer(path.join(dir, file)));
    t.equal(error.code, 'ERR_MODEL_FORMAT', file);
    t.match(error.message, path.join(dir, file));
    t.match(error.message, detail);
  }
});

t.test('a truncated spiece.model is an ERR_MODEL_FORMAT, at every cut', async (t) => {
  const whole = spieceModel(TEST_PIECES, { charsmap });
  for (const cut of [1, 2, 7, 100, whole.length - charsmap.length, whole.length - 30, whole.length - 1]) {
    const error = await rejection(loadT5Tokenizer(whole.subarray(0, cut)));
    t.equal(error.code, 'ERR_MODEL_FORMAT', `cut at ${cut}`);
    t.match(error.message, /truncated|no SentencePiece pieces|no <pad>|no unknown piece|charsmap/, `cut at ${cut}`);
  }
});

t.test('a SentencePiece BPE model is ERR_MODEL_UNSUPPORTED', async (t) => {
  const bpe = Buffer.concat([spieceModel(TEST_PIECES), Buffer.from([0x12, 0x02, 0x18, 0x02])]);
  const error = await rejection(loadT5Tokenizer(bpe));
  t.equal(error.code, 'ERR_MODEL_UNSUPPORTED');
  t.match(error.message, /unigram/);
});

t.test('a GGUF without tokenizer metadata, or with a llama tokenizer, says so', async (t) => {
  const bare = await rejection(loadFrom(t, 't5xxl.gguf', ggufWithMetadata([['general.architecture', { string: 't5encoder' }]])));
  t.equal(bare.code, 'ERR_MODEL_FORMAT');
  t.match(bare.message, /t5xxl\.gguf/);
  t.match(bare.message, /no tokenizer metadata \(tokenizer\.ggml\.tokens\)/);
  const llama = t5GgufMetadata(TEST_PIECES, N).map(([key, value]) =>
    [key, key === 'tokenizer.ggml.model' ? { string: 'llama' } : value] as const);
  const other = await rejection(loadT5Tokenizer(ggufWithMetadata(llama)));
  t.equal(other.code, 'ERR_MODEL_UNSUPPORTED');
});

t.test('a GGUF whose metadata is bigger than the first read window is read in full', async (t) => {
  const filler: [string, { f32s: Float32Array }] = ['general.filler', { f32s: new Float32Array(1_500_000) }];
  const tokenizer = await loadFrom(t, 'big.gguf', ggufWithMetadata([filler, ...t5GgufMetadata(TEST_PIECES, N + 128, { charsmap })]));
  t.same(tokenizer.encode('the cats <extra_id_0>'), [4, 5, 6, extraId(0)]);
});

t.test('a truncated or lying GGUF is an ERR_MODEL_FORMAT, not a crash', async (t) => {
  const whole = ggufWithMetadata(t5GgufMetadata(TEST_PIECES, N + 128, { charsmap }));
  for (const cut of [10, 30, 200, whole.length - 5]) {
    const error = await rejection(loadFrom(t, `cut${cut}.gguf`, whole.subarray(0, cut)));
    t.equal(error.code, 'ERR_MODEL_FORMAT', `cut at ${cut}`);
    t.match(error.message, /truncated/, `cut at ${cut}`);
  }
  const huge = Buffer.from(whole);
  huge.writeBigUInt64LE(2n ** 60n, 16);
  const error = await rejection(loadT5Tokenizer(huge));
  t.equal(error.code, 'ERR_MODEL_FORMAT');
  t.match(error.message, /key-value count \d+ at byte 16 exceeds the file's length/);
});
