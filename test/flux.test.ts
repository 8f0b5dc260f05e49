// FLUX.1 through the public library, on tiny random components of the real layouts (BFL's
// transformer, CLIP-L, T5, the 16-channel VAE): detection from the files, what each component
// changes, cfg 1 as one pass, FLUX.1 dev's guidance, T5 ids from the tokenizer or given, and
// clear errors for missing, misplaced and damaged components.
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { convertModel, loadModel, loadT5Tokenizer, type GeneratedImage, type Model } from '../lib/index.js';
import { cpu, meanAbsDiff, samePixels } from './fixtures/draw.js';
import { writeTinyFlux, type TinyFluxFiles } from './fixtures/flux.js';
import { assemble, encodeSafetensors, readSafetensorsHeader } from './fixtures/safetensors.js';
import { writeTaesd } from './fixtures/taesd.js';

const dir = t.testdir();
const schnellFiles = await writeTinyFlux(path.join(dir, 'schnell'));
const devFiles = await writeTinyFlux(path.join(dir, 'dev'), { variant: 'flux-dev' });
const components = ({ t5Tokenizer: _, ...files }: TinyFluxFiles) => files;
const schnell = await loadModel(components(schnellFiles), { ...cpu, t5Tokenizer: schnellFiles.t5Tokenizer });
const dev = await loadModel(components(devFiles), cpu);
t.teardown(async () => {
  await schnell.close();
  await dev.close();
});

const quick = { prompt: '', width: 64, height: 64, steps: 2, seed: 42 } as const;

async function draw(model: Model, options: Record<string, unknown> = {}): Promise<GeneratedImage> {
  const [image] = await model.textToImage({ ...quick, ...options });
  return image!;
}

const same = samePixels;

t.test('a FLUX.1 model is told apart by its files: schnell without guidance_in, dev with it', async (t) => {
  t.match(schnell.info, {
    family: 'flux-schnell', prediction: 'flow', defaultWidth: 1024, defaultHeight: 1024, vaeScale: 8,
    textEncoders: ['clipL', 't5xxl'], format: 'safetensors',
  });
  t.same(schnell.info.components, components(schnellFiles), 'each component file, by role');
  t.same(schnell.info.unusedTensors, [], 'every weight of the four files is used');
  t.equal(dev.info.family, 'flux-dev');
  t.equal(schnell.path, schnellFiles.diffusionModel);
});

t.test('defaults follow the family: schnell 4 steps at cfg 1 with euler on the flux schedule', async (t) => {
  const [image] = await schnell.textToImage({ width: 64, height: 64, seed: 1 });
  t.match(image!.parameters, /Steps: 4, Sampler: Euler, Schedule type: Flux, CFG scale: 1,/);
  t.equal(image!.width, 64);
  const [devImage] = await dev.textToImage({ width: 64, height: 64, steps: 1, seed: 1 });
  t.match(devImage!.parameters, /CFG scale: 1, Distilled CFG Scale: 3\.5,/, 'FLUX.1 dev records its guidance as Forge does');
});

t.test('the same seed gives the same image; the seed and the prompt change it', async (t) => {
  const first = await draw(schnell);
  t.ok(await same(first, await draw(schnell)), 'deterministic');
  t.notOk(await same(first, await draw(schnell, { seed: 43 })), 'another seed');
  t.notOk(await same(first, await draw(schnell, { prompt: 'a photo of a cat' })), 'the prompt reaches the model');
});

t.test('cfg 1 runs one pass: the negative prompt changes nothing; above 1 it guides', async (t) => {
  const plain = await draw(schnell, { prompt: 'a cat' });
  t.ok(await same(plain, await draw(schnell, { prompt: 'a cat', negativePrompt: 'a dog' })), 'cfg 1 ignores the negative prompt');
  const guided = await draw(schnell, { prompt: 'a cat', negativePrompt: 'a dog', cfgScale: 3 });
  t.notOk(await same(plain, guided));
  t.notOk(await same(guided, await draw(schnell, { prompt: 'a cat', negativePrompt: 'a bird', cfgScale: 3 })), 'the negative prompt counts above cfg 1');
});

t.test('FLUX.1 dev embeds the distilled guidance; schnell has no guidance input', async (t) => {
  const low = await draw(dev, { steps: 1, guidance: 1 });
  t.notOk(await same(low, await draw(dev, { steps: 1, guidance: 6 })), 'dev: guidance changes the image');
  t.ok(await same(await draw(schnell, { guidance: 1 }), await draw(schnell, { guidance: 6 })), 'schnell: no guidance_in, no change');
});

