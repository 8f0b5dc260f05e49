#!/usr/bin/env node
// Parity of the flow models' samplers, schedules and skip-layer guidance with stable-diffusion.cpp:
// the ancestral samplers in their flow form (euler_a, dpm++2s_a, lcm), res_multistep, the beta and
// smoothstep schedules, SLG, and SD3.5 medium (MMDiT-X). For each case this script first makes the reference PNG with the
// reference engine's CLI (../shared/peer/) into --refs, unless it is already there, then runs the
// same case through the public library and prints the PSNR (../shared/tools/psnr.py). Not a CI
// test: it needs the random component files of ../shared/reference/README.md (make-random-dit.mjs).
// As in the shared cases r13/r14, T5 gets no prompt tokens (the reference was built without T5's
// vocabulary).
//
//   npm run build:ts && node bench/parity-flow-samplers.mjs --models ../models \
//     [--refs ../models/reference-flow-samplers] [--only f1,s2] [--threads 2]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../dist/lib/index.js';
import { checkpoints } from './cases.mjs';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '../models' },
    refs: { type: 'string', default: '../models/reference-flow-samplers' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx2' },
    only: { type: 'string' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench/results/parity' },
  },
});

// 128², seed 42, "a photo of a cat". `options` go to the library, `peerArgs` to the reference.
const flux = { model: 'flux-schnell', cfgScale: 1, steps: 4 };
const sd3 = { model: 'sd3-medium', cfgScale: 4.5, steps: 4, negativePrompt: '' };
const cases = [
  { id: 'f1-flux-euler-a', ...flux, sampler: 'euler_a', peerArgs: ['--sampling-method', 'euler_a'] },
  { id: 'f2-flux-dpmpp2s-a', ...flux, sampler: 'dpm++2s_a', peerArgs: ['--sampling-method', 'dpm++2s_a'] },
  { id: 'f3-flux-lcm-smoothstep', ...flux, sampler: 'lcm', scheduler: 'smoothstep', peerArgs: ['--sampling-method', 'lcm', '--scheduler', 'smoothstep'] },
  { id: 'f4-flux-res-multistep-beta', ...flux, sampler: 'res_multistep', scheduler: 'beta', peerArgs: ['--sampling-method', 'res_multistep', '--scheduler', 'beta'] },
  // The random FLUX.1 file has 1 double + 1 single block; block 1 is the single one.
  { id: 'f5-flux-slg', ...flux, sampler: 'euler', slgScale: 2, skipLayers: [1], slgStart: 0, slgEnd: 1,
    peerArgs: ['--sampling-method', 'euler', '--slg-scale', '2', '--skip-layers', '[1]', '--skip-layer-start', '0', '--skip-layer-end', '1'] },
  { id: 's1-sd3-euler-a-beta', ...sd3, sampler: 'euler_a', scheduler: 'beta', peerArgs: ['--sampling-method', 'euler_a', '--scheduler', 'beta'] },
  // Default layers 7, 8, 9; 6 steps with slgEnd 0.6: steps 1-3 (of a schedule of 7 sigmas) guided.
  { id: 's2-sd3-slg', ...sd3, steps: 6, sampler: 'euler', scheduler: 'discrete', slgScale: 2.5, slgEnd: 0.6,
    peerArgs: ['--sampling-method', 'euler', '--slg-scale', '2.5', '--skip-layer-end', '0.6'] },
  { id: 's3-sd3-dpmpp2s-a', ...sd3, steps: 3, sampler: 'dpm++2s_a', scheduler: 'discrete', peerArgs: ['--sampling-method', 'dpm++2s_a'] },
  // SD3.5 medium (MMDiT-X: q/k norms, attn2 in blocks 0-12), full size, as r14 is for SD3.
  { id: 'm1-sd35-medium', ...sd3, model: 'sd35-medium', steps: 2, sampler: 'euler', scheduler: 'discrete', peerArgs: ['--sampling-method', 'euler'] },
  // Step caching (easycache); threshold 1 makes the random FLUX.1 skip 3 of 8 steps, 5 of SD3's cfg passes.
  { id: 'c1-flux-easycache', ...flux, steps: 8, sampler: 'euler', cache: { mode: 'easycache', threshold: 1 },
    peerArgs: ['--sampling-method', 'euler', '--cache-mode', 'easycache', '--cache-option', 'threshold=1'] },
  { id: 'c2-sd3-easycache-slg', ...sd3, steps: 6, sampler: 'euler', scheduler: 'discrete', slgScale: 2.5, slgStart: 0, slgEnd: 1,
    cache: { mode: 'easycache', threshold: 5, start: 0, end: 1 },
    peerArgs: ['--sampling-method', 'euler', '--slg-scale', '2.5', '--skip-layer-start', '0', '--skip-layer-end', '1',
      '--cache-mode', 'easycache', '--cache-option', 'threshold=5,start=0,end=1'] },
  { id: 'm2-sd35-slg-heun', ...sd3, model: 'sd35-medium', steps: 3, sampler: 'heun', scheduler: 'discrete', slgScale: 2.5, slgStart: 0, slgEnd: 1,
    peerArgs: ['--sampling-method', 'heun', '--slg-scale', '2.5', '--skip-layer-start', '0', '--skip-layer-end', '1'] },
];

