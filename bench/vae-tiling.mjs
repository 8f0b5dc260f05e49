#!/usr/bin/env node
// The VAE decode whole and in tiles (the vaeTiling option), side by side in one run on the
// full-size random SD 1.5: decode time, peak RSS, and the tiled image's PSNR against the whole one.
//
//   npm run build:ts && node bench/vae-tiling.mjs --model ../models/sd15-random-f16.safetensors [--sizes 1024:1]
import path from 'node:path';
import { parseArgs } from 'node:util';

import { imageFolder, psnr, runCase } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '1024:1' },
    threads: { type: 'string', default: '2' },
  },
});

const images = imageFolder('vae-tiling');
const f = (x, digits = 2) => x.toFixed(digits);

console.log(`model ${values.model}, ${values.threads} threads\n`);
console.log('| size | decode | s/step | decode s | ratio | peak RSS MB | ratio | PSNR vs whole |');
console.log('|---|---|---|---|---|---|---|---|');
for (const spec of values.sizes.split(',')) {
  let whole;
  for (const tiled of [false, true]) {
    const png = path.join(images, `${spec.replace(':', '-')}-${tiled ? 'tiled' : 'whole'}.png`);
    const r = runCase(spec, { model: values.model, threads: values.threads, png, args: tiled ? ['--vae-tiling'] : [] });
    if (!r) continue;
    whole ??= r;
    console.log(`| ${r.size}² | ${tiled ? 'tiles' : 'whole'} | ${f(r.secondsPerStep)} | ${f(r.decodeSeconds)} `
      + `| ${f(r.decodeSeconds / whole.decodeSeconds)} | ${f(r.peakRssMB, 0)} | ${f(r.peakRssMB / whole.peakRssMB)} `
      + `| ${r === whole ? '-' : psnr(whole.png, r.png)} |`);
  }
}
