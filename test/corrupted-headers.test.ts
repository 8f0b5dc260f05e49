// Randomly corrupted checkpoint headers, reproducibly seeded: every one either loads and draws, or
// fails with ERR_MODEL_FORMAT / ERR_MODEL_UNSUPPORTED. Nothing aborts the process, and nothing
// else (a RangeError from the addon, ERR_INTERNAL, an out-of-memory from a lying size) gets out.
// The named damage kinds live in engine.test.ts and gguf.test.ts; this covers what no one listed.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import t, { type Test } from 'tap';

import { loadModel } from '../lib/index.js';
import { tinyCheckpointBytes } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';
import { ggufLayout, tinyGgufBytes } from './fixtures/gguf.js';
import { readSafetensorsHeader } from './fixtures/safetensors.js';

const CASES = 120;
const acceptedCodes = new Set(['ERR_MODEL_FORMAT', 'ERR_MODEL_UNSUPPORTED']);
const dir = t.testdir();

/** A small deterministic generator (an LCG), so a failing case can be replayed by its number. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * Loads CASES variants, draws one small step with each that loads, and tallies the outcomes. Each
 * variant is made when its turn comes and written over the last: all at once they are 1.5 GB.
 */
async function loadEach(t: Test, name: string, variant: () => Buffer): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>();
  const file = path.join(dir, name);
  for (let i = 0; i < CASES; i++) {
    await writeFile(file, variant());
    let outcome = 'loaded';
    try {
      const model = await loadModel(file, cpu);
      try {
        await model.textToImage({ prompt: 'a cat', width: 64, height: 64, steps: 1, seed: 1 });
      } finally {
        await model.close();
      }
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      outcome = typeof code === 'string' ? code : String(error);
      if (!acceptedCodes.has(outcome)) t.fail(`${name} variant ${i}: ${String(error)}`);
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  return outcomes;
}

t.test(`${CASES} GGUF files with random bytes in their header load or fail by name`, async (t) => {
  const valid = tinyGgufBytes({ type: 'q8_0' });
  const { dataStart } = ggufLayout(valid);
  const next = random(1);
  const outcomes = await loadEach(t, 'gguf', () => {
    const bytes = Buffer.from(valid);
    for (let n = 1 + Math.floor(next() * 3); n > 0; n--) bytes[Math.floor(next() * dataStart)] = Math.floor(next() * 256);
    return bytes;
  });
  t.ok((outcomes.get('ERR_MODEL_FORMAT') ?? 0) > CASES / 2, `most fail as ERR_MODEL_FORMAT: ${JSON.stringify([...outcomes])}`);
});

t.test(`${CASES} safetensors files with random digits in their header load or fail by name`, async (t) => {
  const valid = tinyCheckpointBytes({ dtype: 'f16' });
  const { dataStart } = readSafetensorsHeader(valid);
  // Digits are where shapes and offsets live: changing them keeps the JSON valid and the lies subtle.
  const digits: number[] = [];
  for (let i = 8; i < dataStart; i++) if (valid[i]! >= 0x30 && valid[i]! <= 0x39) digits.push(i);
  const next = random(2);
  const outcomes = await loadEach(t, 'safetensors', () => {
    const bytes = Buffer.from(valid);
    for (let n = 1 + Math.floor(next() * 2); n > 0; n--) bytes[digits[Math.floor(next() * digits.length)]!] = 0x30 + Math.floor(next() * 10);
    return bytes;
  });
  t.ok((outcomes.get('ERR_MODEL_FORMAT') ?? 0) > 0, `some fail as ERR_MODEL_FORMAT: ${JSON.stringify([...outcomes])}`);
});
