#!/usr/bin/env node
// How close the engine's CPU time comes to what ggml's matrix product can do on this machine.
//  1. FLOPs of one UNet pass and one VAE decode, counted from the checkpoint's own tensor shapes
//     (every convolution and linear layer at the resolution it runs at, plus attention's two
//     products): 2 x multiply-adds.
//  2. ggml's GEMM GFLOP/s on this machine (bench/native/gemm-peak.cpp, compiled against the last
//     native build's libraries, run through the engine's graph runner).
//  3. The engine's s/step and decode time (bench/speed.mjs --child), turned into GFLOP/s reached.
//
//   npm run build:ts && node bench/roofline.mjs --model ../models/sd15-random-f16.safetensors \
//     [--sizes 256:2,512:1] [--threads 1,2] [--weight-types auto,q8_0]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readSync, readdirSync, statSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { imageFolder, runCase } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '256:2,512:1' },
    threads: { type: 'string', default: '1,2' },
    'weight-types': { type: 'string', default: 'auto,q8_0' },
    // Only the matrix products (no model needed): ggml's GEMM against the core's FMA peak.
    'gemm-only': { type: 'boolean' },
  },
});
const root = fileURLToPath(new URL('..', import.meta.url));

function header(file) {
  const fd = openSync(file, 'r');
  const length = Buffer.alloc(8);
  readSync(fd, length, 0, 8, 0);
  const json = Buffer.alloc(Number(length.readBigUInt64LE()));
  readSync(fd, json, 0, json.length, 8);
  closeSync(fd);
  return JSON.parse(json.toString('utf8'));
}

// Multiply-adds of a weight at `pixels` output positions (convolution) or `tokens` rows (linear).
const macs = (shape, rows) => shape.reduce((a, b) => a * b, 1) * rows;

/** FLOPs of one UNet pass (batch 1) at latent w x h, and of one VAE decode to 8w x 8h. */
function countFlops(tensors, w, h) {
  const names = Object.keys(tensors).filter((n) => n !== '__metadata__');
  const shape = (n) => tensors[n].shape;
  const unet = 'model.diffusion_model.';
  let unetMacs = 0;
  // Levels: each input block with a downsampling op moves one level down (its own output is
  // already there); the output blocks move up after each upsampling conv.
  const blockLevel = new Map();
  let level = 0;
  for (let i = 0; names.some((n) => n.startsWith(`${unet}input_blocks.${i}.`)); i++) {
    if (names.some((n) => n.startsWith(`${unet}input_blocks.${i}.0.op.`))) level++;
    blockLevel.set(`input_blocks.${i}.`, level);
  }
  blockLevel.set('middle_block.', level);
  for (let i = 0; names.some((n) => n.startsWith(`${unet}output_blocks.${i}.`)); i++) {
    blockLevel.set(`output_blocks.${i}.`, level);
    const up = names.find((n) => n.startsWith(`${unet}output_blocks.${i}.`) && /\.conv\.weight$/.test(n));
    if (up) {
      unetMacs += macs(shape(up), (w >> (level - 1)) * (h >> (level - 1)));
      level--;
    }
  }
  const contextTokens = 77;
  for (const n of names.filter((x) => x.startsWith(unet) && x.endsWith('.weight'))) {
    const local = n.slice(unet.length);
    const s = shape(n);
    if (/^output_blocks\.\d+\.\d+\.conv\.weight$/.test(local)) continue;  // counted above
    const key = [...blockLevel.keys()].find((k) => local.startsWith(k));
    const l = key ? blockLevel.get(key) : 0;  // time_embed, label_emb, out: full resolution or one row
    const pixels = (w >> l) * (h >> l);
    if (s.length === 4) unetMacs += macs(s, pixels);
    else if (s.length === 2 && /time_embed|label_emb|emb_layers/.test(local)) unetMacs += macs(s, 1);
    else if (s.length === 2 && /attn2\.to_[kv]/.test(local)) unetMacs += macs(s, contextTokens);
    else if (s.length === 2) unetMacs += macs(s, pixels);
    if (/attn1\.to_q\.weight$/.test(local)) unetMacs += 2 * pixels * pixels * s[0];
    if (/attn2\.to_q\.weight$/.test(local)) unetMacs += 2 * pixels * contextTokens * s[0];
  }
  // VAE decoder: up.N counts down from the latent's resolution (up.{last}) to the image's (up.0).
  const vae = 'first_stage_model.';
  let vaeMacs = 0;
  const ups = names.filter((n) => n.startsWith(`${vae}decoder.up.`)).map((n) => Number(n.split('.')[3]));
  const top = Math.max(...ups);
  for (const n of names.filter((x) => x.startsWith(vae) && x.endsWith('.weight') && shape(x).length === 4)) {
    const local = n.slice(vae.length);
    if (local.startsWith('encoder.') || local.startsWith('quant_conv')) continue;
    let scale = 1;
    const m = /^decoder\.up\.(\d+)\./.exec(local);
    if (m) scale = 2 ** (top - Number(m[1])) * (local.includes('.upsample.') ? 2 : 1);
    else if (/^decoder\.(conv_out|norm_out)/.test(local)) scale = 2 ** top;
    vaeMacs += macs(shape(n), w * scale * h * scale);
    if (/decoder\.mid\.attn_1\.q\.weight$/.test(local)) vaeMacs += 2 * (w * h) ** 2 * shape(n)[0];
  }
  return { unet: 2 * unetMacs, vae: 2 * vaeMacs };
}

