// Getting models from the terminal: `sdnode pull <ref>…`, `sdnode models`, `sdnode rm <name>…`, and
// what `--model <ref>` on serve and generate needs: a reference (hf:…, https://…, a catalogue name)
// resolved to the files in the models folder, downloaded only with --pull or a yes on a terminal.
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';

import {
  catalogue, defaultModelsDir, familyNames, findPulledModel, isModelReference, pullModel, SdnodeError, sidecarOf, sourceFile, unfinishedDownloads,
  type ModelInfo, type PulledModel, type PullProgress,
} from '../../lib/index.js';
import { componentSetKeys } from '../models/components.js';
import { ModelRegistry, type ModelEntry } from '../models/registry.js';
import { errorMessage, formatBytes, interruptedExitCode, onInterrupt, parseCommand, usageError } from './common.js';
import { formatDuration, ProgressBar, type BarStream } from './progress-bar.js';

const modelsFlag = `      --models <dir>  The models folder (default: SDNODE_MODELS, else ~/.cache/sdnode/models;
                      now ${defaultModelsDir()}).`;

export const pullUsage = `Usage: sdnode pull <ref>… [--models <dir>]

Downloads models into the models folder, where sdnode serve --models, --model <ref> and
loadModel('<ref>') find them. A reference is one of:
  hf:<owner>/<repo>/<file>[@<revision>]   a file of a Hugging Face repository (revision default main)
  https://…/<file>                        a plain URL
  ${Object.keys(catalogue).join(', ')}
                                          a catalogue name (sdnode models --catalogue lists them)
Each file is written as <file>.part and takes its name only once its size and sha256 are verified.
An interrupted pull (Ctrl-C, a dropped connection) keeps the .part and the next pull resumes it.
Gated models need HF_TOKEN: an access token of a Hugging Face account that accepted the licence.

${modelsFlag}
  -h, --help          Show this help.`;

export const modelsUsage = `Usage: sdnode models [--models <dir>] [--catalogue]

Lists the models in the models folder: name, size, family and where each came from.

${modelsFlag}
      --catalogue     List the catalogue's models instead (what sdnode pull <name> gets).
  -h, --help          Show this help.`;

export const rmUsage = `Usage: sdnode rm <name>… [--models <dir>]

Deletes a model from the models folder: its file (or, for a model sdnode pull made of several
files, its folder), the record of where it came from and any unfinished download of it.

${modelsFlag}
  -h, --help          Show this help.`;

const folderSpec = { models: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

/** Runs `sdnode pull`; resolves to the exit code. */
export async function pullCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('pull', argv, folderSpec, pullUsage);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0) return usageError('sdnode pull needs at least one model reference, e.g. sdnode pull sd-turbo', 'sdnode pull --help');
  const modelsDir = values.models ?? defaultModelsDir();
  for (const reference of positionals) {
    const pulled = await pullWithProgress(reference, modelsDir, '<ref>');
    if (typeof pulled === 'number') return pulled;
    console.log(`${reference}: ready as ${pulled.name} (${pulled.path})`);
  }
  return 0;
}

/**
 * Pulls one reference with a progress bar (bytes, speed, time left) on a terminal, plain lines
 * elsewhere; Ctrl-C stops it and keeps the part. Resolves to the model, or an exit code after
 * printing why not. `flag` names where the reference came from in a usage error.
 */
