// Helpers of the benchmarks that compare settings side by side: one `speed.mjs --child` process
// per case (so peak RSS is that case's alone), and the PSNR of two PNGs (../shared/tools/psnr.py).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const speed = fileURLToPath(new URL('./speed.mjs', import.meta.url));

/** A fresh folder for a run's images. */
export function imageFolder(name) {
  return mkdtempSync(path.join(tmpdir(), `sdnode-${name}-`));
}

/**
 * Runs one case ('256:4' = 256², 4 steps) with speed.mjs's extra `args`, saving its image to `png`.
 * Resolves to speed.mjs's figures plus `png`, or undefined (with the error printed) when it failed.
 */
export function runCase(spec, { model, threads, png, args = [] }) {
  const child = spawnSync(process.execPath, [speed, '--child', spec, '--model', model, '--threads', threads,
    '--save', png, ...args], { encoding: 'utf8' });
  if (child.status !== 0) {
    console.log(`${spec} ${args.join(' ')}: failed\n${child.stderr}`);
    return undefined;
  }
  return { ...JSON.parse(child.stdout.trim().split('\n').pop()), png };
}

/** The reference engine's binary (../shared/peer/) for this CPU: its AVX-512 build where the CPU has avx512f; `given` wins. */
export function referenceBinary(given) {
  return given ?? (readFileSync('/proc/cpuinfo', 'utf8').includes(' avx512f') ? '../shared/peer/sd-cli-avx512' : '../shared/peer/sd-cli-avx2');
}

/** The median of runs (the lower middle one for an even count: the better of two). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** "psnr=… maxdiff=…" of two PNGs of the same size. */
export function psnr(a, b) {
  return execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), a, b], { encoding: 'utf8' }).trim();
}

/** The random checkpoints of ../shared/reference/README.md, by family (file names in --models). */
export const checkpoints = {
  sd1: 'sd15-random-f16.safetensors', sd2: 'sd21-random-f16.safetensors', sdxl: 'sdxl-random-f16.safetensors',
  // One file per component, as ../shared/tools/make-random-dit.mjs writes them.
  'flux-schnell': {
    diffusionModel: 'flux-schnell-random-f16.safetensors', clipL: 'clip-l-random-f16.safetensors',
    t5xxl: 't5xxl-random-f16.safetensors', vae: 'vae16-random-f16.safetensors',
  },
  'sd3-medium': {
    diffusionModel: 'sd3-medium-random-f16.safetensors', clipL: 'clip-l-random-f16.safetensors', clipG: 'clip-g-random-f16.safetensors',
    t5xxl: 't5xxl-random-f16.safetensors', vae: 'vae16-random-f16.safetensors',
  },
  'sd35-medium': {
    diffusionModel: 'sd35-medium-random-f16.safetensors', clipL: 'clip-l-random-f16.safetensors', clipG: 'clip-g-random-f16.safetensors',
    t5xxl: 't5xxl-random-f16.safetensors', vae: 'vae16-random-f16.safetensors',
  },
};

