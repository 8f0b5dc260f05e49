// convertModel(): a checkpoint written as GGUF loads with the same resident weights and draws the
// same pixels as the checkpoint loaded with the same weightType; failures leave the output alone.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { convertModel, loadModel, type ConvertProgress } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { draw } from './fixtures/draw.js';

const dir = t.testdir();
const checkpoint = await writeTinyCheckpoint(dir, { dtype: 'f16' });

for (const weightType of ['q8_0', 'q4_k', 'f16'] as const) {
  t.test(`a ${weightType} GGUF draws the pixels of the checkpoint loaded with weightType ${weightType}`, async (t) => {
    const output = path.join(dir, `tiny-${weightType}.gguf`);
    const result = await convertModel(checkpoint, output, { weightType, threads: 2 });
    const converted = await draw(output);
    const onLoad = await draw(checkpoint, { weightType });
    t.equal(converted.info.format, 'gguf');
    t.equal(converted.info.weightBytes, onLoad.info.weightBytes, 'same resident size');
    t.ok(converted.rgb.equals(onLoad.rgb), 'same pixels');
    t.equal(result.bytes, (await readFile(output)).length);
    t.same(converted.info.storedTypes, result.types, 'the file stores the types the result reports');
    t.same(converted.info.unusedTensors, []);
  });
}

t.test('q8_0 quantizes the linear layers and keeps convolution kernels f16 and vectors f32', async (t) => {
  const output = path.join(dir, 'types-q8_0.gguf');
  const { types, tensors, skipped } = await convertModel(checkpoint, output, { weightType: 'q8_0', threads: 2 });
  const source = await loadModel(checkpoint, { backend: 'cpu', threads: 1 });
  t.teardown(() => source.close());
  t.same(Object.keys(types).sort(), ['f16', 'f32', 'q8_0']);
  t.equal(tensors, Object.values(source.info.storedTypes).reduce((a, b) => a + b, 0), 'every weight the model loads');
  t.same(skipped, []);
});

t.test('progress counts the tensors up to the last one', async (t) => {
  const seen: ConvertProgress[] = [];
  const { tensors } = await convertModel(checkpoint, path.join(dir, 'progress.gguf'), { onProgress: (p) => seen.push(p) });
  t.same(seen.at(-1), { tensor: tensors, tensors });
  t.ok(seen.every((p, i) => i === 0 || p.tensor > seen[i - 1]!.tensor), 'in order');
});

t.test('an existing output is kept unless overwrite is given', async (t) => {
  const output = path.join(dir, 'exists.gguf');
  await writeFile(output, 'keep me');
  await t.rejects(convertModel(checkpoint, output), { name: 'SdnodeError', code: 'ERR_OUTPUT_EXISTS', message: /exists.gguf exists; pass overwrite: true/ });
  t.equal(await readFile(output, 'utf8'), 'keep me');
  await convertModel(checkpoint, output, { overwrite: true });
  t.equal((await readFile(output)).subarray(0, 4).toString(), 'GGUF');
});

t.test('an aborted conversion rejects with an AbortError and leaves no file behind', async (t) => {
  const folder = t.testdir();
  const controller = new AbortController();
  const output = path.join(folder, 'aborted.gguf');
  const converting = convertModel(checkpoint, output, {
    signal: controller.signal, onProgress: () => controller.abort(),
  });
  await t.rejects(converting, { name: 'AbortError', code: 'ERR_ABORTED' });
  t.same(await readdir(folder), [], 'neither the output nor a temporary file');
});

t.test('a damaged input or the input as output fail by name and write nothing', async (t) => {
  const folder = t.testdir({ 'bad.safetensors': 'not a checkpoint' });
  await t.rejects(convertModel(path.join(folder, 'bad.safetensors'), path.join(folder, 'out.gguf')), { code: 'ERR_MODEL_FORMAT' });
  await t.rejects(convertModel(path.join(folder, 'missing.safetensors'), path.join(folder, 'out.gguf')), { code: 'ERR_MODEL_IO' });
  const gguf = path.join(dir, 'tiny-q8_0.gguf');
  await t.rejects(convertModel(gguf, gguf, { overwrite: true }), { code: 'ERR_INVALID_ARGUMENT', message: /the output is the input file/ });
  await t.rejects(convertModel(checkpoint, path.join(folder, 'no-such-folder', 'out.gguf')), { code: 'ERR_MODEL_IO', message: /cannot create/ });
  t.same(await readdir(folder), ['bad.safetensors']);
});

t.test('options are checked before anything is read', async (t) => {
  await t.rejects(convertModel(checkpoint, path.join(dir, 'x.gguf'), { weightType: 'q9' as 'q8_0' }),
    { name: 'RangeError', message: /^Expected one of auto, f32, f16, q8_0, .* for weightType but received "q9" of type string$/ });
  await t.rejects(convertModel(checkpoint, path.join(dir, 'x.gguf'), { threads: 0 }), { name: 'RangeError', message: /for threads/ });
  await t.rejects(convertModel(checkpoint, ''), { name: 'TypeError', message: /Expected non-empty string for output/ });
  await t.rejects(convertModel(checkpoint, path.join(dir, 'x.gguf'), { level: 3 } as object),
    { name: 'TypeError', message: /Unknown option "level" for convertModel/ });
});
