// `sdnode upscale` as a user runs it: an image enlarged into the file asked for (or beside the
// input), and usage errors that name the flag.
import { access } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { main } from '../server/cli.js';
import { writeEsrgan } from './fixtures/esrgan.js';

const dir = t.testdir();
const model = await writeEsrgan(dir);
const input = path.join(dir, 'photo.png');
await sharp({ create: { width: 20, height: 14, channels: 3, background: { r: 120, g: 40, b: 200 } } }).png().toFile(input);

async function run(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const logs = t.capture(console, 'log');
  const errors = t.capture(console, 'error');
  const code = await main(args);
  return { code, output: [...logs(), ...errors()].map((call) => call.args.join(' ')).join('\n') };
}

t.test('writes the image four times as large where -o says', async (t) => {
  const output = path.join(dir, 'big.png');
  const { code, output: text } = await run(t, ['upscale', '-i', input, '--upscale-model', model, '-o', output, '-t', '1', '--backend', 'cpu']);
  t.equal(code, 0, text);
  t.match(text, /^Wrote .*big\.png: 80x56 in [\d.]+ s$/m);
  const meta = await sharp(output).metadata();
  t.same([meta.format, meta.width, meta.height], ['png', 80, 56]);
});

t.test('--scale sets the size, and the file lands beside the input by default', async (t) => {
  const { code, output } = await run(t, ['upscale', '-i', input, '--upscale-model', model, '--scale', '2', '-t', '1', '--backend', 'cpu']);
  t.equal(code, 0, output);
  const written = path.join(dir, 'photo-x2.png');
  await access(written);
  const meta = await sharp(written).metadata();
  t.same([meta.width, meta.height], [40, 28]);
});

t.test('usage errors name the flag', async (t) => {
  let result = await run(t, ['upscale', '--upscale-model', model]);
  t.equal(result.code, 2);
  t.match(result.output, /Missing --input/);
  result = await run(t, ['upscale', '-i', input]);
  t.equal(result.code, 2);
  t.match(result.output, /Missing --upscale-model/);
  result = await run(t, ['upscale', '-i', input, '--upscale-model', model, '--scale', '0']);
  t.equal(result.code, 2);
  t.match(result.output, /--scale/);
});

t.test('a file that is no upscaler is an error naming it', async (t) => {
  const { code, output } = await run(t, ['upscale', '-i', input, '--upscale-model', input, '--backend', 'cpu']);
  t.equal(code, 1);
  t.match(output, /photo\.png/);
});
