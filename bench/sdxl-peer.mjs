#!/usr/bin/env node
// SDXL side by side with stable-diffusion.cpp: the reference case r10-sdxl-128 (or another size)
// on the full-size random SDXL checkpoint, run by the reference CLI and by the library, one after
// the other in the same session, each in its own process so peak RSS is its own. Prints seconds
// per sampling step, decode seconds, total seconds, peak RSS, and the PSNR of our image against the
// reference PNG and against the CLI's image of this run.
//
//   npm run build:ts && node bench/sdxl-peer.mjs --model ../models/sdxl-random-f16.safetensors \
//     [--peer ../shared/peer/sd-cli-avx512] [--size 128] [--steps 4] [--threads 2] [--negative fog]
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { imageFolder, psnr } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sdxl-random-f16.safetensors' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx512' },
    size: { type: 'string', default: '128' },
    steps: { type: 'string', default: '4' },
    threads: { type: 'string', default: '2' },
    negative: { type: 'string', default: 'fog' },
    child: { type: 'string' },
  },
});

// r10-sdxl-128's settings; size, steps and the negative prompt may change.
const r10 = { prompt: 'a lighthouse on a cliff', negativePrompt: values.negative, sampler: 'euler_a', cfgScale: 6, seed: 5 };
const size = Number(values.size);
const steps = Number(values.steps);

if (values.child) {
  const { loadModel } = await import('../dist/lib/index.js');
  const model = await loadModel(values.model, { backend: 'cpu', threads: Number(values.threads) });
  const stepTimes = [];
  const started = performance.now();
  const [image] = await model.textToImage({
    ...r10, width: size, height: size, steps, onProgress: (p) => stepTimes.push(p.elapsedMs),
  });
  const totalSeconds = (performance.now() - started) / 1000;
  await model.close();
  (await import('node:fs')).writeFileSync(values.child, image.png);
  console.log(JSON.stringify({
    // From the second step on; with one step, that step with the prompt's encoding in it.
    secondsPerStep: steps > 1 ? (stepTimes.at(-1) - stepTimes[0]) / (steps - 1) / 1000 : stepTimes[0] / 1000,
    decodeSeconds: totalSeconds - stepTimes.at(-1) / 1000,
    totalSeconds,
  }));
  process.exit(0);
}

/** Runs `command` under /usr/bin/time; returns its stdout, stderr and peak RSS in MB. */
function measured(command, args) {
  const run = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', command, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (run.status !== 0) throw new Error(`${command} failed:\n${run.stderr.slice(-4000)}`);
  const rss = Number(/MAXRSS (\d+)/.exec(run.stderr)?.[1]) / 1024;
  return { stdout: run.stdout, stderr: run.stderr, peakRssMB: rss };
}

const folder = imageFolder('sdxl-peer');
const peerPng = path.join(folder, 'peer.png');
const oursPng = path.join(folder, 'ours.png');

const peer = measured(path.resolve(values.peer), [
  '-m', values.model, '-W', String(size), '-H', String(size), '--steps', String(steps), '--sampling-method', r10.sampler,
  '--cfg-scale', String(r10.cfgScale), '-s', String(r10.seed), '-t', values.threads, '-p', r10.prompt, '-n', r10.negativePrompt,
  '-o', peerPng, '-v',
]);
const log = peer.stdout + peer.stderr;
const seconds = (pattern) => Number(pattern.exec(log)?.[1]);
const peerSampling = seconds(/sampling completed, taking ([\d.]+)s/);
const peerDecode = seconds(/decode_first_stage completed, taking ([\d.]+)s/);
const peerTotal = seconds(/generate_image completed in ([\d.]+)s/) || seconds(/txt2img completed in ([\d.]+)s/);

const ours = measured(process.execPath, [fileURLToPath(import.meta.url), '--child', oursPng, '--model', values.model,
  '--size', values.size, '--steps', values.steps, '--threads', values.threads, '--negative', values.negative]);
const figures = JSON.parse(ours.stdout.trim().split('\n').pop());

console.log(`model ${values.model}, ${size}×${size}, ${steps} steps, ${values.threads} threads, peer ${path.basename(values.peer)}\n`);
console.log('| engine | s/step | decode s | total s | peak RSS MB |');
console.log('|---|---|---|---|---|');
console.log(`| stable-diffusion.cpp | ${(peerSampling / steps).toFixed(2)} | ${peerDecode.toFixed(2)} | ${peerTotal ? peerTotal.toFixed(1) : '–'} | ${peer.peakRssMB.toFixed(0)} |`);
console.log(`| sdnode | ${figures.secondsPerStep.toFixed(2)} | ${figures.decodeSeconds.toFixed(2)} | ${figures.totalSeconds.toFixed(1)} | ${ours.peakRssMB.toFixed(0)} |`);
console.log(`\nours vs this run's reference image: ${psnr(peerPng, oursPng)}`);
if (size === 128 && steps === 4 && values.negative === 'fog') {
  console.log(`ours vs ../shared/reference/r10-sdxl-128.png: ${psnr(path.resolve('../shared/reference/r10-sdxl-128.png'), oursPng)}`);
}
console.log(`images in ${folder}`);
