// Regression inputs for the fuzz targets: the file shapes that crashed or hung other checkpoint
// readers, written out field by field so each one says what it lies about. Every one must be
// answered with an sdnode::Error (the targets treat anything else as a crash).
// GGUF facts from ggml's docs/gguf.md: "GGUF", u32 version, u64 tensor count, u64 key-value count,
// key-value pairs (u64-length string key, u32 value type, value), tensor infos (name, u32 n_dims,
// u64 extents innermost first, u32 ggml type, u64 offset), data aligned to general.alignment.
import type { FuzzInput, FuzzTarget } from './seeds.js';

const U64_MAX = 2n ** 64n - 1n;

const u32 = (v: number | bigint) => { const b = Buffer.alloc(4); b.writeUInt32LE(Number(v)); return b; };
const u64 = (v: number | bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);

// GGUF value types.
const T_U8 = 0, T_U32 = 4, T_STRING = 8, T_ARRAY = 9, T_U64 = 10;
// ggml type ids.
const F32 = 0, F16 = 1;

interface GgufParts {
  version?: number;
  tensorCount?: bigint | number;
  keyValueCount?: bigint | number;
  keyValues?: Buffer[];
  tensors?: Buffer[];
  data?: number;
}

function gguf(parts: GgufParts): Buffer {
  const keyValues = parts.keyValues ?? [];
  const tensors = parts.tensors ?? [tensorInfo('t', [4], F32, 0)];
  const head = Buffer.concat([
    Buffer.from('GGUF'), u32(parts.version ?? 3),
    u64(parts.tensorCount ?? tensors.length), u64(parts.keyValueCount ?? keyValues.length), ...keyValues, ...tensors,
  ]);
  const padded = Math.ceil(head.length / 32) * 32;
  return Buffer.concat([head, Buffer.alloc(padded - head.length + (parts.data ?? 32))]);
}

function tensorInfo(name: string, extents: (number | bigint)[], type: number, offset: number | bigint, dims = extents.length): Buffer {
  return Buffer.concat([str(name), u32(dims), ...extents.map(u64), u32(type), u64(offset)]);
}

const keyValue = (key: string, type: number, value: Buffer) => Buffer.concat([str(key), u32(type), value]);

