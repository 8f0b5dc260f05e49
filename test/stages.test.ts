// The stage API (encodePrompt, emptyLatent, encodeImage, sample, decode) on a tiny random checkpoint:
// what a program that composes the stages sees, and that the composition is textToImage's image.
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { loadModel, type GeneratedImage } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { writeTinySd3 } from './fixtures/sd3.js';

const dir = t.testdir();
const model = await loadModel(await writeTinyCheckpoint(dir), cpu);
t.teardown(() => model.close());

async function rgbOf(image: GeneratedImage): Promise<Buffer> {
  return sharp(image.png).raw().toBuffer();
}

t.test('emptyLatent, sample and decode give textToImage\'s pixels for the same settings', async (t) => {
  const settings = { seed: 42, steps: 2, cfgScale: 7, sampler: 'euler_a' } as const;
  const [expected] = await model.textToImage({ ...settings, prompt: 'a red fox', negativePrompt: 'blurry', width: 64, height: 64 });
  const [positive, negative] = await Promise.all([model.encodePrompt('a red fox'), model.encodePrompt('blurry')]);
  t.same([positive.tokens, positive.hidden.length], [77, 77 * model.info.contextDim]);
  const latent = await model.sample({ ...settings, latent: model.emptyLatent({ width: 64, height: 64 }), positive, negative });
  t.same([latent.width, latent.height, latent.channels, latent.batch], [64, 64, 4, 1]);
  const [image, ...rest] = await model.decode(latent);
  t.same(rest, []);
  t.same([image!.width, image!.height], [64, 64]);
  t.ok(Buffer.from(image!.data).equals(await rgbOf(expected!)), 'same pixels as textToImage');
});

t.test('encodeImage with the seed, then sample from the strength\'s step, gives imageToImage\'s pixels', async (t) => {
  const photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#a05030' } }).png().toBuffer();
  const settings = { seed: 9, steps: 4, cfgScale: 1, sampler: 'euler' } as const;
  const strength = 0.5;
  const [expected] = await model.imageToImage({ ...settings, prompt: 'a brick wall', image: photo, strength, width: 64, height: 64 });
  const latent = await model.encodeImage(photo, { seed: settings.seed });
  // AUTOMATIC1111's strength runs int(steps × strength) + 1 steps from the end of the schedule.
  const startStep = settings.steps - Math.floor(settings.steps * strength) - 1;
  const sampled = await model.sample({ ...settings, latent, positive: await model.encodePrompt('a brick wall'), startStep });
  const [image] = await model.decode(sampled);
  t.ok(Buffer.from(image!.data).equals(await rgbOf(expected!)), 'same pixels as imageToImage');
});

t.test('a run split at a step by startStep / endStep equals the whole run', async (t) => {
  const positive = await model.encodePrompt('a lighthouse');
  const common = { positive, cfgScale: 1, steps: 4, seed: 7, sampler: 'euler', rng: 'cpu' } as const;
  const empty = model.emptyLatent({ width: 64, height: 64 });
  const whole = await model.sample({ ...common, latent: empty });
  const half = await model.sample({ ...common, latent: empty, endStep: 2, returnWithLeftoverNoise: true });
  const rest = await model.sample({ ...common, latent: half, startStep: 2, addNoise: false });
  t.same(Array.from(rest.data), Array.from(whole.data));
  t.notSame(Array.from(half.data), Array.from(whole.data), 'the first half alone is not the end');
});

t.test('a list of conditionings is combined: the mean of their predictions', async (t) => {
  const [fox, owl, blur] = await Promise.all([model.encodePrompt('a fox'), model.encodePrompt('an owl'), model.encodePrompt('blurry')]);
  const latent = model.emptyLatent({ width: 64, height: 64 });
  const options = { latent, negative: blur, steps: 2, seed: 5, sampler: 'euler' } as const;
  const [alone, twice, both] = [
    await model.sample({ ...options, positive: fox }), await model.sample({ ...options, positive: [fox, fox] }),
    await model.sample({ ...options, positive: [fox, owl] }),
  ];
  t.same(Array.from(twice.data), Array.from(alone.data), 'a conditioning combined with itself is itself');
  t.notSame(Array.from(both.data), Array.from(alone.data), 'another one changes the result');
  t.throws(() => model.sample({ ...options, positive: [] }), /for positive but received array of length 0/);
});

t.test('a batch latent samples every image; the seed decides the noise', async (t) => {
  const positive = await model.encodePrompt('a boat');
  const latent = model.emptyLatent({ width: 64, height: 64, batch: 2 });
  const options = { positive, cfgScale: 1, steps: 1, seed: 3, sampler: 'euler' } as const;
  const [a, b, c] = await Promise.all([
    model.sample({ ...options, latent }), model.sample({ ...options, latent }), model.sample({ ...options, latent, seed: 4 }),
  ]);
  t.equal(a!.batch, 2);
  t.same(Array.from(a!.data), Array.from(b!.data), 'same seed, same latent');
  t.notSame(Array.from(a!.data), Array.from(c!.data), 'another seed, another latent');
  const images = await model.decode(a!);
  t.equal(images.length, 2);
  t.notOk(Buffer.from(images[0]!.data).equals(Buffer.from(images[1]!.data)), 'the two images differ');
});

t.test('encodeImage then sample with denoise changes an image; a noise mask of zeros keeps its latent', async (t) => {
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#3366cc' } }).png().toBuffer();
  const latent = await model.encodeImage(png);
  t.same([latent.width, latent.height, latent.batch], [64, 64, 1]);
  const again = await model.encodeImage(png);
  t.same(Array.from(again.data), Array.from(latent.data), 'the posterior mean is deterministic');
  const positive = await model.encodePrompt('a blue wall');
  const options = { positive, cfgScale: 1, steps: 2, seed: 1, denoise: 0.5, latent } as const;
  const changed = await model.sample(options);
  t.notSame(Array.from(changed.data), Array.from(latent.data));
  const kept = await model.sample({ ...options, noiseMask: new Float32Array(64) });
  const drift = Math.max(...kept.data.map((v, i) => Math.abs(v - latent.data[i]!)));
  t.ok(drift < 1e-5, `mask 0 everywhere keeps every cell (largest change ${drift})`);
});

