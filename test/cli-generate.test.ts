// `sdnode generate` as a user runs it: PNGs where -o says with their seeds, image-to-image and
// inpainting from files, Ctrl-C, and usage errors that name the flag.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { readPngText } from '../lib/index.js';
import { main } from '../server/cli.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTaesd } from './fixtures/taesd.js';
import { writeTinyLora } from './fixtures/lora.js';
import { encodeFloats, encodeSafetensors } from './fixtures/safetensors.js';
import { exitCode, solidPng, spawnCli, waitForOutput } from './server-helpers.js';

const dir = t.testdir();
const model = await writeTinyCheckpoint(dir, { dtype: 'f16' });
// One thread: busy-waiting worker threads crawl on a machine shared with other jobs.
const quick = ['-m', model, '-W', '64', '-H', '64', '--steps', '2', '-t', '1', '--backend', 'cpu'];

/** main() in this process (the library keeps the tiny model loaded between runs); code and output. */
async function run(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const errors = t.capture(console, 'error');
  const logs = t.capture(console, 'log');
  const code = await main(['generate', ...args]);
  return { code, output: [...errors(), ...logs()].map((call) => call.args.join(' ')).join('\n') };
}

t.test('makes a PNG where -o says, with its seed and parameters, and a line per image off a terminal', async (t) => {
  const out = path.join(t.testdir(), 'cat.png');
  const { code, output } = await run(t, [...quick, '-p', 'a photo of a cat', '-n', 'blurry', '-s', '42', '--cfg-scale', '5', '-o', out]);
  t.equal(code, 0, output);
  t.match(output, /^image 1\/1: 2 steps, [\d.]+ s\/step/m);
  t.match(output, `Saved ${out} (seed 42)`);
  const png = await sharp(out).metadata();
  t.same([png.format, png.width, png.height], ['png', 64, 64]);
  const { parameters } = readPngText(await readFile(out));
  t.match(parameters, /^a photo of a cat\nNegative prompt: blurry\nSteps: 2, .*CFG scale: 5, Seed: 42/);
});

t.test('--count names the images -1, -2 and a second run takes the next numbers', async (t) => {
  const folder = t.testdir();
  const args = [...quick, '-p', 'a corgi', '-s', '7', '--count', '2', '-o', path.join(folder, 'corgi.png')];
  const first = await run(t, args);
  t.equal(first.code, 0, first.output);
  t.match(first.output, /corgi-1\.png \(seed 7\)\n.*corgi-2\.png \(seed 8\)/);
  const second = await run(t, [...args.slice(0, -2), '-b', '2', '-o', `${folder}${path.sep}`]);
  t.equal(second.code, 0, second.output);
  t.same((await readdir(folder)).sort(), ['corgi-1.png', 'corgi-2.png', 'output-1.png', 'output-2.png']);
});

t.test('-i with --strength makes image-to-image and --mask inpaints', async (t) => {
  const folder = t.testdir();
  const init = path.join(folder, 'init.png');
  const mask = path.join(folder, 'mask.png');
  await sharp(await solidPng(64, 64, 200)).toFile(init);
  await sharp(await solidPng(64, 64, 255)).toFile(mask);
  const out = path.join(folder, 'out.png');
  const { code, output } = await run(t, [...quick, '-p', 'a castle', '-i', init, '--strength', '0.5', '--mask', mask, '--mask-blur', '0', '-s', '1', '-o', out]);
  t.equal(code, 0, output);
  const { parameters } = readPngText(await readFile(out));
  t.match(parameters, /Denoising strength: 0\.5/);

  const noise = path.join(folder, 'noise.png');
  const started = await run(t, [...quick, '-p', 'a castle', '-i', init, '--strength', '0.5', '--mask', mask, '--mask-blur', '0',
    '--masked-start', 'noise', '-s', '1', '-o', noise]);
  t.equal(started.code, 0, started.output);
  t.match(readPngText(await readFile(noise)).parameters, /Masked content: latent noise/, '--masked-start reaches the library');
  const alone = await run(t, [...quick, '-p', 'a castle', '--masked-start', 'zeros', '-o', path.join(folder, 'x.png')]);
  t.equal(alone.code, 2);
  t.match(alone.output, /--masked-start needs a starting image/);
});

