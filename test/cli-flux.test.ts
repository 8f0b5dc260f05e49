// `sdnode generate` and `sdnode info` with a model given as components (FLUX.1 as downloaded):
// the component flags, --guidance, the family in info (FLUX.1 Kontext by --kontext or the file's
// name), and usage errors that name the flags.
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { readPngText } from '../lib/index.js';
import { main } from '../server/cli.js';
import { writeTinyFlux } from './fixtures/flux.js';

const dir = t.testdir();
const schnell = await writeTinyFlux(path.join(dir, 'schnell'));
const dev = await writeTinyFlux(path.join(dir, 'dev'), { variant: 'flux-dev' });
const flags = (files: typeof schnell): string[] => [
  '--diffusion-model', files.diffusionModel, '--clip-l', files.clipL, '--t5xxl', files.t5xxl, '--vae', files.vae,
];
// One thread: busy-waiting worker threads crawl on a machine shared with other jobs.
const quick = ['-W', '64', '-H', '64', '--steps', '2', '-t', '1', '--backend', 'cpu'];

async function run(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const errors = t.capture(console, 'error');
  const logs = t.capture(console, 'log');
  const code = await main(args);
  return { code, output: [...errors(), ...logs()].map((call) => call.args.join(' ')).join('\n') };
}

t.test('generate --diffusion-model with its components writes a PNG', async (t) => {
  const out = path.join(t.testdir(), 'flux.png');
  const { code, output } = await run(t, ['generate', ...flags(schnell), '--t5-tokenizer', schnell.t5Tokenizer, ...quick,
    '-p', 'a cat', '-s', '3', '-o', out]);
  t.equal(code, 0, output);
  t.match(output, `Saved ${out} (seed 3)`);
  const png = await sharp(out).metadata();
  t.same([png.format, png.width, png.height], ['png', 64, 64]);
  t.match(readPngText(await readFile(out)).parameters, /^a cat\nSteps: 2, .*CFG scale: 1, Seed: 3/);
});

t.test('generate --guidance reaches FLUX.1 dev', async (t) => {
  const folder = t.testdir();
  const make = async (guidance: string): Promise<Buffer> => {
    const out = path.join(folder, `g${guidance}.png`);
    const { code, output } = await run(t, ['generate', ...flags(dev), ...quick, '--guidance', guidance, '-s', '1', '-o', out]);
    t.equal(code, 0, output);
    return sharp(out).raw().toBuffer();
  };
  const [low, high] = [await make('1'), await make('8')];
  t.not(low.equals(high), true, 'another guidance gives another image');
});

t.test('a prompt without --t5-tokenizer fails saying which file to give', async (t) => {
  const { code, output } = await run(t, ['generate', ...flags(schnell), ...quick, '-p', 'a cat', '-o', path.join(t.testdir(), 'x.png')]);
  t.equal(code, 1);
  t.match(output, /--t5-tokenizer/);
  t.match(output, /spiece\.model or tokenizer\.json/);
});

t.test('component flags without --diffusion-model, or with --model, are usage errors naming the flags', async (t) => {
  const stray = await run(t, ['generate', '--clip-l', schnell.clipL, '-p', 'x']);
  t.equal(stray.code, 2);
  t.match(stray.output, /--clip-l is a component .*--diffusion-model/);
  const both = await run(t, ['generate', '-m', schnell.diffusionModel, ...flags(schnell), '-p', 'x']);
  t.equal(both.code, 2);
  t.match(both.output, /--model and --diffusion-model/);
  const serve = await run(t, ['serve', '--vae', schnell.vae]);
  t.equal(serve.code, 2);
  t.match(serve.output, /--vae is a component .*--diffusion-model/);
});

t.test('a missing component fails naming its flag', async (t) => {
  const { code, output } = await run(t, ['generate', '--diffusion-model', schnell.diffusionModel, '--clip-l', schnell.clipL,
    '--vae', schnell.vae, ...quick, '-o', path.join(t.testdir(), 'x.png')]);
  t.equal(code, 1);
  t.match(output, /--t5xxl/);
});

t.test('info prints the family, each component file and the stored types', async (t) => {
  const { code, output } = await run(t, ['info', ...flags(dev), '--backend', 'cpu', '-t', '1']);
  t.equal(code, 0, output);
  t.match(output, /family\s+FLUX\.1 dev/);
  t.match(output, /prediction\s+flow/);
  t.match(output, `diffusion model  ${dev.diffusionModel}`);
  t.match(output, new RegExp(`T5-XXL\\s+${dev.t5xxl.replaceAll('\\', '\\\\').replaceAll('.', '\\.')}`));
  t.match(output, /stored as\s+f16 \(/);
  t.notMatch(output, /Kontext/, 'FLUX.1 dev is not Kontext unless marked');
  const json = await run(t, ['info', ...flags(dev), '--json', '--backend', 'cpu', '-t', '1']);
  t.equal(json.code, 0, json.output);
  t.match(JSON.parse(json.output) as object, { info: undefined, family: 'flux-dev', components: { vae: dev.vae }, kontext: undefined });
});

t.test('info calls FLUX.1 dev\'s layout Kontext when --kontext says so or the file is named so', async (t) => {
  const flagged = await run(t, ['info', ...flags(dev), '--kontext', '--backend', 'cpu', '-t', '1']);
  t.equal(flagged.code, 0, flagged.output);
  t.match(flagged.output, /family\s+FLUX\.1 dev, Kontext/);
  const named = path.join(t.testdir(), 'flux1-kontext-dev.safetensors');
  await copyFile(dev.diffusionModel, named);
  const json = await run(t, ['info', ...flags({ ...dev, diffusionModel: named }), '--json', '--backend', 'cpu', '-t', '1']);
  t.equal(json.code, 0, json.output);
  t.match(JSON.parse(json.output) as object, { family: 'flux-dev', kontext: true });
  const stray = await run(t, ['serve', '--kontext']);
  t.equal(stray.code, 2);
  t.match(stray.output, /--kontext marks the model given with --diffusion-model/);
});
