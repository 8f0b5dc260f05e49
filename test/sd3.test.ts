// SD3 medium and SD3.5 through the public library, on tiny random components of the real layouts
// (Stability's MMDiT / MMDiT-X, CLIP-L, CLIP-G with its projection, T5, the 16-channel VAE):
// detection from the files, the cards' defaults, what each text encoder changes, and clear errors
// for missing and broken components.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { loadModel, type GeneratedImage, type Model } from '../lib/index.js';
import { cpu, samePixels } from './fixtures/draw.js';
import { encodeGguf } from './fixtures/gguf.js';
import { encodeSafetensors, readSafetensorsHeader } from './fixtures/safetensors.js';
import { tinyClipGBytes, writeTinySd3, type TinySd3Files } from './fixtures/sd3.js';

const dir = t.testdir();
const sd3Files = await writeTinySd3(path.join(dir, 'sd3'));
const sd35Files = await writeTinySd3(path.join(dir, 'sd35'), { variant: 'sd3.5' });
const components = ({ t5Tokenizer: _, ...files }: TinySd3Files) => files;
const sd3 = await loadModel(components(sd3Files), { ...cpu, t5Tokenizer: sd3Files.t5Tokenizer });
const sd35 = await loadModel(components(sd35Files), { ...cpu, t5Tokenizer: sd35Files.t5Tokenizer });
t.teardown(async () => {
  await sd3.close();
  await sd35.close();
});

const quick = { prompt: 'a photo of a cat', width: 64, height: 64, steps: 2, seed: 42 } as const;

async function draw(model: Model, options: Record<string, unknown> = {}): Promise<GeneratedImage> {
  const [image] = await model.textToImage({ ...quick, ...options });
  return image!;
}

const same = samePixels;

// The step count a call without `steps` runs, read from its first progress report; the call is
// then aborted, so the family's default (28 or 40 steps) costs one step.
async function defaultSteps(model: Model): Promise<number> {
  const controller = new AbortController();
  let total = 0;
  await model.textToImage({
    prompt: '', width: 64, height: 64, seed: 1, signal: controller.signal,
    onProgress: (progress) => {
      total = progress.steps;
      controller.abort();
    },
  }).catch((error: unknown) => {
    if ((error as { code?: string }).code !== 'ERR_ABORTED') throw error;
  });
  return total;
}

t.test('SD3 and SD3.5 are told apart by their files: SD3.5 has q/k norms', async (t) => {
  t.match(sd3.info, {
    family: 'sd3', prediction: 'flow', defaultWidth: 1024, defaultHeight: 1024, vaeScale: 8,
    textEncoders: ['clipL', 'clipG', 't5xxl'], format: 'safetensors',
  });
  t.same(sd3.info.components, components(sd3Files), 'each component file, by role');
  t.same(sd3.info.unusedTensors, [], 'every weight of the five files is used');
  t.match(sd35.info, { family: 'sd3.5', textEncoders: ['clipL', 'clipG', 't5xxl'] });
  t.same(sd35.info.unusedTensors, [], 'the q/k norms and block 0\'s attn2 are used');
  t.equal(sd3.path, sd3Files.diffusionModel);
});

t.test('defaults follow the cards: SD3 28 steps at cfg 7, SD3.5 40 at cfg 4.5, euler on the discrete flow schedule', async (t) => {
  t.equal(await defaultSteps(sd3), 28);
  t.equal(await defaultSteps(sd35), 40);
  const [image] = await sd3.textToImage({ prompt: '', width: 64, height: 64, steps: 1, seed: 1 });
  t.match(image!.parameters, /^Steps: 1, Sampler: Euler, CFG scale: 7, Seed: 1,/m);
  t.notMatch(image!.parameters, /Schedule type|Distilled CFG Scale/, 'the discrete schedule is A1111\'s default: not written');
  t.equal(image!.width, 64);
  const [image35] = await sd35.textToImage({ prompt: '', width: 64, height: 64, steps: 1, seed: 1 });
  t.match(image35!.parameters, /^Steps: 1, Sampler: Euler, CFG scale: 4\.5, Seed: 1,/m);
  const [shifted] = await sd3.textToImage({ prompt: '', width: 64, height: 64, steps: 1, seed: 1, flowShift: 6 });
  t.match(shifted!.parameters, /Shift: 6,/);
});

