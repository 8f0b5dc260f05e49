// Variation seeds (subseed, subseedStrength) and seed resize, as AUTOMATIC1111 makes the initial
// noise: the slerp of the seed's and the subseed's noise, drawn at another size when asked.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, type GeneratedImage, type Model } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { meanAbsDiff } from './fixtures/draw.js';

const dir = t.testdir();
const model: Model = await loadModel(await writeTinyCheckpoint(dir, { dtype: 'f16' }), { backend: 'cpu', threads: 2 });
t.teardown(() => model.close());

const quick = { prompt: 'a castle', width: 64, height: 64, steps: 2, cfgScale: 1, seed: 42 } as const;

async function rgb(images: Promise<GeneratedImage[]>): Promise<Buffer> {
  return sharp((await images)[0]!.png).raw().toBuffer();
}

t.test('strength 0 gives the seed\'s own image, byte for byte, whatever the subseed', async (t) => {
  for (const rng of ['gpu', 'cpu'] as const) {
    const [plain] = await model.textToImage({ ...quick, rng });
    const [varied] = await model.textToImage({ ...quick, rng, subseed: 7, subseedStrength: 0 });
    t.ok(varied!.png.equals(plain!.png), `rng ${rng}`);
    t.same([varied!.seed, varied!.subseed, varied!.subseedStrength], [42, 7, 0]);
    t.notMatch(varied!.parameters, /Variation seed/, 'not written at strength 0, as A1111');
  }
});

t.test('strength 1 gives the subseed\'s noise: its image with a non-ancestral sampler', async (t) => {
  for (const rng of ['gpu', 'cpu'] as const) {
    const subseeds = await rgb(model.textToImage({ ...quick, rng, sampler: 'euler', seed: 7 }));
    t.ok((await rgb(model.textToImage({ ...quick, rng, sampler: 'euler', subseed: 7, subseedStrength: 1 }))).equals(subseeds),
      `rng ${rng}`);
  }
  // An ancestral sampler adds noise from the seed's generator after every step but the last, so
  // with one step only the initial noise counts.
  const oneStep = { ...quick, steps: 1 };
  t.ok((await rgb(model.textToImage({ ...oneStep, subseed: 7, subseedStrength: 1 })))
    .equals(await rgb(model.textToImage({ ...oneStep, seed: 7 }))), 'euler_a, one step');
});

t.test('a strength between gives an image between the two, unlike either', async (t) => {
  const options = { ...quick, sampler: 'euler' } as const;
  const seeds = await rgb(model.textToImage(options));
  const subseeds = await rgb(model.textToImage({ ...options, seed: 7 }));
  const [middle] = await model.textToImage({ ...options, subseed: 7, subseedStrength: 0.5 });
  const between = await sharp(middle!.png).raw().toBuffer();
  const apart = meanAbsDiff(seeds, subseeds);
  const fromSeed = meanAbsDiff(between, seeds);
  const fromSubseed = meanAbsDiff(between, subseeds);
  // Measured: 45.4 and 37.9 from the two, which are 71.3 apart.
  t.ok(fromSeed > 5 && fromSubseed > 5, `differs from both (${fromSeed.toFixed(1)}, ${fromSubseed.toFixed(1)})`);
  t.ok(fromSeed < apart && fromSubseed < apart, `closer to each than they are to each other (${apart.toFixed(1)})`);
  t.match(middle!.parameters, /Seed: 42, Size: 64x64, Model: [^,]+, Variation seed: 7, Variation seed strength: 0\.5$/);
});

t.test('image i uses seed + i and subseed + i', async (t) => {
  const options = { ...quick, subseed: 7, subseedStrength: 0.3 };
  const images = await model.textToImage({ ...options, count: 2 });
  t.same(images.map((image) => [image.seed, image.subseed, image.subseedStrength]), [[42, 7, 0.3], [43, 8, 0.3]]);
  const [second] = await model.textToImage({ ...options, seed: 43, subseed: 8 });
  t.ok(images[1]!.png.equals(second!.png));
  t.match(images[1]!.parameters, /Seed: 43, .*Variation seed: 8, Variation seed strength: 0\.3$/);
});

t.test('seed resize draws the noise at another size and centres it', async (t) => {
  const plain = await rgb(model.textToImage(quick));
  t.ok((await rgb(model.textToImage({ ...quick, seedResizeFromWidth: 64, seedResizeFromHeight: 64 }))).equals(plain),
    'resizing from the image\'s own size changes nothing');
  // The 64x64 seed's noise is the middle of a 64x128 image's latent: that image's middle rows
  // come out nearer the 64x64 image's than without the resize.
  const tall = { ...quick, height: 128 };
  const [resized] = await model.textToImage({ ...tall, seedResizeFromWidth: 64, seedResizeFromHeight: 64 });
  const middleRows = (pixels: Buffer) => pixels.subarray(32 * 64 * 3, 96 * 64 * 3);
  const near = meanAbsDiff(middleRows(await sharp(resized!.png).raw().toBuffer()), plain);
  const far = meanAbsDiff(middleRows(await rgb(model.textToImage(tall))), plain);
  t.ok(near < far, `middle rows ${near.toFixed(1)} from the 64x64 image with the resize, ${far.toFixed(1)} without`);
  t.match(resized!.parameters, /Size: 64x128, Model: [^,]+, Seed resize from: 64x64$/);
});

t.test('rejects bad variation options with a message that names the option', async (t) => {
  const cases: Array<[Record<string, unknown>, typeof TypeError | typeof RangeError, string]> = [
    [{ subseed: -1 }, RangeError, 'Expected integer between 0 and 4294967295 for subseed but received -1 of type number'],
    [{ subseed: 1.5 }, TypeError, 'Expected integer between 0 and 4294967295 for subseed but received 1.5 of type number'],
    [{ subseedStrength: 1.5 }, RangeError, 'Expected number between 0 and 1 for subseedStrength but received 1.5 of type number'],
    [{ subseedStrength: '0.5' }, TypeError,
      'Expected number between 0 and 1 for subseedStrength but received "0.5" of type string'],
    [{ seedResizeFromWidth: 512 }, TypeError,
      'seedResizeFromWidth is given but seedResizeFromHeight is not; give both to resize the seed, or neither'],
    [{ seedResizeFromWidth: 500, seedResizeFromHeight: 512 }, RangeError,
      'Expected multiple of 8 between 64 and 2048 for seedResizeFromWidth but received 500 of type number'],
  ];
  for (const [options, kind, message] of cases) {
    await t.rejects(model.textToImage({ ...quick, ...options }), new kind(message), message);
  }
});
