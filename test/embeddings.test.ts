// Textual-inversion embeddings: a file's stem named in a prompt stands for the file's vectors in
// place of token embeddings. An embedding holding the token vectors of some words must give the
// very image those words give.
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { loadEmbeddings, loadModel, type Model, type TextToImageOptions } from '../lib/index.js';
import { tinyCheckpointBytes } from './fixtures/checkpoint.js';
import { encodeFloats, encodeSafetensors, readSafetensorsHeader } from './fixtures/safetensors.js';
import { getJson, startTestServer } from './server-helpers.js';
import { pickle, torchFile } from './fixtures/torch-file.js';

const A = 320;
const CAT = 2368;
const PHOTO = 1125;

/** Rows `ids` of an f32 checkpoint's token embedding `tensor`. */
function tokenRows(checkpoint: Buffer, tensor: string, ids: number[]): Float32Array {
  const header = readSafetensorsHeader(checkpoint);
  const entry = header.tensors.get(tensor)!;
  const width = entry.shape[1]!;
  const out = new Float32Array(ids.length * width);
  ids.forEach((id, row) => {
    const start = header.dataStart + entry.data_offsets[0] + id * width * 4;
    for (let c = 0; c < width; c++) out[row * width + c] = checkpoint.readFloatLE(start + c * 4);
  });
  return out;
}

const embeddingFile = (tensors: Record<string, Float32Array>, width: number) => encodeSafetensors(
  Object.entries(tensors).map(([name, values]) => ({ name, dtype: 'F32' as const, shape: [values.length / width, width], data: encodeFloats(values, 'F32') })),
  {},
);

const dir = t.testdir();
const sd1 = tinyCheckpointBytes({ dtype: 'f32' });
const sd1Clip = 'cond_stage_model.transformer.text_model.embeddings.token_embedding.weight';
const width = readSafetensorsHeader(sd1).tensors.get(sd1Clip)!.shape[1]!;
const embeddingsDir = path.join(dir, 'embeddings');
await mkdir(path.join(embeddingsDir, 'sub'), { recursive: true });
// A1111's layout (emb_params), and diffusers' (one tensor named by its token) in a subfolder.
await writeFile(path.join(embeddingsDir, 'MyCat.safetensors'), embeddingFile({ emb_params: tokenRows(sd1, sd1Clip, [A, CAT]) }, width));
await writeFile(path.join(embeddingsDir, 'sub', 'photo-one.safetensors'), embeddingFile({ '<photo>': tokenRows(sd1, sd1Clip, [PHOTO]) }, width));
await writeFile(path.join(embeddingsDir, 'too-wide.safetensors'), embeddingFile({ emb_params: new Float32Array(2 * (width + 8)) }, width + 8));
await writeFile(path.join(embeddingsDir, 'pickled.pt'), Buffer.from('PK\x03\x04 not read'));
const checkpoint = path.join(dir, 'tiny-sd1-f32.safetensors');
await writeFile(checkpoint, sd1);

const model: Model = await loadModel(checkpoint, { backend: 'cpu', threads: 1, embeddingsDir });
t.teardown(() => model.close());
const bare: Model = await loadModel(checkpoint, { backend: 'cpu', threads: 1 });
t.teardown(() => bare.close());

const quick = { steps: 2, width: 64, height: 64, seed: 9 } as const;
async function pixels(options: TextToImageOptions, on: Model = model): Promise<Buffer> {
  const [image] = await on.textToImage({ ...quick, ...options });
  return sharp(image!.png).raw().toBuffer();
}

t.test('an embedding named in the prompt gives the image of the words whose token vectors it holds', async (t) => {
  const words = await pixels({ prompt: 'a photo of a cat' });
  t.ok((await pixels({ prompt: 'a photo of mycat' })).equals(words), 'by its lowercased name');
  t.ok((await pixels({ prompt: 'a PHOTO of MYCAT' })).equals(words), 'in any case');
  t.ok((await pixels({ prompt: 'a photo-one of a cat' })).equals(words), 'a diffusers file in a subfolder, by its file stem');
  t.notOk((await pixels({ prompt: 'a photo of mycat' }, bare)).equals(words), 'without the folder the name is text');
  t.ok((await pixels({ prompt: 'a photo of mycat', embeddingsDir }, bare)).equals(words), 'a call\'s own embeddingsDir');
});

