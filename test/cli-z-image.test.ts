// `sdnode generate` and `sdnode info` with Z-Image given as components (--diffusion-model, --llm,
// --vae): a PNG with the family's defaults, the family in info, and errors that name the flag.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { readPngText } from '../lib/index.js';
import { main } from '../server/cli.js';
import { writeTinyZImage } from './fixtures/z-image.js';

const dir = t.testdir();
const files = await writeTinyZImage(path.join(dir, 'z'));
const flags = ['--diffusion-model', files.diffusionModel, '--llm', files.llm, '--vae', files.vae];
// One thread: busy-waiting worker threads crawl on a machine shared with other jobs.
const quick = ['-W', '64', '-H', '64', '-t', '1', '--backend', 'cpu'];

async function run(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const errors = t.capture(console, 'error');
  const logs = t.capture(console, 'log');
  const code = await main(args);
  return { code, output: [...errors(), ...logs()].map((call) => call.args.join(' ')).join('\n') };
}

t.test('generate --diffusion-model --llm --vae writes a PNG with Z-Image Turbo\'s defaults', async (t) => {
  const out = path.join(t.testdir(), 'z.png');
  const { code, output } = await run(t, ['generate', ...flags, ...quick, '-p', 'a cat on a windowsill', '-s', '3', '-o', out]);
  t.equal(code, 0, output);
  t.match(output, `Saved ${out} (seed 3)`);
  const png = await sharp(out).metadata();
  t.same([png.format, png.width, png.height], ['png', 64, 64]);
  t.match(readPngText(await readFile(out)).parameters, /^a cat on a windowsill\nSteps: 8, Sampler: Euler, CFG scale: 1, Seed: 3/);
});

t.test('info prints the family, the Qwen3 encoder and each component file', async (t) => {
  const { code, output } = await run(t, ['info', ...flags, '--backend', 'cpu', '-t', '1']);
  t.equal(code, 0, output);
  t.match(output, /family\s+Z-Image/);
  t.match(output, /text encoders\s+Qwen3/);
  t.match(output, `Qwen3            ${files.llm}`);
  const json = await run(t, ['info', ...flags, '--json', '--backend', 'cpu', '-t', '1']);
  t.equal(json.code, 0, json.output);
  t.match(JSON.parse(json.output) as object, { family: 'z-image', textEncoders: ['llm'], components: { llm: files.llm } });
});

t.test('a missing or bad --llm is an error naming the flag', async (t) => {
  const without = await run(t, ['generate', '--diffusion-model', files.diffusionModel, '--vae', files.vae, ...quick, '-p', 'x', '-o', path.join(t.testdir(), 'x.png')]);
  t.equal(without.code, 1);
  t.match(without.output, /needs the Qwen3 text encoder .*--llm/);
  const bad = path.join(t.testdir(), 'qwen_3_4b.safetensors');
  await writeFile(bad, Buffer.alloc(64, 7));
  const broken = await run(t, ['generate', '--diffusion-model', files.diffusionModel, '--llm', bad, '--vae', files.vae, ...quick, '-p', 'x',
    '-o', path.join(t.testdir(), 'y.png')]);
  t.equal(broken.code, 1);
  t.match(broken.output, /qwen_3_4b\.safetensors/);
  const stray = await run(t, ['generate', '--llm', files.llm, ...quick, '-p', 'x']);
  t.equal(stray.code, 2);
  t.match(stray.output, /--llm is a component of a model given as files/);
});
