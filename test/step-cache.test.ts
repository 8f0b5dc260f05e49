// Step caching through the public library on tiny random models: ucache on a UNet, easycache on
// FLUX.1. A threshold of 0 never skips (the image is the uncached one, pixel for pixel); a large
// one skips passes, so the image moves, the same way each time; every step is still reported; and
// a mode that does not suit the model, or options out of range, are errors naming the field.
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { loadModel, type GeneratedImage, type Model } from '../lib/index.js';
import { main } from '../server/cli.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu, samePixels } from './fixtures/draw.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { writeTinyZImage } from './fixtures/z-image.js';

const dir = t.testdir();
const unet = await loadModel(await writeTinyCheckpoint(path.join(dir, 'unet')), cpu);
const { t5Tokenizer, ...fluxFiles } = await writeTinyFlux(path.join(dir, 'flux'));
const flux = await loadModel(fluxFiles, { ...cpu, t5Tokenizer });
const zImage = await loadModel(await writeTinyZImage(path.join(dir, 'z-image')), cpu);
t.teardown(async () => {
  await unet.close();
  await flux.close();
  await zImage.close();
});

async function draw(model: Model, options: Record<string, unknown> = {}): Promise<GeneratedImage> {
  const [image] = await model.textToImage({ prompt: 'a photo of a cat', width: 64, height: 64, steps: 10, seed: 42, sampler: 'euler', ...options });
  return image!;
}

for (const [name, model, mode] of [
  ['a UNet with ucache', () => unet, 'ucache'], ['FLUX.1 with easycache', () => flux, 'easycache'], ['Z-Image with easycache', () => zImage, 'easycache'],
] as const) {
  t.test(`${name}: threshold 0 is the uncached image; a large threshold skips passes, the same way each time`, async (t) => {
    const plain = await draw(model());
    t.ok(await samePixels(plain, await draw(model(), { cache: { mode, threshold: 0 } })), 'nothing foreseen at threshold 0');
    t.ok(await samePixels(plain, await draw(model(), { cache: { mode: 'none' } })), "mode 'none' is off");
    const steps: number[] = [];
    const cached = await draw(model(), { cache: { mode, threshold: 1000, start: 0, end: 1 }, onProgress: (p: { step: number }) => steps.push(p.step) });
    t.notOk(await samePixels(plain, cached), 'skipped passes move the image');
    t.same(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every step is reported, skipped or not');
    t.ok(await samePixels(cached, await draw(model(), { cache: { mode, threshold: 1000, start: 0, end: 1 } })), 'deterministic');
    const late = await draw(model(), { cache: { mode, threshold: 1000, start: 0.6, end: 1 } });
    t.notOk(await samePixels(cached, late), 'start moves where skipping may begin');
  });
}

t.test('a mode that does not suit the model and options out of range are errors naming the field', async (t) => {
  await t.rejects(draw(unet, { cache: { mode: 'easycache' } }), { name: 'RangeError', message: /cache\.mode easycache is for flow transformers.*takes ucache/ });
  await t.rejects(draw(flux, { cache: { mode: 'ucache' } }), { name: 'RangeError', message: /cache\.mode ucache is for UNet models.*takes easycache/ });
  await t.rejects(draw(unet, { cache: { mode: 'teacache' } }), { name: 'RangeError', message: /Expected one of none, easycache, ucache for cache\.mode but received "teacache"/ });
  await t.rejects(draw(unet, { cache: { threshold: 1 } }), { name: 'TypeError', message: /cache\.mode/ });
  await t.rejects(draw(unet, { cache: { mode: 'ucache', skip: 2 } }), { name: 'TypeError', message: /Unknown option "skip" for cache; known options: mode, threshold/ });
  await t.rejects(draw(unet, { cache: { mode: 'ucache', start: 0.9, end: 0.5 } }), { name: 'RangeError', message: /cache\.start \(0\.9\) must be before cache\.end \(0\.5\)/ });
  await t.rejects(draw(unet, { cache: { mode: 'ucache', threshold: -1 } }), { name: 'RangeError', message: /cache\.threshold/ });
  await t.rejects(draw(unet, { cache: { mode: 'ucache', decay: 2 } }), { name: 'RangeError', message: /cache\.decay/ });
  await t.rejects(draw(unet, { cache: 'ucache' }), { name: 'TypeError', message: /cache/ });
  t.ok((await draw(unet)).png.length > 0, 'the model still draws');
});

t.test('sdnode generate takes --cache-mode and --cache-option as the reference spells them', async (t) => {
  const run = async (args: string[]): Promise<{ code: number; output: string }> => {
    const logs = t.capture(console, 'log');
    const errors = t.capture(console, 'error');
    const code = await main(args);
    return { code, output: [...logs(), ...errors()].map((call) => call.args.join(' ')).join('\n') };
  };
  const model = unet.path;
  const base = ['generate', '-m', model, '-p', 'a cat', '-W', '64', '-H', '64', '--steps', '10', '-s', '42', '--sampler', 'euler', '--backend', 'cpu', '--threads', '1'];
  const out = (name: string) => path.join(dir, `${name}.png`);
  t.equal((await run([...base, '-o', out('plain')])).code, 0);
  t.equal((await run([...base, '--cache-mode', 'ucache', '--cache-option', 'threshold=0', '-o', out('zero')])).code, 0);
  t.equal((await run([...base, '--cache-mode', 'ucache', '--cache-option', 'threshold=1000,start=0,end=1', '-o', out('skipping')])).code, 0);
  const pixels = (name: string) => sharp(out(name)).raw().toBuffer();
  t.ok((await pixels('plain')).equals(await pixels('zero')), 'threshold=0 skips nothing');
  t.notOk((await pixels('plain')).equals(await pixels('skipping')), 'a large threshold skips passes');
  const wrong = await run([...base, '--cache-mode', 'easycache', '-o', out('wrong')]);
  t.equal(wrong.code, 2);
  t.match(wrong.output, /--cache-mode easycache is for flow transformers/);
  const unknown = await run([...base, '--cache-mode', 'ucache', '--cache-option', 'Fn=8', '-o', out('unknown')]);
  t.equal(unknown.code, 2);
  t.match(unknown.output, /Unknown --cache-option "Fn"; known: threshold, start, end, decay, relative, reset/);
  const order = await run([...base, '--cache-mode', 'ucache', '--cache-option', 'start=0.9,end=0.5', '-o', out('order')]);
  t.match(order.output, /--cache-option start \(0\.9\) must be before --cache-option end \(0\.5\)/);
});