t.test('emphasis weighs an embedding\'s vectors as it weighs words, and the negative prompt takes embeddings too', async (t) => {
  t.ok((await pixels({ prompt: 'a photo of (mycat:1.4)' })).equals(await pixels({ prompt: 'a photo of (a cat:1.4)' })));
  t.notOk((await pixels({ prompt: 'a photo of (mycat:1.4)' })).equals(await pixels({ prompt: 'a photo of mycat' })));
  const negative = await pixels({ prompt: 'a house', negativePrompt: 'blurry mycat' });
  t.ok(negative.equals(await pixels({ prompt: 'a house', negativePrompt: 'blurry a cat' })));
});

t.test('a name inside a longer word stays text', async (t) => {
  t.ok((await pixels({ prompt: 'a photo of mycats' })).equals(await pixels({ prompt: 'a photo of mycats' }, bare)));
  t.ok((await pixels({ prompt: 'a photo of xmycat' })).equals(await pixels({ prompt: 'a photo of xmycat' }, bare)));
});

t.test('torch files (A1111 .pt, diffusers learned_embeds.bin) are read as data: a call in the pickle is not made', async (t) => {
  const folder = path.join(dir, 'torch-embeddings');
  await mkdir(folder);
  const witness = path.join(dir, 'pickle-ran');
  const a1111 = pickle.dict([
    ['string_to_token', pickle.dict([['*', pickle.int(265)]])],
    ['string_to_param', pickle.dict([['*', pickle.tensor('0', [2, width], true)]])],
    ['name', pickle.str('ptcat')],
    ['step', pickle.int(1000)],
    ['sd_checkpoint', pickle.call(pickle.global('os', 'system'), pickle.str(`touch ${witness}`))],
    ['sd_checkpoint_name', pickle.call(pickle.global('builtins', 'exec'), pickle.str(`open(${JSON.stringify(witness)}, 'w')`))],
  ]);
  await writeFile(path.join(folder, 'ptcat.pt'), torchFile(a1111, { 0: tokenRows(sd1, sd1Clip, [A, CAT]) }));
  const diffusers = pickle.dict([['<photo>', pickle.tensor('0', [width])]]);
  await writeFile(path.join(folder, 'binphoto.bin'), torchFile(diffusers, { 0: tokenRows(sd1, sd1Clip, [PHOTO]) }));
  const words = await pixels({ prompt: 'a photo of a cat' });
  t.ok((await pixels({ prompt: 'a binphoto of ptcat', embeddingsDir: folder })).equals(words));
  await t.rejects(access(witness), 'nothing in the pickle ran');
});

t.test('the image\'s parameters carry TI hashes of the embeddings used, as A1111 writes them', async (t) => {
  const [image] = await model.textToImage({ ...quick, prompt: 'a photo of mycat', negativePrompt: 'photo-one' });
  const hash = async (file: string) => createHash('sha256').update(await readFile(path.join(embeddingsDir, file))).digest('hex').slice(0, 12);
  t.match(image!.parameters, `TI hashes: "MyCat: ${await hash('MyCat.safetensors')}, photo-one: ${await hash('sub/photo-one.safetensors')}"`);
  const [plain] = await model.textToImage({ ...quick, prompt: 'a photo of a cat' });
  t.notMatch(plain!.parameters, 'TI hashes');
});