t.test('T5 ids come from the tokenizer, or from promptTokens.t5xxl; CLIP ids from promptTokens.clipL', async (t) => {
  const tokenizer = await loadT5Tokenizer(schnellFiles.t5Tokenizer);
  const prompt = 'a photo of a cat';
  const ids = tokenizer.encode(prompt);
  t.ok(ids.length > 0);
  const viaTokenizer = await draw(schnell, { prompt });
  t.ok(await same(viaTokenizer, await draw(schnell, { prompt, promptTokens: { t5xxl: ids } })), 'given ids equal the tokenizer\'s');
  t.notOk(await same(viaTokenizer, await draw(schnell, { prompt, promptTokens: { t5xxl: [] } })), 'no T5 ids: another image');
  const clipIds = [320, 1125, 539, 320, 2368];
  t.ok(await same(await draw(schnell, { prompt, promptTokens: { t5xxl: ids, clipL: clipIds } }), viaTokenizer), 'CLIP ids as the CLIP tokenizer gives them');
  t.notOk(await same(await draw(schnell, { prompt, promptTokens: { t5xxl: ids, clipL: [320] } }), viaTokenizer));
  await t.rejects(draw(schnell, { promptTokens: { t5xxl: [64] } }), { code: 'ERR_INVALID_ARGUMENT', message: /T5 token id 64 is outside the vocabulary/ });
  await t.rejects(draw(schnell, { promptTokens: { t5xxl: [1.5] } }), { name: 'RangeError', message: /promptTokens\.t5xxl\[0\]/ });
  await t.rejects(draw(schnell, { promptTokens: { bert: [] } }), { name: 'TypeError', message: /Unknown option "bert" for promptTokens/ });
});

t.test('without a T5 vocabulary a prompt fails saying which file to get; an empty prompt or given ids work', async (t) => {
  await t.rejects(draw(dev, { prompt: 'a cat', steps: 1 }), { code: 'ERR_TOKENIZER_MISSING', message: /t5Tokenizer set to .*spiece\.model or tokenizer\.json/ });
  t.ok(await draw(dev, { prompt: '', steps: 1 }));
  t.ok(await draw(dev, { prompt: 'a cat', steps: 1, promptTokens: { t5xxl: [5, 6] } }));
});

t.test('options a flow model cannot take are refused, naming the option and what it takes', async (t) => {
  await t.rejects(draw(schnell, { width: 72 }), { name: 'RangeError', message: /width/ });
  await t.rejects(draw(schnell, { sampler: 'ddim' }), { name: 'RangeError', message: /one of euler, euler_a, heun, .*res_multistep for flow models .* for sampler/ });
  await t.rejects(draw(schnell, { scheduler: 'lcm' }), { name: 'RangeError', message: /scheduler/ });
  await t.rejects(draw(schnell, { guidance: 31 }), { name: 'RangeError', message: /guidance/ });
  const png = await draw(schnell).then((i) => i.png);
  await t.rejects(schnell.inpaint({ ...quick, image: png, mask: png }), { code: 'ERR_INVALID_ARGUMENT', message: /inpaint is not supported/ });
  const [image] = await schnell.textToImage({ ...quick, sampler: 'dpm++2m', scheduler: 'karras', flowShift: 3 });
  t.match(image!.parameters, /Sampler: DPM\+\+ 2M, Schedule type: Karras, .*Shift: 3,/);
});

t.test('every flow sampler and schedule runs: the ancestral ones re-noise with the seed, the deterministic ones do not', async (t) => {
  const euler = await draw(schnell, { steps: 3, sampler: 'euler' });
  const seen: GeneratedImage[] = [euler];
  const written = { euler_a: 'Euler a', 'dpm++2s_a': 'DPM++ 2S a', lcm: 'LCM', res_multistep: 'RES Multistep', heun: 'Heun' };
  for (const [sampler, name] of Object.entries(written)) {
    const image = await draw(schnell, { steps: 3, sampler });
    t.ok(image.parameters.includes(`Sampler: ${name},`), `parameters say ${name}`);
    for (const other of seen) t.notOk(await same(image, other), `${sampler} takes its own path`);
    seen.push(image);
  }
  // Ancestral samplers draw fresh noise per step from the seed's generator: same seed, same image.
  t.ok(await same(await draw(schnell, { steps: 3, sampler: 'euler_a' }), seen[1]!), 'euler_a is deterministic per seed');
  // One step ends on the prediction whatever the sampler: the re-noising only happens between steps.
  t.ok(await same(await draw(schnell, { steps: 1, sampler: 'euler_a' }), await draw(schnell, { steps: 1, sampler: 'euler' })));
  const schedules = await Promise.all(['beta', 'smoothstep', 'flux'].map((scheduler) => draw(schnell, { steps: 3, scheduler })));
  t.notOk(await same(schedules[0]!, schedules[2]!), 'beta spaces the steps differently from flux');
  t.notOk(await same(schedules[1]!, schedules[2]!), 'smoothstep too');
  t.match(schedules[0]!.parameters, /Schedule type: Beta,/);
});

