// `sdnode generate` with ControlNet: --control-net (a file or a name in --controlnet-dir) with its
// --control-image, --control-strength (stable-diffusion.cpp's default 0.9) and --canny, and usage
// errors that name the flag.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { readPngText } from '../lib/index.js';
import { main } from '../server/cli.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTinyControlNet } from './fixtures/controlnet.js';
import { solidPng } from './server-helpers.js';

const dir = t.testdir();
const model = await writeTinyCheckpoint(dir);
const controlNetDir = path.join(dir, 'controlnet');
const net = await writeTinyControlNet(controlNetDir, { name: 'control_tiny.safetensors' });
const controlImage = path.join(dir, 'control.png');
await sharp(await solidPng(64, 64, 200)).toFile(controlImage);
const quick = ['-m', model, '-W', '64', '-H', '64', '--steps', '2', '-t', '1', '--backend', 'cpu', '-p', 'a house', '-s', '3'];

async function run(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const errors = t.capture(console, 'error');
  const logs = t.capture(console, 'log');
  const code = await main(['generate', ...args]);
  return { code, output: [...errors(), ...logs()].map((call) => call.args.join(' ')).join('\n') };
}

async function pixels(file: string): Promise<Buffer> {
  return sharp(file).raw().toBuffer();
}

t.test('--control-net with --control-image steers the image at strength 0.9 by default; strength 0 is the plain image', async (t) => {
  const out = (name: string) => path.join(dir, `${name}.png`);
  t.equal((await run(t, [...quick, '-o', out('plain')])).code, 0);
  const steered = await run(t, [...quick, '--control-net', net, '--control-image', controlImage, '-o', out('steered')]);
  t.equal(steered.code, 0, steered.output);
  t.match(readPngText(await readFile(out('steered'))).parameters, /ControlNet 0: "Module: none, Model: control_tiny \[[0-9a-f]{8}\], Weight: 0\.9,/);
  t.notOk((await pixels(out('steered'))).equals(await pixels(out('plain'))));
  const named = await run(t, [...quick, '--controlnet-dir', controlNetDir, '--control-net', 'control_tiny', '--control-image', controlImage,
    '--control-strength', '0.9', '-o', out('named')]);
  t.equal(named.code, 0, named.output);
  t.ok((await pixels(out('named'))).equals(await pixels(out('steered'))), 'by name in --controlnet-dir: the same image');
  t.equal((await run(t, [...quick, '--control-net', net, '--control-image', controlImage, '--control-strength', '0', '-o', out('zero')])).code, 0);
  t.ok((await pixels(out('zero'))).equals(await pixels(out('plain'))));
  const canny = await run(t, [...quick, '--control-net', net, '--control-image', controlImage, '--canny', '-o', out('canny')]);
  t.equal(canny.code, 0, canny.output);
  t.match(readPngText(await readFile(out('canny'))).parameters, /Module: canny/);
});

t.test('ControlNet flags out of place are usage errors naming the flag', async (t) => {
  const out = path.join(dir, 'never.png');
  const cases: [string[], RegExp][] = [
    [['--control-image', controlImage], /--control-image needs a ControlNet: --control-net <file\|name>/],
    [['--canny'], /--canny needs a ControlNet/],
    [['--control-net', net], /Expected one --control-image for each --control-net \(1\) but received 0/],
    [['--control-net', net, '--control-image', controlImage, '--control-strength', '3'], /--control-strength/],
    [['--control-net', net, '--control-image', path.join(dir, 'missing.png')], /Cannot read --control-image .*missing\.png: ENOENT/],
    [['--controlnet-dir', controlNetDir, '--control-net', 'nope', '--control-image', controlImage],
      /Unknown ControlNet "nope" for --control-net: .*available: control_tiny/],
  ];
  for (const [args, message] of cases) {
    const { code, output } = await run(t, [...quick, ...args, '-o', out]);
    t.equal(code, 2, args.join(' '));
    t.match(output, message, args.join(' '));
  }
});

t.test('a file that is not a ControlNet exits 1 with the engine\'s message', async (t) => {
  const { code, output } = await run(t, [...quick, '--control-net', model, '--control-image', controlImage, '-o', path.join(dir, 'never.png')]);
  t.equal(code, 1);
  t.match(output, /is a Stable Diffusion checkpoint, not a ControlNet/);
});
