#!/usr/bin/env node
// `sdnode convert` on the full-size random SD 1.5 checkpoint: how long the conversion takes, then
// load time and resident memory side by side, in one run, of (1) the f16 safetensors as stored,
// (2) the converted GGUF, (3) the f16 safetensors quantized on load (weightType). Each load runs
// in its own process (RSS is that load's alone), alternating over the rounds so that the page
// cache favours no case. RSS is measured after loading, before any generation.
//
//   npm run build:ts && node bench/convert.mjs --model ../models/sd15-random-f16.safetensors \
//     [--type q8_0] [--rounds 2] [--threads 2] [--out /tmp/sd15-q8_0.gguf]
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    type: { type: 'string', default: 'q8_0' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string' },
    child: { type: 'string' },
    'weight-type': { type: 'string', default: 'auto' },
  },
});

const { convertModel, loadModel } = await import('../dist/lib/index.js');

// Resident set now and at its peak, in MB, from the kernel's own accounting.
function rssMB() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)[1]) / 1024;
  return { rssMB: field('VmRSS'), peakRssMB: field('VmHWM') };
}

if (values.child) {
  const before = rssMB().rssMB;
  const started = performance.now();
  const model = await loadModel(values.child, { threads: Number(values.threads), weightType: values['weight-type'] });
  const loadSeconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ loadSeconds, weightMB: model.info.weightBytes / 2 ** 20, beforeMB: before, ...rssMB() }));
  await model.close();
  process.exit(0);
}

const gguf = values.out ?? path.join(tmpdir(), `sdnode-bench-${values.type}.gguf`);
const convertStart = performance.now();
const converted = await convertModel(values.model, gguf, { weightType: values.type, threads: Number(values.threads), overwrite: true });
const convertSeconds = (performance.now() - convertStart) / 1000;
const fileMB = (bytes) => (bytes / 2 ** 20).toFixed(0);
console.log(`model ${values.model} (${fileMB(statSync(values.model).size)} MB), `
  + `${values.threads} threads; convert --type ${values.type}: ${convertSeconds.toFixed(1)} s, ${fileMB(converted.bytes)} MB, `
  + `${JSON.stringify(converted.types)}\n`);

const cases = [
  { name: 'f16 safetensors, as stored', file: values.model, weightType: 'auto' },
  { name: `${values.type} GGUF (converted)`, file: gguf, weightType: 'auto' },
  { name: `f16 safetensors, weightType ${values.type}`, file: values.model, weightType: values.type },
];
console.log('| round | case | load s | weights MB | RSS after load MB | peak RSS MB |');
console.log('|---|---|---|---|---|---|');
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const c of cases) {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', c.file, '--weight-type', c.weightType,
      '--threads', values.threads], { encoding: 'utf8' });
    if (child.status !== 0) {
      console.log(`| ${round} | ${c.name} | failed: ${child.stderr.trim().split('\n').pop()} | | | |`);
      continue;
    }
    const r = JSON.parse(child.stdout.trim().split('\n').pop());
    console.log(`| ${round} | ${c.name} | ${r.loadSeconds.toFixed(2)} | ${r.weightMB.toFixed(0)} | ${r.rssMB.toFixed(0)} | ${r.peakRssMB.toFixed(0)} |`);
  }
}
if (values.out === undefined) rmSync(gguf);
