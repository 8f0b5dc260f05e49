// Seed inputs for the libFuzzer targets (test/fuzz/*_fuzzer.cpp), made from the tiny fixtures:
// the tensor names, dtypes and metadata of every tiny family as safetensors and GGUF, with every
// dimension clamped to 3 so the data stays a few bytes (the fuzzer mutates headers, not weights),
// and every 8th tensor (plus the ones a family is told by) so that a run makes thousands of
// executions a second.
import { tinyCheckpointBytes } from '../fixtures/checkpoint.js';
import { encodeGguf, ggufLayout, tinyGgufBytes, type GgufTensor } from '../fixtures/gguf.js';
import { tinyLoraBytes } from '../fixtures/lora.js';
import {
  assemble, dtypeBytes, elementCount, encodeSafetensors, readSafetensorsHeader,
  type SafetensorsDtype, type SafetensorsTensor,
} from '../fixtures/safetensors.js';

export const FUZZ_TARGETS = ['safetensors', 'gguf', 'checkpoint', 'lora', 'json'] as const;
export type FuzzTarget = (typeof FUZZ_TARGETS)[number];

export interface FuzzInput {
  name: string;
  bytes: Buffer;
}

const FAMILIES = ['sd1', 'sd2', 'sdxl', 'sdxl-refiner'] as const;

/** A tensor kept for its name: shape clamped, data zeroed. */
function shrunk(name: string, dtype: SafetensorsDtype, shape: readonly number[]): SafetensorsTensor {
  const small = shape.map((d) => Math.min(d, 3));
  return { name, dtype, shape: small, data: Buffer.alloc(elementCount(small) * dtypeBytes[dtype]) };
}

/** The tensors of a fixture file, shrunk; `every` keeps every n-th one (and the ones families are told by). */
function shrunkTensors(file: Buffer, every = 1): { tensors: SafetensorsTensor[]; metadata: Record<string, string> } {
  const header = readSafetensorsHeader(file);
  const tensors = [...header.tensors].filter(([name], i) => i % every === 0 || name.includes('token_embedding'))
    .map(([name, entry]) => shrunk(name, entry.dtype as SafetensorsDtype, entry.shape));
  return { tensors, metadata: header.metadata };
}

function safetensorsSeeds(): FuzzInput[] {
  const seeds: FuzzInput[] = [];
  for (const family of FAMILIES) {
    const { tensors, metadata } = shrunkTensors(tinyCheckpointBytes({ family }), 8);
    seeds.push({ name: `${family}.safetensors`, bytes: encodeSafetensors(tensors, metadata) });
  }
  // The other dtypes the reader knows, and a 0-dim tensor.
  const dtypes: SafetensorsDtype[] = ['F64', 'F32', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];
  const mixed = dtypes.map((dtype, i) => shrunk(`model.diffusion_model.extra.${i}.weight`, dtype, [2, 3]));
  mixed.push(shrunk('cond_stage_model.transformer.text_model.embeddings.position_ids', 'I64', []));
  seeds.push({ name: 'dtypes.safetensors', bytes: encodeSafetensors(mixed, { format: 'pt' }) });
  // Every JSON escape (JSON.stringify writes none of \u00e9, \u20ac or a surrogate pair).
  const escaped = String.raw`{"__metadata__":{"caf\u00e9":"\ud83d\ude00 \u0041\u00e9\u20ac \n\t\"\\\/\b\f\r","n":1.5e-3},`
    + String.raw`"model.diffusion_model.t\u00e9.weight":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}`;
  seeds.push({ name: 'escapes.safetensors', bytes: assemble(escaped, [Buffer.alloc(2)]) });
  return seeds;
}

function loraSeeds(): FuzzInput[] {
  return (['sd1', 'sd2', 'sdxl'] as const).flatMap((family) => (['kohya', 'diffusers'] as const).map((format) => {
    const { tensors, metadata } = shrunkTensors(tinyLoraBytes({ family, format, locon: true }), 4);
    return { name: `lora-${family}-${format}.safetensors`, bytes: encodeSafetensors(tensors, metadata) };
  }));
}

const BLOCK_VALUES = 32;

/** A safetensors seed as GGUF: f16 tensors, two quantized ones (a whole block each), head counts as uint32. */
function ggufFrom(file: Buffer, rename: (name: string) => string = (name) => name): Buffer {
  const { tensors, metadata } = shrunkTensors(file, 8);
  const out: GgufTensor[] = tensors.map((t) => ({ name: rename(t.name), type: 'f16', shape: t.shape, data: Buffer.alloc(2 * elementCount(t.shape)) }));
  out.push({ name: 'model.diffusion_model.quantized.q8_0', type: 'q8_0', shape: [2, BLOCK_VALUES], data: Buffer.alloc(2 * 34) });
  out.push({ name: 'model.diffusion_model.quantized.q4_0', type: 'q4_0', shape: [BLOCK_VALUES], data: Buffer.alloc(18) });
  const values: Record<string, string | number> = { 'general.name': 'sdnode fuzz seed' };
  for (const [key, value] of Object.entries(metadata)) values[key] = /^\d+$/.test(value) ? Number(value) : value;
  return encodeGguf(out, values);
}

function ggufSeeds(): FuzzInput[] {
  const seeds = FAMILIES.map((family) => ({ name: `${family}.gguf`, bytes: ggufFrom(tinyCheckpointBytes({ family })) }));
  seeds.push({
    name: 'sd1-vae-prefix.gguf',
    bytes: ggufFrom(tinyCheckpointBytes(), (name) => name.replace(/^first_stage_model\./, 'vae.')),
  });
  // stable-diffusion.cpp's SD 2.x names (Hugging Face CLIP names for the OpenCLIP encoder): taken
  // from the converter fixture's tensor list, stored small.
  const sdcpp = [...ggufLayout(tinyGgufBytes({ family: 'sd2', layout: 'sdcpp' })).tensors.keys()]
    .filter((name, i) => i % 6 === 0 || name.includes('text_model'));
  seeds.push({
    name: 'sd2-sdcpp-names.gguf',
    bytes: encodeGguf(sdcpp.map((name) => ({ name, type: 'f16', shape: [3, 2], data: Buffer.alloc(12) }))),
  });
  return seeds;
}

/** The JSON headers of the safetensors seeds. */
function jsonSeeds(safetensors: readonly FuzzInput[]): FuzzInput[] {
  return safetensors.map(({ name, bytes }) => {
    const { headerLength } = readSafetensorsHeader(bytes);
    return { name: name.replace(/\.safetensors$/, '.json'), bytes: bytes.subarray(8, 8 + headerLength) };
  });
}

/** Seeds for every target. */
export function fuzzSeeds(): Record<FuzzTarget, FuzzInput[]> {
  const safetensors = safetensorsSeeds();
  const gguf = ggufSeeds();
  const lora = loraSeeds();
  return {
    safetensors,
    gguf,
    checkpoint: [...safetensors, ...gguf],
    lora: [...lora, ...safetensors, ...gguf.slice(0, 2)],
    json: jsonSeeds([...safetensors, ...lora]),
  };
}