t.test('skip-layer guidance: a scale moves the image, only on its steps and with its blocks; bad values are refused', async (t) => {
  const plain = await draw(schnell, { steps: 3 });
  const guided = await draw(schnell, { steps: 3, slgScale: 2, skipLayers: [1], slgStart: 0, slgEnd: 1 });
  t.notOk(await same(plain, guided), 'slgScale changes the image');
  t.notOk(await same(guided, await draw(schnell, { steps: 3, slgScale: 2, skipLayers: [0], slgStart: 0, slgEnd: 1 })), 'the skipped block matters');
  // 3 steps: a schedule of 4 sigmas; steps strictly between 0.01·4 and 0.2·4 (0 and 0): none.
  t.ok(await same(plain, await draw(schnell, { steps: 3, slgScale: 2, skipLayers: [1] })), 'outside its window it does nothing');
  t.ok(await same(plain, await draw(schnell, { steps: 3, slgScale: 0, skipLayers: [1], slgStart: 0, slgEnd: 1 })), 'scale 0 is off');
  await t.rejects(draw(schnell, { slgScale: 2, skipLayers: [2], slgStart: 0, slgEnd: 1 }), { code: 'ERR_INVALID_ARGUMENT', message: /skipLayers: 2 is not a block of this flux-schnell model \(0 to 1\)/ });
  await t.rejects(draw(schnell, { slgScale: 2, skipLayers: [] }), { name: 'TypeError', message: /skipLayers/ });
  await t.rejects(draw(schnell, { slgScale: 2, skipLayers: [-1] }), { name: 'RangeError', message: /skipLayers\[0\]/ });
  await t.rejects(draw(schnell, { slgStart: 0.5, slgEnd: 0.2 }), { name: 'RangeError', message: /slgStart \(0\.5\) must not be after slgEnd/ });
  await t.rejects(draw(schnell, { slgScale: -1 }), { name: 'RangeError', message: /slgScale/ });
});

t.test('previews: the 16-channel colour map per cell, or a TAEF1 at full size; a TAEF1 also decodes the image', async (t) => {
  const previews: Array<{ step: number; width: number; height: number; png: Buffer }> = [];
  const image = await draw(schnell, {
    steps: 3, previews: true,
    onProgress: (p: { step: number; preview?: { width: number; height: number; png: Buffer } }) => {
      if (p.preview) previews.push({ step: p.step, ...p.preview });
    },
  });
  t.same(previews.map((p) => [p.step, p.width, p.height]), [[1, 8, 8], [2, 8, 8], [3, 8, 8]], 'one pixel per latent cell, every step');
  const [first, , last] = await Promise.all(previews.map((p) => sharp(p.png).raw().toBuffer()));
  t.ok(new Set(last!).size > 4, 'the map gives colours, not a flat image');
  t.notOk(first!.equals(last!), 'the preview follows the prediction');

  const taef1 = await writeTaesd(path.join(dir, 'taef1'), { latentChannels: 16, channels: 8, blocks: 1, name: 'taef1.safetensors' });
  const withTaesd = await loadModel(components(schnellFiles), { ...cpu, taesd: taef1 });
  t.teardown(() => withTaesd.close());
  t.equal(withTaesd.info.taesd, true);
  const seen: number[][] = [];
  const [fast] = await withTaesd.textToImage({
    ...quick, steps: 2, vaeDecoder: 'taesd', previews: true,
    onProgress: (p: { preview?: { width: number; height: number } }) => { if (p.preview) seen.push([p.preview.width, p.preview.height]); },
  });
  t.same(seen, [[64, 64], [64, 64]], 'TAEF1 previews at the image size');
  t.equal(fast!.width, 64);
  t.notOk(await same(fast!, await draw(withTaesd, { steps: 2 })), 'vaeDecoder taesd decodes with TAEF1, not the VAE');
  t.ok(await same(image, await draw(schnell, { steps: 3 })), 'previews do not change the image');
  const sd1Taesd = await writeTaesd(path.join(dir, 'taesd4'), { channels: 8, blocks: 1 });
  await t.rejects(loadModel(components(schnellFiles), { ...cpu, taesd: sd1Taesd }), { code: 'ERR_MODEL_UNSUPPORTED', message: /4-channel latents; FLUX\.1 needs a 16-channel one \(taef1\)/ });
});

t.test('a missing, misplaced or damaged component is an error naming it', async (t) => {
  const { t5xxl: _, ...noT5 } = components(schnellFiles);
  await t.rejects(loadModel(noT5, cpu), { code: 'ERR_INVALID_ARGUMENT', message: /T5-XXL text encoder .*--t5xxl/ });
  await t.rejects(loadModel({ ...components(schnellFiles), diffusionModel: schnellFiles.vae }, cpu),
    { code: 'ERR_MODEL_UNSUPPORTED', message: /ae\.safetensors \(--diffusion-model\) is not a FLUX\.1, SD3 or Z-Image diffusion model/ });
  await t.rejects(loadModel({ ...components(schnellFiles), clipL: schnellFiles.t5xxl }, cpu), { code: 'ERR_MODEL_UNSUPPORTED', message: /--clip-l/ });
  const truncated = path.join(dir, 'truncated.safetensors');
  const bytes = await readFile(schnellFiles.diffusionModel);
  await writeFile(truncated, bytes.subarray(0, bytes.length - 1000));
  await t.rejects(loadModel({ ...components(schnellFiles), diffusionModel: truncated }, cpu), { code: 'ERR_MODEL_FORMAT' });
  await t.rejects(loadModel({ ...components(schnellFiles), vae: path.join(dir, 'missing.safetensors') }, cpu), { code: 'ERR_MODEL_IO' });
  await t.rejects(loadModel({ diffusionModel: schnellFiles.diffusionModel, unet: 'x' } as never, cpu), { name: 'TypeError', message: /Unknown component "unet"/ });
});

