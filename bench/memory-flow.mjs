#!/usr/bin/env node
// Peak memory of the flow families side by side with the reference engine (stable-diffusion.cpp's
// CLI, ../shared/peer/): FLUX.1 dev q4_K with T5-XXL in q4_K or f16, and SD3.5 medium f16, each run
// once per size by both engines in their own process under `/usr/bin/time -v` (peak RSS, wall time),
// with the process's RSS sampled from /proc every --interval-ms and the engines' phases stamped on
// that timeline (sdnode: loaded, step 1 done, decoded; the reference: its "... completed" log lines),
// so a peak can be traced to the phase that makes it. 1 step, euler, seed 42, T5 fed no tokens on
// both sides (the reference has no T5 vocabulary: promptTokens { t5xxl: [] } on ours).
//
//   npm run build:ts && node bench/memory-flow.mjs --models /work/models/full \
//     [--cases flux-q4k-t5q4k,flux-q4k-t5f16,sd35-f16] [--sizes 256,512] [--threads 2] \
//     [--engines sdnode,reference] [--vae-tiling-at 512] [--interval-ms 1000] [--trace-dir DIR] \
//     [--peer ../shared/peer/sd-cli-avx2]
//
//   --models DIR       holds the files by these names (symlinks are fine): flux-dev-q4_K.gguf (full
//                      depth, 19 + 38 blocks: make-random-dit.mjs then `sdnode convert --type q4_k`),
//                      t5xxl-q4_K.gguf and t5xxl-f16.safetensors (24 layers), clip-l-random-f16,
//                      clip-g-random-f16, vae16-random-f16 and sd35-medium-random-f16 (.safetensors).
//   --cases            which of the cases below (comma-separated); default all three.
//   --sizes            square sizes in pixels (default 256,512).
//   --engines          sdnode, reference or both (default both; the reference runs first).
//   --vae-tiling-at N  also run sdnode with vaeTiling at size N (default: none).
//   --interval-ms      the RSS sampling period (default 1000).
//   --trace-dir DIR    writes one JSON per run there: its samples [seconds, RSS MB] and its phases.
//   --peer FILE        the reference binary (default: sd-cli-avx2).
//   --deepen IN.gguf --out OUT.gguf [--blocks double_blocks=19,single_blocks=38]: instead of measuring,
//                      writes a deeper copy of a converted GGUF, its blocks repeated (see deepenGguf):
//                      a full-depth FLUX.1 dev q4_K from make-random-dit's 2 + 2 file in a minute.
// Before each run it waits until /proc/meminfo's MemAvailable covers the run's files plus 1.5 GiB (on a
// shared machine an oversized run would push someone else's process into the OOM killer).
// Prints a markdown table (peak RSS, wall time, the phase at the peak sample) and, per
// run, the RSS timeline thinned to about 20 points.
import { spawn } from 'node:child_process';
import {
  closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: '/work/models/full' },
    cases: { type: 'string', default: 'flux-q4k-t5q4k,flux-q4k-t5f16,sd35-f16' },
    sizes: { type: 'string', default: '256,512' },
    threads: { type: 'string', default: '2' },
    engines: { type: 'string', default: 'reference,sdnode' },
    'vae-tiling-at': { type: 'string' },
    'interval-ms': { type: 'string', default: '1000' },
    'trace-dir': { type: 'string' },
    peer: { type: 'string', default: '../shared/peer/sd-cli-avx2' },
    child: { type: 'string' },
    'vae-tiling': { type: 'boolean', default: false },
    deepen: { type: 'string' },
    blocks: { type: 'string', default: 'double_blocks=19,single_blocks=38' },
    out: { type: 'string' },
  },
});

const fluxText = { clipL: 'clip-l-random-f16.safetensors', vae: 'vae16-random-f16.safetensors' };
/** The cases: component files (names in --models) and the family's sampling settings. */
const CASES = {
  'flux-q4k-t5q4k': {
    label: 'FLUX.1 dev q4_K + T5 q4_K', cfgScale: 1,
    files: { diffusionModel: 'flux-dev-q4_K.gguf', ...fluxText, t5xxl: 't5xxl-q4_K.gguf' },
  },
  'flux-q4k-t5f16': {
    label: 'FLUX.1 dev q4_K + T5 f16', cfgScale: 1,
    files: { diffusionModel: 'flux-dev-q4_K.gguf', ...fluxText, t5xxl: 't5xxl-f16.safetensors' },
  },
  'sd35-f16': {
    label: 'SD3.5 medium f16 (+ CLIP-L, CLIP-G, T5 f16)', cfgScale: 4.5,
    files: {
      diffusionModel: 'sd35-medium-random-f16.safetensors', clipL: 'clip-l-random-f16.safetensors',
      clipG: 'clip-g-random-f16.safetensors', t5xxl: 't5xxl-f16.safetensors', vae: 'vae16-random-f16.safetensors',
    },
  },
};
const peerFlags = { diffusionModel: '--diffusion-model', clipL: '--clip_l', clipG: '--clip_g', t5xxl: '--t5xxl', vae: '--vae' };
const filesOf = (c) => Object.fromEntries(Object.entries(CASES[c].files).map(([role, f]) => [role, path.join(values.models, f)]));
const seconds = (t0) => (performance.now() - t0) / 1000;

