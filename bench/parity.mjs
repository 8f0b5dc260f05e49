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
import { checkpoints, referenceCases } from './cases.mjs';

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
const cases = referenceCases(reference);

const only = values.only ? new Set(values.only.split(',')) : undefined;
const selected = cases.filter((c) => !only || [...only].some((o) => c.id.startsWith(o)));
fs.mkdirSync(values.out, { recursive: true });
const rows = [];
const loaded = new Map();
for (const c of selected) {
  const { id, model: family, prediction, image, mask, loraDir, embeddingsDir, controlNetDir, referencePng, ...rest } = c;
  // The folders are relative to --models, as the reference README's `loras/` next to the checkpoints.
  const options = {
    ...rest,
    ...(loraDir && { loraDir: path.join(values.models, loraDir) }),
    ...(embeddingsDir && { embeddingsDir: path.join(values.models, embeddingsDir) }),
    ...(controlNetDir && { controlNetDir: path.join(values.models, controlNetDir) }),
  };
  const expected = referencePng ? path.join(values.models, referencePng) : ref(`${id}.png`);
  if (!fs.existsSync(expected)) {
    console.log(`${id}: skipped, ${expected} missing`);
    continue;
  }
  const entry = checkpoints[family];
  // A family of components: one file each (../shared/tools/make-random-dit.mjs).
  const files = typeof entry === 'string' ? { model: entry } : entry;
  const missing = Object.values(files).map((f) => path.join(values.models, f)).filter((f) => !fs.existsSync(f));
  if (missing.length > 0) {
    console.log(`${id}: skipped, ${missing.join(', ')} missing (../shared/reference/README.md says how to write them)`);
    continue;
  }
  const file = typeof entry === 'string'
    ? path.join(values.models, entry)
    : Object.fromEntries(Object.entries(entry).map(([role, f]) => [role, path.join(values.models, f)]));
  const key = `${JSON.stringify(file)}:${prediction ?? 'auto'}`;
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
  const psnrArgs = [path.resolve('../shared/tools/psnr.py'), expected, ours, ...(mask ? ['--mask', mask] : [])];
  const psnr = execFileSync('python3', psnrArgs, { encoding: 'utf8' }).trim();
  rows.push({ id, psnr, seconds: seconds.toFixed(1) });
  console.log(`${id}: ${psnr} (${seconds.toFixed(1)} s)`);
}
for (const model of loaded.values()) await model.close();
console.log('\n| case | PSNR / max diff | time s |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.id} | ${r.psnr} | ${r.seconds} |`);
