// LoRA: <lora:NAME:weight> tags select files of the LoRA folder, their updates are merged into the
// weights for one call only, and the next call without them gives the very same bytes as before.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { listLoras, loadModel, type Model, type TextToImageOptions } from '../lib/index.js';
import { extractLoraTags } from '../lib/lora.js';
import { tinyCheckpointBytes, writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { encodeGguf } from './fixtures/gguf.js';
import { tinyDoraPair, tinyLoraBytes, tinyLycorisPair, writeTinyLora } from './fixtures/lora.js';
import { encodeSafetensors, readSafetensorsHeader } from './fixtures/safetensors.js';

const dir = t.testdir();
const loraDir = path.join(dir, 'loras');
await writeTinyLora(loraDir, 'style', { locon: true, metadata: { ss_output_name: 'style-alias' } });
await writeTinyLora(loraDir, 'style-diffusers', { format: 'diffusers', locon: true });
await writeTinyLora(loraDir, 'other', { seed: 2 });
await writeTinyLora(loraDir, 'for-sd2', { family: 'sd2' });
await writeTinyLora(path.join(loraDir, 'sub'), 'nested', { seed: 3 });
await writeFile(path.join(loraDir, 'broken.safetensors'), Buffer.from('not a safetensors file at all'));

const model: Model = await loadModel(await writeTinyCheckpoint(dir), { backend: 'cpu', threads: 1, loraDir });
t.teardown(() => model.close());

const quick = { steps: 2, width: 64, height: 64, seed: 5 } as const;

async function pixels(options: TextToImageOptions, on: Model = model): Promise<Buffer> {
  const [image] = await on.textToImage({ ...quick, ...options });
  return sharp(image!.png).raw().toBuffer();
}

t.test('a LoRA changes the image, and the next call without it gives the same bytes as before', async (t) => {
  const before = await model.textToImage({ ...quick, prompt: 'a castle' });
  const withLora = await pixels({ prompt: 'a castle <lora:style:1>' });
  const after = await model.textToImage({ ...quick, prompt: 'a castle' });
  t.ok(after[0]!.png.equals(before[0]!.png), 'the PNG after the LoRA call is byte-identical to the one before');
  t.notOk(withLora.equals(await sharp(before[0]!.png).raw().toBuffer()), 'the LoRA changed the pixels');
});

t.test('the tag leaves the prompt, and weight 0 is the same as no LoRA', async (t) => {
  const plain = await pixels({ prompt: 'a castle ' });
  t.ok((await pixels({ prompt: 'a castle <lora:style:0>' })).equals(plain));
  t.ok((await pixels({ prompt: 'a castle <lora:style:0:0>' })).equals(plain));
  t.notOk((await pixels({ prompt: 'a castle <lora:style:0.5>' })).equals(plain));
});

t.test('the prompt tag and the loras option apply the same update', async (t) => {
  const tagged = await pixels({ prompt: 'a castle <lora:other:0.7>' });
  const given = await pixels({ prompt: 'a castle ', loras: [{ path: path.join(loraDir, 'other.safetensors'), weight: 0.7 }] });
  t.ok(given.equals(tagged));
});

t.test('kohya and diffusers names of the same LoRA give the same image', async (t) => {
  const kohya = await pixels({ prompt: 'a castle <lora:style:1>' });
  t.ok((await pixels({ prompt: 'a castle <lora:style-diffusers:1>' })).equals(kohya));
});

t.test('diffusers\' attention-processor names (attn1.processor.to_q_lora.down) map as kohya\'s do', async (t) => {
  const subset = async (file: string, bytes: Buffer, keep: (name: string) => string | undefined) => {
    const header = readSafetensorsHeader(bytes);
    const tensors = [...header.tensors].flatMap(([name, entry]) => {
      const renamed = keep(name);
      if (renamed === undefined) return [];
      const data = bytes.subarray(header.dataStart + entry.data_offsets[0], header.dataStart + entry.data_offsets[1]);
      return [{ name: renamed, dtype: 'F16' as const, shape: entry.shape, data }];
    });
    await writeFile(file, encodeSafetensors(tensors, {}));
    return file;
  };
  const kohya = await subset(path.join(dir, 'attn-kohya.safetensors'), tinyLoraBytes(),
    (name) => (/_attn[12]_to_(q|k|v|out_0)\./.test(name) ? name : undefined));
  const processor = await subset(path.join(dir, 'attn-processor.safetensors'), tinyLoraBytes({ format: 'diffusers' }), (name) => {
    const m = /^(.*\.attn[12])\.(to_q|to_k|to_v|to_out\.0)\.lora_([AB])\.weight$/.exec(name);
    if (!m) return undefined;
    return `${m[1]}.processor.${m[2] === 'to_out.0' ? 'to_out' : m[2]}_lora.${m[3] === 'A' ? 'down' : 'up'}.weight`;
  });
  const fromKohya = await pixels({ prompt: 'a castle', loras: [{ path: kohya }] });
  t.notOk(fromKohya.equals(await pixels({ prompt: 'a castle' })));
  t.ok((await pixels({ prompt: 'a castle', loras: [{ path: processor }] })).equals(fromKohya));
});

t.test('a .gguf LoRA applies as the same .safetensors one does', async (t) => {
  const file = await readFile(path.join(loraDir, 'style.safetensors'));
  const header = readSafetensorsHeader(file);
  const tensors = [...header.tensors].map(([name, entry]) => ({
    name, type: 'f16' as const, shape: entry.shape,
    data: file.subarray(header.dataStart + entry.data_offsets[0], header.dataStart + entry.data_offsets[1]),
  }));
  const gguf = path.join(dir, 'style.gguf');
  await writeFile(gguf, encodeGguf(tensors));
  t.ok((await pixels({ prompt: 'a castle ', loras: [{ path: gguf }] })).equals(await pixels({ prompt: 'a castle <lora:style:1>' })));
});

t.test('a LoRA is found by its metadata alias and in subfolders', async (t) => {
  t.ok((await pixels({ prompt: 'a castle <lora:style-alias:1>' })).equals(await pixels({ prompt: 'a castle <lora:style:1>' })));
  t.notOk((await pixels({ prompt: 'a castle <lora:nested:1>' })).equals(await pixels({ prompt: 'a castle ' })));
});

t.test('text encoder and UNet weights apply separately', async (t) => {
  const plain = await pixels({ prompt: 'a castle ' });
  const textOnly = await pixels({ prompt: 'a castle <lora:other:1:0>' });
  const unetOnly = await pixels({ prompt: 'a castle <lora:other:te=0:unet=1>' });
  t.notOk(textOnly.equals(plain));
  t.notOk(unetOnly.equals(plain));
  t.notOk(textOnly.equals(unetOnly));
});

t.test('an unknown LoRA name is an error naming the folder and the names it has', async (t) => {
  await t.rejects(model.textToImage({ ...quick, prompt: '<lora:nope:1>' }), {
    name: 'RangeError',
    message: `Unknown LoRA "nope" in the prompt: no .safetensors or .gguf file of that name in ${loraDir}; `
      + 'available: broken, for-sd2, nested, other, style, style-diffusers',
  });
});

t.test('a LoRA tag without a LoRA folder is an error saying how to set one', async (t) => {
  const bare = await loadModel(model.path, { backend: 'cpu', threads: 1 });
  t.teardown(() => bare.close());
  await t.rejects(bare.textToImage({ ...quick, prompt: 'a castle <lora:style:1>' }), { name: 'RangeError', message: /no LoRA folder is set; give loraDir/ });
  // A call's own loraDir works on a model loaded without one.
  t.ok((await pixels({ prompt: 'a castle <lora:style:1>', loraDir }, bare)).equals(await pixels({ prompt: 'a castle <lora:style:1>' })));
});

t.test('a LoRA for another model family is a clear error, and the model is unchanged after it', async (t) => {
  const before = await pixels({ prompt: 'a castle' });
  await t.rejects(model.textToImage({ ...quick, prompt: 'a castle <lora:for-sd2:1>' }), {
    code: 'ERR_MODEL_UNSUPPORTED', message: /for-sd2\.safetensors: .*match no weights of this sd1 model.*another model family/,
  });
  // Two LoRAs, the second one failing: the first must not stay merged.
  await t.rejects(model.textToImage({ ...quick, prompt: 'a castle <lora:style:1> <lora:broken:1>' }), { code: 'ERR_MODEL_FORMAT' });
  t.ok((await pixels({ prompt: 'a castle' })).equals(before));
});

// Pixel values may differ by rounding: the LyCORIS update is summed in another order before the
// weight is rounded to f16 again.
function nearlyEqual(t: Test, a: Buffer, b: Buffer, plain: Buffer) {
  let maxDiff = 0;
  let fromPlain = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    fromPlain = Math.max(fromPlain, Math.abs(a[i]! - plain[i]!));
  }
  t.ok(maxDiff <= 2, `at most 2 levels apart (${maxDiff})`);
  t.ok(fromPlain > 20, `far from the image without it (${fromPlain})`);
}

