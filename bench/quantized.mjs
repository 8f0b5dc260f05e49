#!/usr/bin/env node
// Seconds per sampling step, load time, resident weights and peak RSS of the full-size random
// SD 1.5 checkpoint with its f16 weights as stored and quantized on load (the weightType option),
// in speed.mjs's setting. Ratios are against the first weight type (f16 as stored by default), and
// so is the PSNR of each image: how far quantizing moves the pixels.
//
//   npm run build:ts && node bench/quantized.mjs --model ../models/sd15-random-f16.safetensors \
//     [--sizes 256:4,512:2] [--types auto,q8_0,q4_0] [--threads 2]
import path from 'node:path';
import { parseArgs } from 'node:util';

import { imageFolder, psnr, runCase } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '256:4,512:2' },
    types: { type: 'string', default: 'auto,q8_0,q4_0' },
    threads: { type: 'string', default: '2' },
  },
});

const types = values.types.split(',');
const images = imageFolder('quantized');
const f = (x, digits = 2) => x.toFixed(digits);

console.log(`model ${values.model}, ${values.threads} threads, weights ${types.join(' / ')} ('auto' = f16 as stored)\n`);
console.log('| size | steps | weights | load s | s/step | ratio | decode s | weights MB | ratio | peak RSS MB | ratio | PSNR |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const spec of values.sizes.split(',')) {
  let base;
  for (const weightType of types) {
    const png = path.join(images, `${spec.replace(':', '-')}-${weightType}.png`);
    const r = runCase(spec, { model: values.model, threads: values.threads, png, args: ['--weight-type', weightType] });
    if (!r) continue;
    base ??= r;
    console.log(`| ${r.size}² | ${r.steps} | ${weightType} | ${f(r.loadSeconds, 1)} | ${f(r.secondsPerStep)} `
      + `| ${f(r.secondsPerStep / base.secondsPerStep)} | ${f(r.decodeSeconds)} | ${f(r.weightMB, 0)} `
      + `| ${f(r.weightMB / base.weightMB)} | ${f(r.peakRssMB, 0)} | ${f(r.peakRssMB / base.peakRssMB)} `
      + `| ${r === base ? '-' : psnr(base.png, r.png)} |`);
  }
}
