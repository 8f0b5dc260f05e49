// The weightType load option: weights converted or quantized on load, the resident size reported,
// and the images still close to those of the weights as stored.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { loadAddon } from '../bindings/index.js';
import { generate, loadModel, weightTypes, type WeightType } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu, draw, meanAbsDiff, quick } from './fixtures/draw.js';
import { tinyGgufBytes } from './fixtures/gguf.js';

const dir = t.testdir();
const checkpoint = await writeTinyCheckpoint(dir, { dtype: 'f16' });
const stored = await draw(checkpoint);

t.test('q8_0 shrinks the resident weights of an f16 checkpoint and draws close to them', async (t) => {
  const q8 = await draw(checkpoint, { weightType: 'q8_0' });
  t.ok(q8.info.weightBytes < stored.info.weightBytes, `${q8.info.weightBytes} < ${stored.info.weightBytes} bytes`);
  // Measured 0.31–0.40 over ten seeds and two samplers; two different seeds differ by about 67.
  const diff = meanAbsDiff(q8.rgb, stored.rgb);
  t.ok(diff > 0 && diff < 1.5, `mean absolute pixel difference ${diff.toFixed(2)} is in (0, 1.5)`);
});

t.test('a K-quant quantizes only the matrices whose rows are whole 256-value blocks', async (t) => {
  const q4k = await draw(checkpoint, { weightType: 'q4_k' });
  const q4 = await draw(checkpoint, { weightType: 'q4_0' });
  // The tiny model's rows are 32 to 256 values: q4_0 takes all of them, q4_K the few of 256.
  t.ok(q4.info.weightBytes < q4k.info.weightBytes, `q4_0 ${q4.info.weightBytes} < q4_K ${q4k.info.weightBytes} bytes`);
  t.ok(q4k.info.weightBytes < stored.info.weightBytes, `q4_K ${q4k.info.weightBytes} < f16 ${stored.info.weightBytes} bytes`);
});

t.test('f32 widens every matrix and kernel, f16 narrows a quantized GGUF back', async (t) => {
  const f32 = await draw(checkpoint, { weightType: 'f32' });
  t.ok(f32.info.weightBytes > 1.9 * stored.info.weightBytes, `${f32.info.weightBytes} is about twice ${stored.info.weightBytes}`);
  const gguf = path.join(dir, 'tiny-q8_0.gguf');
  await writeFile(gguf, tinyGgufBytes({ type: 'q8_0' }));
  const widened = await draw(gguf, { weightType: 'f16' });
  t.equal(widened.info.weightBytes, stored.info.weightBytes);
});

t.test('every weight type loads and draws near the weights as stored', async (t) => {
  for (const weightType of weightTypes) {
    const drawing = await draw(checkpoint, { weightType });
    const diff = meanAbsDiff(drawing.rgb, stored.rgb);
    // q4_0 and q4_1 are the farthest, at about 1.5.
    t.ok(diff < 5, `${weightType}: mean absolute pixel difference ${diff.toFixed(2)} is below 5`);
  }
});

t.test('weightType is case-insensitive, as ggml spells the K-quants q4_K', async (t) => {
  const upper = await draw(checkpoint, { weightType: 'Q4_K' as WeightType });
  const lower = await draw(checkpoint, { weightType: 'q4_k' });
  t.equal(upper.info.weightBytes, lower.info.weightBytes);
  t.ok(upper.rgb.equals(lower.rgb));
});

t.test('an unknown weightType is a RangeError naming the option and the allowed types', async (t) => {
  const allowed = 'auto, f32, f16, q8_0, q6_k, q5_k, q5_1, q5_0, q4_k, q4_1, q4_0, q3_k, q2_k';
  await t.rejects(loadModel(checkpoint, { weightType: 'q9' as WeightType }),
    new RangeError(`Expected one of ${allowed} for weightType but received "q9" of type string`));
  await t.rejects(loadModel(checkpoint, { weightType: 8 as unknown as WeightType }),
    new TypeError(`Expected one of ${allowed} for weightType but received 8 of type number`));
  await t.rejects(generate({ model: checkpoint, ...quick, weightType: 'int4' as WeightType }),
    { name: 'RangeError', message: /for weightType/ });
});

t.test('the engine itself refuses an unknown weightType with ERR_INVALID_ARGUMENT', async (t) => {
  await t.rejects(loadAddon().loadModel(checkpoint, { backend: 'cpu', threads: 1, prediction: 'auto', weightType: 'q9' }), {
    code: 'ERR_INVALID_ARGUMENT', message: /weightType must be one of auto, f32, f16, q8_0, .*got 'q9'/,
  });
});

t.test('generate() loads a path once per weightType', async (t) => {
  const [asStored] = await generate({ model: checkpoint, ...quick, ...cpu });
  const [quantized] = await generate({ model: checkpoint, ...quick, ...cpu, weightType: 'q8_0' });
  const asStoredRgb = await sharp(asStored!.png).raw().toBuffer();
  const quantizedRgb = await sharp(quantized!.png).raw().toBuffer();
  t.ok(asStoredRgb.equals(stored.rgb), 'no weightType: the weights as stored');
  t.notOk(quantizedRgb.equals(asStoredRgb), 'q8_0: another model, other pixels');
});