if (values.deepen) {
  deepenGguf(values.deepen, values.out, Object.fromEntries(values.blocks.split(',').map((kv) => kv.split('=')).map(([k, n]) => [k, Number(n)])));
  process.exit(0);
}

/**
 * Writes a deeper copy of a GGUF: block k of `prefix.k.*` (for each prefix in `depths`, k up to its
 * new count) is the source's block k mod n, byte for byte; every other tensor and the metadata are
 * copied (a metadata string keyed by the prefix itself, make-random-dit's depth note, gets the new
 * count). A full-depth FLUX.1 file in a stored type costs only the disk writes this way, where
 * writing it in f16 and quantizing it costs hours of CPU on a busy 2-core machine; the memory a run
 * takes depends only on the tensors' shapes and types, which are those of a full conversion.
 */
function deepenGguf(source, out, depths) {
  const buf = readFileSync(source);
  let at = 8;
  const u32 = () => { at += 4; return buf.readUInt32LE(at - 4); };
  const u64 = () => { at += 8; return Number(buf.readBigUInt64LE(at - 8)); };
  const str = () => { const n = u64(); at += n; return buf.toString('utf8', at - n, at); };
  const scalarBytes = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skipValue = (type) => {
    if (type === 8) str();
    else if (type === 9) { const inner = u32(); for (let i = u64(); i > 0; i--) skipValue(inner); } else at += scalarBytes[type];
  };
  const [tensorCount, kvCount] = [u64(), u64()];
  const kvs = [];
  let alignment = 32;
  for (let i = 0; i < kvCount; i++) {
    const start = at;
    const key = str();
    const type = u32();
    const valueAt = at;
    skipValue(type);
    if (key === 'general.alignment') alignment = buf.readUInt32LE(valueAt);
    kvs.push(type === 8 && key in depths ? { key, text: String(depths[key]) } : { raw: buf.subarray(start, at) });
  }
  const tensors = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const dims = Array.from({ length: u32() }, u64);
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const dataStart = Math.ceil(at / alignment) * alignment;
  // A tensor's bytes run to the next tensor's offset, so its padding travels with it.
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  const bytesOf = new Map(byOffset.map((t, i) => [t.name, { t, offset: t.offset, size: (byOffset[i + 1]?.offset ?? buf.length - dataStart) - t.offset }]));
  const sourceCount = (prefix) => new Set(tensors.map((t) => new RegExp(`^${prefix}\\.(\\d+)\\.`).exec(t.name)?.[1]).filter(Boolean)).size;
  const written = [];
  for (const t of tensors) {
    const m = /^(\w+)\.(\d+)\.(.*)$/.exec(t.name);
    if (!m || !(m[1] in depths)) { written.push({ name: t.name, from: t.name }); continue; }
    if (Number(m[2]) !== 0) continue;
    const n = sourceCount(m[1]);
    for (let k = 0; k < depths[m[1]]; k++) {
      const from = `${m[1]}.${k % n}.${m[3]}`;
      if (bytesOf.has(from)) written.push({ name: `${m[1]}.${k}.${m[3]}`, from });
    }
  }
  const chunks = [];
  const pushU32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); chunks.push(b); };
  const pushU64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); chunks.push(b); };
  const pushStr = (s) => { const b = Buffer.from(s, 'utf8'); pushU64(b.length); chunks.push(b); };
  chunks.push(buf.subarray(0, 8));
  pushU64(written.length);
  pushU64(kvs.length);
  for (const kv of kvs) {
    if (kv.raw) chunks.push(kv.raw);
    else { pushStr(kv.key); pushU32(8); pushStr(kv.text); }
  }
  let offset = 0;
  for (const w of written) {
    const { t, size } = bytesOf.get(w.from);
    pushStr(w.name);
    pushU32(t.dims.length);
    t.dims.forEach(pushU64);
    pushU32(t.type);
    pushU64(offset);
    offset += size;
  }
  const header = Buffer.concat(chunks);
  const fd = openSync(`${out}.part`, 'w');
  writeSync(fd, Buffer.concat([header, Buffer.alloc(Math.ceil(header.length / alignment) * alignment - header.length)]));
  for (const w of written) {
    const { offset: from, size } = bytesOf.get(w.from);
    writeSync(fd, buf.subarray(dataStart + from, dataStart + from + size));
  }
  closeSync(fd);
  renameSync(`${out}.part`, out);
  console.log(`Wrote ${out}: ${written.length} tensors, ${(offset / 2 ** 30).toFixed(2)} GiB of data`);
}