function ggufRegressions(): FuzzInput[] {
  const cases: Record<string, Buffer> = {
    // Counts: each alone claims more than any file holds; count × entry size wraps at 2^64.
    'tensor-count-max': gguf({ tensorCount: U64_MAX }),
    'tensor-count-wraps-times-8': gguf({ tensorCount: 2n ** 61n }),
    'tensor-count-sign-bit': gguf({ tensorCount: 2n ** 63n }),
    'keyvalue-count-max': gguf({ keyValueCount: U64_MAX }),
    'keyvalue-count-wraps-times-24': gguf({ keyValueCount: 0xaaaaaaaaaaaaaabn }),
    'zero-tensors': gguf({ tensors: [], tensorCount: 0 }),
    // String lengths: length + 1 (a terminating NUL) wraps to 0; a length past the file's end.
    'key-length-max': gguf({ keyValues: [Buffer.concat([u64(U64_MAX), Buffer.from('k'), u32(T_U8), Buffer.from([1])])] }),
    'key-length-sign-bit': gguf({ keyValues: [Buffer.concat([u64(2n ** 63n), Buffer.from('k')])] }),
    'value-string-length-max': gguf({ keyValues: [keyValue('general.name', T_STRING, u64(U64_MAX))] }),
    'value-string-length-past-end': gguf({ keyValues: [keyValue('general.name', T_STRING, u64(1n << 20n))] }),
    'tensor-name-length-max': gguf({ tensors: [Buffer.concat([u64(U64_MAX), Buffer.from('t')])] }),
    // Arrays: element count × element size wraps; string arrays whose count or string lengths lie.
    'array-u64-count-wraps-to-0': gguf({ keyValues: [keyValue('a', T_ARRAY, Buffer.concat([u32(T_U64), u64(2n ** 61n)]))] }),
    'array-u32-count-max': gguf({ keyValues: [keyValue('a', T_ARRAY, Buffer.concat([u32(T_U32), u64(U64_MAX)]))] }),
    'array-string-count-max': gguf({ keyValues: [keyValue('a', T_ARRAY, Buffer.concat([u32(T_STRING), u64(U64_MAX)]))] }),
    'array-string-length-max': gguf({ keyValues: [keyValue('a', T_ARRAY, Buffer.concat([u32(T_STRING), u64(2), u64(U64_MAX)]))] }),
    'array-of-arrays': gguf({ keyValues: [keyValue('a', T_ARRAY, Buffer.concat([u32(T_ARRAY), u64(1), u32(T_U8), u64(1), Buffer.from([0])]))] }),
    'array-unknown-element-type': gguf({ keyValues: [keyValue('a', T_ARRAY, Buffer.concat([u32(0xffffffff), u64(1)]))] }),
    'unknown-value-type': gguf({ keyValues: [keyValue('a', 13, u32(0))] }),
    'alignment-zero': gguf({ keyValues: [keyValue('general.alignment', T_U32, u32(0))] }),
    'alignment-not-power-of-two': gguf({ keyValues: [keyValue('general.alignment', T_U32, u32(24))] }),
    'alignment-2-pow-31': gguf({ keyValues: [keyValue('general.alignment', T_U32, u32(2 ** 31))] }),
    'alignment-as-u64': gguf({ keyValues: [keyValue('general.alignment', T_U64, u64(32))] }),
    'duplicate-key': gguf({ keyValues: [keyValue('a', T_U8, Buffer.from([1])), keyValue('a', T_U8, Buffer.from([2]))] }),
    // Tensor infos: dimension counts, extents whose product (in bytes) wraps, dead and unknown types.
    'dims-max': gguf({ tensors: [tensorInfo('t', [4], F32, 0, 0xffffffff)] }),
    'dims-zero': gguf({ tensors: [tensorInfo('t', [], F32, 0, 0)] }),
    'dims-five': gguf({ tensors: [tensorInfo('t', [1, 1, 1, 1, 1], F32, 0)] }),
    'extent-zero': gguf({ tensors: [tensorInfo('t', [0, 4], F32, 0)] }),
    'extent-sign-bit': gguf({ tensors: [tensorInfo('t', [2n ** 63n, 1], F32, 0)] }),
    'extent-max': gguf({ tensors: [tensorInfo('t', [U64_MAX], F32, 0)] }),
    'extents-product-wraps': gguf({ tensors: [tensorInfo('t', [2n ** 40n, 2n ** 40n, 2n ** 40n, 2n ** 40n], F32, 0)] }),
    'extents-bytes-wrap-to-0': gguf({ tensors: [tensorInfo('t', [2n ** 32n, 2n ** 30n], F32, 0)] }),
    'type-max': gguf({ tensors: [tensorInfo('t', [32], 0xffffffff, 0)] }),
    'type-removed-q4_2': gguf({ tensors: [tensorInfo('t', [32], 4, 0)] }),
    'type-past-any-ggml': gguf({ tensors: [tensorInfo('t', [32], 1000, 0)] }),
    'q8_0-row-not-whole-blocks': gguf({ tensors: [tensorInfo('t', [31], 8, 0)] }),
    // Data offsets: offset + size wraps past 2^64 back into the file; misaligned; overlapping the end.
    'offset-plus-size-wraps': gguf({ tensors: [tensorInfo('t', [16], F32, U64_MAX - 31n)] }),
    'offset-sign-bit': gguf({ tensors: [tensorInfo('t', [16], F32, 2n ** 63n)] }),
    'offset-misaligned': gguf({ tensors: [tensorInfo('t', [4], F32, 1)] }),
    'size-past-end': gguf({ tensors: [tensorInfo('t', [16], F32, 0)], data: 32 }),
    'duplicate-tensor': gguf({ tensors: [tensorInfo('t', [4], F16, 0), tensorInfo('t', [4], F16, 0)] }),
    'empty-tensor-name': gguf({ tensors: [tensorInfo('', [4], F32, 0)] }),
    // Versions: 1 (other layout), big-endian 3, and the largest.
    'version-1': gguf({ version: 1 }),
    'version-3-big-endian': gguf({ version: 0x03000000 }),
    'version-max': gguf({ version: 0xffffffff }),
    'magic-only': Buffer.from('GGUF'),
    'header-cut-in-counts': gguf({}).subarray(0, 14),
  };
  return Object.entries(cases).map(([name, bytes]) => ({ name: `regression-${name}.gguf`, bytes }));
}

/** A safetensors file: u64 header length, the header text as given, then `data` zero bytes. */
function safetensors(header: string, data = 0, length: bigint | number = Buffer.byteLength(header)): Buffer {
  return Buffer.concat([u64(length), Buffer.from(header), Buffer.alloc(data)]);
}

const entry = (dtype: string, shape: (number | string)[], begin: number | string, end: number | string) =>
  `{"t":{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${begin},${end}]}}`;

