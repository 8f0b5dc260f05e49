// Helpers of the benchmarks that compare settings side by side: one `speed.mjs --child` process
// per case (so peak RSS is that case's alone), and the PSNR of two PNGs (../shared/tools/psnr.py).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const speed = fileURLToPath(new URL('./speed.mjs', import.meta.url));

/** A fresh folder for a run's images. */
export function imageFolder(name) {
  return mkdtempSync(path.join(tmpdir(), `sdnode-${name}-`));
}

/**
 * Runs one case ('256:4' = 256², 4 steps) with speed.mjs's extra `args`, saving its image to `png`.
 * Resolves to speed.mjs's figures plus `png`, or undefined (with the error printed) when it failed.
 */
export function runCase(spec, { model, threads, png, args = [] }) {
  const child = spawnSync(process.execPath, [speed, '--child', spec, '--model', model, '--threads', threads,
    '--save', png, ...args], { encoding: 'utf8' });
  if (child.status !== 0) {
    console.log(`${spec} ${args.join(' ')}: failed\n${child.stderr}`);
    return undefined;
  }
  return { ...JSON.parse(child.stdout.trim().split('\n').pop()), png };
}

/** "psnr=… maxdiff=…" of two PNGs of the same size. */
export function psnr(a, b) {
  return execFileSync('python3', [path.resolve('../shared/tools/psnr.py'), a, b], { encoding: 'utf8' }).trim();
}