t.test('files that do not fit the model are skipped with the reason, and their names stay text', async (t) => {
  const set = await loadEmbeddings(embeddingsDir, model.info, { warn: false });
  t.same(set.loaded.map((e) => [e.name, e.vectors]), [['MyCat', 2], ['photo-one', 1]]);
  t.match(set.skipped, [
    { name: 'pickled', reason: /cannot read it: it is not a zip archive/ },
    { name: 'too-wide', reason: `its vectors are ${width + 8} wide; this sd1 model's text encoder takes ${width}`, shape: width + 8, vectors: 2 },
  ]);
  t.ok((await pixels({ prompt: 'a too-wide house' })).equals(await pixels({ prompt: 'a too-wide house' }, bare)));
});

t.test('SDXL embeddings carry vectors for both text encoders', async (t) => {
  const sdxl = tinyCheckpointBytes({ family: 'sdxl', dtype: 'f32' });
  const l = 'conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight';
  const g = 'conditioner.embedders.1.model.token_embedding.weight';
  const header = readSafetensorsHeader(sdxl);
  const [wl, wg] = [header.tensors.get(l)!.shape[1]!, header.tensors.get(g)!.shape[1]!];
  const tmp = t.testdir();
  const file = path.join(tmp, 'sdxl.safetensors');
  await writeFile(file, sdxl);
  const folder = path.join(tmp, 'embeddings');
  await mkdir(folder);
  await writeFile(path.join(folder, 'xlcat.safetensors'), encodeSafetensors([
    { name: 'clip_g', dtype: 'F32', shape: [2, wg], data: encodeFloats(tokenRows(sdxl, g, [A, CAT]), 'F32') },
    { name: 'clip_l', dtype: 'F32', shape: [2, wl], data: encodeFloats(tokenRows(sdxl, l, [A, CAT]), 'F32') },
  ], {}));
  // An SD 1.x embedding is skipped for SDXL.
  await writeFile(path.join(folder, 'sd1cat.safetensors'), await readFile(path.join(embeddingsDir, 'MyCat.safetensors')));
  const xl = await loadModel(file, { backend: 'cpu', threads: 1, embeddingsDir: folder });
  t.teardown(() => xl.close());
  const words = await pixels({ prompt: 'a photo of a cat' }, xl);
  t.ok((await pixels({ prompt: 'a photo of xlcat' }, xl)).equals(words));
  const { skipped } = await loadEmbeddings(folder, xl.info, { warn: false });
  t.match(skipped, [{ name: 'sd1cat', reason: /SDXL embeddings hold clip_l and clip_g/ }]);
});

t.test('the SDXL refiner takes the clip_g part of SDXL embeddings, generating and in a hand-off', async (t) => {
  const refinerBytes = tinyCheckpointBytes({ family: 'sdxl-refiner', dtype: 'f32' });
  const sdxl = tinyCheckpointBytes({ family: 'sdxl', dtype: 'f32' });
  const g = 'conditioner.embedders.0.model.token_embedding.weight';
  const wg = readSafetensorsHeader(refinerBytes).tensors.get(g)!.shape[1]!;
  const wl = readSafetensorsHeader(sdxl).tensors.get('conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight')!.shape[1]!;
  const tmp = t.testdir();
  const folder = path.join(tmp, 'embeddings');
  await mkdir(folder);
  await writeFile(path.join(folder, 'gcat.safetensors'), encodeSafetensors([
    { name: 'clip_g', dtype: 'F32', shape: [2, wg], data: encodeFloats(tokenRows(refinerBytes, g, [A, CAT]), 'F32') },
    { name: 'clip_l', dtype: 'F32', shape: [2, wl], data: encodeFloats(new Float32Array(2 * wl), 'F32') },
  ], {}));
  await writeFile(path.join(tmp, 'refiner.safetensors'), refinerBytes);
  await writeFile(path.join(tmp, 'sdxl.safetensors'), sdxl);
  const refiner = await loadModel(path.join(tmp, 'refiner.safetensors'), { backend: 'cpu', threads: 1, embeddingsDir: folder });
  t.teardown(() => refiner.close());
  t.ok((await pixels({ prompt: 'a photo of gcat' }, refiner)).equals(await pixels({ prompt: 'a photo of a cat' }, refiner)));
  // In a hand-off the refiner's half sees the embedding too: only its steps differ from the words'.
  const base = await loadModel(path.join(tmp, 'sdxl.safetensors'), { backend: 'cpu', threads: 1, embeddingsDir: folder });
  t.teardown(() => base.close());
  const handoff = (prompt: string, switchAt: number) => pixels({ prompt, steps: 4, refiner: { model: refiner, switchAt } }, base);
  t.ok((await handoff('a photo of gcat', 0.01)).equals(await handoff('a photo of a cat', 0.01)), 'every step on the refiner');
});

