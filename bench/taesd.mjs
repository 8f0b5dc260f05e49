#!/usr/bin/env node
// TAESD against stable-diffusion.cpp's --taesd, and against the full VAE. Writes a TAESD of the
// real layout and widths with deterministic random weights (test/fixtures/taesd.ts, diffusers'
// names as madebyollin/taesd's diffusion_pytorch_model.safetensors; seed 1), then:
//  - parity: the same txt2img through the reference CLI with --taesd and through the library with
//    vaeDecoder 'taesd', PSNR of the two PNGs (and of the two VAE images, as the baseline);
//  - decode time, TAESD vs VAE, at a few sizes: the time from the last step's progress event to the
//    call's end (decode plus a PNG encode), one step at cfg 1 so the rest of the call is short;
//  - PSNR of the TAESD image against the VAE image of the same latent. With random weights the two
//    decoders are unrelated networks, so this says nothing of quality; it shows they differ.
//
//   npm run build:ts && node bench/taesd.mjs --model ../models/sd15-random-f16.safetensors \
//     [--peer ../shared/peer/sd-cli-avx2] [--threads 2] [--sizes 64,256,512]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../dist/lib/index.js';
import { imageFolder, psnr } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx2' },
    threads: { type: 'string', default: '2' },
    sizes: { type: 'string', default: '64,256,512' },
  },
});

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const folder = imageFolder('taesd');
const taesd = path.join(folder, 'taesd-random.safetensors');
const writer = spawnSync(process.execPath, ['--import=@tapjs/typescript/import', '--input-type=module', '-e',
  `import { writeTaesd } from ${JSON.stringify(path.join(root, 'test/fixtures/taesd.ts'))};
await writeTaesd(${JSON.stringify(folder)}, { name: 'taesd-random.safetensors', seed: 1 });`], { cwd: root, encoding: 'utf8' });
if (writer.status !== 0) throw new Error(`Could not write the TAESD:\n${writer.stderr}`);

const base = { prompt: 'a photo of a cat', negativePrompt: '', width: 64, height: 64, steps: 2, sampler: 'euler', cfgScale: 7, seed: 42 };
const model = await loadModel(values.model, { backend: 'cpu', threads: Number(values.threads), taesd });

function runPeer(png, extra) {
  const started = performance.now();
  const peer = spawnSync(values.peer, [
    '-m', values.model, '-W', String(base.width), '-H', String(base.height), '--steps', String(base.steps),
    '--sampling-method', base.sampler, '--cfg-scale', String(base.cfgScale), '-s', String(base.seed),
    '-t', values.threads, '-p', base.prompt, '-n', base.negativePrompt, '-o', png, '-v', ...extra,
  ], { encoding: 'utf8' });
  if (peer.status !== 0) throw new Error(`the reference failed\n${peer.stderr.slice(-2000)}`);
  const log = peer.stdout + peer.stderr;
  writeFileSync(png.replace(/\.png$/, '.log'), log);
  const decode = /computing vae (?:\[mode: DECODE\] )?(?:decode )?graph completed, taking ([\d.]+)s/.exec(log)
    ?? /decode_first_stage completed, taking ([\d.]+)s/.exec(log);
  return { seconds: (performance.now() - started) / 1000, decodeSeconds: decode ? Number(decode[1]) : undefined };
}

async function ours(options) {
  let lastStepMs = 0;
  const started = performance.now();
  const [image] = await model.textToImage({ ...options, onProgress: (p) => { lastStepMs = performance.now(); } });
  return { image, decodeMs: performance.now() - lastStepMs, seconds: (performance.now() - started) / 1000 };
}

console.log('## Parity (64x64, 2 steps, euler, cfg 7, seed 42)\n');
const rows = [];
for (const [id, decoder, extra] of [['taesd', 'taesd', ['--taesd', taesd]], ['vae', 'vae', []]]) {
  const theirs = path.join(folder, `${id}-peer.png`);
  const peer = runPeer(theirs, extra);
  const run = await ours({ ...base, vaeDecoder: decoder });
  const mine = path.join(folder, `${id}-sdnode.png`);
  writeFileSync(mine, run.image.png);
  rows.push({ id, psnr: psnr(theirs, mine), peer, run });
}
console.log('| decoder | PSNR / max diff vs reference | reference decode s (its log) |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.id} | ${r.psnr} | ${r.peer.decodeSeconds ?? '?'} |`);
console.log(`\nTAESD image vs VAE image (ours, same latent): ${psnr(path.join(folder, 'taesd-sdnode.png'), path.join(folder, 'vae-sdnode.png'))}`);
console.log(`TAESD image vs VAE image (reference): ${psnr(path.join(folder, 'taesd-peer.png'), path.join(folder, 'vae-peer.png'))}`);

console.log('\n## Decode time (1 step, cfg 1; ms from the last step to the result, best of 2)\n');
console.log('| size | VAE ms | TAESD ms | VAE / TAESD |\n|---|---|---|---|');
for (const side of values.sizes.split(',').map(Number)) {
  const best = async (decoder) => {
    let ms = Infinity;
    for (let i = 0; i < 2; i++) {
      ms = Math.min(ms, (await ours({ ...base, width: side, height: side, steps: 1, cfgScale: 1, vaeDecoder: decoder })).decodeMs);
    }
    return ms;
  };
  const vae = await best('vae');
  const tiny = await best('taesd');
  console.log(`| ${side}x${side} | ${vae.toFixed(0)} | ${tiny.toFixed(0)} | ${(vae / tiny).toFixed(1)} |`);
}
await model.close();
console.log(`\nimages and the TAESD file in ${folder}`);
