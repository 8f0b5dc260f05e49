// `sdnode info` and `sdnode convert` as a user runs them: what a checkpoint is, a GGUF written and
// described, and usage errors that name the flag.
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import t, { type Test } from 'tap';

import { main } from '../server/cli.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { encodeFloats } from './fixtures/safetensors.js';

const dir = t.testdir();
const model = await writeTinyCheckpoint(dir, { dtype: 'f16' });

async function run(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const logs = t.capture(console, 'log');
  const errors = t.capture(console, 'error');
  const code = await main(args);
  return { code, output: [...logs(), ...errors()].map((call) => call.args.join(' ')).join('\n') };
}

t.test('info tells family, prediction, default size, stored types, memory and unused weights', async (t) => {
  const { code, output } = await run(t, ['info', model, '-t', '1']);
  t.equal(code, 0, output);
  t.match(output, /^tiny-sd1-f16-seed1\.safetensors\n/);
  t.match(output, /^ {2}file +[\d.]+ MB, safetensors$/m);
  t.match(output, /^ {2}family +SD 1\.x$/m);
  t.match(output, /^ {2}prediction +eps \(noise\)$/m);
  t.match(output, /^ {2}default size +512×512$/m);
  t.match(output, /^ {2}stored as +f16 \(\d+ tensors\)$/m);
  t.match(output, /^ {2}in memory +[\d.]+ MB of weights on cpu \(as stored\)$/m);
  t.match(output, /^ {2}unused +none: every weight is used$/m);
});

t.test('info lists weights no part of the network uses', async (t) => {
  const extra = (name: string) => ({ name, dtype: 'F16' as const, shape: [4, 4], data: encodeFloats(new Float32Array(16), 'F16') });
  const variant = await writeTinyCheckpoint(dir, {
    name: 'variant.safetensors',
    extraTensors: [extra('model.diffusion_model.adapter.0.weight'), extra('first_stage_model.extra.weight'), extra('model_ema.decay')],
  });
  const { code, output } = await run(t, ['info', variant, '-t', '1']);
  t.equal(code, 0, output);
  t.match(output, /unused +2 weights no part of the network uses \(ignored\):\n {4}first_stage_model\.extra\.weight\n {4}model\.diffusion_model\.adapter\.0\.weight/);
  const json = await run(t, ['info', variant, '-t', '1', '--json']);
  t.match(JSON.parse(json.output), {
    family: 'sd1', format: 'safetensors', storedTypes: { f16: Number },
    unusedTensors: ['first_stage_model.extra.weight', 'model.diffusion_model.adapter.0.weight'],
  });
});

t.test('convert writes a q8_0 GGUF that info then describes, and keeps an existing file', async (t) => {
  const out = path.join(t.testdir(), 'tiny-q8_0.gguf');
  const converted = await run(t, ['convert', model, out, '--type', 'Q8_0', '-t', '1']);
  t.equal(converted.code, 0, converted.output);
  t.match(converted.output, new RegExp(`^Wrote ${out.replace(/[.\\]/g, '\\$&')}: [\\d.]+ MB, \\d+ tensors \\((f32|f16|q8_0) \\d+, (f32|f16|q8_0) \\d+, (f32|f16|q8_0) \\d+\\) in [\\d.]+ s$`));
  const info = await run(t, ['info', out, '-t', '1']);
  t.match(info.output, /^ {2}file +[\d.]+ MB, gguf$/m);
  t.match(info.output, /^ {2}stored as +.*q8_0 \(\d+ tensors\)/m);

  const again = await run(t, ['convert', model, out, '--type', 'q4_0']);
  t.equal(again.code, 1);
  t.match(again.output, `sdnode: ${out} exists; pass --overwrite to replace it`);
  const replaced = await run(t, ['convert', model, out, '--weight-type', 'q4_0', '--overwrite', '-t', '1']);
  t.equal(replaced.code, 0, replaced.output);
  t.match(replaced.output, /q4_0 \d+/);
});

t.test('convert leaves out what is not a model weight and says so', async (t) => {
  const withEma = await writeTinyCheckpoint(dir, {
    name: 'with-ema.safetensors',
    extraTensors: [{ name: 'model_ema.decay', dtype: 'F32', shape: [], data: encodeFloats(new Float32Array([0.999]), 'F32') }],
  });
  const { code, output } = await run(t, ['convert', withEma, path.join(t.testdir(), 'x.gguf'), '--type', 'f16']);
  t.equal(code, 0, output);
  t.match(output, /Left out 1 tensors that are not weights of the model \(model_ema\.decay\)/);
});

t.test('bad convert and info arguments are usage errors naming the flag', async (t) => {
  const folder = t.testdir();
  const out = path.join(folder, 'out.gguf');
  const cases: [string[], RegExp][] = [
    [['convert', model, out], /Missing --type: one of auto, f32, f16, q8_0, .*q2_k/],
    [['convert', model, out, '--type', 'q9'], /Expected one of auto, .* for --type but received q9/],
    [['convert', model, path.join(folder, 'out.safetensors'), '--type', 'f16'], /Expected an output name ending in \.gguf/],
    [['convert', model, '--type', 'f16'], /Expected <model> <output\.gguf>/],
    [['convert', model, out, '--type', 'f16', '--weight-type', 'q8_0'], /--type f16 and --weight-type q8_0 disagree/],
    [['convert', model, out, '--type', 'f16', '-t', '0'], /between 1 and 1024 for --threads/],
    [['info'], /Missing the model: sdnode info <model>/],
    [['info', model, '--weight-type', 'int4'], /Expected one of auto, .* for --weight-type but received int4/],
    [['info', model, '--steps', '3'], /Unknown option '--steps'/],
  ];
  for (const [args, message] of cases) {
    const { code, output } = await run(t, args);
    t.equal(code, 2, args.join(' '));
    t.match(output, message, args.join(' '));
    t.match(output, new RegExp(`Run sdnode ${args[0]} --help for the options`), args.join(' '));
  }
  t.same(await readdir(folder), []);
});

t.test('a damaged checkpoint fails convert and info with exit code 1 and its name', async (t) => {
  const bad = path.join(t.testdir(), 'bad.safetensors');
  await writeFile(bad, 'not a checkpoint');
  for (const args of [['info', bad], ['convert', bad, `${bad}.gguf`, '--type', 'q8_0']]) {
    const { code, output } = await run(t, args);
    t.equal(code, 1, args[0]);
    t.match(output, /^sdnode: .*bad\.safetensors/m, args[0]);
  }
});
