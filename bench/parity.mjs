#!/usr/bin/env node
// Parity with stable-diffusion.cpp: runs the cases of ../shared/reference/README.md through the
// public library and compares each image with the reference PNG (PSNR, ../shared/tools/psnr.py).
// Not a CI test: it needs the 2 GB random checkpoints that ../shared/tools/make-random-sd.mjs writes.
//
//   npm run build:ts && node bench/parity.mjs --models ../models [--only r1,r2] [--threads 2]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '../models' },
    reference: { type: 'string', default: '../shared/reference' },
    only: { type: 'string' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench/results/parity' },
  },
});

const reference = path.resolve(values.reference);
const ref = (name) => path.join(reference, name);
const castle = 'a castle on a hill at sunset, highly detailed';
const cases = [
  { id: 'r1-cat-64', model: 'sd1', width: 64, height: 64, steps: 2, sampler: 'euler_a', cfgScale: 7, seed: 42, prompt: 'a photo of a cat', negativePrompt: '' },
  { id: 'r2-castle-128', model: 'sd1', width: 128, height: 128, steps: 8, sampler: 'euler_a', cfgScale: 7.5, seed: 1234, prompt: castle, negativePrompt: 'blurry, low quality' },
  { id: 'r3-euler-128x64', model: 'sd1', width: 128, height: 64, steps: 6, sampler: 'euler', cfgScale: 5, seed: 7, prompt: castle, negativePrompt: 'blurry, low quality' },
  { id: 'r4-dpmpp2m-karras', model: 'sd1', width: 128, height: 128, steps: 10, sampler: 'dpm++2m', scheduler: 'karras', cfgScale: 7, seed: 99, prompt: 'a bowl of fruit on a wooden table', negativePrompt: 'dark' },
  { id: 'r5-heun', model: 'sd1', width: 64, height: 64, steps: 5, sampler: 'heun', cfgScale: 7, seed: 11, prompt: 'a red sports car', negativePrompt: '' },
  { id: 'r6-lcm', model: 'sd1', width: 64, height: 64, steps: 4, sampler: 'lcm', scheduler: 'lcm', cfgScale: 1, seed: 12, prompt: 'a mountain lake', negativePrompt: '' },
  { id: 'r7-img2img', model: 'sd1', width: 128, height: 128, steps: 8, sampler: 'euler_a', cfgScale: 7, seed: 5, prompt: 'a castle on a hill at night', negativePrompt: '', image: ref('r2-castle-128.png'), strength: 0.6 },
  { id: 'r8-inpaint-left', model: 'sd1', width: 128, height: 128, steps: 8, sampler: 'euler_a', cfgScale: 7, seed: 5, prompt: 'a stone tower', negativePrompt: '', image: ref('r2-castle-128.png'), mask: ref('mask_left_128.png'), strength: 1, maskBlur: 0 },
  { id: 'r9-sd2-v', model: 'sd2', width: 64, height: 64, steps: 3, sampler: 'euler_a', cfgScale: 7, seed: 21, prompt: 'a photo of a cat', negativePrompt: '', prediction: 'v' },
  { id: 'r10-sdxl-128', model: 'sdxl', width: 128, height: 128, steps: 4, sampler: 'euler_a', cfgScale: 6, seed: 5, prompt: 'a lighthouse on a cliff', negativePrompt: 'fog' },
];
const checkpoints = { sd1: 'sd15-random-f16.safetensors', sd2: 'sd21-random-f16.safetensors', sdxl: 'sdxl-random-f16.safetensors' };

const only = values.only ? new Set(values.only.split(',')) : undefined;
const selected = cases.filter((c) => !only || [...only].some((o) => c.id.startsWith(o)));
fs.mkdirSync(values.out, { recursive: true });
const rows = [];
const loaded = new Map();
for (const c of selected) {
  const { id, model: family, prediction, image, mask, ...options } = c;
  const file = path.join(values.models, checkpoints[family]);
  if (!fs.existsSync(file)) {
    console.log(`${id}: skipped, ${file} missing (node ../shared/tools/make-random-sd.mjs --family ${family} --dtype f16 --seed 1 --out ${file})`);
    continue;
  }
  const key = `${file}:${prediction ?? 'auto'}`;
  if (!loaded.has(key)) {
    // One model resident at a time: SDXL's 7 GB next to the others would crowd a shared machine.
    for (const open of loaded.values()) await open.close();
    loaded.clear();
    loaded.set(key, await loadModel(file, { threads: Number(values.threads), prediction: prediction ?? 'auto' }));
  }
  const model = loaded.get(key);
  const started = performance.now();
  const run = mask ? model.inpaint({ ...options, image, mask }) : image ? model.imageToImage({ ...options, image }) : model.textToImage(options);
  const [result] = await run;
  const seconds = (performance.now() - started) / 1000;
  const ours = path.join(values.out, `${id}.png`);
  fs.writeFileSync(ours, result.png);
  const psnrArgs = [path.resolve('../shared/tools/psnr.py'), ref(`${id}.png`), ours, ...(mask ? ['--mask', mask] : [])];
  const psnr = execFileSync('python3', psnrArgs, { encoding: 'utf8' }).trim();
  rows.push({ id, psnr, seconds: seconds.toFixed(1) });
  console.log(`${id}: ${psnr} (${seconds.toFixed(1)} s)`);
}
for (const model of loaded.values()) await model.close();
console.log('\n| case | PSNR / max diff | time s |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.id} | ${r.psnr} | ${r.seconds} |`);