t.test('the same seed gives the same image; the seed and the prompt change it', async (t) => {
  for (const model of [sd3, sd35]) {
    const first = await draw(model);
    t.ok(await same(first, await draw(model)), `${model.info.family}: deterministic`);
    t.notOk(await same(first, await draw(model, { seed: 43 })), `${model.info.family}: another seed`);
    t.notOk(await same(first, await draw(model, { prompt: 'a dog' })), `${model.info.family}: the prompt reaches the model`);
  }
});

t.test('above cfg 1 the negative prompt guides; at cfg 1 it is not used', async (t) => {
  const dog = await draw(sd3, { negativePrompt: 'a dog' });
  t.notOk(await same(dog, await draw(sd3, { negativePrompt: 'a bird' })), 'cfg 7: the negative prompt counts');
  t.notOk(await same(await draw(sd35, { negativePrompt: 'a dog' }), await draw(sd35, { negativePrompt: 'a bird' })), 'SD3.5 at 4.5 too');
  t.ok(await same(await draw(sd3, { cfgScale: 1, negativePrompt: 'a dog' }), await draw(sd3, { cfgScale: 1, negativePrompt: 'a bird' })),
    'cfg 1: one pass');
});

t.test('CLIP-G takes the CLIP ids unless promptTokens.clipG gives its own', async (t) => {
  // The CLIP tokenizer's ids for quick.prompt, "a photo of a cat".
  const clipIds = [320, 1125, 539, 320, 2368];
  const plain = await draw(sd3);
  t.ok(await same(plain, await draw(sd3, { promptTokens: { clipL: clipIds, clipG: clipIds } })), 'the tokenizer\'s ids, given');
  t.ok(await same(plain, await draw(sd3, { promptTokens: { clipL: clipIds } })), 'CLIP-G follows the CLIP-L ids it is given');
  const ownG = await draw(sd3, { promptTokens: { clipL: clipIds, clipG: [320] } });
  t.notOk(await same(plain, ownG), 'CLIP-G ids of its own change the image');
  t.notOk(await same(ownG, await draw(sd3, { promptTokens: { clipL: [320], clipG: [320] } })), 'CLIP-L still counts');
  t.notOk(await same(plain, await draw(sd3, { promptTokens: { t5xxl: [] } })), 'so does T5');
  await t.rejects(draw(sd3, { promptTokens: { llm: [1] } }), { name: 'RangeError', message: /promptTokens\.llm .*clipL, clipG, t5xxl/ });

  const otherClipG = path.join(dir, 'clip_g_other.safetensors');
  await writeFile(otherClipG, tinyClipGBytes({ seed: 2 }));
  const other = await loadModel({ ...components(sd3Files), clipG: otherClipG }, { ...cpu, t5Tokenizer: sd3Files.t5Tokenizer });
  t.teardown(() => other.close());
  t.notOk(await same(plain, await draw(other)), 'another CLIP-G file, another image');
});

t.test('FLUX.1 options do nothing: SD3 has no distilled guidance', async (t) => {
  t.ok(await same(await draw(sd3, { guidance: 1 }), await draw(sd3, { guidance: 8 })));
  t.ok(await same(await draw(sd35, { guidance: 1 }), await draw(sd35, { guidance: 8 })));
});

