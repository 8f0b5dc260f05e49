// Live previews in progress events (`previews`, `previewEvery`), end to end on a tiny random
// checkpoint: which steps carry one, what they are, that they follow the run, and the option checks.
//
// The tiny model's VAE is random, so its images bear no relation to the SD latent-to-RGB projection a
// preview uses: "the last preview looks like the image" cannot be shown here. What is shown instead is
// that a preview is the model's estimate at that step, cell for cell: previews converge on the last
// one, and where inpainting keeps the input, every step's preview is the same.
import sharp from 'sharp';
import t from 'tap';

import { loadAddon } from '../bindings/index.js';
import { generate, loadModel, type GeneratedImage, type Progress } from '../lib/index.js';
import { buildConditioning } from '../lib/prompt.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { meanAbsDiff } from './fixtures/draw.js';

const dir = t.testdir();
const checkpoint = await writeTinyCheckpoint(dir);
const model = await loadModel(checkpoint, { backend: 'cpu', threads: 2 });
t.teardown(() => model.close());

const quick = { prompt: 'a lighthouse at dusk', width: 64, height: 64, steps: 4, seed: 11 } as const;

/** Every progress event of one textToImage call, and its images. */
async function run(options: object): Promise<{ events: Progress[]; images: GeneratedImage[] }> {
  const events: Progress[] = [];
  const images = await model.textToImage({ ...quick, ...options, onProgress: (p) => events.push(p) });
  return { events, images };
}

function previewSteps(events: Progress[]): Array<[number, number]> {
  return events.filter((e) => e.preview).map((e) => [e.image, e.step]);
}

async function rgbOf(png: Buffer): Promise<Buffer> {
  return sharp(png).raw().toBuffer();
}

t.test('previews: true puts a PNG of a pixel per latent cell on every step', async (t) => {
  const { events } = await run({ width: 96, height: 64, previews: true });
  t.same(events.map((e) => e.step), [1, 2, 3, 4]);
  for (const { step, preview } of events) {
    t.ok(preview, `step ${step} has a preview`);
    const { png, width, height } = preview!;
    t.same([width, height, preview!.step], [12, 8, step]);
    const metadata = await sharp(png).metadata();
    t.same([metadata.format, metadata.width, metadata.height, metadata.channels, metadata.depth],
      ['png', 12, 8, 3, 'uchar']);
    t.equal((await rgbOf(png)).length, 12 * 8 * 3);
  }
});

t.test('previewEvery n previews every n-th step and the last, for every image', async (t) => {
  const { events } = await run({ steps: 7, count: 2, previewEvery: 3 });
  t.equal(events.length, 14, 'every step still reports progress');
  t.same(previewSteps(events), [[0, 3], [0, 6], [0, 7], [1, 3], [1, 6], [1, 7]]);
  t.same(previewSteps((await run({ previewEvery: 4 })).events), [[0, 4]], 'a multiple of n that is the last step');
  t.same(previewSteps((await run({ previewEvery: 1000 })).events), [[0, 4]], 'n above steps: the last step only');
  t.same(previewSteps((await run({ previews: true, previewEvery: 2 })).events), [[0, 2], [0, 4]],
    'previews: true with previewEvery takes its interval');
});

t.test('no progress event has a preview without the option or with previews: false', async (t) => {
  t.same(previewSteps((await run({})).events), []);
  t.same(previewSteps((await run({ previews: false })).events), []);
  t.notOk(Object.hasOwn((await run({})).events[0]!, 'preview'), 'not even an undefined key');
});

t.test('images are byte-identical with and without previews', async (t) => {
  for (const sampler of ['euler_a', 'heun', 'dpm++2m']) {
    const [plain] = (await run({ sampler, count: 2 })).images;
    const [previewed] = (await run({ sampler, count: 2, previews: true })).images;
    t.ok(previewed!.png.equals(plain!.png), sampler);
  }
});

t.test('previews follow the run: same seed same previews, converging on the last one', async (t) => {
  const first = (await run({ sampler: 'euler', seed: 3, previews: true })).events.map((e) => e.preview!.png);
  const again = (await run({ sampler: 'euler', seed: 3, previews: true })).events.map((e) => e.preview!.png);
  const other = (await run({ sampler: 'euler', seed: 4, previews: true })).events.map((e) => e.preview!.png);
  t.ok(first.every((png, i) => png.equals(again[i]!)), 'the same seed gives the same previews');
  t.notOk(first.at(-1)!.equals(other.at(-1)!), 'another seed gives another last preview');
  const last = await rgbOf(first.at(-1)!);
  const distances = await Promise.all(first.map(async (png) => meanAbsDiff(await rgbOf(png), last)));
  t.ok(distances[0]! > 0, `the first preview differs from the last (${distances[0]})`);
  t.ok(distances.every((d, i) => i === 0 || d <= distances[i - 1]!), `distances to the last never grow: ${distances}`);
});

