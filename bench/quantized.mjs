#!/usr/bin/env node
// Seconds per sampling step, load time, resident weights and peak RSS of the full-size random
// SD 1.5 checkpoint with its f16 weights as stored and quantized on load (the weightType option),
// in speed.mjs's setting. Each case is one `speed.mjs --child` process, so peak RSS is that case's
// alone; ratios are against the first weight type (f16 as stored by default).
//
//   npm run build:ts && node bench/quantized.mjs --model ../models/sd15-random-f16.safetensors \
//     [--sizes 256:4,512:2] [--types auto,q8_0,q4_0] [--threads 2]
import { spawnSync } from 'node:child_process';
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
console.log('| size | steps | weights | load s | s/step | ratio | decode s | weights MB | ratio | peak RSS MB | ratio |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const spec of values.sizes.split(',')) {
  let base;
  for (const weightType of types) {
    const child = spawnSync(process.execPath, [speed, '--child', spec, '--model', values.model, '--threads', values.threads,
      '--weight-type', weightType], { encoding: 'utf8' });
    if (child.status !== 0) {
      console.log(`${spec} ${weightType}: failed\n${child.stderr}`);
      continue;
    }
    const r = JSON.parse(child.stdout.trim().split('\n').pop());
    base ??= r;
    console.log(`| ${r.size}² | ${r.steps} | ${weightType} | ${f(r.loadSeconds, 1)} | ${f(r.secondsPerStep)} `
      + `| ${f(r.secondsPerStep / base.secondsPerStep)} | ${f(r.decodeSeconds)} | ${f(r.weightMB, 0)} `
      + `| ${f(r.weightMB / base.weightMB)} | ${f(r.peakRssMB, 0)} | ${f(r.peakRssMB / base.peakRssMB)} |`);
  }
}
