#!/usr/bin/env node
// ESRGAN x4 against stable-diffusion.cpp's `-M upscale`, side by side in one run: for each input size
// the reference CLI and `sdnode upscale` (each a fresh process under /usr/bin/time: wall seconds
// including the load, peak RSS), seconds per output megapixel, and the PSNR of the two images.
// 64² is one tile on both sides (the parity case r16-esrgan-x4); larger inputs are tiled by both,
// each its own way (tile layout and blending differ), so their PSNR says how close the tilings are.
//
//   npm run build:ts && node bench/esrgan.mjs [--model ../models/addons/esrgan-x4-random-f16.safetensors] \
//     [--peer ../shared/peer/sd-cli-avx2] [--threads 2] [--sizes 64,160]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { imageFolder, psnr } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/addons/esrgan-x4-random-f16.safetensors' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx2' },
    input: { type: 'string', default: '../shared/reference/in-64.png' },
    threads: { type: 'string', default: '2' },
    sizes: { type: 'string', default: '64,160' },
  },
});

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const folder = imageFolder('esrgan');

// Wall seconds and peak RSS of one process, from GNU time's last line.
function timed(command, args) {
  const run = spawnSync('/usr/bin/time', ['-f', 'TIMED %e %M', command, ...args], { encoding: 'utf8', cwd: root });
  const log = run.stdout + run.stderr;
  const match = /TIMED ([\d.]+) (\d+)\s*$/.exec(log);
  if (run.status !== 0 || !match) throw new Error(`${path.basename(command)} failed:\n${log.slice(-2000)}`);
  return { seconds: Number(match[1]), peakRssMB: Number(match[2]) / 1024, log };
}

const rows = [];
for (const size of values.sizes.split(',').map(Number)) {
  const input = path.join(folder, `in-${size}.png`);
  writeFileSync(input, await sharp(path.resolve(root, values.input)).resize(size, size, { kernel: 'lanczos3' }).png().toBuffer());
  const theirs = path.join(folder, `peer-${size}.png`);
  const mine = path.join(folder, `sdnode-${size}.png`);
  const peer = timed(path.resolve(root, values.peer), ['-M', 'upscale', '--upscale-model', path.resolve(root, values.model), '-i', input, '-o', theirs, '-t', values.threads]);
  writeFileSync(theirs.replace(/\.png$/, '.log'), peer.log);
  const ours = timed(process.execPath, ['bin/sdnode.js', 'upscale', '-i', input, '--upscale-model', path.resolve(root, values.model), '-o', mine, '-t', values.threads, '--backend', 'cpu']);
  const megapixels = (size * 4) ** 2 / 1e6;
  rows.push({ size, megapixels, peer, ours, psnr: psnr(theirs, mine) });
  console.error(`${size}²: reference ${peer.seconds} s, sdnode ${ours.seconds} s`);
}

console.log(`## ESRGAN x4 (${path.basename(values.model)}), ${values.threads} threads, CPU\n`);
console.log('| input | output MP | reference s | sdnode s | reference s/MP | sdnode s/MP | reference peak RSS MB | sdnode peak RSS MB | PSNR sdnode vs reference |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.size}² | ${r.megapixels.toFixed(3)} | ${r.peer.seconds.toFixed(1)} | ${r.ours.seconds.toFixed(1)} | `
    + `${(r.peer.seconds / r.megapixels).toFixed(0)} | ${(r.ours.seconds / r.megapixels).toFixed(0)} | `
    + `${r.peer.peakRssMB.toFixed(0)} | ${r.ours.peakRssMB.toFixed(0)} | ${r.psnr} |`);
}
console.log(`\nImages and the reference's logs: ${folder}`);