if (values.child) {
  // One sdnode run, its phases as JSON lines on stdout (the parent stamps them on its timeline).
  const [name, size] = values.child.split(':');
  const mark = (event, extra) => console.log(JSON.stringify({ event, ...extra }));
  const { loadModel } = await import('../dist/lib/index.js');
  const t0 = performance.now();
  mark('load-start');
  const model = await loadModel(filesOf(name), { threads: Number(values.threads) });
  mark('loaded', { seconds: seconds(t0) });
  const t1 = performance.now();
  await model.textToImage({
    prompt: 'a photo of a cat', negativePrompt: '', promptTokens: { t5xxl: [] }, negativePromptTokens: { t5xxl: [] },
    width: Number(size), height: Number(size), steps: 1, sampler: 'euler', cfgScale: CASES[name].cfgScale, seed: 42,
    vaeTiling: values['vae-tiling'],
    onProgress: (p) => mark('step', { step: p.step, seconds: p.elapsedMs / 1000 }),
  });
  mark('decoded', { seconds: seconds(t1) });
  await model.close();
  process.exit(0);
}

/**
 * Waits until the machine has room for a run of these files (their bytes and 1.5 GiB for buffers),
 * so that on a shared machine a run does not push someone else's process into the OOM killer.
 */
async function waitForMemory(files) {
  const needKB = Object.values(files).reduce((sum, f) => sum + statSync(f).size, 0) / 1024 + 1.5 * 2 ** 20;
  for (let waited = 0; ; waited++) {
    const availableKB = Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]);
    if (availableKB >= needKB) return;
    if (waited % 12 === 0) console.error(`  waiting for ${(needKB / 2 ** 20).toFixed(1)} GiB of free memory (${(availableKB / 2 ** 20).toFixed(1)} GiB now)`);
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}

/** Runs argv under /usr/bin/time -v, sampling the measured process's RSS; resolves with its record. */
function measure(argv, phaseOf) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const proc = spawn('/usr/bin/time', ['-v', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    const samples = [];
    const phases = [];
    let log = '';
    const readRss = () => {
      try {
        const kids = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        const status = readFileSync(`/proc/${kids[0]}/status`, 'utf8');
        samples.push([seconds(t0), Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024]);
      } catch { /* not started yet, or gone */ }
    };
    const timer = setInterval(readRss, Number(values['interval-ms']));
    const onLines = (chunk) => {
      log += chunk;
      for (const line of chunk.toString().split('\n')) {
        const phase = phaseOf(line);
        if (phase) { readRss(); phases.push([seconds(t0), phase, samples.at(-1)?.[1]]); }
      }
    };
    proc.stdout.on('data', onLines);
    proc.stderr.on('data', onLines);
    proc.on('close', (code) => {
      clearInterval(timer);
      const peakKB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(log)?.[1]);
      if (code !== 0 || !peakKB) return reject(new Error(`${path.basename(argv[0])} failed (${code}):\n${log.slice(-3000)}`));
      resolve({ peakMB: peakKB / 1024, wallSeconds: seconds(t0), samples, phases, log });
    });
  });
}

const sdnodePhase = (line) => {
  const m = /^\{"event":"([a-z-]+)"/.exec(line);
  // Each mark names the phase it starts (one step: the step's end starts the decode).
  return m && { 'load-start': 'loading', loaded: 'encoding (every component loaded)', step: 'decoding (step 1 done)', decoded: 'done' }[m[1]];
};
// The reference's -v log: "... completed, taking Ns" per phase, and the buffers it allocates.
const peerPhase = (line) => {
  const m = /\] (?:[\w.-]+:\d+ +- +)?(.*(?:completed, taking [\d.]+m?s|loading tensors from|compute buffer size: [\d.]+ MB))/.exec(line);
  return m && m[1].replace(/\s+/g, ' ').slice(0, 80);
};

function runSdnode(name, size, tiling) {
  return measure([process.execPath, fileURLToPath(import.meta.url), '--child', `${name}:${size}`, '--models', values.models,
    '--threads', values.threads, ...(tiling ? ['--vae-tiling'] : [])], sdnodePhase);
}

