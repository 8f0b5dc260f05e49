#!/usr/bin/env node
// Speed side by side with the reference engine (stable-diffusion.cpp's CLI, ../shared/peer/) in one
// run on one machine: seconds per sampling step, VAE decode time, total and peak RSS for both, and
// sdnode's ratios. Cases alternate between the two engines (and the order flips every round) so a
// machine that gets busier or quieter during the run weighs on both alike. Full-size random SD 1.5
// checkpoint, f16, euler, discrete, cfg 7 (two UNet passes per step). Each run is its own process,
// so peak RSS is that run's alone.
//
//   npm run build:ts && node bench/speed.mjs --model ../models/sd15-random-f16.safetensors \
//     [--sizes 256:4,512:2] [--threads 2] [--rounds 2] [--peer ../shared/peer/sd-cli-avx512]
//   Flow models from the random component files of ../shared/reference/README.md (T5 fed no tokens on
//   both sides, as the reference has no T5 vocabulary); --peer-fa times the reference with
//   --diffusion-fa; --family flux-schnell (default) or sd3-medium:
//   node bench/speed.mjs --flux ../models --cfg-scale 1 --sizes 256:2,512:2 [--peer-fa]
//   node bench/speed.mjs --flux ../models --family sd3-medium --cfg-scale 4.5 --sizes 256:2
//
// Both engines' s/step is the sampling phase over its steps (ours includes the prompt's encoding in
// the first step, a few hundred ms, so it slightly favours the reference); decode is the VAE.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { median, referenceBinary } from './cases.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '../models/sd15-random-f16.safetensors' },
    sizes: { type: 'string', default: '256:4,512:2' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    peer: { type: 'string' },
    'cfg-scale': { type: 'string', default: '7' },
    'weight-type': { type: 'string', default: 'auto' },
    child: { type: 'string' },
    save: { type: 'string' },
    'vae-tiling': { type: 'boolean', default: false },
    'preview-every': { type: 'string', default: '0' },
    flux: { type: 'string' },
    family: { type: 'string', default: 'flux-schnell' },
    'peer-fa': { type: 'boolean', default: false },
  },
});

// The --family's components in the --flux folder, by role, when timing a flow model.
const fluxFiles = values.flux === undefined ? undefined : Object.fromEntries(
  Object.entries((await import('./cases.mjs')).checkpoints[values.family]).map(([role, file]) => [role, path.join(values.flux, file)]));

if (values.child) {
  const { loadModel } = await import('../dist/lib/index.js');
  const [size, steps] = values.child.split(':').map(Number);
  const loadStart = performance.now();
  const options = { threads: Number(values.threads) };
  if (values['weight-type'] !== 'auto') options.weightType = values['weight-type'];
  const model = await loadModel(fluxFiles ?? values.model, options);
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const stepTimes = [];
  const stepCpu = [];
  let previews = 0;
  const started = performance.now();
  const [image] = await model.textToImage({
    prompt: 'a photo of a cat', width: size, height: size, steps, sampler: 'euler', cfgScale: Number(values['cfg-scale']), seed: 42,
    ...(fluxFiles && { promptTokens: { t5xxl: [] } }),
    vaeTiling: values['vae-tiling'],
    ...(Number(values['preview-every']) > 0 && { previewEvery: Number(values['preview-every']) }),
    onProgress: (p) => {
      stepTimes.push(p.elapsedMs);
      const cpu = process.cpuUsage();
      stepCpu.push((cpu.user + cpu.system) / 1e6);
      if (p.preview) previews++;
    },
  });
  const totalSeconds = (performance.now() - started) / 1000;
  const cpuAtEnd = process.cpuUsage();
  await model.close();
  if (values.save) (await import('node:fs')).writeFileSync(values.save, image.png);
  // Step i ends at stepTimes[i]; the first includes text encoding (a few hundred ms).
  const perStep = (stepTimes.at(-1) - stepTimes[0]) / Math.max(1, steps - 1) / 1000;
  const decode = totalSeconds - stepTimes.at(-1) / 1000;
  console.log(JSON.stringify({
    size, steps, loadSeconds, secondsPerStep: steps > 1 ? perStep : stepTimes[0] / 1000, samplingSeconds: stepTimes.at(-1) / 1000,
    // CPU seconds per step (all threads): steadier than wall time on a shared machine.
    cpuSecondsPerStep: steps > 1 ? (stepCpu.at(-1) - stepCpu[0]) / (steps - 1) : undefined,
    decodeSeconds: decode, cpuDecodeSeconds: (cpuAtEnd.user + cpuAtEnd.system) / 1e6 - stepCpu.at(-1), totalSeconds, previews, peakRssMB: process.resourceUsage().maxRSS / 1024, weightMB: model.info.weightBytes / 2 ** 20,
  }));
  process.exit(0);
}

