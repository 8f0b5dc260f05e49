// The safety checker through the library, on tiny random checkers in the transformers layout:
// loading, what a check reports, its preprocessing, and what a generation with a checker returns.
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { loadModel, loadSafetyChecker, SdnodeError, type GeneratedImage } from '../lib/index.js';
import { clipMean, clipPixels, clipStd, resizeBicubic, shortestSideSize } from '../lib/clip-preprocess.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { tinySafetyChecker, writeTinySafetyChecker } from './fixtures/safety-checker.js';

const dir = t.testdir();
const never = await loadSafetyChecker(await writeTinySafetyChecker(dir, { thresholds: 'never' }), { backend: 'cpu' });
const always = await loadSafetyChecker(await writeTinySafetyChecker(dir, { thresholds: 'always' }), { backend: 'cpu' });
t.teardown(async () => {
  await never.close();
  await always.close();
});

function picture(width: number, height: number, colour: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: colour } }).png().toBuffer();
}

const red = await picture(40, 30, { r: 200, g: 10, b: 50 });
const blue = await picture(24, 64, { r: 0, g: 100, b: 250 });

t.test('reads the architecture from the file', async (t) => {
  t.same(never.info, {
    imageSize: tinySafetyChecker.imageSize, concepts: 17, specialConcepts: 3, weightBytes: never.info.weightBytes, backend: 'cpu',
  });
  t.ok(never.info.weightBytes > 0);
  t.equal(never.path, path.resolve(dir, 'tiny-safety-checker-never-seed1.safetensors'));
});

t.test('gives one verdict per image with a score per concept', async (t) => {
  const results = await never.check([red, blue]);
  t.equal(results.length, 2);
  for (const result of results) {
    t.equal(result.conceptScores.length, 17);
    t.equal(result.specialScores.length, 3);
    t.ok(result.conceptScores.every(Number.isFinite));
    t.same([result.nsfw, result.specialCare], [false, false], 'thresholds of 2 are above any cosine similarity');
    // Scores are cosine similarities less the threshold 2: between -3 and -1.
    t.ok(result.conceptScores.every((score) => score >= -3 && score <= -1));
  }
  t.not(results[0]!.conceptScores[0], results[1]!.conceptScores[0], 'different images score differently');
});

t.test('is deterministic, and a batch scores as single images do', async (t) => {
  const [first] = await never.check(red);
  const [again] = await never.check(red);
  t.same(again, first);
  const [, batched] = await never.check([blue, red]);
  for (const [i, score] of first!.conceptScores.entries()) t.ok(Math.abs(score - batched!.conceptScores[i]!) < 1e-5);
});

t.test('flags an image whose concept score is above zero', async (t) => {
  const [result] = await always.check(red);
  t.equal(result!.nsfw, true);
  t.ok(result!.conceptScores.every((score) => score > 0));
});

t.test('a special-care match makes every concept score 0.01 higher', async (t) => {
  const careful = await loadSafetyChecker(await writeTinySafetyChecker(dir, { thresholds: 'never', specialCare: true, name: 'care.safetensors' }));
  t.teardown(() => careful.close());
  const [plain] = await never.check(blue);
  const [adjusted] = await careful.check(blue);
  t.same([plain!.specialCare, adjusted!.specialCare], [false, true]);
  for (const [i, score] of adjusted!.conceptScores.entries()) t.ok(Math.abs(score - plain!.conceptScores[i]! - 0.01) < 1e-5);
});

t.test('reads image files by path and refuses what is not an image', async (t) => {
  const file = path.join(t.testdir(), 'red.png');
  await sharp(red).toFile(file);
  t.same(await never.check(file), await never.check(red));
  await t.rejects(never.check(Buffer.from('not an image')), TypeError);
  await t.rejects(never.check([]), TypeError);
});

