#!/usr/bin/env node
// Parity with stable-diffusion.cpp for the AUTOMATIC1111 features it has too: the hires fix with
// each upscaler, and seamless tiling (its --circular). Every case runs the reference CLI and the
// library side by side on the full-size random SD 1.5, then compares the two PNGs (PSNR). The
// reference's images and logs stay in a temporary folder.
//
//   npm run build:ts && node bench/peer-features.mjs --model ../models/sd15-random-f16.safetensors \
//     [--peer ../shared/peer/sd-cli-avx2] [--only hires-latent,circular] [--threads 2]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../dist/lib/index.js';
import { imageFolder, psnr } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx2' },
    only: { type: 'string' },
    threads: { type: 'string', default: '2' },
  },
});

const base = {
  prompt: 'a photo of a cat', negativePrompt: '', width: 64, height: 64, steps: 4, sampler: 'euler_a', cfgScale: 7, seed: 42,
};
const hiresCase = (id, upscaler) => ({
  id,
  options: { ...base, hires: { scale: 2, steps: 4, denoisingStrength: 0.7, upscaler } },
  peerArgs: ['--hires', '--hires-upscaler', upscaler, '--hires-scale', '2', '--hires-steps', '4', '--hires-denoising-strength', '0.7'],
});
const cases = [
  hiresCase('hires-latent', 'Latent'),
  hiresCase('hires-latent-antialiased', 'Latent (antialiased)'),
  hiresCase('hires-latent-bicubic', 'Latent (bicubic)'),
  hiresCase('hires-latent-bicubic-antialiased', 'Latent (bicubic antialiased)'),
  hiresCase('hires-latent-nearest', 'Latent (nearest)'),
  hiresCase('hires-latent-nearest-exact', 'Latent (nearest-exact)'),
  hiresCase('hires-lanczos', 'Lanczos'),
  { id: 'circular', options: { ...base, width: 128, height: 64, tiling: true }, peerArgs: ['--circular'] },
];

const only = values.only?.split(',');
const selected = cases.filter((c) => !only || only.includes(c.id));
const folder = imageFolder('peer-features');
const model = await loadModel(values.model, { backend: 'cpu', threads: Number(values.threads) });
const rows = [];
for (const { id, options, peerArgs } of selected) {
  const theirs = path.join(folder, `${id}-peer.png`);
  const peerStarted = performance.now();
  const peer = spawnSync(values.peer, [
    '-m', values.model, '-W', String(options.width), '-H', String(options.height), '--steps', String(options.steps),
    '--sampling-method', options.sampler, '--cfg-scale', String(options.cfgScale), '-s', String(options.seed),
    '-t', values.threads, '-p', options.prompt, '-n', options.negativePrompt, '-o', theirs, ...peerArgs,
  ], { encoding: 'utf8' });
  const peerSeconds = (performance.now() - peerStarted) / 1000;
  if (peer.status !== 0) {
    console.log(`${id}: the reference failed\n${peer.stderr.slice(-2000)}`);
    continue;
  }
  const started = performance.now();
  const [image] = await model.textToImage(options);
  const seconds = (performance.now() - started) / 1000;
  const ours = path.join(folder, `${id}-sdnode.png`);
  writeFileSync(ours, image.png);
  const row = { id, size: `${image.width}x${image.height}`, psnr: psnr(theirs, ours), seconds, peerSeconds };
  rows.push(row);
  console.log(`${id}: ${row.psnr} (sdnode ${seconds.toFixed(1)} s, reference ${peerSeconds.toFixed(1)} s)`);
}
await model.close();
console.log(`\nimages in ${folder}\n\n| case | size | PSNR / max diff | sdnode s | reference s |\n|---|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.id} | ${r.size} | ${r.psnr} | ${r.seconds.toFixed(1)} | ${r.peerSeconds.toFixed(1)} |`);