for (const kind of ['loha', 'lokr'] as const) {
  t.test(`a ${kind === 'loha' ? 'LoHa' : 'LoKr'} file changes the weights as the LoRA of the same difference, by tag and by path, and is taken out after`, async (t) => {
    const lycorisDir = path.join(dir, `lycoris-${kind}`);
    const { lycoris, lora } = tinyLycorisPair(kind);
    await mkdir(lycorisDir, { recursive: true });
    await writeFile(path.join(lycorisDir, `tiny-${kind}.safetensors`), lycoris);
    await writeFile(path.join(lycorisDir, 'same-as-lora.safetensors'), lora);
    const plain = await pixels({ prompt: 'a castle' });
    const asLora = await pixels({ prompt: 'a castle <lora:same-as-lora:0.8>', loraDir: lycorisDir });
    const tagged = await pixels({ prompt: `a castle <lora:tiny-${kind}:0.8>`, loraDir: lycorisDir });
    nearlyEqual(t, tagged, asLora, plain);
    t.ok((await pixels({ prompt: 'a castle', loras: [{ path: path.join(lycorisDir, `tiny-${kind}.safetensors`), weight: 0.8 }] })).equals(tagged));
    t.ok((await pixels({ prompt: 'a castle' })).equals(plain));
  });
}