const peerFlags = { diffusionModel: '--diffusion-model', clipL: '--clip_l', clipG: '--clip_g', t5xxl: '--t5xxl', vae: '--vae' };

function files(family) {
  return Object.fromEntries(Object.entries(checkpoints[family]).map(([role, f]) => [role, path.join(values.models, f)]));
}

function referencePng(c) {
  const png = path.join(values.refs, `${c.id}.png`);
  if (fs.existsSync(png)) return png;
  fs.mkdirSync(values.refs, { recursive: true });
  const componentArgs = Object.entries(files(c.model)).flatMap(([role, f]) => [peerFlags[role], f]);
  console.log(`${c.id}: making the reference with ${values.peer} ${c.peerArgs.join(' ')}`);
  execFileSync(values.peer, [...componentArgs, '-W', '128', '-H', '128', '--steps', String(c.steps), '--cfg-scale', String(c.cfgScale),
    '-s', '42', '-t', values.threads, '-p', 'a photo of a cat', ...(c.negativePrompt !== undefined ? ['-n', c.negativePrompt] : []),
    '-o', png, ...c.peerArgs], { stdio: 'ignore' });
  return png;
}

const only = values.only ? values.only.split(',') : undefined;
const selected = cases.filter((c) => !only || only.some((o) => c.id.startsWith(o)));
fs.mkdirSync(values.out, { recursive: true });
const rows = [];
let loaded;
for (const c of selected) {
  const { id, model: family, peerArgs, ...options } = c;
  const reference = referencePng(c);
  if (loaded?.family !== family) {
    await loaded?.model.close();
    loaded = { family, model: await loadModel(files(family), { threads: Number(values.threads) }) };
  }
  const started = performance.now();
  const [result] = await loaded.model.textToImage({
    ...options, width: 128, height: 128, seed: 42, prompt: 'a photo of a cat', promptTokens: { t5xxl: [] },
    ...(options.negativePrompt !== undefined && { negativePromptTokens: { t5xxl: [] } }),
  });
  const seconds = (performance.now() - started) / 1000;
  const ours = path.join(values.out, `${id}.png`);
  fs.writeFileSync(ours, result.png);
  const psnr = execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), reference, ours], { encoding: 'utf8' }).trim();
  rows.push({ id, psnr, seconds: seconds.toFixed(1) });
  console.log(`${id}: ${psnr} (${seconds.toFixed(1)} s)`);
}
await loaded?.model.close();
console.log('\n| case | PSNR / max diff | time s |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.id} | ${r.psnr} | ${r.seconds} |`);
