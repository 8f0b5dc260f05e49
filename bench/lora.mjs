#!/usr/bin/env node
// LoRA on the full-size random SD 1.5 checkpoint: reference case r11 (../shared/reference/README.md)
// run without the LoRA, with it, and without it again. Reports each call's seconds (the difference
// is the merge and the restore), whether the call after the LoRA gives the first call's bytes, and
// the PSNR of the LoRA image against the reference and against the image without it.
//
//   npm run build:ts && node bench/lora.mjs --models ../models [--threads 2] [--weight-type q8_0]
// --models holds sd15-random-f16.safetensors and loras/lora-random-r8.safetensors
// (node ../shared/tools/make-random-lora.mjs --seed 1 --out ../models/loras/lora-random-r8.safetensors).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '../models' },
    reference: { type: 'string', default: '../shared/reference' },
    threads: { type: 'string', default: '2' },
    'weight-type': { type: 'string', default: 'auto' },
    out: { type: 'string', default: 'bench/results/lora' },
  },
});

const model = await loadModel(path.join(values.models, 'sd15-random-f16.safetensors'), {
  threads: Number(values.threads), weightType: values['weight-type'], loraDir: path.join(values.models, 'loras'),
});
const r11 = { width: 64, height: 64, steps: 4, sampler: 'euler', cfgScale: 7, seed: 3, negativePrompt: '' };
fs.mkdirSync(values.out, { recursive: true });

async function run(name, prompt) {
  const started = performance.now();
  const [image] = await model.textToImage({ ...r11, prompt });
  const seconds = (performance.now() - started) / 1000;
  const file = path.join(values.out, `${name}.png`);
  fs.writeFileSync(file, image.png);
  console.log(`${name}: ${seconds.toFixed(1)} s`);
  return { file, png: image.png, seconds };
}

const psnr = (a, b) => execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), a, b], { encoding: 'utf8' }).trim();
const before = await run('without', 'a photo of a cat ');
const withLora = await run('with', 'a photo of a cat <lora:lora-random-r8:1>');
const after = await run('without-again', 'a photo of a cat ');
await model.close();

console.log(`\nweight type ${values['weight-type']}, ${values.threads} threads`);
console.log('| call | s |\n|---|---|');
console.log(`| without LoRA | ${before.seconds.toFixed(1)} |\n| with LoRA | ${withLora.seconds.toFixed(1)} |\n| without again | ${after.seconds.toFixed(1)} |`);
console.log(`\nwithout again = without, byte for byte: ${after.png.equals(before.png)}`);
console.log(`with LoRA vs reference r11-lora.png: ${psnr(path.join(values.reference, 'r11-lora.png'), withLora.file)}`);
console.log(`with LoRA vs without: ${psnr(before.file, withLora.file)}`);