t.test('DoRA renormalises each updated row (linear layers) or input channel (convolutions) to its magnitudes', async (t) => {
  // Magnitudes equal to the updated weight's own norms leave the LoRA's weight: the same image as
  // the plain LoRA, at any multiplier; other magnitudes move it, and the weights come back after.
  const doraDir = path.join(dir, 'dora');
  await mkdir(doraDir, { recursive: true });
  const same = tinyDoraPair();
  await writeFile(path.join(doraDir, 'dora-same.safetensors'), same.dora);
  await writeFile(path.join(doraDir, 'plain.safetensors'), same.lora);
  await writeFile(path.join(doraDir, 'dora-louder.safetensors'), tinyDoraPair({ magnitudeScale: 1.5 }).dora);
  const plain = await pixels({ prompt: 'a castle' });
  for (const weight of [1, 0.6]) {
    const asLora = await pixels({ prompt: `a castle <lora:plain:${weight}>`, loraDir: doraDir });
    nearlyEqual(t, await pixels({ prompt: `a castle <lora:dora-same:${weight}>`, loraDir: doraDir }), asLora, plain);
  }
  const asLora = await pixels({ prompt: 'a castle <lora:plain:1>', loraDir: doraDir });
  const louder = await pixels({ prompt: 'a castle <lora:dora-louder:1>', loraDir: doraDir });
  let moved = 0;
  for (let i = 0; i < louder.length; i++) moved = Math.max(moved, Math.abs(louder[i]! - asLora[i]!));
  t.ok(moved > 20, `other magnitudes move the image (${moved} levels)`);
  t.ok((await pixels({ prompt: 'a castle' })).equals(plain), 'the weights come back exactly');
  const misfit = path.join(doraDir, 'misfit.safetensors');
  const module = 'lora_unet_down_blocks_0_attentions_0_proj_in';
  const header = readSafetensorsHeader(same.lora);
  const part = (name: string) => {
    const entry = header.tensors.get(name)!;
    return { name, dtype: 'F16' as const, shape: entry.shape, data: same.lora.subarray(header.dataStart + entry.data_offsets[0], header.dataStart + entry.data_offsets[1]) };
  };
  await writeFile(misfit, encodeSafetensors([part(`${module}.lora_down.weight`), part(`${module}.lora_up.weight`),
    { name: `${module}.dora_scale`, dtype: 'F16', shape: [7, 1], data: Buffer.alloc(14) }], {}));
  await t.rejects(model.textToImage({ ...quick, loras: [{ path: misfit }] }), { code: 'ERR_MODEL_UNSUPPORTED', message: new RegExp(`module '${module}'.*does not fit weight`) });
});

