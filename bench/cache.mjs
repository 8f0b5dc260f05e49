#!/usr/bin/env node
// Step caching side by side: each case drawn without a cache and with each mode/threshold, in one
// process, alternating, `--rounds` times; prints seconds per image (median), the speed-up against
// the uncached image of the same round, how many steps the cache skipped (the reference engine's
// count for the same case, from its log, when --peer is given) and the PSNR against the uncached
// image. Random weights: the default thresholds (easycache 0.2, ucache 1.0) skip few or no steps on
// them; real models change less from step to step, so the thresholds that matter are the ones
// tried here too.
//
//   npm run build:ts && node bench/cache.mjs --models ../models [--rounds 2] [--threads 2] [--peer ../shared/peer/sd-cli-avx2]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../dist/lib/index.js';
import { checkpoints, imageFolder, median, psnr } from './cases.mjs';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '../models' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    peer: { type: 'string' },
  },
});

const setups = [
  {
    name: 'SD 1.5 (random, full size), 128², 20 steps euler, cfg 7', file: checkpoints.sd1, peerModel: ['-m', checkpoints.sd1],
    options: { width: 128, height: 128, steps: 20, sampler: 'euler', cfgScale: 7, negativePrompt: '' },
    peerArgs: ['-W', '128', '-H', '128', '--steps', '20', '--sampling-method', 'euler', '--cfg-scale', '7', '-n', ''],
    caches: [{ mode: 'ucache' }, { mode: 'ucache', threshold: 1.5 }, { mode: 'ucache', threshold: 3 }],
  },
  {
    name: 'FLUX.1 schnell (random, 1+1 blocks), 256², 8 steps euler, cfg 1', file: checkpoints['flux-schnell'],
    peerModel: Object.entries(checkpoints['flux-schnell']).flatMap(([role, f]) => [{ diffusionModel: '--diffusion-model', clipL: '--clip_l', t5xxl: '--t5xxl', vae: '--vae' }[role], f]),
    options: { width: 256, height: 256, steps: 8, sampler: 'euler', cfgScale: 1, promptTokens: { t5xxl: [] } },
    peerArgs: ['-W', '256', '-H', '256', '--steps', '8', '--sampling-method', 'euler', '--cfg-scale', '1'],
    caches: [{ mode: 'easycache' }, { mode: 'easycache', threshold: 0.5 }, { mode: 'easycache', threshold: 1 }],
  },
];

const describe = (cache) => `${cache.mode}${cache.threshold !== undefined ? ` threshold ${cache.threshold}` : ' (defaults)'}`;
const cacheArgs = (cache) => ['--cache-mode', cache.mode, ...(cache.threshold !== undefined ? ['--cache-option', `threshold=${cache.threshold}`] : [])];
const resolve = (file) => (typeof file === 'string' ? path.join(values.models, file)
  : Object.fromEntries(Object.entries(file).map(([role, f]) => [role, path.join(values.models, f)])));

function peerSkips(setup, cache, folder) {
  const args = [...setup.peerModel.map((a) => (a.endsWith('.safetensors') ? path.join(values.models, a) : a)), ...setup.peerArgs,
    '-s', '42', '-t', values.threads, '-p', 'a photo of a cat', '-o', path.join(folder, 'peer.png'), '-v', ...cacheArgs(cache)];
  const log = execFileSync(values.peer, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return /skipped (\d+\/\d+) steps/.exec(log)?.[1] ?? `0/${setup.options.steps}`;
}

const folder = imageFolder('cache');
for (const setup of setups) {
  const model = await loadModel(resolve(setup.file), { threads: Number(values.threads) });
  const draw = async (cache, name) => {
    const started = performance.now();
    const [image] = await model.textToImage({ ...setup.options, seed: 42, prompt: 'a photo of a cat', ...(cache && { cache }) });
    const seconds = (performance.now() - started) / 1000;
    const png = path.join(folder, `${name}.png`);
    fs.writeFileSync(png, image.png);
    return { seconds, png };
  };
  await draw(undefined, 'warm-up');
  const times = { none: [] };
  let plain;
  const results = setup.caches.map(() => ({ times: [], png: '' }));
  for (let round = 0; round < Number(values.rounds); round++) {
    plain = await draw(undefined, 'uncached');
    times.none.push(plain.seconds);
    for (const [i, cache] of setup.caches.entries()) {
      const r = await draw(cache, `cached-${i}`);
      results[i].times.push(r.seconds / plain.seconds);
      results[i].seconds = [...(results[i].seconds ?? []), r.seconds];
      results[i].png = r.png;
    }
  }
  await model.close();
  console.log(`\n${setup.name}: uncached ${median(times.none).toFixed(2)} s/image (median of ${values.rounds})\n`);
  console.log('| cache | s/image | time vs uncached | speed-up | steps the reference skips (its log) | PSNR vs uncached |');
  console.log('|---|---|---|---|---|---|');
  for (const [i, cache] of setup.caches.entries()) {
    const ratio = median(results[i].times);
    const skipped = values.peer ? peerSkips(setup, cache, folder) : '-';
    console.log(`| ${describe(cache)} | ${median(results[i].seconds).toFixed(2)} | ${ratio.toFixed(2)} | ${(1 / ratio).toFixed(2)}× | ${skipped} | ${psnr(plain.png, results[i].png)} |`);
  }
}