t.test('Ctrl-C stops between steps with exit code 130 and writes nothing', async (t) => {
  const folder = t.testdir();
  const child = spawnCli(['generate', ...quick, '--steps', '20', '--count', '16', '-p', 'x', '-o', path.join(folder, 'x.png')]);
  t.teardown(() => child.kill('SIGKILL'));
  await waitForOutput(child, /^image 1\/16: /m);
  child.kill('SIGINT');
  t.equal(await exitCode(child), 130);
  t.match(child.output(), /Stopping after the current step/);
  t.match(child.output(), /stopped by Ctrl-C; no images were written/);
  t.same(await readdir(folder), []);
});

t.test('--taesd with --vae-decoder taesd makes a draft image with the tiny autoencoder', async (t) => {
  const folder = t.testdir();
  const taesd = await writeTaesd(folder);
  const args = [...quick, '-p', 'a lighthouse', '-s', '3'];
  const draft = await run(t, [...args, '--taesd', taesd, '--vae-decoder', 'taesd', '-o', path.join(folder, 'draft.png')]);
  t.equal(draft.code, 0, draft.output);
  const full = await run(t, [...args, '--taesd', taesd, '-o', path.join(folder, 'full.png')]);
  t.equal(full.code, 0, full.output);
  const [draftPixels, fullPixels] = await Promise.all(['draft.png', 'full.png'].map((name) => sharp(path.join(folder, name)).raw().toBuffer()));
  t.equal(draftPixels!.length, 64 * 64 * 3);
  t.notOk(draftPixels!.equals(fullPixels!), 'the VAE stays the default decoder');
});

t.test('--lora-dir applies the prompt\'s <lora:NAME:weight>; an unknown name lists the folder\'s LoRAs', async (t) => {
  const folder = t.testdir();
  const loras = path.join(folder, 'loras');
  await writeTinyLora(loras, 'style');
  const out = path.join(folder, 'styled.png');
  const { code, output } = await run(t, [...quick, '-p', 'a cat <lora:style:0.8>', '-s', '1', '--lora-dir', loras, '-o', out]);
  t.equal(code, 0, output);
  t.match(readPngText(await readFile(out)).parameters, /^a cat <lora:style:0\.8>\n.*, Lora hashes: "style: [0-9a-f]{12}"$/s);
  const unknown = await run(t, [...quick, '-p', '<lora:nope:1>', '--lora-dir', loras, '-o', out]);
  t.equal(unknown.code, 2);
  t.match(unknown.output, /Unknown LoRA "nope" in the prompt: .*available: style/);
});

t.test('--embeddings-dir lets the prompt name an embedding, recorded as TI hashes', async (t) => {
  const folder = t.testdir();
  const embeddings = path.join(folder, 'embeddings');
  await mkdir(embeddings);
  const values = Float32Array.from({ length: 2 * 32 }, (_, i) => Math.sin(i) * 0.05);
  await writeFile(path.join(embeddings, 'inkstyle.safetensors'),
    encodeSafetensors([{ name: 'emb_params', dtype: 'F32', shape: [2, 32], data: encodeFloats(values, 'F32') }], {}));
  const styled = path.join(folder, 'styled.png');
  const plain = path.join(folder, 'plain.png');
  const first = await run(t, [...quick, '-p', 'a cat, inkstyle', '-s', '1', '--embeddings-dir', embeddings, '-o', styled]);
  t.equal(first.code, 0, first.output);
  t.match(readPngText(await readFile(styled)).parameters, /, TI hashes: "inkstyle: [0-9a-f]{12}"$/);
  const second = await run(t, [...quick, '-p', 'a cat, inkstyle', '-s', '1', '-o', plain]);
  t.equal(second.code, 0, second.output);
  t.notOk((await sharp(styled).raw().toBuffer()).equals(await sharp(plain).raw().toBuffer()), 'without the folder the name is text');
});