t.test('image i of a call has the previews of a call at seed + i', async (t) => {
  const pair = (await run({ count: 2, previewEvery: 2 })).events.filter((e) => e.image === 1);
  const single = (await run({ seed: quick.seed + 1, previewEvery: 2 })).events;
  const previews = (events: Progress[]) => events.map((e) => [e.step, e.preview?.png.toString('base64')]);
  t.same(previews(pair), previews(single));
  t.equal(pair.filter((e) => e.preview).length, 2);
});

t.test('inpainting: a preview shows the kept latent cells unchanged at every step', async (t) => {
  const size = 64;
  const input = await sharp(Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => (i * 29) % 256)),
    { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
  const leftHalf = await sharp(Buffer.from(Array.from({ length: size * size }, (_, i) => (i % size < size / 2 ? 255 : 0))),
    { raw: { width: size, height: size, channels: 1 } }).png().toBuffer();
  const events: Progress[] = [];
  await model.inpaint({ ...quick, image: input, mask: leftHalf, maskBlur: 0, previews: true, onProgress: (p) => events.push(p) });
  const previews = await Promise.all(events.map((e) => rgbOf(e.preview!.png)));
  // 8×8 cells: 0–3 repainted, 4 is repainted too (the engine dilates the latent mask), 6–7 surely kept.
  const columns = (rgb: Buffer, from: number, to: number) =>
    Buffer.concat(Array.from({ length: 8 }, (_, y) => rgb.subarray((y * 8 + from) * 3, (y * 8 + to) * 3)));
  t.ok(previews.every((p) => columns(p, 6, 8).equals(columns(previews[0]!, 6, 8))), 'kept cells are the same at every step');
  t.notOk(columns(previews[0]!, 0, 4).equals(columns(previews.at(-1)!, 0, 4)), 'repainted cells change');
});

t.test('generate() and image-to-image take the options too', async (t) => {
  const events: Progress[] = [];
  const input = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#4080c0' } }).png().toBuffer();
  await generate({ ...quick, model, image: input, strength: 1, previewEvery: 3, onProgress: (p) => events.push(p) });
  t.same(previewSteps(events), [[0, 3], [0, 4]]);
});

t.test('rejects bad preview options, naming the option, what it takes and what it got', async (t) => {
  const call = (options: object) => model.textToImage({ ...quick, ...options });
  await t.rejects(call({ previews: 'yes' }),
    { name: 'TypeError', message: 'Expected boolean for previews but received "yes" of type string' });
  await t.rejects(call({ previewEvery: 0 }),
    { name: 'RangeError', message: 'Expected integer between 1 and 1000 for previewEvery but received 0 of type number' });
  await t.rejects(call({ previewEvery: 1001 }),
    { name: 'RangeError', message: 'Expected integer between 1 and 1000 for previewEvery but received 1001 of type number' });
  await t.rejects(call({ previewEvery: 2.5 }),
    { name: 'TypeError', message: 'Expected integer between 1 and 1000 for previewEvery but received 2.5 of type number' });
  await t.rejects(call({ previewEvery: '2' }),
    { name: 'TypeError', message: 'Expected integer between 1 and 1000 for previewEvery but received "2" of type string' });
  await t.rejects(call({ previews: false, previewEvery: 2 }), {
    name: 'RangeError',
    message: 'previewEvery is 2 but previews is false; give previewEvery alone to get previews, or neither to get none',
  });
  await t.rejects(generate({ ...quick, model, previewEvery: -1 }),
    { name: 'RangeError', message: /for previewEvery but received -1/ });
});

t.test('the engine checks previewEvery again', async (t) => {
  const native = await loadAddon().loadModel(checkpoint, { backend: 'cpu', threads: 2, prediction: 'auto' });
  t.teardown(() => native.close());
  const request = {
    mode: 'txt2img', width: 64, height: 64, steps: 2, cfgScale: 7, sampler: 'euler', scheduler: 'discrete',
    seed: 1, rng: 'gpu', clipSkip: 0, count: 1, strength: 1,
    prompt: buildConditioning('a cat', native.info.padToken), negative: buildConditioning('', native.info.padToken),
  };
  await t.rejects(native.generate({ ...request, previewEvery: 1001 }, () => undefined),
    { code: 'ERR_INVALID_ARGUMENT', message: /previewEvery must be between 0 \(off\) and 1000, got 1001/ });
  const seen: boolean[] = [];
  await native.generate({ ...request, previewEvery: 1 }, (p) => seen.push(p.preview?.data.length === 8 * 8 * 3));
  t.same(seen, [true, true]);
});
