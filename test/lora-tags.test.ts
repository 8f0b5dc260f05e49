// The prompt's <lora:…> tags as a hostile prompt writes them: repeated, many, heavy, malformed;
// and the LoRA hash that many requests ask for at once. No model needed.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';

import t from 'tap';

import { extractLoraTags, loraShortHash, MAX_LORA_TAGS, resolveLoraTags, withoutLoraTags } from '../lib/lora.js';
import { writeTinyLora } from './fixtures/lora.js';

const dir = t.testdir();
const loraDir = path.join(dir, 'loras');
await writeTinyLora(loraDir, 'style', { metadata: { ss_output_name: 'style-alias' } });

t.test('repeated tags of one LoRA merge into one, their weights added', async (t) => {
  const { text, tags } = extractLoraTags(`a castle ${'<lora:big:0.1>'.repeat(50)} <lora:small:0.5:0.2> <lora:small>`);
  t.equal(text.trim(), 'a castle');
  t.same(tags.map(({ name }) => name), ['big', 'small']);
  t.ok(Math.abs((tags[0]?.textWeight ?? 0) - 5) < 1e-9 && Math.abs((tags[0]?.unetWeight ?? 0) - 5) < 1e-9);
  t.same(tags[1], { name: 'small', textWeight: 1.5, unetWeight: 1.2 });
});

t.test('a name and an alias of one file are one LoRA', async (t) => {
  const loras = await resolveLoraTags(extractLoraTags('<lora:style:0.5> <lora:style-alias:0.25>').tags, loraDir);
  t.same(loras, [{ path: path.join(loraDir, 'style.safetensors'), name: 'style', textWeight: 0.75, unetWeight: 0.75 }]);
  await t.rejects(resolveLoraTags(extractLoraTags('<lora:style:6> <lora:style-alias:6>').tags, loraDir),
    { name: 'RangeError', message: /between -10 and 10 but received 12/ });
});

t.test('more than 8 LoRAs in one prompt are refused; the cap can be set', async (t) => {
  const tags = (n: number) => Array.from({ length: n }, (_, i) => `<lora:l${i}>`).join(' ');
  t.equal(extractLoraTags(tags(MAX_LORA_TAGS)).tags.length, 8);
  t.throws(() => extractLoraTags(tags(MAX_LORA_TAGS + 1)), { name: 'RangeError', message: /at most 8 LoRAs in the prompt but received 9 \(l0, l1/ });
  t.throws(() => extractLoraTags(tags(3), 2), { message: /at most 2 LoRAs/ });
});

t.test('tag weights beyond ±10 are refused, as the loras option\'s are', async (t) => {
  t.throws(() => extractLoraTags('<lora:x:11>'), { name: 'RangeError', message: /between -10 and 10 but received 11 in <lora:x:11>/ });
  t.throws(() => extractLoraTags('<lora:x:1:unet=-1e9>'), { name: 'RangeError', message: /received -1000000000/ });
  t.throws(() => extractLoraTags('<lora:x:6><lora:x:6>'), { message: /received 12 in the prompt's tags for LoRA "x" added up/ });
  t.same(extractLoraTags('<lora:x:-10>').tags, [{ name: 'x', textWeight: -10, unetWeight: -10 }]);
});

t.test('tags are found as A1111\'s pattern finds them, in one pass over hostile input', async (t) => {
  t.equal(withoutLoraTags('<a:<lora:x:1>>'), '>', 'the first < starts the tag: kind "a", arguments up to the first >');
  t.throws(() => extractLoraTags('<hyper:<lora:x>'), /"hyper" extra network/);
  t.equal(withoutLoraTags('a <lora:> b <:x> c <lora:x'), 'a <lora:> b <:x> c <lora:x', 'no arguments, no kind, no > : text');
  t.equal(withoutLoraTags('x<<lora:y:1>z'), 'x<z');
  t.equal(withoutLoraTags('<lora:a:1>\n<lora:b\n:1>end'), '\nend', 'arguments may span lines');
  t.same(extractLoraTags('<lora:constructor:1> <lora:x:__proto__=2:te=0.5>').tags,
    [{ name: 'constructor', textWeight: 1, unetWeight: 1 }, { name: 'x', textWeight: 0.5, unetWeight: 0.5 }]);
  // With the pattern /<(\w+):([^>]+)>/g each of these took minutes: every '<' re-read the rest.
  const hostile = '<a:'.repeat(300_000);
  t.equal(withoutLoraTags(hostile), hostile);
  t.equal(extractLoraTags(`${'<lora'.repeat(300_000)}`).text.length, 1_500_000);
});

t.test('concurrent hash lookups of one file read it once', async (t) => {
  const file = path.join(loraDir, 'style.safetensors');
  const original = fs.createReadStream;
  let reads = 0;
  fs.createReadStream = ((...args: Parameters<typeof original>) => {
    if (args[0] === file) reads++;
    return original(...args);
  }) as typeof original;
  syncBuiltinESMExports();
  t.teardown(() => {
    fs.createReadStream = original;
    syncBuiltinESMExports();
  });
  const hashes = await Promise.all(Array.from({ length: 10 }, () => loraShortHash(file)));
  t.equal(new Set(hashes).size, 1);
  t.match(hashes[0], /^[0-9a-f]{12}$/);
  t.equal(reads, 1);
});
