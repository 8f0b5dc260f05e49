#!/usr/bin/env node
// A GPU backend against the CPU engine, on the full-size random checkpoints: every shared reference
// case drawn on both (PSNR of the two images, pass at >= 40 dB), then it/s at 512² (SD 1.5,
// 20 steps, euler_a, 1 and 4 images) and at 1024² (SDXL, 10 steps, 1 image), with flash attention
// on and off. bench/gpu.sh builds the
// addon with CUDA, writes the checkpoints and runs this; see bench/results/2026-12-01-gpu.md.
//
//   npm run build:ts && node bench/gpu.mjs --models DIR --reference DIR [--backend cuda] [--parts parity,speed]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { checkpoints, referenceCases } from './cases.mjs';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '../models' },
    reference: { type: 'string', default: '../shared/reference' },
    backend: { type: 'string', default: 'cuda' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    parts: { type: 'string', default: 'parity,speed' },
    out: { type: 'string', default: 'bench/results/gpu' },
    child: { type: 'string' },
  },
});

const { loadModel } = await import('../dist/lib/index.js');

// Peak signal-to-noise ratio of two RGB byte buffers of one size, in dB (Infinity when equal).
function psnr(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return sum === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / sum);
}

const rgb = async (png) => (await sharp(png).removeAlpha().raw().toBuffer());

// One speed case in its own process, so that flash attention's switch (read when the engine
// starts) and the GPU memory are that case's alone: `--child FAMILY:SIZE:STEPS:COUNT`.
if (values.child) {
  const [family, size, steps, count] = values.child.split(':').map((v, i) => (i === 0 ? v : Number(v)));
  const model = await loadModel(path.join(values.models, checkpoints[family]), { backend: values.backend, threads: Number(values.threads) });
  const base = { prompt: 'a photo of a cat', width: size, height: size, sampler: 'euler_a', cfgScale: 7, seed: 42 };
  await model.textToImage({ ...base, steps: 1 });  // warm-up: kernels, buffers
  const stamps = [];
  const started = performance.now();
  await model.textToImage({ ...base, steps, count, onProgress: (p) => stamps.push(p) });
  const seconds = (performance.now() - started) / 1000;
  await model.close();
  // Step times within one image (the first step of each image includes its text encoding).
  const stepMs = [];
  for (let i = 1; i < stamps.length; i++) {
    if (stamps[i].image === stamps[i - 1].image) stepMs.push(stamps[i].elapsedMs - stamps[i - 1].elapsedMs);
  }
  stepMs.sort((x, y) => x - y);
  const median = stepMs[Math.floor(stepMs.length / 2)];
  console.log(JSON.stringify({ count, itPerSecond: 1000 / median, seconds, imagesPerMinute: (60 * count) / seconds }));
  process.exit(0);
}

fs.mkdirSync(values.out, { recursive: true });
const parts = new Set(values.parts.split(','));
const lines = [`backend ${values.backend}, CPU threads ${values.threads}, ${new Date().toISOString()}`, ''];
const say = (line) => {
  console.log(line);
  lines.push(line);
};

if (parts.has('parity')) {
  say(`| case | ${values.backend} vs cpu PSNR dB | >= 40 | cpu s | ${values.backend} s |`);
  say('|---|---|---|---|---|');
  const models = new Map();
  const get = async (family, prediction, backend) => {
    const key = `${family}:${prediction}:${backend}`;
    if (!models.has(key)) {
      models.set(key, await loadModel(path.join(values.models, checkpoints[family]), { backend, prediction, threads: Number(values.threads) }));
    }
    return models.get(key);
  };
  let failed = 0;
  for (const c of referenceCases(path.resolve(values.reference))) {
    const { id, model: family, prediction = 'auto', image, mask, loraDir, ...rest } = c;
    const options = loraDir ? { ...rest, loraDir: path.join(values.models, loraDir) } : rest;
    const images = [];
    const times = [];
    for (const backend of ['cpu', values.backend]) {
      const model = await get(family, prediction, backend);
      const started = performance.now();
      const run = mask ? model.inpaint({ ...options, image, mask }) : image ? model.imageToImage({ ...options, image }) : model.textToImage(options);
      const [result] = await run;
      times.push((performance.now() - started) / 1000);
      fs.writeFileSync(path.join(values.out, `${id}-${backend}.png`), result.png);
      images.push(await rgb(result.png));
    }
    const db = psnr(images[0], images[1]);
    if (!(db >= 40)) failed++;
    say(`| ${id} | ${db.toFixed(2)} | ${db >= 40 ? 'yes' : 'NO'} | ${times[0].toFixed(2)} | ${times[1].toFixed(2)} |`);
  }
  for (const model of models.values()) await model.close();
  say('', `${failed === 0 ? 'all cases' : `${failed} case(s) NOT`} at >= 40 dB`, '');
}

if (parts.has('speed')) {
  say(`Random f16 checkpoints, euler_a, cfg 7, backend ${values.backend}`, '');
  say('| model | size | steps | flash attention | images | it/s (median step) | s in all | images/min |');
  say('|---|---|---|---|---|---|---|---|');
  const cases = [['sd1', 512, 20, 1], ['sd1', 512, 20, 4], ['sdxl', 1024, 10, 1]];
  // SDNODE_FLASH_ATTENTION is the engine's switch (0 = the plain softmax path).
  for (const flash of ['1', '0']) {
    for (const [family, size, steps, count] of cases) {
      const row = `| ${family} | ${size}² | ${steps} | ${flash === '1' ? 'on' : 'off'} | ${count}`;
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', `${family}:${size}:${steps}:${count}`,
        '--models', values.models, '--backend', values.backend, '--threads', values.threads],
      { encoding: 'utf8', env: { ...process.env, SDNODE_FLASH_ATTENTION: flash } });
      if (child.status !== 0) {
        say(`${row} | failed: ${child.stderr.trim().split('\n').pop()} | | |`);
        continue;
      }
      const r = JSON.parse(child.stdout.trim().split('\n').pop());
      say(`${row} | ${r.itPerSecond.toFixed(2)} | ${r.seconds.toFixed(2)} | ${r.imagesPerMinute.toFixed(1)} |`);
    }
  }
}

fs.writeFileSync(path.join(values.out, 'summary.md'), `${lines.join('\n')}\n`);