t.test('SD3 LoRAs in kohya, ComfyUI and diffusers names merge for the call and come out exactly, attn2 too', async (t) => {
  const H = 128;  // the tiny MMDiT's width: 2 heads of 64
  const rank = 4;
  let seed = 11;
  const random = (n: number) => Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return (seed / 2 ** 31 - 0.5) * 0.4;
  });
  const f32 = (name: string, shape: number[], values: Float32Array) => ({ name, dtype: 'F32' as const, shape, data: Buffer.from(values.buffer, values.byteOffset, values.byteLength) });
  const write = async (name: string, tensors: ReturnType<typeof f32>[]) => {
    const file = path.join(dir, name);
    await writeFile(file, encodeSafetensors(tensors, {}));
    return file;
  };
  const down = random(rank * H);
  const up = random(3 * H * rank);
  const third = (i: number) => up.subarray(i * H * rank, (i + 1) * H * rank);
  for (const [module, diffusersModule] of [['x_block_attn_qkv', 'attn.to_'], ['context_block_attn_qkv', 'attn.add_'], ['x_block_attn2_qkv', 'attn2.to_']]) {
    const kohya = await write(`sd3-kohya-${module}.safetensors`, [
      f32(`lora_unet_joint_blocks_0_${module}.lora_down.weight`, [rank, H], down),
      f32(`lora_unet_joint_blocks_0_${module}.lora_up.weight`, [3 * H, rank], up),
    ]);
    const comfy = await write(`sd3-comfy-${module}.safetensors`, [
      f32(`diffusion_model.joint_blocks.0.${module.replace(/_(attn2?)_qkv$/, '.$1.qkv')}.lora_A.weight`, [rank, H], down),
      f32(`diffusion_model.joint_blocks.0.${module.replace(/_(attn2?)_qkv$/, '.$1.qkv')}.lora_B.weight`, [3 * H, rank], up),
    ]);
    const suffix = (p: string) => (diffusersModule === 'attn.add_' ? `${p}_proj` : p);
    const diffusers = await write(`sd3-diffusers-${module}.safetensors`, ['q', 'k', 'v'].flatMap((p, i) => [
      f32(`transformer.transformer_blocks.0.${diffusersModule}${suffix(p)}.lora_A.weight`, [rank, H], down),
      f32(`transformer.transformer_blocks.0.${diffusersModule}${suffix(p)}.lora_B.weight`, [H, rank], third(i)),
    ]));
    const plain = await draw(sd35);
    const withKohya = await draw(sd35, { loras: [{ path: kohya }] });
    t.notOk(await same(plain, withKohya), `${module}: the LoRA changes the image`);
    t.ok(await same(plain, await draw(sd35)), `${module}: and comes out exactly after the call`);
    t.ok(await same(withKohya, await draw(sd35, { loras: [{ path: comfy }] })), `${module}: ComfyUI names, the same update`);
    t.ok(await same(withKohya, await draw(sd35, { loras: [{ path: diffusers }] })), `${module}: diffusers q, k, v, the same rows of qkv`);
  }
});

t.test('a missing or broken component is an error naming it', async (t) => {
  const { clipG: _, ...noClipG } = components(sd3Files);
  await t.rejects(loadModel(noClipG, cpu), { code: 'ERR_INVALID_ARGUMENT', message: /CLIP-G text encoder .*--clip-g/ });
  const { t5xxl: __, ...noT5 } = components(sd35Files);
  await t.rejects(loadModel(noT5, cpu), { code: 'ERR_INVALID_ARGUMENT', message: /T5-XXL text encoder .*--t5xxl/ });
  const unprojected = path.join(dir, 'clip_g_no_projection.safetensors');
  await writeFile(unprojected, tinyClipGBytes({ projection: false }));
  await t.rejects(loadModel({ ...components(sd3Files), clipG: unprojected }, cpu),
    { code: 'ERR_MODEL_FORMAT', message: /clip_g_no_projection\.safetensors: the CLIP-G text encoder has no text_projection/ });
  await t.rejects(loadModel({ ...components(sd3Files), clipG: sd3Files.t5xxl }, cpu), { code: 'ERR_MODEL_UNSUPPORTED', message: /--clip-g/ });
});

t.test('the diffusion model as a GGUF (bare names, as the popular converters write SD3.5) draws the same image', async (t) => {
  const source = await readFile(sd35Files.diffusionModel);
  const { dataStart, tensors } = readSafetensorsHeader(source);
  const gguf = path.join(dir, 'sd3.5_medium-f16.gguf');
  await writeFile(gguf, encodeGguf([...tensors].map(([name, entry]) => ({
    name, type: 'f16' as const, shape: entry.shape, data: source.subarray(dataStart + entry.data_offsets[0], dataStart + entry.data_offsets[1]),
  }))));
  const fromGguf = await loadModel({ ...components(sd35Files), diffusionModel: gguf }, { ...cpu, t5Tokenizer: sd35Files.t5Tokenizer });
  t.teardown(() => fromGguf.close());
  t.match(fromGguf.info, { family: 'sd3.5', format: 'gguf', unusedTensors: [] });
  t.ok(await same(await draw(sd35), await draw(fromGguf)));
});
