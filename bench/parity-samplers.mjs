#!/usr/bin/env node
// Parity of the multistep samplers with stable-diffusion.cpp. r12-ipndm is a case of
// ../shared/reference/README.md; for the others this script first makes the reference PNG with the
// reference engine's CLI (../shared/peer/, about 4 CPU-minutes each on 2 threads) into --refs,
// unless it is already there, then runs the same case through the public library and prints the
// PSNR (../shared/tools/psnr.py). Not a CI test: it needs the 2 GB random SD 1.5 checkpoint.
//
//   npm run build:ts && node bench/parity-samplers.mjs --model ../models/sd15-random-f16.safetensors \
//     [--refs ../models/reference-samplers] [--only r13,r14] [--threads 2]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    reference: { type: 'string', default: '../shared/reference' },
    refs: { type: 'string', default: '../models/reference-samplers' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx2' },
    only: { type: 'string' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench/results/parity' },
  },
});

// All as r12-ipndm (64×64, 6 steps, cfg 7, seed 13, empty negative prompt) but the sampler,
// schedule and step cache. `peerArgs` are what the reference engine needs to run the same thing: its defaults
// where they are ours (ddim_trailing: simple schedule; tcd: lcm schedule; both eta 0), and
// lms_shift=0, which makes its lms k-diffusion's (its default shifts the slope history by one).
const boat = { width: 64, height: 64, steps: 6, cfgScale: 7, seed: 13, prompt: 'a wooden boat on a lake', negativePrompt: '' };
const cases = [
  { id: 'r12-ipndm', shared: true, sampler: 'ipndm' },
  { id: 'r13-ipndm-v', sampler: 'ipndm_v', peerArgs: ['--sampling-method', 'ipndm_v'] },
  { id: 'r14-ddim-trailing', sampler: 'ddim_trailing', peerArgs: ['--sampling-method', 'ddim_trailing'] },
  { id: 'r15-tcd', sampler: 'tcd', peerArgs: ['--sampling-method', 'tcd'] },
  { id: 'r16-lms', sampler: 'lms', peerArgs: ['--sampling-method', 'lms', '--extra-sample-args', 'lms_shift=0'] },
  { id: 'r17-ipndm-v-karras', sampler: 'ipndm_v', scheduler: 'karras', peerArgs: ['--sampling-method', 'ipndm_v', '--scheduler', 'karras'] },
  { id: 'r18-lms-exponential', sampler: 'lms', scheduler: 'exponential', peerArgs: ['--sampling-method', 'lms', '--scheduler', 'exponential', '--extra-sample-args', 'lms_shift=0'] },
  // Step caching (ucache): the thresholds are raised so that the random model skips steps.
  { id: 'r19-ucache', sampler: 'euler', cache: { mode: 'ucache', threshold: 1 }, peerArgs: ['--sampling-method', 'euler', '--cache-mode', 'ucache', '--cache-option', 'threshold=1'] },
  { id: 'r20-ucache-options', sampler: 'euler_a', cache: { mode: 'ucache', threshold: 3, start: 0, end: 1, decay: 0.5, relative: false, reset: false },
    peerArgs: ['--sampling-method', 'euler_a', '--cache-mode', 'ucache', '--cache-option', 'threshold=3,start=0,end=1,decay=0.5,relative=0,reset=0'] },
];

function referencePng(c) {
  if (c.shared) return path.join(values.reference, `${c.id}.png`);
  const png = path.join(values.refs, `${c.id}.png`);
  if (fs.existsSync(png)) return png;
  fs.mkdirSync(values.refs, { recursive: true });
  console.log(`${c.id}: making the reference with ${values.peer} ${c.peerArgs.join(' ')}`);
  execFileSync(values.peer, ['-m', values.model, '-W', String(boat.width), '-H', String(boat.height),
    '--steps', String(boat.steps), '--cfg-scale', String(boat.cfgScale), '-s', String(boat.seed),
    '-t', values.threads, '-p', boat.prompt, '-n', boat.negativePrompt, '-o', png, ...c.peerArgs], { stdio: 'ignore' });
  return png;
}

const only = values.only ? values.only.split(',') : undefined;
const selected = cases.filter((c) => !only || only.some((o) => c.id.startsWith(o)));
fs.mkdirSync(values.out, { recursive: true });
const model = await loadModel(values.model, { threads: Number(values.threads) });
const rows = [];
for (const c of selected) {
  const reference = referencePng(c);
  const started = performance.now();
  const [result] = await model.textToImage({ ...boat, sampler: c.sampler, scheduler: c.scheduler, cache: c.cache });
  const seconds = (performance.now() - started) / 1000;
  const ours = path.join(values.out, `${c.id}.png`);
  fs.writeFileSync(ours, result.png);
  const psnr = execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), reference, ours], { encoding: 'utf8' }).trim();
  rows.push({ id: c.id, sampler: `${c.sampler} / ${c.scheduler ?? 'default'}${c.cache ? ` / ${c.cache.mode}` : ''}`, psnr, seconds: seconds.toFixed(1) });
  console.log(`${c.id}: ${psnr} (${seconds.toFixed(1)} s)`);
}
await model.close();
console.log('\n| case | sampler / schedule | PSNR / max diff | time s |\n|---|---|---|---|');
for (const r of rows) console.log(`| ${r.id} | ${r.sampler} | ${r.psnr} | ${r.seconds} |`);