const peer = referenceBinary(values.peer);
if (!existsSync(peer)) throw new Error(`The reference binary ${peer} is missing; pass --peer`);
if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time (Debian package "time") measures the reference\'s peak RSS; install it');
const folder = mkdtempSync(path.join(tmpdir(), 'sdnode-speed-'));

function runOurs(size, steps, threads, png) {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', `${size}:${steps}`, '--model', values.model,
    ...(values.flux ? ['--flux', values.flux, '--family', values.family] : []),
    '--threads', threads, '--weight-type', values['weight-type'], '--cfg-scale', values['cfg-scale'], '--save', png,
    ...(values['vae-tiling'] ? ['--vae-tiling'] : [])], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`sdnode failed on ${size}²:\n${child.stderr}`);
  const r = JSON.parse(child.stdout.trim().split('\n').pop());
  return { secondsPerStep: r.samplingSeconds / steps, decodeSeconds: r.decodeSeconds, totalSeconds: r.totalSeconds, peakRssMB: r.peakRssMB };
}

function runPeer(size, steps, threads, png) {
  const started = performance.now();
  const modelArgs = fluxFiles
    ? ['--diffusion-model', fluxFiles.diffusionModel, '--clip_l', fluxFiles.clipL, '--t5xxl', fluxFiles.t5xxl, '--vae', fluxFiles.vae,
      ...(fluxFiles.clipG ? ['--clip_g', fluxFiles.clipG] : [])]
    : ['-m', values.model];
  const child = spawnSync('/usr/bin/time', ['-f', 'maxrss=%M', peer, ...modelArgs, ...(values['peer-fa'] ? ['--diffusion-fa'] : []),
    '-W', String(size), '-H', String(size),
    '--steps', String(steps), '--sampling-method', 'euler', '--cfg-scale', values['cfg-scale'], '-s', '42', '-t', threads,
    '-p', 'a photo of a cat', '-n', '', '-o', png, '-v', ...(values['vae-tiling'] ? ['--vae-tiling'] : []),
    ...(values['weight-type'] !== 'auto' ? ['--type', values['weight-type']] : [])], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const totalSeconds = (performance.now() - started) / 1000;
  const log = child.stdout + child.stderr;
  const sampling = Number(/sampling completed, taking ([\d.]+)s/.exec(log)?.[1]);
  const decode = Number(/decode_first_stage completed, taking ([\d.]+)s/.exec(log)?.[1]);
  const rss = Number(/maxrss=(\d+)/.exec(log)?.[1]);
  if (child.status !== 0 || !sampling || !decode) throw new Error(`the reference failed on ${size}²:\n${log.slice(-3000)}`);
  return { secondsPerStep: sampling / steps, decodeSeconds: decode, totalSeconds, peakRssMB: rss / 1024 };
}

function psnr(a, b) {
  const out = spawnSync('python3', [path.resolve('../shared/tools/psnr.py'), a, b], { encoding: 'utf8' });
  return /psnr=([\d.inf]+)/.exec(out.stdout)?.[1] ?? '?';
}

const cfg = values['cfg-scale'];
console.log(`model ${values.flux ? `${values.family} components in ${values.flux}` : values.model}${values['peer-fa'] ? ', reference with --diffusion-fa' : ''}, weights ${values['weight-type']}, euler, cfg ${cfg}${values['vae-tiling'] ? ', VAE tiling' : ''}, `
  + `reference ${path.basename(peer)}, ${values.rounds} round(s), medians\n`);
console.log('| size | steps | threads | s/step | ref s/step | ratio | decode s | ref decode s | ratio | total s | ref total s | ratio | peak RSS MB | ref MB | ratio | PSNR vs ref |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
const f = (x, d = 2) => x.toFixed(d);
for (const spec of values.sizes.split(',')) {
  const [size, steps] = spec.split(':').map(Number);
  for (const threads of values.threads.split(',')) {
    const ours = [];
    const theirs = [];
    const png = path.join(folder, `${size}-${threads}.png`);
    const peerPng = path.join(folder, `${size}-${threads}-peer.png`);
    for (let round = 0; round < Number(values.rounds); round++) {
      const order = round % 2 === 0 ? ['peer', 'ours'] : ['ours', 'peer'];
      for (const who of order) {
        if (who === 'peer') theirs.push(runPeer(size, steps, threads, peerPng));
        else ours.push(runOurs(size, steps, threads, png));
      }
    }
    const m = (runs, key) => median(runs.map((r) => r[key]));
    const cells = ['secondsPerStep', 'decodeSeconds', 'totalSeconds'].flatMap((key) =>
      [f(m(ours, key)), f(m(theirs, key)), f(m(ours, key) / m(theirs, key))]);
    console.log(`| ${size}² | ${steps} | ${threads} | ${cells.join(' | ')} | ${f(m(ours, 'peakRssMB'), 0)} | ${f(m(theirs, 'peakRssMB'), 0)} `
      + `| ${f(m(ours, 'peakRssMB') / m(theirs, 'peakRssMB'))} | ${psnr(peerPng, png)} |`);
  }
}