t.test('LyCORIS Tucker cores (hada_t1 / hada_t2, lokr_t2) rebuild a convolution as LyCORIS does', async (t) => {
  // The first ResBlock's 3×3 convolution, and a LoCon of the same difference: down[k, c, s] =
  // Σ_j t[k, j, s] · b[j, c], up[o, k] = a[k, o].
  const [out, inC] = readSafetensorsHeader(await readFile(model.path)).tensors.get('model.diffusion_model.input_blocks.1.0.in_layers.2.weight')!.shape as [number, number];
  const rank = 3;
  const random = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233));
  const a = random(rank * out, 1);
  const b = random(rank * inC, 2);
  const core = random(rank * rank * 9, 3);
  const down = new Float32Array(rank * inC * 9);
  for (let k = 0; k < rank; k++) for (let j = 0; j < rank; j++) for (let c = 0; c < inC; c++) for (let x = 0; x < 9; x++) down[(k * inC + c) * 9 + x]! += core[(k * rank + j) * 9 + x]! * b[j * inC + c]!;
  const up = new Float32Array(out * rank);
  for (let o = 0; o < out; o++) for (let k = 0; k < rank; k++) up[o * rank + k] = a[k * out + o]!;
  // The second LoHa factor is all ones: a core with one 1 per kernel position, a and b with a row of ones.
  const onesCore = new Float32Array(rank * rank * 9);
  onesCore.fill(1, 0, 9);
  const firstRow = (n: number) => Float32Array.from({ length: rank * n }, (_, i) => (i < n ? 1 : 0));
  const name = 'lora_unet_down_blocks_0_resnets_0_conv1';
  const f32 = (tensor: string, shape: number[], data: Float32Array) => ({ name: `${name}.${tensor}`, dtype: 'F32' as const, shape, data: Buffer.from(data.buffer) });
  const alpha = f32('alpha', [], Float32Array.of(rank));
  const files = {
    locon: [f32('lora_down.weight', [rank, inC, 3, 3], down), f32('lora_up.weight', [out, rank, 1, 1], up), alpha],
    loha: [f32('hada_t1', [rank, rank, 3, 3], core), f32('hada_w1_a', [rank, out], a), f32('hada_w1_b', [rank, inC], b),
      f32('hada_t2', [rank, rank, 3, 3], onesCore), f32('hada_w2_a', [rank, out], firstRow(out)), f32('hada_w2_b', [rank, inC], firstRow(inC)), alpha],
    // kron([[1]], w2): the LoKr's difference is its Tucker w2 alone.
    lokr: [f32('lokr_w1', [1, 1], Float32Array.of(1)), f32('lokr_t2', [rank, rank, 3, 3], core), f32('lokr_w2_a', [rank, out], a),
      f32('lokr_w2_b', [rank, inC], b), alpha],
  };
  const images: Record<string, Buffer> = {};
  for (const [kind, tensors] of Object.entries(files)) {
    const file = path.join(dir, `tucker-${kind}.safetensors`);
    await writeFile(file, encodeSafetensors(tensors, {}));
    images[kind] = await pixels({ prompt: 'a castle', loras: [{ path: file }] });
  }
  const plain = await pixels({ prompt: 'a castle' });
  nearlyEqual(t, images.loha!, images.locon!, plain);
  nearlyEqual(t, images.lokr!, images.locon!, plain);
});