function gemmPeaks(threads) {
  const builds = path.join(root, '.native-build');
  const folder = readdirSync(builds).filter((n) => n.startsWith('cmake-')).map((n) => path.join(builds, n, 'lib'))
    .filter((f) => existsSync(path.join(f, 'libsdengine.a')))
    .sort((a, b) => statSync(path.join(b, 'libsdengine.a')).mtimeMs - statSync(path.join(a, 'libsdengine.a')).mtimeMs)[0];
  const include = readdirSync(builds).filter((n) => n.startsWith('llama-')).map((n) => path.join(builds, n, 'ggml', 'include'));
  const harness = path.join(mkdtempSync(path.join(tmpdir(), 'sdnode-roofline-')), 'gemm-peak');
  const engine = path.join(root, 'native/engine');
  const engineFolders = [engine, ...readdirSync(engine, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(engine, e.name))];
  execFileSync('c++', ['-std=c++17', '-O2', ...engineFolders.flatMap((f) => ['-I', f]), ...include.flatMap((i) => ['-I', i]),
    path.join(root, 'bench/native/gemm-peak.cpp'), ...['libsdengine.a', 'libggml.a', 'libggml-cpu.a', 'libggml-base.a'].map((l) => path.join(folder, l)),
    '-fopenmp', '-lpthread', '-ldl', '-lm', '-o', harness]);
  return threads.flatMap((t) => execFileSync(harness, [t], { encoding: 'utf8' }).trim().split('\n').map((l) => JSON.parse(l)));
}

const threads = values.threads.split(',');
const images = imageFolder('roofline');
const peaks = gemmPeaks(threads);
console.log('ggml matrix products on this machine (best of 4):\n');
console.log('| shape (k x m x n) | weights | threads | GFLOP/s | per core, by CPU time |');
console.log('|---|---|---|---|---|');
for (const p of peaks) console.log(`| ${p.shape} (${p.k}×${p.m}×${p.n}) | ${p.weights} | ${p.threads} | ${p.gflops.toFixed(1)} | ${p.cpu_gflops.toFixed(1)} |`);
if (values['gemm-only']) process.exit(0);

const tensors = header(values.model);
console.log('\nThe engine (cfg 7: two UNet passes per step; s/step from the second step on):\n');
console.log('| size | weights | threads | UNet GFLOP/step | s/step | GFLOP/s | of square-2048 peak | VAE GFLOP | decode s | GFLOP/s | of f16×f16 conv peak |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const spec of values.sizes.split(',')) {
  const size = Number(spec.split(':')[0]);
  const flops = countFlops(tensors, size / 8, size / 8);
  for (const weightType of values['weight-types'].split(',')) {
    for (const t of threads) {
      const r = runCase(spec, { model: values.model, threads: t, png: path.join(images, `${spec}-${weightType}-${t}.png`), args: ['--weight-type', weightType] });
      if (!r) continue;
      const stepFlops = 2 * flops.unet;
      const peakType = weightType === 'q8_0' ? 'q8_0' : 'f16';
      const peak = peaks.find((p) => p.threads === Number(t) && p.shape === 'square 2048' && p.weights === peakType).gflops;
      const convPeak = peaks.find((p) => p.threads === Number(t) && p.shape.startsWith('vae conv')).gflops;
      const unetRate = stepFlops / r.secondsPerStep / 1e9;
      const vaeRate = flops.vae / r.decodeSeconds / 1e9;
      console.log(`| ${size}² | ${weightType === 'auto' ? 'f16' : weightType} | ${t} | ${(stepFlops / 1e9).toFixed(0)} | ${r.secondsPerStep.toFixed(2)} `
        + `| ${unetRate.toFixed(1)} | ${(unetRate / peak * 100).toFixed(0)} % | ${(flops.vae / 1e9).toFixed(0)} | ${r.decodeSeconds.toFixed(2)} `
        + `| ${vaeRate.toFixed(1)} | ${(vaeRate / convPeak * 100).toFixed(0)} % |`);
    }
  }
}
