#!/usr/bin/env node
// The safety checker against an independent PyTorch implementation: bench/safety-checker/reference.py
// writes a random-weight checker in the transformers layout, test images and the reference
// verdicts; this runs the same images through the public library and compares the preprocessed
// pixels, every concept and special-care score, and the flags. Writes a Markdown table.
//
//   /usr/bin/python3 bench/safety-checker/reference.py --size full --out /tmp/sdnode-safety
//   npm run build:ts && node bench/safety-checker.mjs --dir /tmp/sdnode-safety --out bench/results/<date>-safety-checker.md
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { clipPixels } from '../dist/lib/clip-preprocess.js';
import { loadSafetyChecker } from '../dist/lib/index.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp/sdnode-safety' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
});

const dir = path.resolve(values.dir);
const reference = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
const imageFile = (name, ext) => path.join(dir, 'images', `${name}.${ext}`);

const checker = await loadSafetyChecker(path.join(dir, 'checker.safetensors'), { threads: Number(values.threads) });
const size = checker.info.imageSize;
const started = performance.now();
const results = await checker.check(reference.images.map(({ name }) => imageFile(name, 'png')));
const seconds = (performance.now() - started) / 1000;

const maxDiff = (a, b) => a.reduce((max, value, i) => Math.max(max, Math.abs(value - b[i])), 0);
const rows = [];
let worstScore = 0;
let flagsAgree = true;
for (const [i, expected] of reference.images.entries()) {
  const { data, info } = await sharp(imageFile(expected.name, 'png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const ours = new Float32Array(3 * size * size);
  clipPixels({ data, width: info.width, height: info.height }, size, ours, 0);
  const theirs = new Float32Array(fs.readFileSync(imageFile(expected.name, 'f32')).buffer.slice(0));
  const got = results[i];
  const conceptDiff = maxDiff(got.conceptScores, expected.conceptScores);
  const specialDiff = maxDiff(got.specialScores, expected.specialScores);
  worstScore = Math.max(worstScore, conceptDiff, specialDiff);
  const agree = got.nsfw === expected.nsfw && got.specialCare === expected.specialCare;
  flagsAgree &&= agree;
  rows.push(`| ${expected.name} | ${maxDiff(ours, theirs).toExponential(1)} | ${conceptDiff.toExponential(1)} | `
    + `${specialDiff.toExponential(1)} | ${expected.nsfw} / ${got.nsfw} | ${expected.specialCare} / ${got.specialCare} | `
    + `${expected.badConcepts.join(', ') || '–'} | ${agree ? 'yes' : '**no**'} |`);
}
await checker.close();

const { config } = reference;
const report = `# Safety checker vs PyTorch (${reference.size} size)

Random-weight checker written by \`bench/safety-checker/reference.py\` (seed ${reference.seed}): CLIP vision
tower ${config.width} wide, ${config.layers} layers of ${config.heads} heads, MLP ${config.mlp}, ${config.patch}×${config.patch}
patches on ${config.image}×${config.image} (${(config.image / config.patch) ** 2 + 1} positions), projection ${config.projection}, 17 concepts and 3 special-care
concepts, f32. Thresholds are placed by the script so that the verdicts differ (see its
\`designed_thresholds\`). Reference: torch ${reference.torch} on the CPU, ${reference.threads} threads,
${reference.seconds.toFixed(1)} s for the vision tower; sdnode: CPU backend, ${values.threads} threads, ${seconds.toFixed(1)} s
for the whole check (preprocessing included).

Differences are the largest absolute difference over the image's values: the preprocessed pixels
(3×${size}×${size} normalised floats), the 17 concept scores and the 3 special-care scores. Flags are
reference / sdnode.

| image | pixels | concept scores | special scores | nsfw | special care | reference's bad concepts | agree |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Largest score difference: ${worstScore.toExponential(2)} (tolerance 1e-3); flags ${flagsAgree ? 'all agree' : 'DISAGREE'}.
`;
process.stdout.write(report);
if (values.out) fs.writeFileSync(values.out, report);
process.exitCode = worstScore <= 1e-3 && flagsAgree ? 0 : 1;