t.test('bad stage input is refused with the field named', async (t) => {
  const positive = await model.encodePrompt('x');
  const latent = model.emptyLatent({ width: 64, height: 64 });
  t.throws(() => model.emptyLatent({ width: 60, height: 64 }), /Expected multiple of 8 from 8 to 4096 for width but received 60/);
  t.throws(() => model.sample({ latent, positive, steps: 0, cfgScale: 1 }), /for steps but received 0/);
  t.throws(() => model.sample({ latent, positive }), /negative is needed unless cfgScale is 1/);
  t.throws(() => model.sample({ latent, positive, cfgScale: 1, denoise: 0 }), /for denoise but received 0/);
  t.throws(() => model.sample({ latent: { ...latent, channels: 16 }, positive, cfgScale: 1 }), /latent has 16 channels/);
  t.throws(() => model.sample({ latent, positive: { ...positive, contextDim: 1024 }, cfgScale: 1 }), /positive was encoded by a model of text width 1024/);
  t.throws(() => model.sample({ latent, positive, cfgScale: 1, sampler: 'nope' }), /for sampler but received "nope"/);
  t.throws(() => model.decode({ ...latent, data: new Float32Array(3) }), /latent.data must hold/);
});

t.test('an aborted sample rejects with ERR_ABORTED and the model goes on working', async (t) => {
  const positive = await model.encodePrompt('x');
  const controller = new AbortController();
  const aborted = model.sample({
    latent: model.emptyLatent({ width: 64, height: 64 }), positive, cfgScale: 1, steps: 50,
    signal: controller.signal, onProgress: (p) => { if (p.step === 1) controller.abort(); },
  });
  await t.rejects(aborted, { name: 'AbortError', code: 'ERR_ABORTED' });
  const [image] = await model.decode(model.emptyLatent({ width: 64, height: 64 }));
  t.equal(image!.data.length, 64 * 64 * 3);
  const failing = model.sample({
    latent: model.emptyLatent({ width: 64, height: 64 }), positive, cfgScale: 1, steps: 50,
    onProgress: () => { throw new Error('listener broke'); },
  });
  await t.rejects(failing, { message: 'listener broke' }, 'a progress callback that throws stops the call with its error');
});

t.test('FLUX.1 dev: the stages give textToImage\'s pixels, guidance included; a split run equals the whole', async (t) => {
  const { t5Tokenizer, ...files } = await writeTinyFlux(path.join(dir, 'flux-dev'), { variant: 'flux-dev' });
  const flux = await loadModel(files, { ...cpu, t5Tokenizer });
  t.teardown(() => flux.close());
  const settings = { seed: 7, steps: 2, cfgScale: 1, sampler: 'euler', guidance: 5 } as const;
  const [expected] = await flux.textToImage({ ...settings, prompt: 'a red fox', width: 64, height: 64 });
  const positive = await flux.encodePrompt('a red fox');
  const empty = flux.emptyLatent({ width: 64, height: 64 });
  t.equal(empty.channels, 16);
  const latent = await flux.sample({ ...settings, latent: empty, positive });
  const [image] = await flux.decode(latent);
  t.ok(Buffer.from(image!.data).equals(await rgbOf(expected!)), 'same pixels as textToImage');
  const other = await flux.decode(await flux.sample({ ...settings, guidance: 1, latent: empty, positive }));
  t.notOk(Buffer.from(other[0]!.data).equals(Buffer.from(image!.data)), 'guidance reaches the transformer');

  const common = { ...settings, steps: 4, latent: empty, positive, rng: 'cpu' } as const;
  const whole = await flux.sample(common);
  const half = await flux.sample({ ...common, endStep: 2, returnWithLeftoverNoise: true });
  const rest = await flux.sample({ ...common, latent: half, startStep: 2, addNoise: false });
  const drift = Math.max(...rest.data.map((v, i) => Math.abs(v - whole.data[i]!)));
  t.ok(drift < 1e-4, `the second half continues the first (largest difference ${drift})`);
  t.throws(() => flux.emptyLatent({ width: 72, height: 64 }), /Expected multiple of 16 from 16 to 4096 for width but received 72/);
});

t.test('SD3: encodePrompt, sample with cfg and decode run; the encoded image round-trips to its size', async (t) => {
  const files = await writeTinySd3(path.join(dir, 'sd3'));
  const { t5Tokenizer, ...components } = files;
  const sd3 = await loadModel(components, { ...cpu, t5Tokenizer });
  t.teardown(() => sd3.close());
  const settings = { seed: 3, steps: 2, cfgScale: 4, sampler: 'euler' } as const;
  const [expected] = await sd3.textToImage({ ...settings, prompt: 'a boat', negativePrompt: 'fog', width: 64, height: 64 });
  const [positive, negative] = [await sd3.encodePrompt('a boat'), await sd3.encodePrompt('fog')];
  const latent = await sd3.sample({ ...settings, latent: sd3.emptyLatent({ width: 64, height: 64 }), positive, negative });
  const [image] = await sd3.decode(latent);
  t.ok(Buffer.from(image!.data).equals(await rgbOf(expected!)), 'same pixels as textToImage');
  const encoded = await sd3.encodeImage(image!);
  t.same([encoded.width, encoded.height, encoded.channels], [64, 64, 16]);
});
