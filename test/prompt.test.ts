import t from 'tap';
import { buildConditioning, checkPromptSize, MAX_EMPHASIS_DEPTH, MAX_PROMPT_BYTES, MAX_PROMPT_CHUNKS, parseEmphasis } from '../lib/prompt.js';
import { BOS, EOS, tokenize } from '../lib/tokenizer.js';

const spans = (prompt: string) => parseEmphasis(prompt).map(({ text, weight }) => [text, weight]);

// The examples documented in A1111's parse_prompt_attention, weights bit for bit.
t.test('weighs the examples from the A1111 documentation identically', async (t) => {
  t.same(spans('normal text'), [['normal text', 1]]);
  t.same(spans('an (important) word'), [['an ', 1], ['important', 1.1], [' word', 1]]);
  t.same(spans('(unbalanced'), [['unbalanced', 1.1]]);
  t.same(spans('\\(literal\\]'), [['(literal]', 1]]);
  t.same(spans('(unnecessary)(parens)'), [['unnecessaryparens', 1.1]]);
  t.same(spans('a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).'), [
    ['a ', 1],
    ['house', 1.5730000000000004],
    [' ', 1.1],
    ['on', 1],
    [' a ', 1.1],
    ['hill', 0.55],
    [', sun, ', 1.1],
    ['sky', 1.4641000000000006],
    ['.', 1.1],
  ]);
});

t.test('multiplies nested brackets and explicit weights', async (t) => {
  t.same(spans('((a))'), [['a', 1.2100000000000002]]);
  t.same(spans('(a:1.3)'), [['a', 1.3]]);
  t.same(spans('( a : 0.25 )'), [[' a ', 0.25]], 'spaces around the weight are allowed');
  t.same(spans('[a]'), [['a', 0.9090909090909091]]);
  t.same(spans('[[a'), [['a', 0.8264462809917354]], 'unclosed square brackets close at the end');
  t.same(spans(''), [['', 1]]);
});

t.test('reads escaped brackets and backslashes as text', async (t) => {
  t.same(spans('\\(a\\) \\[b\\] \\\\'), [['(a) [b] \\', 1]]);
  t.same(spans('a\\b'), [['ab', 1]], 'a lone backslash disappears, as in A1111');
  t.same(spans('a:1.3) b]'), [['a:1.3) b]', 1]], 'closers without an opener are text');
});

t.test('rejects an emphasis weight that is not a number', async (t) => {
  t.throws(() => parseEmphasis('(a:1.2.3)'), RangeError);
});

t.test('marks a standalone uppercase BREAK', async (t) => {
  t.same(spans('a cat BREAK a dog'), [['a cat', 1], ['BREAK', -1], ['a dog', 1]]);
  t.same(spans('BREAKfast break éBREAK'), [['BREAKfast break éBREAK', 1]]);
});

const CAT = 2368;
const COMMA = 267;
const padding = (n: number, pad: number) => Array<number>(n).fill(pad);

t.test('builds one padded chunk with weights aligned to tokens', async (t) => {
  const red = tokenize('red');
  const c = buildConditioning('a (red:1.5) car', EOS);
  t.equal(c.chunks, 1);
  t.same([...c.tokens], [BOS, 320, ...red, 1615, EOS, ...padding(72, EOS)]);
  t.same([...c.weights], [1, 1, 1.5, 1, 1, ...padding(72, 1)]);
});

t.test('pads with zeros after EOS for SD 2.x', async (t) => {
  const c = buildConditioning('a cat', 0);
  t.same([...c.tokens], [BOS, 320, CAT, EOS, ...padding(73, 0)]);
});

t.test('makes one empty chunk for an empty prompt', async (t) => {
  const c = buildConditioning('', EOS);
  t.equal(c.chunks, 1);
  t.same([...c.tokens], [BOS, EOS, ...padding(75, EOS)]);
  t.same([...c.weights], padding(77, 1));
});

t.test('starts a new chunk after 75 tokens', async (t) => {
  t.equal(buildConditioning('cat '.repeat(75), EOS).chunks, 1);
  const c = buildConditioning('(cat) '.repeat(80), EOS);
  t.equal(c.chunks, 2);
  t.equal(c.tokens.length, 154);
  t.same([...c.tokens.subarray(0, 77)], [BOS, ...padding(75, CAT), EOS]);
  t.same([...c.tokens.subarray(77)], [BOS, ...padding(5, CAT), EOS, ...padding(70, EOS)]);
  t.same([...c.weights.subarray(77, 84)], [1, ...padding(5, Math.fround(1.1)), 1]);
});

