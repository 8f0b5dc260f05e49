#!/usr/bin/env node
// VAE encode (image-to-image) side by side with the reference engine (../shared/peer/), alternating
// in one run like speed.mjs. The reference's log gives its encode time ("encode_first_stage
// completed"); ours is the first step's wall time of an image-to-image call minus that of a
// text-to-image call of the same size in the same process (both include the prompt's encoding and
// one UNet step; only the image-to-image one encodes the picture; a first text-to-image call warms up).
//
//   npm run build:ts && node bench/encode.mjs --model ../models/sd15-random-f16.safetensors \
//     [--sizes 256,512] [--threads 2] [--rounds 2] [--peer ../shared/peer/sd-cli-avx512]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { median, referenceBinary } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '256,512' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    peer: { type: 'string' },
    child: { type: 'string' },
    init: { type: 'string' },
  },
});
const settings = { prompt: 'a photo of a cat', negativePrompt: '', sampler: 'euler', cfgScale: 7, seed: 42, steps: 2 };

if (values.child) {
  const { loadModel } = await import('../dist/lib/index.js');
  const size = Number(values.child);
  const model = await loadModel(values.model, { threads: Number(values.threads) });
  const firstStep = async (call) => {
    let first;
    await call((p) => { first ??= p.elapsedMs; });
    return first / 1000;
  };
  const common = { ...settings, width: size, height: size };
  await firstStep((onProgress) => model.textToImage({ ...common, onProgress }));  // warm: buffers allocated
  const text = await firstStep((onProgress) => model.textToImage({ ...common, onProgress }));
  const image = await firstStep((onProgress) => model.imageToImage({ ...common, image: readFileSync(values.init), strength: 1, onProgress }));
  await model.close();
  console.log(JSON.stringify({ encodeSeconds: image - text }));
  process.exit(0);
}

const { encodeRgbPng } = await import('../dist/lib/png.js');
const peer = referenceBinary(values.peer);
const folder = mkdtempSync(path.join(tmpdir(), 'sdnode-encode-'));

function initImage(size) {
  const rgb = new Uint8Array(size * size * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 2654435761) >>> 24;  // a fixed pseudo-random picture
  const file = path.join(folder, `init-${size}.png`);
  writeFileSync(file, encodeRgbPng(rgb, size, size));
  return file;
}

function runOurs(size, init) {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', String(size), '--model', values.model,
    '--threads', values.threads, '--init', init], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`sdnode failed on ${size}²:\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()).encodeSeconds;
}

function runPeer(size, init) {
  const child = spawnSync(peer, ['-m', values.model, '-W', String(size), '-H', String(size), '--steps', String(settings.steps),
    '--sampling-method', 'euler', '--cfg-scale', '7', '-s', '42', '-t', values.threads, '-p', settings.prompt, '-n', '',
    '-i', init, '--strength', '1', '-o', path.join(folder, `peer-${size}.png`), '-v'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = Number(/encode_first_stage completed, taking ([\d.]+)s/.exec(child.stdout + child.stderr)?.[1]);
  if (child.status !== 0 || !seconds) throw new Error(`the reference failed on ${size}²:\n${(child.stdout + child.stderr).slice(-3000)}`);
  return seconds;
}

console.log(`model ${values.model}, ${values.threads} threads, reference ${path.basename(peer)}, ${values.rounds} round(s), medians\n`);
console.log('| size | encode s | ref encode s | ratio |');
console.log('|---|---|---|---|');
for (const size of values.sizes.split(',').map(Number)) {
  const init = initImage(size);
  const ours = [];
  const theirs = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const who of round % 2 === 0 ? ['peer', 'ours'] : ['ours', 'peer']) {
      if (who === 'peer') theirs.push(runPeer(size, init));
      else ours.push(runOurs(size, init));
    }
  }
  console.log(`| ${size}² | ${median(ours).toFixed(2)} | ${median(theirs).toFixed(2)} | ${(median(ours) / median(theirs)).toFixed(2)} |`);
}
