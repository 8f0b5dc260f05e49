/**
 * The tensors of a file `torch.save` wrote (a zip holding `data.pkl` and `data/<key>`), read without
 * running anything: the pickle is interpreted by a small machine that knows the opcodes torch
 * writes and treats every global as a name. Only `torch._utils._rebuild_tensor_v2` (and
 * `_rebuild_parameter` around it) makes a tensor, from the storages the zip holds; every other call
 * becomes an opaque value. Enough for textual-inversion embeddings (A1111's `.pt`, diffusers'
 * `learned_embeds.bin`), not a general unpickler.
 */

/** A float tensor, row-major. */
export interface TorchTensor {
  shape: number[];
  values: Float32Array;
}

/** What the pickle builds: plain values, dicts, lists, tensors, or opaque results of other calls. */
export type PickleValue = null | boolean | number | bigint | string | PickleValue[] | PickleDict | TorchTensor | Opaque | Global | Storage;
export type PickleDict = Map<PickleValue, PickleValue>;

/** The result of a call the machine does not make. */
export class Opaque {
  constructor(readonly name: string) {}
}
/** A global the pickle names ("module.name"): never imported, only compared. */
export class Global {
  constructor(readonly name: string) {}
}
/** A storage of the zip (data/<key>) and its element type ("FloatStorage"). */
export class Storage {
  constructor(readonly type: string, readonly key: string) {}
}
const MARK = Symbol('mark');

type StackItem = PickleValue | typeof MARK;

const storageBytes: Readonly<Record<string, { size: number; read: (b: Buffer, i: number) => number }>> = {
  FloatStorage: { size: 4, read: (b, i) => b.readFloatLE(i * 4) },
  HalfStorage: { size: 2, read: (b, i) => halfToFloat(b.readUInt16LE(i * 2)) },
  BFloat16Storage: { size: 2, read: (b, i) => new Float32Array(new Uint32Array([b.readUInt16LE(i * 2) << 16]).buffer)[0]! },
  DoubleStorage: { size: 8, read: (b, i) => b.readDoubleLE(i * 8) },
};

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** The stored (uncompressed) entries of a zip, by name; an Error naming the problem otherwise. */
function zipEntries(bytes: Buffer): Map<string, Buffer> {
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (bytes.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error('it is not a zip archive (a torch file older than torch 1.6, which sdnode does not read)');
  const count = bytes.readUInt16LE(end + 10);
  let at = bytes.readUInt32LE(end + 16);
  const entries = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (at + 46 > bytes.length || bytes.readUInt32LE(at) !== 0x02014b50) throw new Error('its zip directory is damaged');
    const method = bytes.readUInt16LE(at + 10);
    const size = bytes.readUInt32LE(at + 20);
    const nameLength = bytes.readUInt16LE(at + 28);
    const local = bytes.readUInt32LE(at + 42);
    const name = bytes.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + bytes.readUInt16LE(at + 30) + bytes.readUInt16LE(at + 32);
    if (method !== 0 || size === 0xffffffff || local + 30 > bytes.length || bytes.readUInt32LE(local) !== 0x04034b50) {
      throw new Error(`its zip entry ${name} is compressed, too large or damaged`);
    }
    const start = local + 30 + bytes.readUInt16LE(local + 26) + bytes.readUInt16LE(local + 28);
    if (start + size > bytes.length) throw new Error(`its zip entry ${name} runs past the end of the file`);
    entries.set(name, bytes.subarray(start, start + size));
  }
  return entries;
}

/**
 * The object a torch zip file's pickle describes, with tensors in place of torch's rebuild calls.
 * Throws an Error with a plain reason for anything else.
 */
export function readTorchFile(bytes: Buffer): PickleValue {
  const entries = zipEntries(bytes);
  const pickleName = [...entries.keys()].find((name) => name.endsWith('/data.pkl') || name === 'data.pkl');
  if (pickleName === undefined) throw new Error('the zip holds no data.pkl: not a file torch.save wrote');
  const prefix = pickleName.slice(0, -'data.pkl'.length);
  const storage = (key: string) => {
    const data = entries.get(`${prefix}data/${key}`);
    if (!data) throw new Error(`its storage data/${key} is missing`);
    return data;
  };
  return unpickle(entries.get(pickleName)!, storage);
}