t.test('loading something else fails with a code that says why', async (t) => {
  const checkpoint = await writeTinyCheckpoint(t.testdir());
  await t.rejects(loadSafetyChecker(checkpoint), { name: 'SdnodeError', code: 'ERR_MODEL_UNSUPPORTED', message: /safety checker/ });
  await t.rejects(loadSafetyChecker(path.join(dir, 'missing.safetensors')), { code: 'ERR_MODEL_IO' });
  await t.rejects(loadSafetyChecker(checkpoint, { weightType: 'f16' } as never), TypeError);
});

t.test('a closed checker refuses to check', async (t) => {
  const checker = await loadSafetyChecker(await writeTinySafetyChecker(dir, { name: 'closed.safetensors' }));
  await checker.close();
  t.equal(checker.closed, true);
  await t.rejects(checker.check(red), SdnodeError);
  await t.rejects(checker.check(red), { code: 'ERR_CHECKER_CLOSED' });
});

t.test('preprocesses as CLIP\'s image processor: shortest side, centre crop, mean and std', async (t) => {
  t.same(shortestSideSize(768, 512, 224), { width: 336, height: 224 });
  t.same(shortestSideSize(150, 200, 224), { width: 224, height: 298 });
  // A flat colour stays flat through Pillow's bicubic filter, up or down.
  const flat = { data: new Uint8Array(5 * 3 * 3).fill(77), width: 5, height: 3 };
  t.ok(resizeBicubic(flat, 12, 7).data.every((value) => value === 77));
  t.ok(resizeBicubic(flat, 2, 2).data.every((value) => value === 77));
  const out = new Float32Array(3 * 4 * 4);
  clipPixels({ data: new Uint8Array(6 * 8 * 3).fill(255), width: 6, height: 8 }, 4, out, 0);
  for (let c = 0; c < 3; c++) t.ok(Math.abs(out[c * 16]! - (1 - clipMean[c]) / clipStd[c]) < 1e-6);
  // Downscaling by two averages neighbours with the bicubic weights; a step edge keeps its side values.
  const edge = { data: new Uint8Array(8 * 1 * 3), width: 8, height: 1 };
  edge.data.fill(255, 12);
  const half = resizeBicubic(edge, 4, 1).data;
  t.same([half[0], half[9]], [0, 255]);
  t.ok(half[3]! < 128 && half[6]! > 128, 'the edge falls between the middle samples');
});

t.test('a generation with a checker reports nsfw and blacks out what it flags', async (t) => {
  const model = await loadModel(await writeTinyCheckpoint(t.testdir()), { backend: 'cpu' });
  t.teardown(() => model.close());
  const quick = { prompt: 'a cat', width: 64, height: 64, steps: 1, seed: 3 } as const;
  const pixels = async (image: GeneratedImage) => sharp(image.png).raw().toBuffer();

  const [plain] = await model.textToImage(quick);
  t.equal(plain!.nsfw, undefined, 'no checker, no verdict');
  t.equal(plain!.safety, undefined);

  const [clean] = await model.textToImage({ ...quick, safetyChecker: never });
  t.equal(clean!.nsfw, false);
  t.equal(clean!.safety?.conceptScores.length, 17);
  t.ok(clean!.png.equals(plain!.png), 'an image nothing flags is unchanged');

  const [filtered] = await model.textToImage({ ...quick, safetyChecker: always });
  t.equal(filtered!.nsfw, true);
  t.ok((await pixels(filtered!)).every((value) => value === 0), 'flagged and filtered: black');
  t.equal(filtered!.parameters, plain!.parameters);

  const [reported] = await model.textToImage({ ...quick, safetyChecker: always, safetyCheck: 'report' });
  t.equal(reported!.nsfw, true);
  t.ok(reported!.png.equals(plain!.png), 'report keeps the pixels');

  await t.rejects(model.textToImage({ ...quick, safetyCheck: 'filter' }), TypeError, 'safetyCheck needs a checker');
  await t.rejects(model.textToImage({ ...quick, safetyChecker: {} as never }), { name: 'TypeError', message: /safetyChecker/ });
  await t.rejects(model.textToImage({ ...quick, safetyChecker: never, safetyCheck: 'blur' as never }), RangeError);
});
