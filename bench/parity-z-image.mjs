#!/usr/bin/env node
// Parity of Z-Image (Tongyi's transformer, the Qwen3 text encoder, the 16-channel VAE) with
// stable-diffusion.cpp. The case's reference PNG is made with the reference engine's CLI
// (../shared/peer/) into --refs unless it is already there, its log (-v) kept beside it; the same
// case then runs through the public library and the PSNR is printed (../shared/tools/psnr.py). Not a
// CI test: it needs the random component files of ../shared/reference/README.md
// (make-random-dit.mjs --component z-image / qwen3 / vae16).
//
// The reference was built without Qwen's vocabulary: its tokenizer writes each byte of the chat
// template and prompt as its own id and numbers the special tokens from 256. Our library is fed
// the same ids (promptTokens.llm), written here as the reference makes them.
//
//   npm run build:ts && node bench/parity-z-image.mjs --models ../models/zimage [--refs ../models/zimage/ref] [--threads 2]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { loadModel } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '../models/zimage' },
    refs: { type: 'string', default: '../models/zimage/ref' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx2' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench/results/parity' },
  },
});

const prompt = 'a photo of a cat';
const components = {
  diffusionModel: path.join(values.models, 'z-image-random-f16.safetensors'),
  llm: path.join(values.models, 'qwen3-random-f16.safetensors'),
  vae: path.join(values.models, 'vae16-random-f16.safetensors'),
};
const cases = [
  { id: 'z1-zimage-128', steps: 2, cfgScale: 1, sampler: 'euler', scheduler: 'discrete', peerArgs: ['--sampling-method', 'euler'] },
  { id: 'z2-zimage-cfg-128', steps: 2, cfgScale: 2.5, sampler: 'euler', scheduler: 'discrete', negativePrompt: 'blurry',
    peerArgs: ['--sampling-method', 'euler', '-n', 'blurry'] },
];

// The ids the reference's Qwen tokenizer gives without its merges: one id per UTF-8 byte, numbered
// as GPT-2's byte alphabet lists them (printable bytes first: 'a' 64, ' ' 220, '\n' 198, the ids
// Qwen's vocabulary gives single bytes too), then its special tokens from 256 in its list's order
// (<|endoftext|> 256, <|im_start|> 257, <|im_end|> 258). Its log (-v) shows the split.
const printable = (b) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
const byteOrder = [...Array(256).keys()].filter(printable).concat([...Array(256).keys()].filter((b) => !printable(b)));
const byteId = new Map(byteOrder.map((b, id) => [b, id]));
const referenceSpecial = { '<|im_start|>': 257, '<|im_end|>': 258 };
function byteIds(text) {
  const ids = [];
  for (const part of text.split(/(<\|im_start\|>|<\|im_end\|>)/)) {
    if (part in referenceSpecial) ids.push(referenceSpecial[part]);
    else ids.push(...[...Buffer.from(part, 'utf8')].map((b) => byteId.get(b)));
  }
  return ids;
}
const templated = (text) => byteIds(`<|im_start|>user\n${text}<|im_end|>\n<|im_start|>assistant\n`);

function referencePng(c) {
  const png = path.join(values.refs, `${c.id}.png`);
  if (fs.existsSync(png)) return png;
  fs.mkdirSync(values.refs, { recursive: true });
  const args = ['--diffusion-model', components.diffusionModel, '--llm', components.llm, '--vae', components.vae, '-W', '128', '-H', '128',
    '--steps', String(c.steps), '--cfg-scale', String(c.cfgScale), '-s', '42', '-t', values.threads, '-p', prompt, '-o', png, '-v', ...c.peerArgs];
  console.log(`${c.id}: making the reference: ${values.peer} ${args.join(' ')}`);
  fs.writeFileSync(path.join(values.refs, `${c.id}.log`), execFileSync(values.peer, args, { encoding: 'utf8', maxBuffer: 64 << 20 }));
  return png;
}

fs.mkdirSync(values.out, { recursive: true });
const model = await loadModel(components, { threads: Number(values.threads) });
const rows = [];
for (const c of cases) {
  const { id, peerArgs: _, negativePrompt, ...options } = c;
  const reference = referencePng(c);
  const started = performance.now();
  const [result] = await model.textToImage({
    ...options, width: 128, height: 128, seed: 42, prompt, promptTokens: { llm: templated(prompt) },
    ...(negativePrompt !== undefined && { negativePrompt, negativePromptTokens: { llm: templated(negativePrompt) } }),
  });
  const seconds = (performance.now() - started) / 1000;
  const ours = path.join(values.out, `${id}.png`);
  fs.writeFileSync(ours, result.png);
  const psnr = execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), reference, ours], { encoding: 'utf8' }).trim();
  rows.push({ id, psnr, seconds: seconds.toFixed(1) });
  console.log(`${id}: ${psnr} (${seconds.toFixed(1)} s)`);
}
await model.close();
console.log(`\nQwen ids fed to both (prompt): ${JSON.stringify(templated(prompt))}`);
console.log('\n| case | PSNR / max diff | time s |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.id} | ${r.psnr} | ${r.seconds} |`);
