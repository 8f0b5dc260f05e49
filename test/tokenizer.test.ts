import t from 'tap';
import { BOS, EOS, decode, encodeForClip, tokenize } from '../lib/tokenizer.js';

// Ids as CLIP's reference tokenizer (openai/CLIP simple_tokenizer.py) gives them.
const known: [string, number[]][] = [
  ['a photo of a cat', [320, 1125, 539, 320, 2368]],
  ['a castle on a hill at sunset, highly detailed', [320, 3540, 525, 320, 2682, 536, 3424, 267, 5302, 12609]],
  ['blurry, low quality', [21977, 267, 1042, 3027]],
  ['a bowl of fruit on a wooden table', [320, 3814, 539, 5190, 525, 320, 9057, 2175]],
  ['dark', [3144]],
  ['a red sports car', [320, 736, 2054, 1615]],
  ['a mountain lake', [320, 3965, 2553]],
  ['a stone tower', [320, 2441, 4730]],
  ['', []],
];

t.test('gives the reference CLIP ids for plain English prompts', async (t) => {
  for (const [text, ids] of known) t.same(tokenize(text), ids, JSON.stringify(text));
});

t.test('wraps ids in BOS and EOS and pads to 77 with the given pad token', async (t) => {
  const ids = [320, 1125, 539, 320, 2368];
  t.same(encodeForClip('a photo of a cat', EOS), [BOS, ...ids, EOS, ...Array<number>(70).fill(EOS)]);
  t.same(encodeForClip('a photo of a cat', 0), [BOS, ...ids, EOS, ...Array<number>(70).fill(0)]);
  t.same(encodeForClip('', 0), [BOS, EOS, ...Array<number>(75).fill(0)]);
});

t.test('truncates a long prompt to 75 ids between BOS and EOS', async (t) => {
  const ids = encodeForClip('cat '.repeat(100), EOS);
  t.equal(ids.length, 77);
  t.same(ids, [BOS, ...Array<number>(75).fill(2368), EOS]);
});

t.test('ignores case and collapses whitespace', async (t) => {
  const expected = tokenize('a photo of a cat');
  t.same(tokenize('A PHOTO of a Cat'), expected);
  t.same(tokenize('  a   photo\n\tof a\u00a0cat  '), expected);
});

t.test('unescapes HTML entities twice, as CLIP does', async (t) => {
  t.same(tokenize('rock &amp; roll'), tokenize('rock & roll'));
  t.same(tokenize('&amp;lt;tag&amp;gt;'), tokenize('<tag>'));
  t.same(tokenize('don&#39;t &#x201C;stop&#x201d;'), tokenize('don\'t \u201cstop\u201d'));
  t.same(tokenize('a&nbsp;cat'), tokenize('a cat'));
  t.same(tokenize('fish &amp chips'), tokenize('fish & chips'), 'legacy names need no semicolon');
  t.same(tokenize('&bogus; &#0;'), tokenize('&bogus; \ufffd'), 'unknown names stay, invalid numbers become U+FFFD');
});

// Non-ASCII ids derived by hand from the merges file: a byte-level word starts
// as one character per UTF-8 byte (bytes outside printable Latin-1 become
// U+0100 + n), the lowest-ranked adjacent pair merges first, and a merge's id
// is 512 + its 0-based line after the header; ids 256–511 are single bytes
// with `</w>`.
t.test('tokenizes through UTF-8 bytes, not UTF-16 code units', async (t) => {
  // café = 63 61 66 c3 a9 → c a f Ã ©</w>; merges "a f" (rank 190),
  // "c af" (2959), "Ã ©</w>" (3654), "caf Ã©</w>" (14792) leave one token.
  t.same(tokenize('café'), [512 + 14792]);
  t.same(tokenize('cafe\u0301'), [512 + 14792], 'a decomposed é is composed first (NFC, as ftfy does)');
  // 🐱 = f0 9f 90 b1 → ð Ł Ĳ ±</w>; "ð Ł" (46), "ðŁ Ĳ" (1562), "ðŁĲ ±</w>" (22467).
  t.same(tokenize('🐱'), [512 + 22467]);
  // 東京 = e6 9d b1 e4 ba ac → æ Ŀ ± ä º ¬</w>; "ä º" (20566), "æ Ŀ" (27155),
  // "æĿ ±" (47826); no merge joins what is left, and ¬</w> is byte 0xac's
  // </w> form at 256 + its place (105) in the byte table.
  t.same(tokenize('東京'), [512 + 47826, 512 + 20566, 256 + 105]);
});

t.test('decodes its own ids back to the normalised text', async (t) => {
  for (const text of ['café au lait', 'naïve résumé', '🐱 on a 東京 rooftop', 'ζῷον', 'a photo of a cat']) {
    t.equal(decode(tokenize(text)).trim(), text, text);
  }
});

t.test('reads the special tokens in text as themselves', async (t) => {
  t.same(tokenize('<|startoftext|>cat<|endoftext|>'), [BOS, 2368, EOS]);
});