t.test('image-to-image: strength 0 keeps the input, low strength stays near it, full strength departs', async (t) => {
  const input = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 40, b: 40 } } }).png().toBuffer();
  const pixels = async (png: Buffer) => sharp(png).raw().toBuffer();
  const inputPixels = await pixels(input);
  const [kept] = await schnell.imageToImage({ ...quick, image: input, strength: 0 });
  t.ok((await pixels(kept!.png)).equals(inputPixels), 'strength 0: the input, byte for byte');
  const [near] = await schnell.imageToImage({ ...quick, steps: 4, image: input, strength: 0.25 });
  const [far] = await schnell.imageToImage({ ...quick, steps: 4, image: input, strength: 1 });
  const nearDiff = meanAbsDiff(await pixels(near!.png), inputPixels);
  const farDiff = meanAbsDiff(await pixels(far!.png), inputPixels);
  t.ok(nearDiff < farDiff, `strength 0.25 (mean difference ${nearDiff.toFixed(1)}) stays nearer the input than 1 (${farDiff.toFixed(1)})`);
  t.match(near!.parameters, /Denoising strength: 0\.25/);
  const [again] = await schnell.imageToImage({ ...quick, steps: 4, image: input, strength: 0.25 });
  t.ok(await same(near!, again!), 'deterministic: the posterior sample is drawn from the seed');
});

t.test('Kontext: reference images are read beside the prompt, each one changing the image', async (t) => {
  const red = await sharp({ create: { width: 48, height: 32, channels: 3, background: { r: 220, g: 30, b: 30 } } }).png().toBuffer();
  const blue = await sharp({ create: { width: 48, height: 32, channels: 3, background: { r: 30, g: 30, b: 220 } } }).png().toBuffer();
  const plain = await draw(dev, { steps: 1 });
  const withRed = await draw(dev, { steps: 1, referenceImages: [red] });
  t.notOk(await same(plain, withRed), 'a reference changes the image');
  t.notOk(await same(withRed, await draw(dev, { steps: 1, referenceImages: [blue] })), 'its content matters');
  t.notOk(await same(withRed, await draw(dev, { steps: 1, referenceImages: [red, blue] })), 'a second reference counts too');
  t.equal(withRed.width, 64, 'the output keeps the requested size, not the reference\'s');
  await t.rejects(draw(dev, { referenceImages: [red, red, red, red, red] }), { name: 'TypeError', message: /referenceImages/ });
  await t.rejects(draw(dev, { referenceImages: ['/no/such/file.png'] }), { code: 'ENOENT', path: '/no/such/file.png' });
  await t.rejects(draw(dev, { referenceImages: [Buffer.from('not an image')] }), { name: 'TypeError', message: /referenceImages\[0\]/ });
});

// The nearest e4m3fn byte to an f16 value (round to nearest; saturates at ±448), by search: a test
// writer independent of the engine's decoder.
const e4m3Values = Array.from({ length: 256 }, (_, v) => {
  const sign = v & 0x80 ? -1 : 1, exponent = (v >> 3) & 0xf, mantissa = v & 7;
  if (exponent === 0xf && mantissa === 7) return NaN;
  return sign * (exponent === 0 ? (mantissa / 8) * 2 ** -6 : (1 + mantissa / 8) * 2 ** (exponent - 7));
});
function toE4m3(value: number): number {
  let best = 0;
  for (let v = 0; v < 256; v++) if (Math.abs(e4m3Values[v]! - value) < Math.abs(e4m3Values[best]! - value)) best = v;
  return best;
}

/** `file` (all F16) rewritten with every 2-D tensor as F8_E4M3, as fp8 downloads store their matrices. */
/**
 * An fp8 e4m3fn copy of a safetensors file: its matrices in 8-bit floats. `scaleBy`: ComfyUI's scaled
 * fp8, each matrix stored divided by it beside a `.scale_weight` of it (and a `.scale_input`, and the
 * `scaled_fp8` marker); `dropScales` leaves those out, keeping the divided bytes.
 */