t.test('a bad flag is a usage error with exit code 2 that names it, before any model loads', async (t) => {
  const missing = path.join(dir, 'missing.png');
  const cases: [string[], RegExp][] = [
    [['-p', 'x'], /Missing --model <file>/],
    [['-m', model, '--steps', '0'], /Expected integer between 1 and 150 for --steps but received 0$/m],
    [['-m', model, '-W', '65'], /Expected multiple of 8 between 64 and 2048 for --width but received 65$/m],
    [['-m', model, '--cfg-scale', 'high'], /Expected a number for --cfg-scale but received "high"/],
    [['-m', model, '--sampler', 'euler_b'], /Expected one of euler_a, .* for --sampler but received "euler_b"/],
    [['-m', model, '--weight-type', 'q9'], /Expected one of auto, f32, .* for --weight-type but received "q9"/],
    [['-m', model, '--rng', 'tpu'], /Expected one of gpu, cpu for --rng but received "tpu"/],
    [['-m', model, '--strength', '0.5'], /--strength needs a starting image: -i, --init-img <file>/],
    [['-m', model, '-i', missing], /Cannot read --init-img .*missing\.png: ENOENT/],
    [['-m', model, '-o', 'out.jpg'], /Expected a file name ending in \.png for --output but received out\.jpg/],
    [['-m', model, '--count', '2', '-b', '3'], /--count 2 and --batch-count 3 disagree/],
    [['-m', model, '--backend', 'opencl'], /Expected one of auto, cpu, metal, cuda for --backend but received opencl/],
    [['-m', model, 'a corgi'], /Unexpected argument "a corgi"; give the prompt with -p/],
    [['-m', model, '--port', '80'], /Unknown option '--port'/],
    [['-m', model, '--vae-decoder', 'taesd'], /--vae-decoder taesd needs the TAESD file: --taesd <file>/],
    [['-m', model, '--taesd', missing], /Cannot read --taesd .*missing\.png: ENOENT/],
  ];
  for (const [args, message] of cases) {
    const { code, output } = await run(t, args);
    t.equal(code, 2, args.join(' '));
    t.match(output, message, args.join(' '));
    t.match(output, /Run sdnode generate --help for the options/, args.join(' '));
    t.notMatch(output, /Loading/, args.join(' '));
  }
});

t.test('generate --help lists every flag; sdnode -p 80 generate asks for the command first', async (t) => {
  const { code, output } = await run(t, ['--help']);
  t.equal(code, 0);
  for (const flag of ['-m, --model', '-p, --prompt', '-n, --negative-prompt', '-W, --width', '-H, --height', '--steps', '--cfg-scale',
    '--sampler', '--scheduler', '-s, --seed', '--count', '-i, --init-img', '--strength', '--mask', '--mask-blur', '--vae-tiling',
    '--rng', '--clip-skip', '--weight-type', '-t, --threads', '--backend', '--prediction', '-o, --output', '--overwrite']) {
    t.match(output, new RegExp(`^ +${flag.replace(/[-+]/g, '\\$&')} `, 'm'), flag);
  }
  const errors = t.capture(console, 'error');
  t.equal(await main(['-p', '80', 'generate']), 2);
  t.match(errors().map((call) => call.args.join(' ')).join('\n'), /Put generate first: sdnode generate \[options\]/);
});

t.test('an output folder that cannot be made exits 1 and says where it tried', async (t) => {
  const folder = t.testdir({ 'a-file': 'x' });
  const { code, output } = await run(t, [...quick, '-p', 'x', '-o', path.join(folder, 'a-file', 'out.png')]);
  t.equal(code, 1);
  t.match(output, /sdnode: cannot save the images as .*a-file.out\.png: .*ENOTDIR|EEXIST/);
});

t.test('a checkpoint that cannot be loaded exits 1 with the library\'s message', async (t) => {
  const { code, output } = await run(t, ['-m', path.join(dir, 'nope.safetensors'), '-p', 'x']);
  t.equal(code, 1);
  t.match(output, /nope\.safetensors: cannot open/);
});