t.test('a LyCORIS module whose factors do not fit the weight names the module and the shapes', async (t) => {
  const tensor = (name: string, shape: number[]) => ({ name, dtype: 'F16' as const, shape, data: Buffer.alloc(2 * shape.reduce((a, b) => a * b, 1)) });
  const module = 'lora_te_text_model_encoder_layers_0_mlp_fc1';
  const loha = path.join(dir, 'loha-misfit.safetensors');
  await writeFile(loha, encodeSafetensors([
    tensor(`${module}.hada_w1_a`, [3, 4]), tensor(`${module}.hada_w1_b`, [4, 5]),
    tensor(`${module}.hada_w2_a`, [3, 4]), tensor(`${module}.hada_w2_b`, [4, 5]),
  ], {}));
  await t.rejects(model.textToImage({ ...quick, loras: [{ path: loha }] }), {
    code: 'ERR_MODEL_UNSUPPORTED', message: new RegExp(`module '${module}' \\(hada_w1_a \\[3, 4\\].*\\) does not fit weight`),
  });
  const lokr = path.join(dir, 'lokr-half.safetensors');
  await writeFile(lokr, encodeSafetensors([tensor(`${module}.lokr_w1`, [2, 2]), tensor(`${module}.lokr_w2_a`, [4, 4])], {}));
  await t.rejects(model.textToImage({ ...quick, loras: [{ path: lokr }] }), { code: 'ERR_MODEL_FORMAT', message: /lacks its lokr_w2_b tensor/ });
});

