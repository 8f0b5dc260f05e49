// The tiny-checkpoint fixture is what every engine test stands on, so it is checked against an
// independent reading of the file rather than trusted.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import {
  DAMAGED_TENSOR, damagedCheckpointBytes, tinyCheckpointBytes, writeDamagedCheckpoint,
  writeTinyCheckpoint, type DamageKind, type TinyCheckpointOptions,
} from './fixtures/checkpoint.js';
import {
  bfloat16FromFloat, dtypeBytes, elementCount, halfFromFloat, readSafetensorsHeader,
  type SafetensorsDtype,
} from './fixtures/safetensors.js';

const U = 'model.diffusion_model';

function shapes(options: TinyCheckpointOptions): Map<string, number[]> {
  const { tensors } = readSafetensorsHeader(tinyCheckpointBytes(options));
  return new Map([...tensors].map(([name, e]) => [name, e.shape]));
}

function f32Values(buf: Buffer, name: string): Float32Array {
  const { tensors, dataStart } = readSafetensorsHeader(buf);
  const [begin, end] = tensors.get(name)!.data_offsets;
  const bytes = buf.subarray(dataStart + begin, dataStart + end);
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

function meanAndStd(values: Float32Array): [number, number] {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
  return [mean, Math.sqrt(variance)];
}

t.test('every variant parses back with contiguous offsets that match the shapes', async (t) => {
  const variants: TinyCheckpointOptions[] = [
    { family: 'sd1' }, { family: 'sd2' }, { family: 'sd1', inpaint: true },
    { family: 'sd2', inpaint: true, dtype: 'f32' }, { family: 'sd1', dtype: 'bf16' },
  ];
  for (const options of variants) {
    const buf = tinyCheckpointBytes(options);
    const { headerLength, dataStart, tensors } = readSafetensorsHeader(buf);
    const label = JSON.stringify(options);
    t.equal(headerLength % 8, 0, `${label}: data starts 8-byte aligned`);
    let expectedBegin = 0;
    for (const [name, entry] of tensors) {
      const [begin, end] = entry.data_offsets;
      const size = elementCount(entry.shape) * dtypeBytes[entry.dtype as SafetensorsDtype];
      if (begin !== expectedBegin || end - begin !== size) {
        t.fail(`${label}: ${name} ${entry.dtype} ${JSON.stringify(entry.shape)} at ${begin}..${end}`);
      }
      expectedBegin = end;
    }
    t.equal(dataStart + expectedBegin, buf.length, `${label}: data ends at the end of the file`);
    const want = { f16: 'F16', f32: 'F32', bf16: 'BF16' }[options.dtype ?? 'f16'];
    t.ok([...tensors.values()].every((e) => e.dtype === want), `${label}: every tensor is ${want}`);
  }
});

t.test('the same seed gives the same bytes and another seed other weights', async (t) => {
  const a = tinyCheckpointBytes({ seed: 7 });
  t.ok(a.equals(tinyCheckpointBytes({ seed: 7 })));
  const b = tinyCheckpointBytes({ seed: 8 });
  const { dataStart } = readSafetensorsHeader(a);
  t.equal(b.length, a.length, 'the layout does not depend on the seed');
  t.notOk(a.subarray(dataStart).equals(b.subarray(dataStart)), 'the data does');
});

t.test('sd1 has the CLIP ViT-L text encoder and conv projections in the UNet', async (t) => {
  const s = shapes({ family: 'sd1' });
  const clip = 'cond_stage_model.transformer.text_model';
  t.same(s.get(`${clip}.embeddings.token_embedding.weight`), [49408, 32]);
  t.same(s.get(`${clip}.embeddings.position_embedding.weight`), [77, 32]);
  t.same(s.get(`${clip}.encoder.layers.1.mlp.fc1.weight`), [128, 32]);
  t.notOk(s.has(`${clip}.encoder.layers.2.mlp.fc1.weight`), 'two layers');
  t.same(s.get(`${clip}.final_layer_norm.weight`), [32]);
  t.same(s.get(`${U}.input_blocks.1.1.proj_in.weight`), [32, 32, 1, 1]);
  t.same(s.get(`${U}.middle_block.1.proj_out.weight`), [64, 64, 1, 1]);
  t.notOk([...s.keys()].some((n) => n.startsWith('cond_stage_model.model.')));
});

t.test('sd2 has the OpenCLIP text encoder and linear projections in the UNet', async (t) => {
  const s = shapes({ family: 'sd2' });
  const clip = 'cond_stage_model.model';
  t.same(s.get(`${clip}.token_embedding.weight`), [49408, 32]);
  t.same(s.get(`${clip}.positional_embedding`), [77, 32]);
  t.same(s.get(`${clip}.transformer.resblocks.2.attn.in_proj_weight`), [96, 32]);
  t.same(s.get(`${clip}.transformer.resblocks.2.attn.in_proj_bias`), [96]);
  t.notOk(s.has(`${clip}.transformer.resblocks.3.ln_1.weight`), 'three layers');
  t.same(s.get(`${clip}.text_projection`), [32, 32]);
  t.same(s.get(`${clip}.logit_scale`), [], 'logit_scale is 0-dim');
  t.same(s.get(`${U}.input_blocks.1.1.proj_in.weight`), [32, 32]);
  t.same(s.get(`${U}.middle_block.1.proj_out.weight`), [64, 64]);
  t.notOk([...s.keys()].some((n) => n.startsWith('cond_stage_model.transformer.')));
});

t.test('the head counts shapes cannot tell are in the metadata', async (t) => {
  const sd1 = readSafetensorsHeader(tinyCheckpointBytes({ family: 'sd1' })).metadata;
  const sd2 = readSafetensorsHeader(tinyCheckpointBytes({ family: 'sd2' })).metadata;
  t.same(sd1, { format: 'pt', generator: 'sdnode-test-fixture', 'sdnode.clip_num_heads': '2', 'sdnode.unet_num_heads': '2' });
  t.same(sd2, { format: 'pt', generator: 'sdnode-test-fixture', 'sdnode.clip_num_heads': '2', 'sdnode.unet_head_dim': '16' });
});

t.test('an inpainting UNet differs only in taking 9 input channels', async (t) => {
  const plain = shapes({ family: 'sd1' });
  const inpaint = shapes({ family: 'sd1', inpaint: true });
  t.same(plain.get(`${U}.input_blocks.0.0.weight`), [32, 4, 3, 3]);
  t.same(inpaint.get(`${U}.input_blocks.0.0.weight`), [32, 9, 3, 3]);
  const differing = [...plain].filter(([name, shape]) => JSON.stringify(inpaint.get(name)) !== JSON.stringify(shape));
  t.same(differing.map(([name]) => name), [`${U}.input_blocks.0.0.weight`]);
});

t.test('the UNet has two levels with attention at level 0 and in the middle', async (t) => {
  const s = shapes({ family: 'sd1' });
  t.same(s.get(`${U}.time_embed.0.weight`), [128, 32]);
  t.same(s.get(`${U}.time_embed.2.weight`), [128, 128]);
  t.same(s.get(`${U}.input_blocks.1.0.emb_layers.1.weight`), [32, 128]);
  t.same(s.get(`${U}.input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight`), [256, 32]);
  t.same(s.get(`${U}.input_blocks.1.1.transformer_blocks.0.ff.net.2.weight`), [32, 128]);
  t.same(s.get(`${U}.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight`), [32, 32]);
  t.same(s.get(`${U}.input_blocks.2.0.op.weight`), [32, 32, 3, 3]);
  t.same(s.get(`${U}.input_blocks.3.0.skip_connection.weight`), [64, 32, 1, 1]);
  t.notOk(s.has(`${U}.input_blocks.3.1.norm.weight`), 'no attention at level 1');
  t.notOk(s.has(`${U}.input_blocks.4.0.in_layers.0.weight`), 'one res block per level');
  t.same(s.get(`${U}.middle_block.2.out_layers.3.weight`), [64, 64, 3, 3]);
  t.same(s.get(`${U}.output_blocks.0.0.in_layers.2.weight`), [64, 128, 3, 3]);
  t.same(s.get(`${U}.output_blocks.1.1.conv.weight`), [64, 64, 3, 3], 'upsample ends level 1');
  t.same(s.get(`${U}.output_blocks.2.0.skip_connection.weight`), [32, 96, 1, 1]);
  t.same(s.get(`${U}.output_blocks.3.1.proj_out.weight`), [32, 32, 1, 1]);
  t.notOk(s.has(`${U}.output_blocks.4.0.in_layers.0.weight`));
  t.same(s.get(`${U}.out.0.weight`), [32]);
  t.same(s.get(`${U}.out.2.weight`), [4, 32, 3, 3]);
});

t.test('the VAE has four levels, 64-channel middle and 4 latent channels', async (t) => {
  const s = shapes({ family: 'sd2' });
  const V = 'first_stage_model';
  t.same(s.get(`${V}.encoder.conv_in.weight`), [32, 3, 3, 3]);
  t.notOk(s.has(`${V}.encoder.down.2.block.0.nin_shortcut.weight`), '32 channels up to level 2');
  t.same(s.get(`${V}.encoder.down.2.downsample.conv.weight`), [32, 32, 3, 3]);
  t.same(s.get(`${V}.encoder.down.3.block.0.nin_shortcut.weight`), [64, 32, 1, 1]);
  t.notOk(s.has(`${V}.encoder.down.3.downsample.conv.weight`));
  t.notOk(s.has(`${V}.encoder.down.0.block.1.norm1.weight`), 'one encoder res block per level');
  t.same(s.get(`${V}.encoder.mid.attn_1.q.weight`), [64, 64, 1, 1]);
  t.same(s.get(`${V}.encoder.conv_out.weight`), [8, 64, 3, 3]);
  t.same(s.get(`${V}.quant_conv.weight`), [8, 8, 1, 1]);
  t.same(s.get(`${V}.post_quant_conv.weight`), [4, 4, 1, 1]);
  t.same(s.get(`${V}.decoder.conv_in.weight`), [64, 4, 3, 3]);
  t.same(s.get(`${V}.decoder.up.3.block.1.conv2.weight`), [64, 64, 3, 3]);
  t.same(s.get(`${V}.decoder.up.3.upsample.conv.weight`), [64, 64, 3, 3]);
  t.same(s.get(`${V}.decoder.up.2.block.0.nin_shortcut.weight`), [32, 64, 1, 1]);
  t.same(s.get(`${V}.decoder.up.1.upsample.conv.weight`), [32, 32, 3, 3]);
  t.notOk(s.has(`${V}.decoder.up.0.upsample.conv.weight`));
  t.notOk(s.has(`${V}.decoder.up.0.block.0.nin_shortcut.weight`));
  t.same(s.get(`${V}.decoder.conv_out.weight`), [3, 32, 3, 3]);
});

t.test('weights are scaled like the full-size writer', async (t) => {
  const buf = tinyCheckpointBytes({ dtype: 'f32' });
  const check = (name: string, mean: number, std: number) => {
    const values = f32Values(buf, name);
    const [m, s] = meanAndStd(values);
    // Five standard errors: wide enough for any seed, narrow enough to catch a wrong scale.
    const n = values.length;
    const ok = Math.abs(m - mean) < (5 * std) / Math.sqrt(n) && Math.abs(s - std) < (5 * std) / Math.sqrt(2 * n);
    t.ok(ok, `${name}: mean ${m.toFixed(4)} std ${s.toFixed(4)} over ${n}`);
  };
  check('cond_stage_model.transformer.text_model.embeddings.token_embedding.weight', 0, 0.02);
  check(`${U}.input_blocks.1.0.in_layers.2.weight`, 0, 1 / Math.sqrt(32 * 9));
  check(`${U}.middle_block.0.out_layers.3.weight`, 0, 0.3 / Math.sqrt(64 * 9));
  check(`${U}.middle_block.0.in_layers.0.weight`, 1, 0.1);
});

t.test('f16 and bf16 files hold the f32 weights rounded', async (t) => {
  const name = `${U}.input_blocks.1.0.in_layers.2.weight`;
  const exact = f32Values(tinyCheckpointBytes({ dtype: 'f32' }), name);
  for (const [dtype, convert] of [['f16', halfFromFloat], ['bf16', bfloat16FromFloat]] as const) {
    const buf = tinyCheckpointBytes({ dtype });
    const { tensors, dataStart } = readSafetensorsHeader(buf);
    const begin = dataStart + tensors.get(name)!.data_offsets[0];
    const mismatch = exact.findIndex((v, i) => buf.readUInt16LE(begin + 2 * i) !== convert(v));
    t.equal(mismatch, -1, `${dtype} matches element-wise`);
  }
});

t.test('half conversions round to nearest even', async (t) => {
  const cases: [number, number, number][] = [
    // value, f16 bits, bf16 bits
    [1, 0x3c00, 0x3f80],
    [-2, 0xc000, 0xc000],
    [-0, 0x8000, 0x8000],
    [65504, 0x7bff, 0x4780],
    [65519, 0x7bff, 0x4780],
    [65520, 0x7c00, 0x4780],
    [Infinity, 0x7c00, 0x7f80],
    [1 + 2 ** -11, 0x3c00, 0x3f80], // f16 tie, even stays
    [1 + 3 * 2 ** -11, 0x3c02, 0x3f80], // f16 tie, odd rounds up
    [1 + 2 ** -8, 0x3c04, 0x3f80], // bf16 tie, even stays
    [1 + 3 * 2 ** -8, 0x3c0c, 0x3f82], // bf16 tie, odd rounds up
    [2 ** -24, 0x0001, 0x3380], // smallest f16 subnormal
    [2 ** -25, 0x0000, 0x3300], // f16 tie to even zero
    [1.5 * 2 ** -24, 0x0002, 0x33c0], // f16 subnormal tie, odd rounds up
    [2 ** -14 - 2 ** -25, 0x0400, 0x3880], // rounds up into the smallest normal
  ];
  for (const [value, f16, bf16] of cases) {
    t.equal(halfFromFloat(value), f16, `f16(${value})`);
    t.equal(bfloat16FromFloat(value), bf16, `bf16(${value})`);
  }
  t.equal(halfFromFloat(NaN) & 0x7e00, 0x7e00, 'f16 NaN stays NaN');
  t.equal(bfloat16FromFloat(NaN) & 0x7fc0, 0x7fc0, 'bf16 NaN stays NaN');
});

t.test('writes checkpoints to files named after their options', async (t) => {
  const dir = t.testdir();
  const file = await writeTinyCheckpoint(dir, { family: 'sd2', inpaint: true, seed: 3 });
  t.match(file, /tiny-sd2-inpaint-f16-seed3\.safetensors$/);
  t.ok((await readFile(file)).equals(tinyCheckpointBytes({ family: 'sd2', inpaint: true, seed: 3 })));
  t.match(await writeTinyCheckpoint(dir, { name: 'model.safetensors' }), /model\.safetensors$/);
});

t.test('each damaged checkpoint is broken in exactly its own way', async (t) => {
  const valid = readSafetensorsHeader(tinyCheckpointBytes());
  const dataLength = (buf: Buffer) => buf.length - readSafetensorsHeader(buf).dataStart;
  const expectations: Record<DamageKind, (buf: Buffer) => void> = {
    empty: (buf) => t.equal(buf.length, 0),
    garbage: (buf) => t.throws(() => readSafetensorsHeader(buf)),
    'header-too-long': (buf) => t.equal(buf.readBigUInt64LE(0), BigInt(buf.length - 7)),
    'bad-json': (buf) => t.throws(() => readSafetensorsHeader(buf), SyntaxError),
    truncated: (buf) => {
      const { tensors } = readSafetensorsHeader(buf);
      t.ok(Math.max(...[...tensors.values()].map((e) => e.data_offsets[1])) > dataLength(buf));
    },
    'offset-out-of-range': (buf) => {
      const entry = readSafetensorsHeader(buf).tensors.get(DAMAGED_TENSOR)!;
      t.ok(entry.data_offsets[1] > dataLength(buf));
      t.equal(entry.data_offsets[1] - entry.data_offsets[0], elementCount(entry.shape) * 2, 'size still fits the shape');
    },
    'missing-tensor': (buf) => {
      const names = [...readSafetensorsHeader(buf).tensors.keys()];
      t.same(names, [...valid.tensors.keys()].filter((n) => n !== DAMAGED_TENSOR));
    },
    'wrong-dtype': (buf) => t.equal(readSafetensorsHeader(buf).tensors.get(DAMAGED_TENSOR)!.dtype, 'Q9'),
    'wrong-shape': (buf) => {
      const entry = readSafetensorsHeader(buf).tensors.get(DAMAGED_TENSOR)!;
      t.not(entry.data_offsets[1] - entry.data_offsets[0], elementCount(entry.shape) * 2);
    },
  };
  const dir = t.testdir();
  for (const [kind, expect] of Object.entries(expectations) as [DamageKind, (buf: Buffer) => void][]) {
    const file = await writeDamagedCheckpoint(dir, kind);
    const buf = await readFile(file);
    t.ok(buf.equals(damagedCheckpointBytes(kind)), `${kind} is written as built`);
    expect(buf);
  }
});