function safetensorsRegressions(): FuzzInput[] {
  const cases: Record<string, Buffer> = {
    // Sixteen-byte files: an 8-byte header that is cut JSON, deep nesting, an overflowing number,
    // a lone surrogate escape, no tensors, NUL bytes; and lengths that lie about those 8 bytes.
    '16-bytes-open-brackets': safetensors('[[[[[[[['),
    '16-bytes-cut-object': safetensors('{"t":{"d'),
    '16-bytes-number-overflow': safetensors('1e999999'),
    '16-bytes-lone-surrogate': safetensors('"\\uD800"'),
    '16-bytes-cut-escape': safetensors('{"\\u12"}'),
    '16-bytes-empty-object': safetensors('{}      '),
    '16-bytes-nul': safetensors('\0\0\0\0\0\0\0\0'),
    '16-bytes-length-max': safetensors('{"":{}} ', 0, U64_MAX),
    '16-bytes-length-one-past': safetensors('{"":{}} ', 0, 9),
    '16-bytes-length-sign-bit': safetensors('{"":{}} ', 0, 2n ** 63n),
    'length-only': u64(8),
    // Shape and dtype disagree with the data offsets, offsets past the data or reversed.
    'shape-larger-than-offsets': safetensors(entry('F32', [2, 2], 0, 8), 8),
    'offsets-larger-than-shape': safetensors(entry('F16', [2], 0, 8), 8),
    'offsets-past-data': safetensors(entry('F32', [4], 0, 16), 8),
    'offsets-reversed': safetensors(entry('F32', [1], 8, 4), 8),
    'offsets-negative': safetensors(entry('F32', [1], -4, 0), 8),
    'offsets-u64-max': safetensors(entry('F32', [1], '18446744073709551612', '18446744073709551616'), 8),
    'offsets-fractional': safetensors(entry('F32', [1], 0, 4.5), 8),
    'unknown-dtype': safetensors(entry('F128', [1], 0, 16), 16),
    'five-dimensions': safetensors(entry('U8', [1, 1, 1, 1, 1], 0, 1), 1),
    // Shape products: unsigned wrap, and a signed-only wrap hidden by a zero extent at the end.
    'shape-product-wraps-u64': safetensors(entry('F32', [2 ** 32, 2 ** 32], 0, 0)),
    'shape-product-wraps-i64-before-zero': safetensors(entry('F32', [2 ** 40, 2 ** 23, 0], 0, 0)),
    'shape-product-sign-bit-times-bytes': safetensors(entry('F64', [2 ** 40, 2 ** 21], 0, 0)),
    'shape-square-wraps-i64': safetensors(entry('U8', [3037000500, 3037000500], 0, 0)),
    'shape-negative': safetensors(entry('F32', [-1, 4], 0, 0)),
    'shape-fractional': safetensors(entry('F32', [0.5], 0, 2), 2),
    'shape-huge-number-text': safetensors(entry('F32', ['9'.repeat(400)], 0, 0)),
    'shape-not-array': safetensors('{"t":{"dtype":"F32","shape":4,"data_offsets":[0,16]}}', 16),
    // Hostile JSON structure: nesting past any stack, a metadata block that is not an object.
    'nesting-100000': safetensors('['.repeat(100_000)),
    'nesting-in-metadata': safetensors(`{"__metadata__":${'{"a":'.repeat(10_000)}`),
    'metadata-array': safetensors('{"__metadata__":[1]}'),
    'duplicate-tensor': safetensors(`${entry('U8', [1], 0, 1).slice(0, -1)},${entry('U8', [1], 0, 1).slice(1)}`, 1),
    // Over the parser's 2^20 values: 2 MB of zeros would take over 100 MB parsed.
    'values-over-limit': safetensors(`[${'0,'.repeat(2 ** 20)}0]`),
    // Huge strings and counts in a small file: a 64 KiB name, 20000 tensors of one empty shape.
    'name-64k': safetensors(`{"${'n'.repeat(65536)}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`),
    'tensors-20000': safetensors(`{${Array.from({ length: 20_000 }, (_, i) => `"${i}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`).join(',')}}`),
  };
  return Object.entries(cases).map(([name, bytes]) => ({ name: `regression-${name}.safetensors`, bytes }));
}

/** Regression inputs for every target; the JSON target gets the safetensors headers' text. */
export function fuzzRegressions(): Record<FuzzTarget, FuzzInput[]> {
  const st = safetensorsRegressions();
  const gg = ggufRegressions();
  const json = st.filter(({ bytes }) => bytes.length > 8)
    .map(({ name, bytes }) => ({ name: name.replace(/\.safetensors$/, '.json'), bytes: bytes.subarray(8) }));
  return { safetensors: st, gguf: gg, checkpoint: [...st, ...gg], lora: [...st, ...gg], json };
}
