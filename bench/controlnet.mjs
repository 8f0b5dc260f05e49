#!/usr/bin/env node
// ControlNet's cost, side by side with the reference engine: reference case r15's settings
// (../shared/reference/README.md: the full-size random SD 1.5 checkpoint, euler_a, cfg 7, seed 42,
// strength 0.9, control image r2-castle-128.png) at --size, with one unit and with none, on both
// engines in the same run. Reports the sampling seconds per step (two UNet passes, and with the
// unit two ControlNet passes more) and the PSNR of each of ours against the reference's image.
// The reference also VAE-encodes the control image and throws it away; its per-step figure is
// its "sampling completed" time over the steps, which leaves that out. Ours: the time between the
// first step's progress event and the last's, over the steps between (steps >= 2).
//
//   npm run build:ts && node bench/controlnet.mjs --models ../models --peer ../shared/peer/sd-cli-avx2 [--size 128] [--steps 4]
// --models holds sd15-random-f16.safetensors and addons/controlnet-sd15-random-f16.safetensors.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { loadModel } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '../models' },
    reference: { type: 'string', default: '../shared/reference' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx2' },
    threads: { type: 'string', default: '2' },
    size: { type: 'string', default: '128' },
    steps: { type: 'string', default: '4' },
    out: { type: 'string', default: 'bench/results/controlnet' },
  },
});

const size = Number(values.size);
const steps = Number(values.steps);
const checkpoint = path.join(values.models, 'sd15-random-f16.safetensors');
const controlNet = path.join(values.models, 'addons', 'controlnet-sd15-random-f16.safetensors');
fs.mkdirSync(values.out, { recursive: true });
// The reference fits the control image by a centre crop and a box filter; at another size than
// 128 both engines get the same already resized file, so neither resizes.
const controlImage = path.join(values.out, `control-${size}.png`);
await sharp(path.join(values.reference, 'r2-castle-128.png')).resize(size, size, { kernel: 'cubic' }).png().toFile(controlImage);

const common = { width: size, height: size, steps, sampler: 'euler_a', cfgScale: 7, seed: 42, prompt: 'a house', negativePrompt: '' };

function runReference(name, withUnit) {
  const file = path.join(values.out, `reference-${name}.png`);
  const args = [
    '-m', checkpoint, '-W', String(size), '-H', String(size), '--steps', String(steps), '--sampling-method', 'euler_a', '--cfg-scale', '7',
    '-s', '42', '-t', values.threads, '-p', 'a house', '-n', '', '-o', file, '-v',
    ...(withUnit ? ['--control-net', controlNet, '--control-image', controlImage, '--control-strength', '0.9'] : []),
  ];
  const run = spawnSync(values.peer, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`the reference failed: ${run.stderr.slice(-2000)}`);
  const sampling = Number(/sampling completed, taking ([\d.]+)s/.exec(run.stdout + run.stderr)?.[1] ?? NaN);
  return { file, secondsPerStep: sampling / steps };
}

const model = await loadModel(checkpoint, { threads: Number(values.threads) });
async function runOurs(name, withUnit) {
  let firstStepAt = 0;
  let lastStepAt = 0;
  const [image] = await model.textToImage({
    ...common,
    ...(withUnit && { controlNets: [{ model: controlNet, image: controlImage, weight: 0.9 }] }),
    // Per step: the time between the first step's end and the last's, over the steps between.
    onProgress: ({ step, elapsedMs }) => {
      if (step === 1) firstStepAt = elapsedMs;
      if (step === steps) lastStepAt = elapsedMs;
    },
  });
  const file = path.join(values.out, `ours-${name}.png`);
  fs.writeFileSync(file, image.png);
  return { file, secondsPerStep: (lastStepAt - firstStepAt) / 1000 / (steps - 1) };
}

const psnr = (a, b) => execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), a, b], { encoding: 'utf8' }).trim();
const rows = [];
for (const [name, withUnit] of [['none', false], ['one-unit', true]]) {
  const reference = runReference(name, withUnit);
  const ours = await runOurs(name, withUnit);
  rows.push({ name, reference, ours, psnr: psnr(reference.file, ours.file) });
  console.log(`${name}: reference ${reference.secondsPerStep.toFixed(2)} s/step, ours ${ours.secondsPerStep.toFixed(2)} s/step, ${rows.at(-1).psnr}`);
}
await model.close();

console.log(`\n${size}×${size}, ${steps} steps, euler_a, cfg 7, ${values.threads} threads`);
console.log('| ControlNet units | reference s/step | sdnode s/step | sdnode / reference | PSNR ours vs reference |\n|---|---|---|---|---|');
for (const { name, reference, ours, psnr: db } of rows) {
  console.log(`| ${name === 'none' ? 0 : 1} | ${reference.secondsPerStep.toFixed(2)} | ${ours.secondsPerStep.toFixed(2)} | `
    + `${(ours.secondsPerStep / reference.secondsPerStep).toFixed(2)} | ${db} |`);
}
const [none, one] = rows;
console.log(`\nCost of one unit: reference ×${(one.reference.secondsPerStep / none.reference.secondsPerStep).toFixed(2)}, `
  + `sdnode ×${(one.ours.secondsPerStep / none.ours.secondsPerStep).toFixed(2)} per step`);