export async function pullWithProgress(reference: string, modelsDir: string, flag: string, stream: BarStream = process.stdout):
Promise<PulledModel | number> {
  const controller = new AbortController();
  const removeHandlers = onInterrupt(() => controller.abort());
  const bar = new ProgressBar(stream);
  let current: { file: string; startMs: number } | undefined;
  const onProgress = (p: PullProgress): void => {
    const label = p.files > 1 ? `${p.file} (${p.index}/${p.files})` : p.file;
    if (current?.file !== p.file) {
      current = { file: p.file, startMs: performance.now() };
      bar.print(`Downloading ${label}${p.totalBytes === undefined ? '' : `, ${formatBytes(p.totalBytes)}`}`
        + `${p.resumedFromBytes > 0 && p.resumedFromBytes !== p.totalBytes ? `, resuming at ${formatBytes(p.resumedFromBytes)}` : ''}`);
    }
    const seconds = (performance.now() - current.startMs) / 1000;
    const speed = seconds > 0 ? (p.receivedBytes - p.resumedFromBytes) / seconds : 0;
    const total = p.totalBytes ?? 0;
    bar.draw({
      label, done: p.receivedBytes, total,
      amount: `${formatBytes(p.receivedBytes)}/${p.totalBytes === undefined ? '?' : formatBytes(p.totalBytes)}`,
      ...(speed > 0 && { rate: `${formatBytes(speed)}/s` }),
      ...(speed > 0 && total > 0 && { etaSeconds: (total - p.receivedBytes) / speed }),
    });
    if (!bar.live && p.receivedBytes === p.totalBytes && seconds > 0) {
      console.log(`${label}: ${formatBytes(p.receivedBytes)} in ${formatDuration(seconds)}`);
    }
  };
  try {
    return await pullModel(reference, { modelsDir, onProgress, signal: controller.signal });
  } catch (error) {
    bar.clear();
    if (error instanceof TypeError) return usageError(`${flag === '<ref>' ? '' : `${flag}: `}${error.message}`);
    if (error instanceof SdnodeError && error.code === 'ERR_ABORTED') {
      console.error(`\nsdnode: stopped; the unfinished download stays in ${modelsDir} as a .part file: run sdnode pull ${reference} to resume it`);
      return interruptedExitCode;
    }
    console.error(`sdnode: ${errorMessage(error)}`);
    return 1;
  } finally {
    bar.clear();
    removeHandlers();
  }
}

/** Asks a yes/no question on the terminal; false without one (stdin or stdout not a TTY). */
export async function askYes(question: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return false;
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await prompt.question(`${question} [y/N] `)).trim());
  } finally {
    prompt.close();
  }
}

/**
 * What a `--model` value names: unchanged when it is a file path; for a reference, the model in
 * `modelsDir`, pulled first with `pull` (or after a yes on a terminal). Else an exit code, after a
 * usage error that says how to get it.
 */
export async function resolveModelFlag(model: string, options: { pull: boolean; modelsDir: string | undefined; help: string; flag?: string }):
Promise<PulledModel | string | number> {
  const flag = options.flag ?? '--model';
  if (!isModelReference(model) || (!/^(hf:|https?:)/i.test(model) && await stat(model).then(() => true, () => false))) return model;
  const modelsDir = options.modelsDir ?? defaultModelsDir();
  let found: PulledModel | undefined;
  try {
    found = await findPulledModel(model, { modelsDir });
  } catch (error) {
    return usageError(`${flag}: ${errorMessage(error)}`, options.help);
  }
  if (found) return found;
  if (options.pull || await askYes(`${flag} ${model} is not downloaded yet. Download it into ${modelsDir}?`)) {
    return pullWithProgress(model, modelsDir, flag);
  }
  return usageError(`${flag} ${model} is not downloaded yet: run sdnode pull ${model} first, or add --pull to download it now`, options.help);
}

const componentFileFlags = ['diffusion-model', 'clip-l', 'clip-g', 't5xxl', 'llm', 'vae', 't5-tokenizer'] as const;

/**
 * The component flags (--diffusion-model, --clip-l, …) with each hf:… or https://… reference
 * replaced by its file in the models folder, downloaded with --pull or a yes on a terminal; a
 * number is an exit code.
 */
export async function resolveComponentFlags<T extends Partial<Record<(typeof componentFileFlags)[number], string>>>(
  values: T, options: { pull: boolean; modelsDir: string | undefined; help: string },
): Promise<T | number> {
  let resolved = values;
  for (const flag of componentFileFlags) {
    const given = values[flag];
    if (given === undefined || !/^(hf:|https?:)/i.test(given)) continue;
    const file = await resolveModelFlag(given, { ...options, flag: `--${flag}` });
    if (typeof file === 'number') return file;
    resolved = { ...resolved, [flag]: typeof file === 'object' ? file.path : file };
  }
  return resolved;
}

