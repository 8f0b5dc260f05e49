#!/usr/bin/env node
// Seconds per sampling step, load time, resident weights and peak RSS of the full-size random
// SD 1.5 checkpoint with its f16 weights as stored and quantized on load (the weightType option),
// in speed.mjs's setting. Each case is one `speed.mjs --child` process, so peak RSS is that case's
// alone; ratios are against the first weight type (f16 as stored by default), and so is the PSNR
// of each image (../shared/tools/psnr.py): how far quantizing moves the pixels.
//
//   npm run build:ts && node bench/quantized.mjs --model ../models/sd15-random-f16.safetensors \
//     [--sizes 256:4,512:2] [--types auto,q8_0,q4_0] [--threads 2]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '256:4,512:2' },
    types: { type: 'string', default: 'auto,q8_0,q4_0' },
    threads: { type: 'string', default: '2' },
  },
});

const speed = fileURLToPath(new URL('./speed.mjs', import.meta.url));
const types = values.types.split(',');
const f = (x, digits = 2) => x.toFixed(digits);

console.log(`model ${values.model}, ${values.threads} threads, weights ${types.join(' / ')} ('auto' = f16 as stored)\n`);
const images = mkdtempSync(path.join(tmpdir(), 'sdnode-quantized-'));
const psnr = (a, b) => execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), a, b], { encoding: 'utf8' }).trim();
console.log('| size | steps | weights | load s | s/step | ratio | decode s | weights MB | ratio | peak RSS MB | ratio | PSNR |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const spec of values.sizes.split(',')) {
  let base;
  let basePng;
  for (const weightType of types) {
    const png = path.join(images, `${spec.replace(':', '-')}-${weightType}.png`);
    const child = spawnSync(process.execPath, [speed, '--child', spec, '--model', values.model, '--threads', values.threads,
      '--weight-type', weightType, '--save', png], { encoding: 'utf8' });
    if (child.status !== 0) {
      console.log(`${spec} ${weightType}: failed\n${child.stderr}`);
      continue;
    }
    const r = JSON.parse(child.stdout.trim().split('\n').pop());
    base ??= r;
    basePng ??= png;
    console.log(`| ${r.size}² | ${r.steps} | ${weightType} | ${f(r.loadSeconds, 1)} | ${f(r.secondsPerStep)} `
      + `| ${f(r.secondsPerStep / base.secondsPerStep)} | ${f(r.decodeSeconds)} | ${f(r.weightMB, 0)} `
      + `| ${f(r.weightMB / base.weightMB)} | ${f(r.peakRssMB, 0)} | ${f(r.peakRssMB / base.peakRssMB)} `
      + `| ${png === basePng ? '-' : psnr(basePng, png)} |`);
  }
}