t.test('adapters other than LoRA, LoCon, LoHa, LoKr and DoRA, and incomplete modules, are refused by name', async (t) => {
  const tensor = (name: string, shape: number[]) => ({ name, dtype: 'F16' as const, shape, data: Buffer.alloc(2 * shape.reduce((a, b) => a * b, 1)) });
  const oft = path.join(dir, 'oft.safetensors');
  await writeFile(oft, encodeSafetensors([tensor('lora_unet_down_blocks_0_attentions_0_proj_in.oft_blocks', [4, 8, 8])], {}));
  await t.rejects(model.textToImage({ ...quick, loras: [{ path: oft }] }), { code: 'ERR_MODEL_UNSUPPORTED', message: /oft_blocks' belongs to a OFT adapter/ });
  const dora = path.join(dir, 'dora-alone.safetensors');
  await writeFile(dora, encodeSafetensors([tensor('lora_unet_down_blocks_0_attentions_0_proj_in.dora_scale', [32, 1])], {}));
  await t.rejects(model.textToImage({ ...quick, loras: [{ path: dora }] }), { code: 'ERR_MODEL_FORMAT', message: /module 'lora_unet_down_blocks_0_attentions_0_proj_in' lacks its down matrix/ });
  const half = path.join(dir, 'half.safetensors');
  await writeFile(half, encodeSafetensors([tensor('lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight', [4, 32, 1, 1])], {}));
  await t.rejects(model.textToImage({ ...quick, loras: [{ path: half }] }), { code: 'ERR_MODEL_FORMAT', message: /module 'lora_unet_down_blocks_0_attentions_0_proj_in' lacks its up matrix/ });
  await t.rejects(model.textToImage({ ...quick, loras: [{ path: path.join(dir, 'absent.safetensors') }] }), { code: 'ERR_MODEL_IO' });
  await t.rejects(model.textToImage({ ...quick, loraDir: 5 as unknown as string }), { name: 'TypeError', message: /loraDir/ });
});

t.test('the weights come back exactly even when the checkpoint file changed since loading', async (t) => {
  const file = await writeTinyCheckpoint(t.testdir(), { seed: 1 });
  const own = await loadModel(file, { backend: 'cpu', threads: 1, loraDir });
  t.teardown(() => own.close());
  const before = await pixels({ prompt: 'a castle' }, own);
  await writeFile(file, tinyCheckpointBytes({ seed: 2 }));
  t.notOk((await pixels({ prompt: 'a castle <lora:style:1>' }, own)).equals(before));
  t.ok((await pixels({ prompt: 'a castle' }, own)).equals(before));
});

t.test('a checkpoint file changed during a LoRA call leaves a model that refuses to generate and says why', async (t) => {
  const file = await writeTinyCheckpoint(t.testdir(), { seed: 1 });
  const own = await loadModel(file, { backend: 'cpu', threads: 1, loraDir });
  t.teardown(() => own.close());
  let replaced = false;
  await own.textToImage({
    ...quick, prompt: 'a castle <lora:style:1>',
    onProgress: () => {
      if (!replaced) writeFileSync(file, tinyCheckpointBytes({ seed: 2 }));
      replaced = true;
    },
  });
  await t.rejects(own.textToImage({ ...quick, prompt: 'a castle' }), {
    code: 'ERR_MODEL_IO', message: /could not be restored from the checkpoint .*differs from the loaded one.*load the model again/,
  });
});

t.test('weights kept quantized get the LoRA for the call and their exact bytes back', async (t) => {
  const quantized = await loadModel(model.path, { backend: 'cpu', threads: 1, weightType: 'q8_0', loraDir });
  t.teardown(() => quantized.close());
  const before = await pixels({ prompt: 'a castle' }, quantized);
  t.notOk((await pixels({ prompt: 'a castle <lora:style:1>' }, quantized)).equals(before));
  t.ok((await pixels({ prompt: 'a castle' }, quantized)).equals(before));
});

t.test('an SD 2.x LoRA applies to an SD 2.x model (packed q/k/v rows) and comes off again', async (t) => {
  const sd2 = await loadModel(await writeTinyCheckpoint(dir, { family: 'sd2' }), { backend: 'cpu', threads: 1, loraDir });
  t.teardown(() => sd2.close());
  const before = await pixels({ prompt: 'a castle' }, sd2);
  t.notOk((await pixels({ prompt: 'a castle <lora:for-sd2:1>' }, sd2)).equals(before));
  const textOnly = await pixels({ prompt: 'a castle <lora:for-sd2:1:0>' }, sd2);
  t.notOk(textOnly.equals(before), 'the text encoder part changes the image');
  t.ok((await pixels({ prompt: 'a castle' }, sd2)).equals(before));
});

t.test('the parameters text keeps the prompt as written and records Lora hashes as A1111 does', async (t) => {
  const [image] = await model.textToImage({ ...quick, prompt: 'a castle <lora:style:0.8>, <lora:other>' });
  const file = await readFile(path.join(loraDir, 'style.safetensors'));
  const dataStart = 8 + Number(file.readBigUInt64LE(0));
  const style = createHash('sha256').update(file.subarray(dataStart)).digest('hex').slice(0, 12);
  t.match(image!.parameters, /^a castle <lora:style:0\.8>, <lora:other>\n/);
  t.match(image!.parameters, new RegExp(`, Lora hashes: "style: ${style}, other: [0-9a-f]{12}"$`));
  const plain = await model.textToImage({ ...quick, prompt: 'a castle' });
  t.notMatch(plain[0]!.parameters, /Lora hashes/);
});

t.test('the negative prompt\'s tags stay text, as in A1111', async (t) => {
  await t.resolves(model.textToImage({ ...quick, prompt: 'a castle', negativePrompt: '<lora:nope:1>' }));
});

t.test('tags are read as A1111 reads them', async (t) => {
  t.same(extractLoraTags('a <lora:x> b <lora:y:0.5> c <lyco:z:0.2:0.9> <lora:w:te=0.3:unet=2>'), {
    text: 'a  b  c  ',
    tags: [
      { name: 'x', textWeight: 1, unetWeight: 1 },
      { name: 'y', textWeight: 0.5, unetWeight: 0.5 },
      { name: 'z', textWeight: 0.2, unetWeight: 0.9 },
      { name: 'w', textWeight: 0.3, unetWeight: 2 },
    ],
  });
  t.throws(() => extractLoraTags('<lora:x:heavy>'), { name: 'RangeError', message: /LoRA weight.*"heavy"/ });
  t.throws(() => extractLoraTags('<hypernet:x:1>'), { name: 'RangeError', message: /"hypernet" extra network; sdnode applies <lora:NAME:weight> only/ });
});

t.test('the loras option is checked', async (t) => {
  await t.rejects(model.textToImage({ ...quick, loras: [{ path: 'x.safetensors', weight: 11 }] }), {
    name: 'RangeError', message: /loras\[0\]\.weight/,
  });
  await t.rejects(model.textToImage({ ...quick, loras: 'x' as unknown as [] }), { name: 'TypeError', message: /loras/ });
});

t.test('listLoras lists names, aliases, paths and metadata', async (t) => {
  const list = await listLoras(loraDir);
  t.same(list.map((lora) => lora.name), ['broken', 'for-sd2', 'nested', 'other', 'style', 'style-diffusers']);
  t.match(list.find((lora) => lora.name === 'style'), {
    alias: 'style-alias', path: path.join(loraDir, 'style.safetensors'), metadata: { ss_output_name: 'style-alias' },
  });
  t.same(await listLoras(path.join(dir, 'missing')), []);
});

t.test('the LoRA fixture writes what its options say', async (t) => {
  const bytes = tinyLoraBytes({ rank: 2 });
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString()) as Record<string, { shape: number[] }>;
  t.same(header['lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight']?.shape, [2, 32]);
  t.same(header['lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight']?.shape, [32, 2, 1, 1]);
});

t.test('an SDXL LoRA (kohya te1 / te2 / unet names, or diffusers\') applies to an SDXL model and comes off again', async (t) => {
  const sdxlLoras = path.join(dir, 'sdxl-loras');
  await writeTinyLora(sdxlLoras, 'xl', { family: 'sdxl' });
  await writeTinyLora(sdxlLoras, 'xl-diffusers', { family: 'sdxl', format: 'diffusers' });
  const sdxl = await loadModel(await writeTinyCheckpoint(dir, { family: 'sdxl' }), { backend: 'cpu', threads: 1, loraDir: sdxlLoras });
  t.teardown(() => sdxl.close());
  const before = await pixels({ prompt: 'a castle' }, sdxl);
  const withLora = await pixels({ prompt: 'a castle <lora:xl:1>' }, sdxl);
  t.notOk(withLora.equals(before));
  t.ok((await pixels({ prompt: 'a castle <lora:xl-diffusers:1>' }, sdxl)).equals(withLora), 'diffusers names, same update');
  const textOnly = await pixels({ prompt: 'a castle <lora:xl:1:0>' }, sdxl);
  t.notOk(textOnly.equals(before), 'the text encoders\' part changes the image');
  t.notOk(textOnly.equals(withLora));
  t.ok((await pixels({ prompt: 'a castle' }, sdxl)).equals(before), 'the weights are the checkpoint\'s again');
});
