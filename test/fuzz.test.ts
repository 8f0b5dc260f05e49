// libFuzzer smoke of the checkpoint readers (test/fuzz/*_fuzzer.cpp, built by scripts/build-fuzz.sh
// with clang, AddressSanitizer and UBSan): every regression input once, then a few seconds of
// fuzzing from the fixture seeds, per target. A target that crashes, leaks, hangs, trips a
// sanitizer or lets anything but an sdnode::Error out exits non-zero, and the input that did it is
// kept in .native-build/fuzz/crashes/. The long runs (1,000,000 executions each) are in
// bench/results/2026-12-07-fuzz.md. Without clang's libFuzzer this skips loudly; in CI it fails.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { fuzzRegressions } from './fuzz/regressions.js';
import { FUZZ_TARGETS, fuzzSeeds, type FuzzInput } from './fuzz/seeds.js';
import { root } from './native-build.js';

const SECONDS_PER_TARGET = Number(process.env.SDNODE_FUZZ_SECONDS ?? 6);
const out = path.join(root, '.native-build', 'fuzz');
const crashes = path.join(out, 'crashes');

function writeInputs(dir: string, inputs: readonly FuzzInput[]): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const input of inputs) writeFileSync(path.join(dir, input.name), input.bytes);
  return dir;
}

/** Runs a target; the result's text is its last lines (libFuzzer's report and final stats). */
function runTarget(target: string, args: string[], timeoutMs: number): { status: number | null; text: string; executions: number } {
  mkdirSync(crashes, { recursive: true });
  const run = spawnSync(path.join(out, `${target}_fuzzer`), [
    `-artifact_prefix=${crashes}/${target}-`, '-timeout=10', '-rss_limit_mb=2048', '-print_final_stats=1', ...args,
  ], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  const text = `${run.stdout}${run.stderr}${run.error ? `\n${String(run.error)}` : ''}`;
  const executions = Number(/stat::number_of_executed_units:\s*(\d+)/.exec(text)?.[1] ?? 0);
  return { status: run.status, text: text.split('\n').slice(-40).join('\n'), executions };
}

// The targets hand their input to the readers through a Linux memfd.
const linux = process.platform === 'linux';
const build = linux
  ? spawnSync('bash', [path.join(root, 'scripts/build-fuzz.sh'), out], { encoding: 'utf8' })
  : { status: 2, stdout: '', stderr: `the fuzz targets need Linux (this is ${process.platform})` };
const reason = build.status === 0 ? undefined : `${build.stderr.trim() || build.stdout.trim()} (exit ${build.status})`;
const ci = Boolean(process.env.CI) && !['0', 'false'].includes(process.env.CI!);
// Exit 2: no clang with libFuzzer; 3: no native build from source to link ggml from.
const skip = (!ci || !linux) && (build.status === 2 || build.status === 3) ? reason : false;
if (skip) console.error(`\n*** test/fuzz.test.ts SKIPPED: the fuzz targets cannot be built here: ${reason}. ***\n`);

t.test('the fuzz targets build (clang, libFuzzer, AddressSanitizer, UBSan)', { skip }, async (t) => {
  t.equal(build.status, 0, reason ?? 'built');
});

const ready = build.status === 0;
const seeds = ready ? fuzzSeeds() : undefined;
const regressions = ready ? fuzzRegressions() : undefined;

for (const target of FUZZ_TARGETS) {
  t.test(`the ${target} target turns every regression input into an error, not a crash`, { skip: !ready && 'not built' }, async (t) => {
    const dir = writeInputs(path.join(out, 'regressions', target), regressions![target]);
    const run = runTarget(target, ['-runs=0', dir], 60_000);
    if (run.status === 0) t.pass(`${regressions![target].length} inputs`);
    else t.fail(`${target} exited with ${run.status}:\n${run.text}`);
  });

  t.test(`the ${target} target survives ${SECONDS_PER_TARGET} s of fuzzing from the fixture seeds`, { skip: !ready && 'not built' }, async (t) => {
    const seedDir = writeInputs(path.join(out, 'seeds', target), seeds![target]);
    const corpus = writeInputs(path.join(t.testdir(), 'corpus'), []);
    const run = runTarget(target, [`-max_total_time=${SECONDS_PER_TARGET}`, corpus, seedDir], (SECONDS_PER_TARGET + 60) * 1000);
    if (run.status === 0) t.ok(run.executions > 0, `${run.executions} executions, no finding`);
    else t.fail(`${target} exited with ${run.status}:\n${run.text}`);
  });
}