function unpickle(p: Buffer, storage: (key: string) => Buffer): PickleValue {
  const stack: StackItem[] = [];
  const memo = new Map<number, StackItem>();
  let at = 0;
  const need = (n: number) => {
    if (at + n > p.length) throw new Error('its pickle ends early');
    const start = at;
    at += n;
    return start;
  };
  const pop = (): StackItem => {
    if (stack.length === 0) throw new Error('its pickle pops an empty stack');
    return stack.pop()!;
  };
  const popMark = (): StackItem[] => {
    const mark = stack.lastIndexOf(MARK);
    if (mark < 0) throw new Error('its pickle lacks a mark');
    return stack.splice(mark).slice(1);
  };
  const value = (item: StackItem): PickleValue => {
    if (item === MARK) throw new Error('its pickle uses a mark as a value');
    return item;
  };
  const text = (n: number) => p.toString('utf8', need(n), at);
  while (at < p.length) {
    const op = p[at++]!;
    switch (op) {
      case 0x80: need(1); break; // PROTO
      case 0x95: need(8); break; // FRAME
      case 0x2e: return value(pop()); // STOP
      case 0x28: stack.push(MARK); break;
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x4e: stack.push(null); break;
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4b: stack.push(p[need(1)]!); break; // BININT1
      case 0x4d: stack.push(p.readUInt16LE(need(2))); break; // BININT2
      case 0x4a: stack.push(p.readInt32LE(need(4))); break; // BININT
      case 0x8a: { // LONG1
        const n = p[need(1)]!;
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(p[at + i]!);
        need(n);
        if (n > 0 && p[at - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(Number.isSafeInteger(Number(v)) ? Number(v) : v);
        break;
      }
      case 0x47: stack.push(p.readDoubleBE(need(8))); break; // BINFLOAT
      case 0x58: stack.push(text(p.readUInt32LE(need(4)))); break; // BINUNICODE
      case 0x8c: stack.push(text(p[need(1)]!)); break; // SHORT_BINUNICODE
      case 0x54: stack.push(p.toString('latin1', need(p.readUInt32LE(need(4))), at)); break; // BINSTRING
      case 0x55: stack.push(p.toString('latin1', need(p[need(1)]!), at)); break; // SHORT_BINSTRING
      case 0x71: memo.set(p[need(1)]!, stack.at(-1)!); break; // BINPUT
      case 0x72: memo.set(p.readUInt32LE(need(4)), stack.at(-1)!); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, stack.at(-1)!); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const key = op === 0x68 ? p[need(1)]! : p.readUInt32LE(need(4));
        if (!memo.has(key)) throw new Error('its pickle reads a memo entry it never wrote');
        stack.push(memo.get(key)!);
        break;
      }
      case 0x63: { // GLOBAL: "module\nname\n"
        const eol = p.indexOf(0x0a, at);
        const eol2 = eol < 0 ? -1 : p.indexOf(0x0a, eol + 1);
        if (eol2 < 0) throw new Error('its pickle has a broken global');
        stack.push(new Global(`${p.toString('utf8', at, eol)}.${p.toString('utf8', eol + 1, eol2)}`));
        at = eol2 + 1;
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        stack.push(new Global(`${String(module)}.${String(name)}`));
        break;
      }
      case 0x74: stack.push(popMark().map(value)); break; // TUPLE
      case 0x85: case 0x86: case 0x87: { // TUPLE1-3
        const n = op - 0x84;
        stack.push(stack.splice(stack.length - n).map(value));
        break;
      }
      case 0x61: { // APPEND
        const item = value(pop());
        const list = stack.at(-1);
        if (Array.isArray(list)) list.push(item);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark().map(value);
        const list = stack.at(-1);
        if (Array.isArray(list)) list.push(...items);
        break;
      }
      case 0x73: { // SETITEM
        const v = value(pop());
        const k = value(pop());
        const dict = stack.at(-1);
        if (dict instanceof Map) dict.set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark().map(value);
        const dict = stack.at(-1);
        for (let i = 0; i + 1 < items.length; i += 2) if (dict instanceof Map) dict.set(items[i]!, items[i + 1]!);
        break;
      }
      case 0x51: { // BINPERSID: ('storage', <type>, key, location, numel)
        const pid = pop();
        if (!Array.isArray(pid) || pid[0] !== 'storage' || typeof pid[2] !== 'string') throw new Error('its pickle names a storage it cannot read');
        const type = pid[1] as unknown;
        stack.push(new Storage(type instanceof Global ? type.name.split('.').pop()! : String(type), pid[2]));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        stack.push(call(callable, Array.isArray(args) ? args : [], storage));
        break;
      }
      case 0x81: { // NEWOBJ
        pop();
        const cls = pop();
        stack.push(new Opaque(cls instanceof Global ? cls.name : 'object'));
        break;
      }
      case 0x62: pop(); break; // BUILD: the state of an opaque object (or an OrderedDict's), not needed
      default:
        throw new Error(`its pickle uses opcode 0x${op.toString(16)}, which a torch tensor file does not`);
    }
  }
  throw new Error('its pickle has no STOP');
}

// Tuples are arrays here; a storage sits where the pickle put it (BINPERSID's result).
function call(callable: StackItem, args: unknown[], storage: (key: string) => Buffer): PickleValue {
  const name = callable instanceof Global ? callable.name : '';
  if (name === 'torch._utils._rebuild_tensor_v2') return rebuildTensor(args, storage);
  if (name === 'torch._utils._rebuild_parameter' && isTensor(args[0])) return args[0];
  if (name === 'collections.OrderedDict') return new Map();
  return new Opaque(name || 'call');
}

export function isTensor(v: unknown): v is TorchTensor {
  return typeof v === 'object' && v !== null && 'values' in v && 'shape' in v;
}

function rebuildTensor(args: unknown[], storage: (key: string) => Buffer): TorchTensor {
  const [source, offset, size, stride] = args as [unknown, unknown, unknown, unknown];
  if (!(source instanceof Storage)) throw new Error('a tensor in it has no storage');
  const kind = storageBytes[source.type];
  if (!kind) throw new Error(`a tensor in it is a ${source.type}; embeddings must be float`);
  const shape = Array.isArray(size) ? size.map(Number) : [];
  const strides = Array.isArray(stride) ? stride.map(Number) : [];
  const count = shape.reduce((a, b) => a * b, 1);
  // Row-major strides only (what torch.save of a contiguous tensor writes).
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! > 1 && strides[i] !== expected) throw new Error('a tensor in it is not contiguous');
    expected *= shape[i]!;
  }
  const data = storage(source.key);
  const first = Number(offset);
  if (!Number.isSafeInteger(first) || first < 0 || (first + count) * kind.size > data.length) {
    throw new Error('a tensor in it lies past the end of its storage');
  }
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = kind.read(data, first + i);
  return { shape, values };
}