async function writeFp8(
  file: string, out: string, extra: Record<string, { dtype: string; shape: number[]; data: Buffer }> = {},
  { scaleBy = 1, dropScales = false } = {},
): Promise<void> {
  const bytes = await readFile(file);
  const header = readSafetensorsHeader(bytes);
  const entries: Record<string, unknown> = { __metadata__: header.metadata };
  const data: Buffer[] = [];
  let offset = 0;
  for (const [name, entry] of header.tensors) {
    const [from, to] = entry.data_offsets;
    let raw = bytes.subarray(header.dataStart + from, header.dataStart + to);
    let dtype = entry.dtype;
    if (entry.shape.length === 2) {
      const fp8 = Buffer.alloc(raw.length / 2);
      for (let i = 0; i < fp8.length; i++) {
        const h = raw.readUInt16LE(2 * i);
        const f16 = (h & 0x8000 ? -1 : 1) * (((h >> 10) & 0x1f) === 0 ? (h & 0x3ff) / 1024 * 2 ** -14 : (1 + (h & 0x3ff) / 1024) * 2 ** (((h >> 10) & 0x1f) - 15));
        fp8[i] = toE4m3(f16 / scaleBy);
      }
      raw = fp8;
      dtype = 'F8_E4M3';
      if (scaleBy !== 1 && !dropScales) {
        const scale = Buffer.from(new Float32Array([scaleBy]).buffer);
        const stem = name.slice(0, -'.weight'.length);
        extra = { ...extra, [`${stem}.scale_weight`]: { dtype: 'F32', shape: [], data: scale }, [`${stem}.scale_input`]: { dtype: 'F32', shape: [], data: scale } };
      }
    }
    entries[name] = { dtype, shape: entry.shape, data_offsets: [offset, offset + raw.length] };
    data.push(raw);
    offset += raw.length;
  }
  if (scaleBy !== 1 && !dropScales) extra = { ...extra, scaled_fp8: { dtype: 'F8_E4M3', shape: [0], data: Buffer.alloc(0) } };
  for (const [name, t] of Object.entries(extra)) {
    entries[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    data.push(t.data);
    offset += t.data.length;
  }
  await writeFile(out, assemble(JSON.stringify(entries), data));
}

t.test('fp8 e4m3fn files load, widened to f16, and make nearly the f16 image; scaled fp8 loads with its scales, and a bad scale is an error naming it', async (t) => {
  const fp8Model = path.join(dir, 'flux1-schnell-fp8.safetensors');
  const fp8T5 = path.join(dir, 't5xxl_fp8_e4m3fn.safetensors');
  await writeFp8(schnellFiles.diffusionModel, fp8Model);
  await writeFp8(schnellFiles.t5xxl, fp8T5);
  const model = await loadModel({ ...components(schnellFiles), diffusionModel: fp8Model, t5xxl: fp8T5 }, { ...cpu, t5Tokenizer: schnellFiles.t5Tokenizer });
  t.teardown(() => model.close());
  t.ok(model.info.storedTypes.f8_e4m3! > 0, `fp8 tensors counted as such (${JSON.stringify(model.info.storedTypes)})`);
  t.same(model.info.unusedTensors, []);
  const pixels = async (image: GeneratedImage) => sharp(image.png).raw().toBuffer();
  const [fromFp8, fromF16, otherSeed] = [await draw(model, { prompt: 'a cat' }), await draw(schnell, { prompt: 'a cat' }), await draw(schnell, { prompt: 'a cat', seed: 7 })];
  const nearby = meanAbsDiff(await pixels(fromFp8), await pixels(fromF16));
  const apart = meanAbsDiff(await pixels(otherSeed), await pixels(fromF16));
  t.ok(nearby < apart / 2, `fp8 is near the f16 image (mean difference ${nearby.toFixed(2)}) compared with another seed (${apart.toFixed(2)})`);

  // Scaled fp8 (ComfyUI's, as in SD3.5's …_t5xxlfp8scaled bundles): each weight stored divided by
  // its scale_weight. Loaded, the scales put the weights back: nearly the plain fp8 image, and far
  // from the same bytes read without their scales.
  const scaledFile = path.join(dir, 'flux1-schnell-fp8-scaled.safetensors');
  const unscaledFile = path.join(dir, 'flux1-schnell-fp8-scales-dropped.safetensors');
  await writeFp8(schnellFiles.diffusionModel, scaledFile, {}, { scaleBy: 4 });
  await writeFp8(schnellFiles.diffusionModel, unscaledFile, {}, { scaleBy: 4, dropScales: true });
  const scaledModel = await loadModel({ ...components(schnellFiles), diffusionModel: scaledFile, t5xxl: fp8T5 }, { ...cpu, t5Tokenizer: schnellFiles.t5Tokenizer });
  t.same(scaledModel.info.unusedTensors, [], 'scale_weight, scale_input and the scaled_fp8 marker are all taken');
  const fromScaled = await draw(scaledModel, { prompt: 'a cat' });
  await scaledModel.close();
  const unscaledModel = await loadModel({ ...components(schnellFiles), diffusionModel: unscaledFile, t5xxl: fp8T5 }, { ...cpu, t5Tokenizer: schnellFiles.t5Tokenizer });
  const fromUnscaled = await draw(unscaledModel, { prompt: 'a cat' });
  await unscaledModel.close();
  const scaledGap = meanAbsDiff(await pixels(fromScaled), await pixels(fromFp8));
  const unscaledGap = meanAbsDiff(await pixels(fromUnscaled), await pixels(fromFp8));
  t.ok(scaledGap < unscaledGap / 2, `scaled fp8 is near the fp8 image (${scaledGap.toFixed(2)}); its bytes without the scales are not (${unscaledGap.toFixed(2)})`);
  const scalar = (value: number) => ({ dtype: 'F32', shape: [], data: Buffer.from(new Float32Array([value]).buffer) });
  type Extra = Record<string, { dtype: string; shape: number[]; data: Buffer }>;
  const badScales: Array<[string, Extra, RegExp]> = [
    ['a zero scale', { 'img_in.scale_weight': scalar(0) }, /img_in\.scale_weight holds 0\.0+; an fp8 weight's scale must be a positive number/],
    ['a NaN scale', { 'img_in.scale_weight': scalar(Number.NaN) }, /img_in\.scale_weight holds nan/],
    ['a scale of two values', { 'img_in.scale_weight': { dtype: 'F32', shape: [2], data: Buffer.alloc(8) } }, /must be one f32, f16 or bf16 value/],
    ['a scale without its weight', { 'nowhere.scale_weight': scalar(1) }, /scales nowhere\.weight, which is not an fp8 weight/],
  ];
  for (const [what, extra, message] of badScales) {
    const bad = path.join(dir, 'flux1-schnell-fp8-bad-scale.safetensors');
    await writeFp8(schnellFiles.diffusionModel, bad, extra);
    await t.rejects(loadModel({ ...components(schnellFiles), diffusionModel: bad }, cpu), { code: 'ERR_MODEL_FORMAT', message }, what);
  }
});

t.test('convertModel writes the diffusion model and T5 as GGUF under their own names; they load as the components', async (t) => {
  const transformer = path.join(dir, 'flux1-schnell-q8_0.gguf');
  const t5 = path.join(dir, 't5xxl-f16.gguf');
  const converted = await convertModel(schnellFiles.diffusionModel, transformer, { weightType: 'q8_0' });
  t.ok(converted.types.q8_0! > 0, `matrices quantized (${JSON.stringify(converted.types)})`);
  t.same(converted.skipped, []);
  await convertModel(schnellFiles.t5xxl, t5);
  const model = await loadModel({ ...components(schnellFiles), diffusionModel: transformer, t5xxl: t5 }, { ...cpu, t5Tokenizer: schnellFiles.t5Tokenizer });
  t.teardown(() => model.close());
  t.equal(model.info.format, 'gguf');
  t.equal(model.info.family, 'flux-schnell');
  t.ok(model.info.storedTypes.q8_0! > 0);
  const pixels = async (image: GeneratedImage) => sharp(image.png).raw().toBuffer();
  const [fromGguf, fromF16, otherSeed] = [await draw(model, { prompt: 'a cat' }), await draw(schnell, { prompt: 'a cat' }), await draw(schnell, { prompt: 'a cat', seed: 7 })];
  const nearby = meanAbsDiff(await pixels(fromGguf), await pixels(fromF16));
  t.ok(nearby < meanAbsDiff(await pixels(otherSeed), await pixels(fromF16)) / 2, `q8_0 GGUF is near the f16 image (mean difference ${nearby.toFixed(2)})`);
  // A scaled fp8 file converts with its scales applied, so its GGUF holds the true weights.
  const scaled = path.join(dir, 'flux1-schnell-fp8-scaled-for-gguf.safetensors');
  await writeFp8(schnellFiles.diffusionModel, scaled, {}, { scaleBy: 4 });
  const fromScaled = await convertModel(scaled, path.join(dir, 'flux1-schnell-from-fp8.gguf'));
  t.notOk(Object.keys(fromScaled.types).some((type) => type.includes('8_e')), 'fp8 widened to f16');
  t.same(fromScaled.skipped, [], 'scale tensors are taken, not carried over');
  await t.rejects(convertModel(schnellFiles.t5Tokenizer, path.join(dir, 'no.gguf')), { code: /ERR_MODEL_(FORMAT|UNSUPPORTED)/ });
});

t.test('a single file bundling the components loads as the model, each role taking only its own tensors', async (t) => {
  // The components under the prefixes single-file checkpoints use.
  const parts: Array<[string, string]> = [
    [schnellFiles.diffusionModel, 'model.diffusion_model.'], [schnellFiles.clipL, 'text_encoders.clip_l.transformer.'],
    [schnellFiles.t5xxl, 'text_encoders.t5xxl.transformer.'], [schnellFiles.vae, 'first_stage_model.'],
  ];
  const metadata: Record<string, string> = {};
  const entries: Record<string, unknown> = { __metadata__: metadata };
  const data: Buffer[] = [];
  let offset = 0;
  for (const [file, prefix] of parts) {
    const bytes = await readFile(file);
    const header = readSafetensorsHeader(bytes);
    Object.assign(metadata, header.metadata);  // the tiny CLIP's head count
    for (const [name, entry] of header.tensors) {
      const raw = bytes.subarray(header.dataStart + entry.data_offsets[0], header.dataStart + entry.data_offsets[1]);
      entries[prefix + name] = { dtype: entry.dtype, shape: entry.shape, data_offsets: [offset, offset + raw.length] };
      data.push(raw);
      offset += raw.length;
    }
  }
  const bundle = path.join(dir, 'flux1-schnell-all-in-one.safetensors');
  await writeFile(bundle, assemble(JSON.stringify(entries), data));
  const model = await loadModel(bundle, { ...cpu, t5Tokenizer: schnellFiles.t5Tokenizer });
  t.teardown(() => model.close());
  t.equal(model.info.family, 'flux-schnell');
  t.same(model.info.components, { diffusionModel: bundle, clipL: bundle, t5xxl: bundle, vae: bundle });
  t.same(model.info.unusedTensors, [], 'no role loaded another role\'s tensors');
  t.equal(model.info.weightBytes, schnell.info.weightBytes, 'each tensor resident once');
  t.ok(await same(await draw(model, { prompt: 'a cat' }), await draw(schnell, { prompt: 'a cat' })), 'the same pixels as the separate files');
});

t.test('text encoders are freed after a prompt and loaded again for a new one; recent prompts come from the cache', async (t) => {
  const copy = path.join(dir, 'copy');
  const files = await writeTinyFlux(copy);
  const lean = await loadModel(components(files), { ...cpu, t5Tokenizer: files.t5Tokenizer });
  const kept = await loadModel(components(files), { ...cpu, t5Tokenizer: files.t5Tokenizer, keepTextEncoders: true });
  t.teardown(async () => {
    await lean.close();
    await kept.close();
  });
  const first = await draw(lean, { prompt: 'a cat' });
  t.ok(await same(first, await draw(kept, { prompt: 'a cat' })), 'freeing them changes no pixel');
  t.ok(await same(await draw(lean, { prompt: 'a dog' }), await draw(kept, { prompt: 'a dog' })), 'a new prompt reloads them');
  // Without the T5 file on disk, only the model that freed its encoders notices, and only for a prompt it has not seen.
  await rm(files.t5xxl);
  t.ok(await same(first, await draw(lean, { prompt: 'a cat' })), 'a recent prompt needs no encoder');
  await t.rejects(draw(lean, { prompt: 'a bird' }), { code: 'ERR_MODEL_IO', message: /t5xxl_fp16\.safetensors/ }, 'a new prompt reads the encoders again');
  t.ok(await draw(kept, { prompt: 'a bird' }), 'keepTextEncoders: true keeps them resident');
  await t.rejects(loadModel(components(files), { ...cpu, keepTextEncoders: 'yes' } as never), { name: 'TypeError', message: /keepTextEncoders/ });
});

t.test('lowMemory: the transformer is freed while a new prompt is encoded and read again after; the pixels are the same', async (t) => {
  const copy = path.join(dir, 'low-memory');
  const files = await writeTinyFlux(copy);
  const low = await loadModel(components(files), { ...cpu, t5Tokenizer: files.t5Tokenizer, lowMemory: true });
  const usual = await loadModel(components(files), { ...cpu, t5Tokenizer: files.t5Tokenizer });
  t.teardown(async () => {
    await low.close();
    await usual.close();
  });
  t.same(low.info.components, usual.info.components, 'the same files, by role');
  t.equal(low.info.weightBytes, usual.info.weightBytes);
  const first = await draw(low, { prompt: 'a cat' });
  t.ok(await same(first, await draw(usual, { prompt: 'a cat' })), 'the same image');
  t.ok(await same(await draw(low, { prompt: 'a dog', cfgScale: 2, negativePrompt: 'a bird' }),
    await draw(usual, { prompt: 'a dog', cfgScale: 2, negativePrompt: 'a bird' })), 'a new prompt and a negative one: still the same');
  // Without the transformer's file on disk, a recent prompt still draws (the transformer stayed), a
  // new one fails reading it back after encoding: it was freed. The usual model never notices.
  await rm(files.diffusionModel);
  t.ok(await same(first, await draw(low, { prompt: 'a cat' })), 'a recent prompt keeps the transformer');
  await t.rejects(draw(low, { prompt: 'a fish' }), { code: 'ERR_MODEL_IO', message: /flux1-schnell|diffusion/ }, 'a new prompt frees it and reads it again');
  t.ok(await draw(usual, { prompt: 'a fish' }), 'without lowMemory the transformer stays resident');
  await t.rejects(loadModel(components(files), { ...cpu, lowMemory: true, keepTextEncoders: true }), { name: 'TypeError', message: /lowMemory and keepTextEncoders/ });
});

t.test('FLUX.1 LoRAs in kohya, ComfyUI, diffusers and XLabs names merge for the call and come out exactly', async (t) => {
  const H = 256;
  const rank = 4;
  let seed = 7;
  const random = (n: number, scale: number) => Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return (seed / 2 ** 31 - 0.5) * scale;
  });
  const down = random(rank * H, 0.2);
  const up = random(3 * H * rank, 0.2);  // for the packed qkv: rows of q, then k, then v
  const f32 = (name: string, shape: number[], values: Float32Array) => ({ name, dtype: 'F32' as const, shape, data: Buffer.from(values.buffer, values.byteOffset, values.byteLength) });
  const write = async (name: string, tensors: ReturnType<typeof f32>[]) => {
    const file = path.join(dir, name);
    await writeFile(file, encodeSafetensors(tensors, {}));
    return file;
  };
  const kohya = await write('flux-kohya.safetensors', [
    f32('lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight', [rank, H], down),
    f32('lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight', [3 * H, rank], up),
    f32('lora_unet_double_blocks_0_img_attn_qkv.alpha', [], Float32Array.of(rank)),
  ]);
  const comfy = await write('flux-comfy.safetensors', [
    f32('diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight', [rank, H], down),
    f32('diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight', [3 * H, rank], up),
  ]);
  const third = (i: number) => up.subarray(i * H * rank, (i + 1) * H * rank);
  const diffusers = await write('flux-diffusers.safetensors', ['q', 'k', 'v'].flatMap((p, i) => [
    f32(`transformer.transformer_blocks.0.attn.to_${p}.lora_A.weight`, [rank, H], down),
    f32(`transformer.transformer_blocks.0.attn.to_${p}.lora_B.weight`, [H, rank], third(i)),
  ]));
  const plain = await draw(schnell, { prompt: 'a cat' });
  const withKohya = await draw(schnell, { prompt: 'a cat', loras: [{ path: kohya }] });
  t.notOk(await same(plain, withKohya), 'the LoRA changes the image');
  t.ok(await same(plain, await draw(schnell, { prompt: 'a cat' })), 'and comes out exactly after the call');
  t.ok(await same(withKohya, await draw(schnell, { prompt: 'a cat', loras: [{ path: comfy }] })), 'ComfyUI names: the same update');
  t.ok(await same(withKohya, await draw(schnell, { prompt: 'a cat', loras: [{ path: diffusers }] })), 'diffusers q, k, v: the same rows of qkv');
  // XLabs' names: the image stream's attention of double block 0 (qkv_lora1), no alpha (scale 1).
  const xlabs = await write('flux-xlabs.safetensors', [
    f32('double_blocks.0.processor.qkv_lora1.down.weight', [rank, H], down),
    f32('double_blocks.0.processor.qkv_lora1.up.weight', [3 * H, rank], up),
  ]);
  t.ok(await same(withKohya, await draw(schnell, { prompt: 'a cat', loras: [{ path: xlabs }] })), 'XLabs names: the same update');
  t.ok(await same(plain, await draw(schnell, { prompt: 'a cat', loras: [{ path: kohya, weight: 0 }] })), 'weight 0 changes nothing');
  const sdLora = await write('sd-lora.safetensors', [
    f32('lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight', [rank, 32], random(rank * 32, 0.2)),
    f32('lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight', [32, rank], random(32 * rank, 0.2)),
  ]);
  await t.rejects(draw(schnell, { loras: [{ path: sdLora }] }), { code: 'ERR_MODEL_UNSUPPORTED', message: /probably for another model family/ });
  t.ok(await same(plain, await draw(schnell, { prompt: 'a cat' })), 'a refused LoRA leaves the weights as they were');
});