function runReference(name, size, png) {
  const files = filesOf(name);
  return measure([values.peer, ...Object.entries(files).flatMap(([role, f]) => [peerFlags[role], f]),
    '-W', String(size), '-H', String(size), '--steps', '1', '--sampling-method', 'euler', '--cfg-scale', String(CASES[name].cfgScale),
    '-s', '42', '-t', values.threads, '-p', 'a photo of a cat', '-n', '', '-o', png, '-v'], peerPhase);
}

/** The phase whose span holds the peak sample: the last phase mark at or before it. */
function phaseAtPeak(run) {
  const [t] = run.samples.reduce((a, b) => (b[1] > a[1] ? b : a), [0, 0]);
  const before = run.phases.filter(([pt]) => pt <= t + 1e-3);
  return `${before.at(-1)?.[1] ?? 'start'} (t=${t.toFixed(0)} s)`;
}

const peer = values.peer;
if (values.engines.includes('reference') && !existsSync(peer)) throw new Error(`The reference binary ${peer} is missing; pass --peer`);
if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time (Debian package "time") measures peak RSS; install it');
for (const name of values.cases.split(',')) {
  if (!CASES[name]) throw new Error(`--cases: ${name} is not one of ${Object.keys(CASES).join(', ')}`);
  for (const file of Object.values(filesOf(name))) if (!existsSync(file)) throw new Error(`${file} is missing (see --models)`);
}
const folder = mkdtempSync(path.join(tmpdir(), 'sdnode-memory-'));
if (values['trace-dir']) mkdirSync(values['trace-dir'], { recursive: true });

const rows = [];
const timelines = [];
const mb = (x) => (x === undefined ? '–' : (x / 1024).toFixed(2));
for (const name of values.cases.split(',')) {
  for (const size of values.sizes.split(',').map(Number)) {
    const runs = [];
    for (const engine of values.engines.split(',')) {
      const tilingToo = engine === 'sdnode' && Number(values['vae-tiling-at']) === size;
      for (const tiling of tilingToo ? [false, true] : [false]) {
        const label = `${engine}${tiling ? ' (VAE tiling)' : ''}`;
        console.error(`${new Date().toISOString()} ${name} ${size}² ${label} …`);
        let run;
        await waitForMemory(filesOf(name));
        try {
          run = engine === 'sdnode' ? await runSdnode(name, size, tiling) : await runReference(name, size, path.join(folder, `${name}-${size}.png`));
        } catch (error) {
          // One failed run (out of memory, a missing addon) leaves the others' figures standing.
          console.error(error.message);
          rows.push(`| ${CASES[name].label} | ${size}² | ${label} | failed: ${error.message.split('\n')[0]} | | | |`);
          continue;
        }
        runs.push({ label, run });
        if (values['trace-dir']) {
          writeFileSync(path.join(values['trace-dir'], `${name}-${size}-${label.replace(/[^a-z]+/g, '-')}.json`),
            JSON.stringify({ case: name, size, engine: label, peakMB: run.peakMB, wallSeconds: run.wallSeconds, phases: run.phases, samples: run.samples }));
        }
        const step = Math.max(1, Math.ceil(run.samples.length / 20));
        timelines.push(`${CASES[name].label}, ${size}², ${label}: `
          + run.samples.filter((_, i) => i % step === 0).map(([t, r]) => `${t.toFixed(0)}s ${(r / 1024).toFixed(2)}`).join(', ')
          + `\n  phases: ${run.phases.map(([t, p, r]) => `${t.toFixed(0)}s ${p} [${mb(r)} GiB]`).join('; ')}`);
        console.error(`  peak ${mb(run.peakMB)} GiB, ${run.wallSeconds.toFixed(0)} s, peak during ${phaseAtPeak(run)}`);
      }
    }
    const ref = runs.find((r) => r.label === 'reference');
    for (const { label, run } of runs) {
      rows.push(`| ${CASES[name].label} | ${size}² | ${label} | ${mb(run.peakMB)} | ${run.wallSeconds.toFixed(0)} `
        + `| ${phaseAtPeak(run)} | ${ref && label !== 'reference' ? (run.peakMB / ref.run.peakMB).toFixed(2) : ''} |`);
    }
  }
}
console.log(`models in ${values.models}, ${values.threads} threads, 1 step, euler, seed 42, reference ${path.basename(peer)}\n`);
console.log('| case | size | engine | peak RSS GiB | wall s | peak during | peak / reference |');
console.log('|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
console.log('\nRSS over time (seconds, GiB):\n');
for (const line of timelines) console.log(line);
