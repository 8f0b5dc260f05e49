#!/usr/bin/env node
// Seconds per sampling step, VAE decode time and peak RSS on the full-size random SD 1.5
// checkpoint, in the reference table's setting (../shared/reference/README.md: 2 threads, f16,
// euler, discrete, cfg 7). Each case runs in its own process so peak RSS is that case's alone.
//
//   npm run build:ts && node bench/speed.mjs --model ../models/sd15-random-f16.safetensors [--sizes 256:4,512:2]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '256:4,512:2' },
    threads: { type: 'string', default: '2' },
    'weight-type': { type: 'string', default: 'auto' },
    child: { type: 'string' },
    save: { type: 'string' },
    'vae-tiling': { type: 'boolean', default: false },
    'preview-every': { type: 'string', default: '0' },
  },
});

if (values.child) {
  const { loadModel } = await import('../dist/lib/index.js');
  const [size, steps] = values.child.split(':').map(Number);
  const loadStart = performance.now();
  const options = { threads: Number(values.threads) };
  if (values['weight-type'] !== 'auto') options.weightType = values['weight-type'];
  const model = await loadModel(values.model, options);
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const stepTimes = [];
  let previews = 0;
  const started = performance.now();
  const [image] = await model.textToImage({
    prompt: 'a photo of a cat', width: size, height: size, steps, sampler: 'euler', cfgScale: 7, seed: 42,
    vaeTiling: values['vae-tiling'],
    ...(Number(values['preview-every']) > 0 && { previewEvery: Number(values['preview-every']) }),
    onProgress: (p) => {
      stepTimes.push(p.elapsedMs);
      if (p.preview) previews++;
    },
  });
  const totalSeconds = (performance.now() - started) / 1000;
  await model.close();
  if (values.save) (await import('node:fs')).writeFileSync(values.save, image.png);
  // Step i ends at stepTimes[i]; the first includes text encoding (a few hundred ms).
  const perStep = (stepTimes.at(-1) - stepTimes[0]) / Math.max(1, steps - 1) / 1000;
  const decode = totalSeconds - stepTimes.at(-1) / 1000;
  console.log(JSON.stringify({
    size, steps, loadSeconds, secondsPerStep: steps > 1 ? perStep : stepTimes[0] / 1000, decodeSeconds: decode,
    totalSeconds, previews, peakRssMB: process.resourceUsage().maxRSS / 1024, weightMB: model.info.weightBytes / 2 ** 20,
  }));
  process.exit(0);
}

const reference = { 256: { secondsPerStep: 5.84, decodeSeconds: 12.7, totalSeconds: 36.6, peakRssMB: 2434 }, 512: { secondsPerStep: 31.1, decodeSeconds: 51.4, totalSeconds: 114.2, peakRssMB: 3692 } };
console.log(`model ${values.model}, ${values.threads} threads, weights ${values['weight-type']}${values['vae-tiling'] ? ', VAE tiling' : ''}\n`);
console.log('| size | steps | s/step | ref s/step | ratio | decode s | ref decode s | total s | ref total s | peak RSS MB | ref MB | ratio |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const spec of values.sizes.split(',')) {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', spec, '--model', values.model,
    '--threads', values.threads, '--weight-type', values['weight-type'], ...(values['vae-tiling'] ? ['--vae-tiling'] : [])],
  { encoding: 'utf8' });
  if (child.status !== 0) {
    console.log(`${spec}: failed\n${child.stderr}`);
    continue;
  }
  const r = JSON.parse(child.stdout.trim().split('\n').pop());
  const ref = reference[r.size];
  const f = (x) => x.toFixed(2);
  console.log(`| ${r.size}² | ${r.steps} | ${f(r.secondsPerStep)} | ${ref ? ref.secondsPerStep : '-'} | ${ref ? f(r.secondsPerStep / ref.secondsPerStep) : '-'} `
    + `| ${f(r.decodeSeconds)} | ${ref ? ref.decodeSeconds : '-'} | ${f(r.totalSeconds)} | ${ref ? ref.totalSeconds : '-'} `
    + `| ${r.peakRssMB.toFixed(0)} | ${ref ? ref.peakRssMB : '-'} | ${ref ? f(r.peakRssMB / ref.peakRssMB) : '-'} |`);
}
