#!/usr/bin/env node
// The VAE decode whole and in tiles (the vaeTiling option), side by side in one run on the
// full-size random SD 1.5: decode time, peak RSS, and the tiled image's PSNR against the whole
// one. Each case is one `speed.mjs --child` process, so peak RSS is that case's alone.
//
//   npm run build:ts && node bench/vae-tiling.mjs --model ../models/sd15-random-f16.safetensors [--sizes 1024:1]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '1024:1' },
    threads: { type: 'string', default: '2' },
  },
});

const speed = fileURLToPath(new URL('./speed.mjs', import.meta.url));
const images = mkdtempSync(path.join(tmpdir(), 'sdnode-vae-tiling-'));
const f = (x, digits = 2) => x.toFixed(digits);

console.log(`model ${values.model}, ${values.threads} threads\n`);
console.log('| size | decode | s/step | decode s | ratio | peak RSS MB | ratio | PSNR vs whole |');
console.log('|---|---|---|---|---|---|---|---|');
for (const spec of values.sizes.split(',')) {
  let whole;
  for (const tiled of [false, true]) {
    const png = path.join(images, `${spec.replace(':', '-')}-${tiled ? 'tiled' : 'whole'}.png`);
    const child = spawnSync(process.execPath, [speed, '--child', spec, '--model', values.model, '--threads', values.threads,
      '--save', png, ...(tiled ? ['--vae-tiling'] : [])], { encoding: 'utf8' });
    if (child.status !== 0) {
      console.log(`${spec} ${tiled ? 'tiled' : 'whole'}: failed\n${child.stderr}`);
      continue;
    }
    const r = { ...JSON.parse(child.stdout.trim().split('\n').pop()), png };
    whole ??= r;
    const psnr = tiled ? execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), whole.png, png], { encoding: 'utf8' }).trim() : '-';
    console.log(`| ${r.size}² | ${tiled ? 'tiles' : 'whole'} | ${f(r.secondsPerStep)} | ${f(r.decodeSeconds)} `
      + `| ${f(r.decodeSeconds / whole.decodeSeconds)} | ${f(r.peakRssMB, 0)} | ${f(r.peakRssMB / whole.peakRssMB)} | ${psnr} |`);
  }
}
