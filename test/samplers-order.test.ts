// Order of convergence of the multistep samplers, on ODEs with known solutions: test/native/
// sampler-ode.cpp drives the engine's sample() (linked from the engine library the last native
// build made, so it tests the code the addon runs) and prints each run's error. Where the error
// falls as 1/steps^p, doubling the steps divides it by 2^p; p is what is checked here.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

import t from 'tap';

import { engineIncludeArgs, engineLibraryName, nativeLibraryFolder, root } from './native-build.js';

// The engine library of the newest native build; none where the addon came from a prebuild.
function engineLibrary(): string | undefined {
  const folder = nativeLibraryFolder();
  return folder && path.join(folder, engineLibraryName);
}

interface Run { ode: string; sampler: string; grid: string; steps: number; error: number }

/** Compiles the harness against `library` and runs it for `samplers`. */
function runHarness(library: string, compiler: string, samplers: string[]): Run[] {
  const harness = path.join(t.testdir(), 'sampler-ode');
  const compile = [compiler, '-std=c++17', '-O1', ...engineIncludeArgs(), '-c',
    path.join(root, 'test/native/sampler-ode.cpp'), '-o', `${harness}.o`];
  // With ccache, every run after the first one only links.
  const ccache = spawnSync('ccache', ['--version']).status === 0;
  execFileSync(ccache ? 'ccache' : compiler, ccache ? compile : compile.slice(1));
  execFileSync(compiler, [`${harness}.o`, library, '-o', harness]);
  return execFileSync(harness, [samplers.join(',')], { encoding: 'utf8' })
    .trim().split('\n').map((line) => JSON.parse(line) as Run);
}

const library = engineLibrary();
const compiler = process.env.CXX ?? 'c++';
const runs = library && spawnSync(compiler, ['--version']).status === 0
  ? runHarness(library, compiler, ['euler', 'heun', 'lms', 'plms', 'ipndm', 'ipndm_v'])
  : undefined;
const skip = runs ? false : 'needs a native build from source (.native-build/) and a C++ compiler';

/** The observed order between `from` and 4 × `from` steps: log2 of the error's fall per doubling. */
function order(ode: string, sampler: string, grid: string, from: number): number {
  const error = (steps: number) => runs!.find((r) => r.ode === ode && r.sampler === sampler && r.grid === grid && r.steps === steps)!.error;
  return Math.log2(error(from) / error(4 * from)) / 2;
}

t.test('the harness shows the known orders of euler (1) and heun (2)', { skip }, async (t) => {
  for (const grid of ['even', 'karras']) {
    t.ok(Math.abs(order('flat-start', 'euler', grid, 32) - 1) < 0.2, `euler on the ${grid} grid`);
    t.ok(Math.abs(order('flat-start', 'heun', grid, 32) - 2) < 0.2, `heun on the ${grid} grid`);
  }
});

// On the flat-start ODE the low-order first steps of a multistep method cost no more than its
// fourth-order ones, so the error falls at the full order, 4 (3.5–3.8 between 32 and 128 steps
// as it approaches it).
t.test('lms converges at fourth order, on even and uneven steps', { skip }, async (t) => {
  for (const grid of ['even', 'karras']) {
    const p = order('flat-start', 'lms', grid, 32);
    t.ok(p > 3.4 && p < 4.6, `lms on the ${grid} grid: order ${p.toFixed(2)}`);
  }
});

t.test('plms converges at fourth order on even steps, and falls to second on uneven ones', { skip }, async (t) => {
  // Its Adams-Bashforth weights assume even steps (as the latent-diffusion code's timesteps are);
  // on the Karras grid they are off by the change of step length, which costs two orders. lms
  // integrates over the actual steps and keeps its order there.
  const even = order('flat-start', 'plms', 'even', 32);
  t.ok(even > 3.4 && even < 4.6, `plms on the even grid: order ${even.toFixed(2)}`);
  const karras = order('flat-start', 'plms', 'karras', 32);
  t.ok(karras > 1.6 && karras < 2.5, `plms on the karras grid: order ${karras.toFixed(2)}`);
});

t.test('ipndm and ipndm_v converge at fourth order on even steps', { skip }, async (t) => {
  for (const sampler of ['ipndm', 'ipndm_v']) {
    const p = order('flat-start', sampler, 'even', 32);
    t.ok(p > 3.4 && p < 4.6, `${sampler}: order ${p.toFixed(2)}`);
  }
});

t.test('on a Gaussian from the top of the SD schedule, lms beats the second-order samplers', { skip }, async (t) => {
  // The realistic case: k-diffusion's lms starts with an Euler step, whose error would make it
  // second order in the end, but at the top of the schedule x is almost a straight line in sigma,
  // so the first steps cost little and lms falls faster than the others on Karras steps.
  const lms = order('gaussian', 'lms', 'karras', 32);
  t.ok(lms > 3, `lms: order ${lms.toFixed(2)}`);
  for (const sampler of ['heun', 'plms', 'ipndm']) {
    t.ok(order('gaussian', sampler, 'karras', 32) < lms - 1, `${sampler} falls slower`);
  }
});