t.test('moves the words after a comma near the end into the next chunk', async (t) => {
  const dog = tokenize('dog')[0];
  const c = buildConditioning(`${'cat '.repeat(70)}, ${'dog '.repeat(10)}`, EOS);
  t.equal(c.chunks, 2);
  t.same([...c.tokens.subarray(0, 77)], [BOS, ...padding(70, CAT), COMMA, EOS, ...padding(4, EOS)]);
  t.same([...c.tokens.subarray(77, 89)], [BOS, ...padding(10, dog), EOS]);
});

t.test('cuts at 75 when the last comma is more than 20 tokens back', async (t) => {
  const c = buildConditioning(`${'cat '.repeat(50)}, ${'cat '.repeat(30)}`, EOS);
  t.same([...c.tokens.subarray(0, 77)], [BOS, ...padding(50, CAT), COMMA, ...padding(24, CAT), EOS]);
  t.same([...c.tokens.subarray(77, 85)], [BOS, ...padding(6, CAT), EOS]);
});

t.test('ends the chunk at BREAK', async (t) => {
  const c = buildConditioning('a cat BREAK (a cat)', 0);
  t.equal(c.chunks, 2);
  t.same([...c.tokens.subarray(0, 77)], [BOS, 320, CAT, EOS, ...padding(73, 0)]);
  t.same([...c.tokens.subarray(77)], [BOS, 320, CAT, EOS, ...padding(73, 0)]);
  t.same([...c.weights.subarray(77, 81)], [1, Math.fround(1.1), Math.fround(1.1), 1]);
  t.equal(buildConditioning('a cat BREAK', 0).chunks, 1, 'a trailing BREAK adds no empty chunk');
});

t.test('refuses a prompt over 8 KB or 20 chunks, naming the field', async (t) => {
  t.doesNotThrow(() => checkPromptSize('é'.repeat(MAX_PROMPT_BYTES / 2), 'negativePrompt'));
  t.throws(() => buildConditioning('a'.repeat(MAX_PROMPT_BYTES + 1), EOS, 'negativePrompt'),
    { name: 'RangeError', message: /at most 8192 bytes \(UTF-8\) for negativePrompt but received 8193/ });
  t.throws(() => buildConditioning('é'.repeat(MAX_PROMPT_BYTES / 2 + 1), EOS), { message: /for prompt but received 8194/ });
  t.equal(buildConditioning('cat '.repeat(75 * MAX_PROMPT_CHUNKS), EOS).chunks, MAX_PROMPT_CHUNKS);
  t.throws(() => buildConditioning('cat '.repeat(75 * MAX_PROMPT_CHUNKS + 1), EOS), { name: 'RangeError', message: /at most 1500 tokens/ });
  t.throws(() => buildConditioning('a BREAK '.repeat(MAX_PROMPT_CHUNKS + 1), EOS), { name: 'RangeError', message: /20 chunks/ });
});

t.test('refuses brackets nested deeper than 32, whatever their kind, and parses hostile input at once', async (t) => {
  const nested = (depth: number) => `${'(a['.repeat(depth / 2)}x`;
  t.doesNotThrow(() => parseEmphasis(nested(MAX_EMPHASIS_DEPTH)));
  t.throws(() => parseEmphasis(nested(MAX_EMPHASIS_DEPTH + 2), 'negative_prompt'),
    { name: 'RangeError', message: /at most 32 brackets open at once in negative_prompt/ });
  // Unbounded, each of these took seconds to minutes: every closer reweighed every span since
  // its opener.
  t.throws(() => parseEmphasis('(a'.repeat(200_000)), RangeError);
  t.equal(spans('(a)'.repeat(200_000)).length, 1);
  t.equal(spans(`(a:${'1.'.repeat(100_000)}`).length, 1);
});

t.test('an embedding\'s ids stay together: one that does not fit the chunk\'s rest starts the next', async (t) => {
  const { EmbeddingVocabulary } = await import('../lib/embeddings.js');
  const vectors = (n: number) => new Float32Array(n * 4);
  const vocabulary = new EmbeddingVocabulary([
    { name: 'Bad-Hands', path: 'a', vectors: 3, first: vectors(3) },
    { name: 'bad', path: 'b', vectors: 1, first: vectors(1) },
  ]);
  const c = buildConditioning(`${'cat '.repeat(73)}bad-hands, (bad:1.2)`, EOS, 'prompt', vocabulary);
  t.equal(c.chunks, 2);
  t.same([...c.tokens.slice(74, 77)], [EOS, EOS, EOS], 'the first chunk ends after the 73 words');
  t.same([...c.tokens.slice(78, 83)], [49408, 49409, 49410, 267, 49411], 'longest name first, then the comma and the shorter name');
  t.same([...c.weights.slice(78, 83)].map((w) => Math.round(w * 100) / 100), [1, 1, 1, 1, 1.2]);
  t.same(vocabulary.used.map((e) => e.name), ['Bad-Hands', 'bad']);
  t.equal(vocabulary.tables().embeddings?.length, 16, 'the rows of the used embeddings, in order of use');
});