interface Sidecar { reference?: string; family?: string }

async function readSidecar(file: string): Promise<Sidecar | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Sidecar;
  } catch {
    return undefined;
  }
}

function sidecarFor(entry: ModelEntry, modelsDir: string): string {
  return entry.components ? path.join(modelsDir, entry.name, sourceFile) : sidecarOf(entry.path);
}

async function entries(modelsDir: string): Promise<ModelEntry[]> {
  const registry = new ModelRegistry({
    dir: modelsDir, maxLoaded: 1, log: () => {}, load: () => Promise.reject(new Error('sdnode models loads nothing')),
  });
  return registry.list();
}

async function sizeOf(entry: ModelEntry): Promise<number> {
  const files = entry.components ? componentSetKeys.map((key) => entry.components![key]).filter((file) => file !== undefined) : [entry.path];
  let bytes = 0;
  for (const file of new Set(files)) bytes += (await stat(file).catch(() => ({ size: 0 }))).size;
  return bytes;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** Runs `sdnode models`; resolves to the exit code. */
export async function modelsCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('models', argv, { ...folderSpec, catalogue: { type: 'boolean' } }, modelsUsage);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length > 0) return usageError(`Unexpected argument ${positionals[0]}`, 'sdnode models --help');
  if (values.catalogue) {
    console.log(table([['NAME', 'FAMILY', 'LICENCE', 'GATED', 'WHAT'], ...Object.entries(catalogue).map(([name, entry]) => [
      name, familyName(entry.family), entry.licence, entry.gated ? 'yes (HF_TOKEN)' : 'no', entry.description,
    ])]));
    return 0;
  }
  const modelsDir = path.resolve(values.models ?? defaultModelsDir());
  const found = await entries(modelsDir);
  if (found.length === 0) {
    console.log(`No models in ${modelsDir} yet: sdnode pull sd-turbo gets one (sdnode models --catalogue lists others).`);
    return 0;
  }
  const rows = [['NAME', 'SIZE', 'FAMILY', 'FROM']];
  for (const entry of found) {
    const sidecar = await readSidecar(sidecarFor(entry, modelsDir));
    rows.push([entry.name, formatBytes(await sizeOf(entry)), sidecar?.family ? familyName(sidecar.family) : '-', sidecar?.reference ?? 'local file']);
  }
  console.log(`${modelsDir}:\n${table(rows)}`);
  return 0;
}

function familyName(family: string): string {
  return familyNames[family as ModelInfo['family']] ?? family;
}

/** Runs `sdnode rm`; resolves to the exit code. */
export async function rmCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('rm', argv, folderSpec, rmUsage);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0) return usageError('sdnode rm needs the name of a model (sdnode models lists them)', 'sdnode rm --help');
  const modelsDir = path.resolve(values.models ?? defaultModelsDir());
  const found = await entries(modelsDir);
  for (const name of positionals) {
    const entry = found.find((candidate) => candidate.name === name);
    if (!entry) {
      // An unfinished download has no name in the listing yet: its part goes by the reference.
      const parts = isModelReference(name) ? await unfinishedDownloads(name, { modelsDir }) : [];
      if (parts.length > 0) {
        for (const part of parts) await rm(part, { force: true });
        console.log(`Removed the unfinished download ${parts.join(', ')}`);
        continue;
      }
      return usageError(`No model ${name} in ${modelsDir}; sdnode models lists them`, 'sdnode rm --help');
    }
    if (entry.components) {
      const folder = path.join(modelsDir, entry.name);
      if (await readSidecar(path.join(folder, sourceFile)) === undefined) {
        console.error(`sdnode: ${name} is made of files sdnode pull did not download; delete them yourself: `
          + componentSetKeys.map((key) => entry.components![key]).filter((file) => file !== undefined).join(', '));
        return 1;
      }
      await rm(folder, { recursive: true, force: true });
      console.log(`Removed ${folder}`);
      continue;
    }
    for (const file of [entry.path, sidecarOf(entry.path), `${entry.path}.part`]) await rm(file, { force: true });
    console.log(`Removed ${entry.path}`);
  }
  return 0;
}