t.test('SD 2.x takes embeddings of its OpenCLIP width', async (t) => {
  const sd2 = tinyCheckpointBytes({ family: 'sd2', dtype: 'f32' });
  const clip = 'cond_stage_model.model.token_embedding.weight';
  const tmp = t.testdir();
  const file = path.join(tmp, 'sd2.safetensors');
  await writeFile(file, sd2);
  const folder = path.join(tmp, 'embeddings');
  await mkdir(folder);
  const w = readSafetensorsHeader(sd2).tensors.get(clip)!.shape[1]!;
  await writeFile(path.join(folder, 'twocat.safetensors'), embeddingFile({ emb_params: tokenRows(sd2, clip, [A, CAT]) }, w));
  const v2 = await loadModel(file, { backend: 'cpu', threads: 1, embeddingsDir: folder });
  t.teardown(() => v2.close());
  t.ok((await pixels({ prompt: 'a photo of twocat' }, v2)).equals(await pixels({ prompt: 'a photo of a cat' }, v2)));
});

t.test('a bad embeddingsDir is a TypeError naming it', async (t) => {
  await t.rejects(model.textToImage({ ...quick, prompt: 'x', embeddingsDir: 5 as unknown as string }), { name: 'TypeError', message: /embeddingsDir/ });
  await t.rejects(loadModel(checkpoint, { embeddingsDir: '' }), { name: 'TypeError', message: /embeddingsDir/ });
});

t.test('/sdapi/v1/embeddings lists the loaded and the skipped embeddings with the reasons', async (t) => {
  const { url } = await startTestServer(t, { modelPath: checkpoint, embeddingsDir });
  const { body } = await getJson(`${url}/sdapi/v1/embeddings`);
  const common = { step: null, sd_checkpoint: null, sd_checkpoint_name: null };
  t.same((body as { loaded: unknown }).loaded, {
    MyCat: { ...common, shape: width, vectors: 2, filename: 'MyCat.safetensors' },
    'photo-one': { ...common, shape: width, vectors: 1, filename: path.join('sub', 'photo-one.safetensors') },
  });
  t.match((body as { skipped: unknown }).skipped, {
    pickled: { ...common, shape: null, vectors: null, filename: 'pickled.pt', reason: /not a zip archive/ },
    'too-wide': { ...common, shape: width + 8, vectors: 2, filename: 'too-wide.safetensors', reason: `its vectors are ${width + 8} wide; this sd1 model's text encoder takes ${width}` },
  });
});

t.test('the server reads the models folder\'s embeddings folder by default and does not offer its files as checkpoints', async (t) => {
  // Beside the test's own folder, which startTestServer takes for its output.
  const models = path.join(dir, 'models');
  await mkdir(path.join(models, 'embeddings'), { recursive: true });
  await writeFile(path.join(models, 'tiny.safetensors'), sd1);
  await writeFile(path.join(models, 'embeddings', 'MyCat.safetensors'), await readFile(path.join(embeddingsDir, 'MyCat.safetensors')));
  const { url } = await startTestServer(t, { modelsDir: models });
  t.same(((await getJson(`${url}/sdapi/v1/sd-models`)).body as unknown as { model_name: string }[]).map((m) => m.model_name), ['tiny']);
  const listed = (await getJson(`${url}/sdapi/v1/embeddings`)).body as unknown as { loaded: object };
  t.same(Object.keys(listed.loaded), ['MyCat']);
});
