// The CPU 3x3 convolution of the VAE and the UNet (native/engine/conv3x3.cpp: neighbourhoods
// gathered band by band, ggml's GEMM, rows placed back) against the same convolution in double
// precision: test/native/conv3x3.cpp links the engine and ggml libraries the last native build
// made, runs edge cases (odd sizes, bands down to one row, circular padding, a batch of two, f32
// kernels, a 1x1 image) and prints each case's largest error relative to the sum of |products|.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { engineIncludeArgs, nativeLibraryFolder, root } from './native-build.js';

interface Result { case: string; threads: number; relativeError: number }

function runHarness(folder: string, compiler: string): Result[] {
  const harness = path.join(t.testdir(), 'conv3x3');
  const ggmlInclude = path.join(root, '.native-build');
  const includes = readdirSync(ggmlInclude).filter((name) => name.startsWith('llama-'))
    .map((name) => path.join(ggmlInclude, name, 'ggml', 'include'));
  const compile = [compiler, '-std=c++17', '-O1', ...engineIncludeArgs(), ...includes.flatMap((i) => ['-I', i]),
    '-c', path.join(root, 'test/native/conv3x3.cpp'), '-o', `${harness}.o`];
  const ccache = spawnSync('ccache', ['--version']).status === 0;
  execFileSync(ccache ? 'ccache' : compiler, ccache ? compile : compile.slice(1));
  const libs = ['libsdengine.a', 'libggml.a', 'libggml-cpu.a', 'libggml-base.a'].map((name) => path.join(folder, name));
  execFileSync(compiler, [`${harness}.o`, ...libs, '-o', harness, '-fopenmp', '-lpthread', '-ldl', '-lm']);
  return [1, 2].flatMap((threads) => execFileSync(harness, [String(threads)], { encoding: 'utf8' })
    .trim().split('\n').map((line) => JSON.parse(line) as Result));
}

const folder = nativeLibraryFolder();
const compiler = process.env.CXX ?? 'c++';
const gpuBuild = folder !== undefined && readdirSync(folder).some((name) => /ggml-(cuda|metal)/.test(name));
const results = folder && !gpuBuild && process.platform === 'linux' && spawnSync(compiler, ['--version']).status === 0
  ? runHarness(folder, compiler)
  : undefined;
const skip = results ? false : 'needs a CPU-only native build from source (.native-build/) on Linux and a C++ compiler';

t.test('every case matches the convolution computed in double precision', { skip }, async (t) => {
  const cases = new Set(results!.map((r) => r.case));
  t.equal(cases.size, 7, 'seven cases ran');
  for (const r of results!) {
    // f32 sums of the same f16 (or f32) products: a few units in the 8th digit (f16 sums would give 1e-4).
    t.ok(r.relativeError < 1e-6, `${r.case} on ${r.threads} thread(s): relative error ${r.relativeError.toExponential(2)}`);
  }
});

t.test('the thread count does not change the result', { skip }, async (t) => {
  for (const one of results!.filter((r) => r.threads === 1)) {
    const two = results!.find((r) => r.threads === 2 && r.case === one.case)!;
    t.equal(two.relativeError, one.relativeError, one.case);
  }
});