/** The cases of ../shared/reference/README.md that the engine runs; `reference` is that folder. */
export function referenceCases(reference) {
  const ref = (name) => path.join(reference, name);
  const castle = 'a castle on a hill at sunset, highly detailed';
  return [
    { id: 'r1-cat-64', model: 'sd1', width: 64, height: 64, steps: 2, sampler: 'euler_a', cfgScale: 7, seed: 42, prompt: 'a photo of a cat', negativePrompt: '' },
    { id: 'r2-castle-128', model: 'sd1', width: 128, height: 128, steps: 8, sampler: 'euler_a', cfgScale: 7.5, seed: 1234, prompt: castle, negativePrompt: 'blurry, low quality' },
    { id: 'r3-euler-128x64', model: 'sd1', width: 128, height: 64, steps: 6, sampler: 'euler', cfgScale: 5, seed: 7, prompt: castle, negativePrompt: 'blurry, low quality' },
    { id: 'r4-dpmpp2m-karras', model: 'sd1', width: 128, height: 128, steps: 10, sampler: 'dpm++2m', scheduler: 'karras', cfgScale: 7, seed: 99, prompt: 'a bowl of fruit on a wooden table', negativePrompt: 'dark' },
    { id: 'r5-heun', model: 'sd1', width: 64, height: 64, steps: 5, sampler: 'heun', cfgScale: 7, seed: 11, prompt: 'a red sports car', negativePrompt: '' },
    { id: 'r6-lcm', model: 'sd1', width: 64, height: 64, steps: 4, sampler: 'lcm', scheduler: 'lcm', cfgScale: 1, seed: 12, prompt: 'a mountain lake', negativePrompt: '' },
    { id: 'r7-img2img', model: 'sd1', width: 128, height: 128, steps: 8, sampler: 'euler_a', cfgScale: 7, seed: 5, prompt: 'a castle on a hill at night', negativePrompt: '', image: ref('r2-castle-128.png'), strength: 0.6 },
    { id: 'r8-inpaint-left', model: 'sd1', width: 128, height: 128, steps: 8, sampler: 'euler_a', cfgScale: 7, seed: 5, prompt: 'a stone tower', negativePrompt: '', image: ref('r2-castle-128.png'), mask: ref('mask_left_128.png'), strength: 1, maskBlur: 0 },
    { id: 'r9-sd2-v', model: 'sd2', width: 64, height: 64, steps: 3, sampler: 'euler_a', cfgScale: 7, seed: 21, prompt: 'a photo of a cat', negativePrompt: '', prediction: 'v' },
    { id: 'r10-sdxl-128', model: 'sdxl', width: 128, height: 128, steps: 4, sampler: 'euler_a', cfgScale: 6, seed: 5, prompt: 'a lighthouse on a cliff', negativePrompt: 'fog' },
    // loraDir: relative to the models folder (node ../shared/tools/make-random-lora.mjs writes loras/lora-random-r8.safetensors)
    { id: 'r11-lora', model: 'sd1', width: 64, height: 64, steps: 4, sampler: 'euler', cfgScale: 7, seed: 3, prompt: 'a photo of a cat <lora:lora-random-r8:1>', negativePrompt: '', loraDir: 'loras' },
    // The add-ons of ../shared/tools/make-random-addons.mjs, under addons/ in the models folder (embeddingsDir too is relative to it).
    // ControlNet at the reference CLI's default strength 0.9 on a given control image (no preprocessor).
    { id: 'r15-controlnet-128', model: 'sd1', width: 128, height: 128, steps: 4, sampler: 'euler_a', cfgScale: 7, seed: 42, prompt: 'a house', negativePrompt: '', controlNetDir: 'addons', controlNets: [{ model: 'controlnet-sd15-random-f16', image: ref('r2-castle-128.png'), weight: 0.9 }] },
    { id: 'r17-embeddings', model: 'sd1', width: 64, height: 64, steps: 4, sampler: 'euler_a', cfgScale: 7, seed: 42, prompt: 'a photo of sdnemb-cat', negativePrompt: 'sdnemb-bad', embeddingsDir: 'addons/embeddings' },
    { id: 'r18-loha', model: 'sd1', width: 64, height: 64, steps: 4, sampler: 'euler_a', cfgScale: 7, seed: 42, prompt: 'a photo of a cat <lora:loha-random-r8:0.8>', negativePrompt: '', loraDir: 'addons/lycoris' },
    // Not in ../shared/reference: made with the reference's merge path, as r18 with the LoKr file
    // (bench/results/2026-12-07-addons-ti-lyco.md has the command); `referencePng` is relative to the models folder.
    { id: 'r19-lokr', model: 'sd1', width: 64, height: 64, steps: 4, sampler: 'euler_a', cfgScale: 7, seed: 42, prompt: 'a photo of a cat <lora:lokr-random-r16:0.8>', negativePrompt: '', loraDir: 'addons/lycoris', referencePng: 'addons/r19-lokr.png' },
    // The reference's T5 has no vocabulary: it sees no prompt tokens, so ours gets none either.
    { id: 'r13-flux-schnell-128', model: 'flux-schnell', width: 128, height: 128, steps: 2, sampler: 'euler', cfgScale: 1, seed: 42, prompt: 'a photo of a cat', promptTokens: { t5xxl: [] } },
    { id: 'r14-sd3-medium-128', model: 'sd3-medium', width: 128, height: 128, steps: 2, sampler: 'euler', scheduler: 'discrete', cfgScale: 4.5, seed: 42, prompt: 'a photo of a cat', negativePrompt: '', promptTokens: { t5xxl: [] } },
  ];
}
