#!/usr/bin/env node
// What live previews cost. Side by side in one run on the full-size random SD 1.5: s/step without
// previews and with one every step (each case in its own process, via speed.mjs), and whether the
// images are the same bytes. A step's difference of a few milliseconds drowns in a 30 s step's noise,
// so the preview's own parts are also timed alone at the same size: the engine's (the denoised copy
// and the latent-to-RGB projection, bench/preview-cost.cpp compiled here against
// native/engine/pipeline/preview.cpp) and the library's (the synchronous PNG encode), as fractions of a step.
//
//   npm run build:ts && node bench/previews.mjs --model ../models/sd15-random-f16.safetensors [--sizes 512:3]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { imageFolder, runCase } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '512:3' },
    threads: { type: 'string', default: '2' },
  },
});

const { encodeRgbPng } = await import('../dist/lib/png.js');
const images = imageFolder('previews');
const f = (x, digits = 2) => x.toFixed(digits);

// The engine part, alone, optimised as the engine's CMake Release build is.
const costBinary = path.join(images, 'preview-cost');
execFileSync(process.env.CXX ?? 'c++', ['-std=c++17', '-O3', '-DNDEBUG', '-Inative/engine', '-Inative/engine/pipeline', 'bench/preview-cost.cpp',
  'native/engine/pipeline/preview.cpp', '-o', costBinary]);
function engineMsPerPreview(latentWidth, latentHeight) {
  return JSON.parse(execFileSync(costBinary, [String(latentWidth), String(latentHeight), '2000'], { encoding: 'utf8' })).msPerPreview;
}

// The library part, alone: the PNG of one preview, from RGB bytes of the same spread as a real one.
function pngMsPerPreview(width, height) {
  const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 2654435761) >>> 24);
  const repeats = 500;
  for (let i = 0; i < 20; i++) encodeRgbPng(rgb, width, height);
  const started = performance.now();
  for (let i = 0; i < repeats; i++) encodeRgbPng(rgb, width, height);
  return (performance.now() - started) / repeats;
}

console.log(`model ${values.model}, ${values.threads} threads, euler, one preview every step\n`);
console.log('| size | previews | s/step | ratio | decode s | total s | previews seen | image same bytes |');
console.log('|---|---|---|---|---|---|---|---|');
const parts = [];
for (const spec of values.sizes.split(',')) {
  let plain;
  for (const every of [0, 1]) {
    const png = path.join(images, `${spec.replace(':', '-')}-${every ? 'previews' : 'plain'}.png`);
    const r = runCase(spec, { model: values.model, threads: values.threads, png, args: ['--preview-every', String(every)] });
    if (!r) continue;
    plain ??= r;
    const same = r === plain ? '-' : readFileSync(r.png).equals(readFileSync(plain.png)) ? 'yes' : 'NO';
    console.log(`| ${r.size}² | ${every ? 'every step' : 'none'} | ${f(r.secondsPerStep)} | ${f(r.secondsPerStep / plain.secondsPerStep, 3)} `
      + `| ${f(r.decodeSeconds)} | ${f(r.totalSeconds)} | ${r.previews} | ${same} |`);
  }
  if (plain) parts.push({ size: plain.size, stepMs: plain.secondsPerStep * 1000 });
}

console.log('\nThe preview\'s parts alone, per preview, against a step without previews:\n');
console.log('| size | preview px | engine ms | PNG encode ms | sum ms | share of a step |');
console.log('|---|---|---|---|---|---|');
for (const { size, stepMs } of parts) {
  const cells = size / 8;
  const engine = engineMsPerPreview(cells, cells);
  const encode = pngMsPerPreview(cells, cells);
  console.log(`| ${size}² | ${cells}×${cells} | ${f(engine, 4)} | ${f(encode, 4)} | ${f(engine + encode, 4)} `
    + `| ${f((engine + encode) / stepMs * 100, 4)} % |`);
}