t.test('Chroma: T5 alone, its approximator\'s modulations and a masked T5 padding; LoRAs by FLUX.1 names', async (t) => {
  const files = await writeTinyFlux(path.join(dir, 'chroma'), { variant: 'chroma' });
  const { clipL: _, ...chromaFiles } = components(files);
  const chroma = await loadModel(chromaFiles, { ...cpu, t5Tokenizer: files.t5Tokenizer });
  t.teardown(() => chroma.close());
  t.match(chroma.info, { family: 'chroma', prediction: 'flow', textEncoders: ['t5xxl'] });
  t.same(chroma.info.unusedTensors, []);
  const [image] = await chroma.textToImage({ ...quick, prompt: 'a cat', negativePrompt: 'a dog' });
  t.match(image!.parameters, /Steps: 2, Sampler: Euler, Schedule type: Flux, CFG scale: 4,/, 'cfg 4 by default: Chroma is not guidance-distilled');
  t.notOk(await same(image!, (await chroma.textToImage({ ...quick, prompt: 'a cat', negativePrompt: 'a bird' }))[0]!), 'the negative prompt counts');
  t.notOk(await same(image!, (await chroma.textToImage({ ...quick, prompt: 'a dog', negativePrompt: 'a dog' }))[0]!), 'the prompt counts');
  await t.rejects(loadModel(components(files), cpu), { code: 'ERR_INVALID_ARGUMENT', message: /Chroma models take no CLIP-L/ });
  await t.rejects(chroma.textToImage({ ...quick, promptTokens: { clipL: [1] } }), { name: 'RangeError', message: /its encoders are t5xxl/ });
});
