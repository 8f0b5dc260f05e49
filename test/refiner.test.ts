// The refiner hand-off (AUTOMATIC1111's refiner): an SDXL base samples the first part of the steps,
// an SDXL refiner the rest, on one latent. Tiny random checkpoints of both layouts.
import sharp from 'sharp';
import t from 'tap';

import { generate, loadModel, type GeneratedImage, type Model } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';
import { solidPng } from './server-helpers.js';

const dir = t.testdir();
const base = await loadModel(await writeTinyCheckpoint(dir, { family: 'sdxl' }), cpu);
const refiner = await loadModel(await writeTinyCheckpoint(dir, { family: 'sdxl-refiner' }), cpu);
t.teardown(async () => {
  await base.close();
  await refiner.close();
});

const quick = { prompt: 'a lighthouse', negativePrompt: 'fog', width: 64, height: 64, steps: 4, seed: 5 } as const;

async function pixels(results: Promise<GeneratedImage[]>): Promise<Buffer> {
  const [result] = await results;
  return sharp((result as GeneratedImage).png).raw().toBuffer();
}

function handOff(switchAt: number, model: Model = refiner, options: Record<string, unknown> = {}): Promise<GeneratedImage[]> {
  return base.textToImage({ ...quick, ...options, refiner: { model, switchAt } });
}

t.test('the hand-off runs both models on one latent, deterministically', async (t) => {
  const baseOnly = await pixels(base.textToImage(quick));
  const refinerOnly = await pixels(refiner.textToImage(quick));
  const both = await pixels(handOff(0.5));
  t.ok(both.equals(await pixels(handOff(0.5))), 'same seed, same image');
  t.notOk(both.equals(baseOnly), 'the refiner changed the base image');
  t.notOk(both.equals(refinerOnly), 'the base made the start');
  t.notOk(both.equals(await pixels(handOff(0.25))), 'switchAt moves the hand-off');
});

t.test('the base runs round(steps x switchAt) steps; a hand-off after the last step leaves the base image', async (t) => {
  const baseOnly = await pixels(base.textToImage(quick));
  t.ok(baseOnly.equals(await pixels(handOff(1))), 'switchAt 1');
  t.ok(baseOnly.equals(await pixels(handOff(0.9))), '4 steps x 0.9 rounds to 4');
  t.notOk(baseOnly.equals(await pixels(handOff(0.8))), '4 steps x 0.8 rounds to 3: the refiner runs the last');
});

t.test('the aesthetic scores reach the refiner through the base model\'s call', async (t) => {
  const both = await pixels(handOff(0.5));
  t.ok(both.equals(await pixels(handOff(0.5, refiner, { aestheticScore: 6, negativeAestheticScore: 2.5 }))), 'defaults 6 and 2.5');
  t.notOk(both.equals(await pixels(handOff(0.5, refiner, { aestheticScore: 9 }))));
  await t.rejects(base.textToImage({ ...quick, aestheticScore: 9 }), /aestheticScore applies to sdxl-refiner models only/);
});

t.test('the refiner takes over image to image and inpainting too, and the parameters text names it', async (t) => {
  const image = await solidPng(64, 64, 100);
  const options = { ...quick, image, strength: 0.6 };
  const plain = await pixels(base.imageToImage(options));
  const [refined] = await base.imageToImage({ ...options, refiner: { model: refiner, switchAt: 0.5 } });
  t.notOk(plain.equals(await sharp((refined as GeneratedImage).png).raw().toBuffer()));
  t.match((refined as GeneratedImage).parameters, /, Refiner: tiny-sdxl-refiner-f16-seed1, Refiner switch at: 0\.5/);
  const inpaint = { ...options, mask: await solidPng(64, 64, 255), maskBlur: 0 };
  const painted = await pixels(base.inpaint(inpaint));
  t.notOk(painted.equals(await pixels(base.inpaint({ ...inpaint, refiner: { model: refiner, switchAt: 0.5 } }))), 'inpainting');
});

t.test('second-order and multistep samplers hand off between steps, keeping their history', async (t) => {
  for (const sampler of ['heun', 'dpm++2m'] as const) {
    const baseOnly = await pixels(base.textToImage({ ...quick, sampler }));
    const both = await pixels(handOff(0.5, refiner, { sampler }));
    t.notOk(both.equals(baseOnly), sampler);
    t.ok(both.equals(await pixels(handOff(0.5, refiner, { sampler }))), `${sampler}: deterministic`);
  }
});

t.test('the progress counts every step once across the hand-off', async (t) => {
  const steps: number[] = [];
  await base.textToImage({ ...quick, refiner: { model: refiner, switchAt: 0.5 }, onProgress: (p) => steps.push(p.step) });
  t.same(steps, [1, 2, 3, 4]);
});

t.test('rejects a bad refiner option, naming it', async (t) => {
  await t.rejects(handOff(0), new RangeError('Expected number above 0 and at most 1 for refiner.switchAt but received 0 of type number'));
  await t.rejects(handOff(1.5), /refiner\.switchAt/);
  await t.rejects(base.textToImage({ ...quick, refiner: { model: refiner, switchAt: '0.5' } as never }), TypeError);
  await t.rejects(base.textToImage({ ...quick, refiner: { switchAt: 0.5 } as never }), /refiner\.model/);
  await t.rejects(base.textToImage({ ...quick, refiner: { model: 'refiner.safetensors' } as never }), TypeError);
  await t.rejects(handOff(0.5, base), /other than the one generating for refiner\.model/);
  await t.rejects(base.textToImage({ ...quick, refiner: { model: refiner, strength: 1 } as never }), /refiner/);
  await t.rejects(handOff(0.5, refiner, { hires: { scale: 2 } }), new TypeError('refiner cannot be combined with hires; give one of them'));
});

t.test('rejects a refiner of another family or one that was closed', async (t) => {
  const sd1 = await loadModel(await writeTinyCheckpoint(t.testdir(), { family: 'sd1' }), cpu);
  await t.rejects(handOff(0.5, sd1), /refiner\.model must be a loaded SDXL or SDXL refiner Model .* but received a SD 1\.x model/);
  // An SD 1.x base cannot hand its latent to an SDXL refiner either: another VAE, another latent space.
  await t.rejects(sd1.textToImage({ ...quick, refiner: { model: refiner, switchAt: 0.5 } }),
    /refiner takes over from SDXL models only .* this is a SD 1\.x model/);
  await sd1.close();
  const closing = await loadModel(await writeTinyCheckpoint(t.testdir(), { family: 'sdxl-refiner', seed: 2 }), cpu);
  await closing.close();
  await t.rejects(handOff(0.5, closing), { name: 'SdnodeError', code: 'ERR_MODEL_CLOSED', message: /refiner\.model was closed/ });
});

t.test('generate() takes the refiner as a checkpoint path, loaded as the model is', async (t) => {
  const [image] = await generate({ ...quick, ...cpu, model: base.path, refiner: { model: refiner.path, switchAt: 0.5 } });
  t.ok((await sharp((image as GeneratedImage).png).raw().toBuffer()).equals(await pixels(handOff(0.5))));
  await t.rejects(generate({ ...quick, model: base, refiner: { model: '', switchAt: 0.5 } }), /refiner\.model/);
});
