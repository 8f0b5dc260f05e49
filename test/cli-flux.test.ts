// `sdnode generate` and `sdnode info` with a model given as components (FLUX.1 as downloaded):
// the component flags, --guidance, --reference-image and Kontext's edit of -i, the family in info
// (FLUX.1 Kontext by --kontext or the file's name), and usage errors that name the flags.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { readPngText } from '../lib/index.js';
import { main } from '../server/cli.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
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

t.test('generate --slg-scale with --skip-layers changes the image; --low-memory does not', async (t) => {
  const folder = t.testdir();
  const make = async (name: string, extra: string[]): Promise<Buffer> => {
    const out = path.join(folder, `${name}.png`);
    const { code, output } = await run(t, ['generate', ...flags(schnell), ...quick, '--steps', '3', '-s', '2', ...extra, '-o', out]);
    t.equal(code, 0, output);
    return sharp(out).raw().toBuffer();
  };
  const plain = await make('plain', []);
  const slg = await make('slg', ['--slg-scale', '2', '--skip-layers', '[1]', '--skip-layer-start', '0', '--skip-layer-end', '1']);
  t.notOk(plain.equals(slg), 'skip-layer guidance changes the image');
  t.ok(plain.equals(await make('low', ['--low-memory'])), '--low-memory draws the same image');
  const bad = await run(t, ['generate', ...flags(schnell), ...quick, '--slg-scale', '2', '--skip-layers', '1,x', '-o', path.join(folder, 'x.png')]);
  t.equal(bad.code, 2);
  t.match(bad.output, /--skip-layers/);
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

const red = path.join(dir, 'red.png');
await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 220, g: 30, b: 30 } } }).png().toFile(red);

t.test('generate --reference-image: FLUX.1 reads the image beside the prompt', async (t) => {
  const folder = t.testdir();
  const make = async (extra: string[], name: string): Promise<Buffer> => {
    const out = path.join(folder, name);
    const { code, output } = await run(t, ['generate', ...flags(schnell), ...quick, '-s', '2', '-o', out, ...extra]);
    t.equal(code, 0, output);
    t.match(await sharp(out).metadata(), { width: 64, height: 64 }, 'the size asked for');
    return sharp(out).raw().toBuffer();
  };
  const [plain, referenced] = [await make([], 'plain.png'), await make(['--reference-image', red], 'red.png')];
  t.notOk(plain.equals(referenced), 'the reference image changes the picture');
});

t.test('a Kontext model edits -i without --strength: the image is its reference, and the result has its size', async (t) => {
  const folder = t.testdir();
  const kontext = [...flags(dev), '--kontext', '--steps', '1', '-t', '1', '--backend', 'cpu', '-s', '4', '-i', red];
  const edited = path.join(folder, 'edited.png');
  const { code, output } = await run(t, ['generate', ...kontext, '-o', edited]);
  t.equal(code, 0, output);
  t.match(await sharp(edited).metadata(), { width: 96, height: 64 }, 'the image\'s size');
  t.notMatch(readPngText(await readFile(edited)).parameters, /Denoising strength/, 'nothing was noised from the image');
  const noised = path.join(folder, 'noised.png');
  const img2img = await run(t, ['generate', ...kontext, '--strength', '0.5', '-W', '64', '-H', '64', '-o', noised]);
  t.equal(img2img.code, 0, img2img.output);
  t.match(readPngText(await readFile(noised)).parameters, /Denoising strength: 0\.5/, 'with --strength, image-to-image');
});

t.test('--reference-image: a fifth image, a missing file and a model that is not FLUX.1 are usage errors naming it', async (t) => {
  const out = path.join(t.testdir(), 'x.png');
  const four = Array.from({ length: 4 }, () => ['--reference-image', red]).flat();
  const fifth = await run(t, ['generate', ...flags(schnell), ...quick, ...four, '--reference-image', red, '-o', out]);
  t.equal(fifth.code, 2);
  t.match(fifth.output, /Expected at most 4 images for --reference-image \(FLUX\.1 Kontext's reference images\) but received 5/);
  const withInit = await run(t, ['generate', ...flags(dev), '--kontext', ...quick, ...four, '-i', red, '-o', out]);
  t.equal(withInit.code, 2);
  t.match(withInit.output, /at most 4 images for --reference-image and -i, which this Kontext model reads as one/);
  const missing = await run(t, ['generate', ...flags(schnell), ...quick, '--reference-image', path.join(dir, 'nowhere.png'), '-o', out]);
  t.equal(missing.code, 2);
  t.match(missing.output, /Cannot read --reference-image .*nowhere\.png: ENOENT/);
  const notImage = path.join(dir, 'notes.png');
  await writeFile(notImage, 'not a picture');
  const garbage = await run(t, ['generate', ...flags(schnell), ...quick, '--reference-image', notImage, '-o', out]);
  t.equal(garbage.code, 2);
  t.match(garbage.output, /image for --reference-image but received file .*notes\.png/);
  const sd = await writeTinyCheckpoint(path.join(dir, 'sd'));
  const notFlux = await run(t, ['generate', '-m', sd, ...quick, '-p', 'x', '--reference-image', red, '-o', out]);
  t.equal(notFlux.code, 2);
  t.match(notFlux.output, /--reference-image is for FLUX\.1 \(Kontext\) models; this is a sd1 model/);
});
