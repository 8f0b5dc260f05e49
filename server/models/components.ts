// Models given as one file per component (FLUX.1 and SD3 as they are downloaded), and how the models folder
// shows them. Two conventions, both found by a listing without loading anything:
//
// - A JSON file naming the components, paths relative to the JSON file:
//     { "diffusionModel": "flux1-schnell.safetensors", "clipL": "clip_l.safetensors",
//       "t5xxl": "t5xxl_fp16.safetensors", "vae": "ae.safetensors", "t5Tokenizer": "tokenizer.json" }
//   `NAME.json` is the model NAME; `DIR/model.json` is the model DIR. JSON files without a
//   "diffusionModel" key (tokenizer.json, configs) are not models. `"kontext": true` marks a
//   FLUX.1 Kontext model whose names do not say so (Kontext has FLUX.1 dev's tensors; see
//   dialects/kontext.ts).
// - A folder holding the files under their download names: a T5, CLIP or Qwen file (`t5xxl*`,
//   `clip_l*`, `clip_g*`, `qwen*`), the VAE (`ae.*`, or a name with `vae`), and exactly one other
//   .safetensors / .gguf, the diffusion model (`flux1-schnell.safetensors`, `sd3.5_medium.safetensors`).
//   The model is named after the folder. T5's tokenizer is `spiece.model` or `tokenizer.json` in
//   the folder, in its `tokenizer_2/` (the FLUX.1 repository's layout) or its `tokenizer_3/` (SD3's).
// The component files themselves are then not offered as checkpoints of their own.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import type { ModelComponents } from '../../lib/index.js';

/** A model's component files and, for its T5 encoder, the tokenizer file (absolute paths). */
export interface ModelComponentSet extends ModelComponents {
  /** T5's spiece.model or tokenizer.json. */
  t5Tokenizer?: string;
  /** A FLUX.1 Kontext model (--kontext, or "kontext": true in its JSON file): not a file; the dialects read it. */
  kontext?: boolean;
}

/** The file keys a component JSON file may hold; "kontext" (true or false) besides. */
export const componentSetKeys = ['diffusionModel', 'clipL', 'clipG', 't5xxl', 'llm', 'vae', 't5Tokenizer'] as const;

/**
 * Whether a model is marked as FLUX.1 Kontext, whose tensors are FLUX.1 dev's: by its components'
 * `kontext` (true or false) when given, else by its name or one of its files' names (not their
 * folders) containing "kontext", as every download's does (flux1-kontext-dev.safetensors).
 */
export function markedKontext(flag: boolean | undefined, name: string, files: readonly string[]): boolean {
  const fileNames = files.map((file) => path.basename(file.replaceAll('\\', '/')));
  return flag ?? [name, ...fileNames].some((text) => /kontext/i.test(text));
}

/** What the library's loadModel takes from a set: the component files, and T5's tokenizer as a load option. */
export function libraryComponents(set: ModelComponentSet): { files: ModelComponents; t5Tokenizer?: string } {
  const { t5Tokenizer, kontext: _kontext, ...files } = set;
  return t5Tokenizer === undefined ? { files } : { files, t5Tokenizer };
}

/** The name of the JSON file that makes its folder a model. */
export const folderModelJson = 'model.json';

const largestComponentJson = 64 * 1024;
const checkpointExtensions = ['.safetensors', '.gguf'];

/** A model found in the models folder: its name and its component files. */
export interface FoundComponentModel {
  /** Posix path inside the models folder: the JSON file without `.json`, or the folder. */
  name: string;
  components: ModelComponentSet;
}

/**
 * The component set a JSON file names, paths resolved against its folder; undefined when the file
 * is not a component model (no "diffusionModel" path, not an object, not JSON, over 64 KB). The
 * other keys are checked when the model loads (checkComponentSet).
 */
export async function readComponentJson(file: string): Promise<ModelComponentSet | undefined> {
  let text: string;
  try {
    if ((await stat(file)).size > largestComponentJson) return undefined;
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const { diffusionModel } = parsed as { diffusionModel?: unknown };
  if (typeof diffusionModel !== 'string' || diffusionModel === '') return undefined;
  const dir = path.dirname(file);
  const set: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) set[key] = typeof value === 'string' && value !== '' ? path.resolve(dir, value) : value;
  return set as unknown as ModelComponentSet;
}

/** The component JSON file of `--model x.json`: an error when it names no diffusion model. */
export async function requireComponentJson(file: string): Promise<ModelComponentSet> {
  const set = await readComponentJson(file);
  if (!set) {
    throw new TypeError(`${file} is not a model's component list: expected a JSON object with "diffusionModel" and the other `
      + `component files (${componentSetKeys.join(', ')}), paths relative to it`);
  }
  return set;
}

/**
 * Throws a TypeError naming the key when `set` holds a key that is not a component or a value
 * that is not a path. The library checks the components again; this covers t5Tokenizer and says
 * which file was wrong.
 */
export function checkComponentSet(set: ModelComponentSet, source: string): void {
  for (const [key, value] of Object.entries(set)) {
    if (key === 'kontext') {
      if (typeof value !== 'boolean') throw new TypeError(`${source}: expected true or false for kontext but received ${JSON.stringify(value)}`);
      continue;
    }
    if (!(componentSetKeys as readonly string[]).includes(key)) {
      throw new TypeError(`${source}: unknown key ${JSON.stringify(key)}; known keys: ${componentSetKeys.join(', ')}, kontext`);
    }
    if (typeof value !== 'string' || value === '') {
      throw new TypeError(`${source}: expected a file path for ${key} but received ${JSON.stringify(value)}`);
    }
  }
}

type Role = 'clipL' | 'clipG' | 't5xxl' | 'llm' | 'vae';

// Download names: clip_l.safetensors, clip_g.safetensors, t5xxl_fp16.safetensors, qwen_3_4b.safetensors,
// ae.safetensors, sd3_vae.safetensors.
function roleOf(fileName: string): Role | undefined {
  const lower = fileName.toLowerCase();
  if (!checkpointExtensions.some((ext) => lower.endsWith(ext))) return undefined;
  if (/^clip[_-]?l\b|^clip[_-]?l[_.-]/.test(lower)) return 'clipL';
  if (/^clip[_-]?g[_.-]/.test(lower)) return 'clipG';
  if (lower.startsWith('t5xxl') || lower.startsWith('t5-xxl') || lower.startsWith('t5_xxl')) return 't5xxl';
  if (lower.startsWith('qwen')) return 'llm';
  if (/^ae\./.test(lower) || lower.includes('vae')) return 'vae';
  return undefined;
}

/**
 * The component models among a folder listing (`relative`: every path under `root`, as readdir
 * with `recursive` gives them): JSON-named ones and recognised folders, and the set of files (absolute)
 * they take, which are no checkpoints of their own.
 */
export async function findComponentModels(root: string, relative: readonly string[]):
Promise<{ models: FoundComponentModel[]; taken: Set<string> }> {
  const posix = relative.map((name) => name.split(path.sep).join('/'));
  const byDir = new Map<string, string[]>();
  for (const name of posix) {
    const dir = path.posix.dirname(name);
    byDir.set(dir, [...(byDir.get(dir) ?? []), path.posix.basename(name)]);
  }
  const models: FoundComponentModel[] = [];
  for (const name of posix.filter((file) => file.toLowerCase().endsWith('.json'))) {
    const components = await readComponentJson(path.join(root, name));
    if (!components) continue;
    const base = path.posix.basename(name);
    const dir = path.posix.dirname(name);
    const modelName = base === folderModelJson ? (dir === '.' ? stemOf(components.diffusionModel) : dir) : name.slice(0, -'.json'.length);
    models.push({ name: modelName, components });
  }
  // A folder whose diffusion model a JSON file names is that model's, not one of its own.
  const named = new Set(models.map(({ components }) => path.resolve(components.diffusionModel)));
  for (const [dir, files] of byDir) {
    const tokenizerDirs = tokenizerFolders.map((sub) => ({ sub, files: byDir.get(dir === '.' ? sub : `${dir}/${sub}`) ?? [] }));
    const found = folderComponents(root, dir, files, tokenizerDirs);
    if (found && !named.has(found.diffusionModel)) models.push({ name: dir === '.' ? stemOf(found.diffusionModel) : dir, components: found });
  }
  const taken = new Set<string>();
  for (const { components } of models) {
    for (const key of componentSetKeys) {
      const file = components[key];
      if (typeof file === 'string') taken.add(path.resolve(file));
    }
  }
  return { models, taken };
}

// Where the model repositories keep T5's tokenizer: FLUX.1's tokenizer_2/, SD3's tokenizer_3/.
const tokenizerFolders = ['tokenizer_2', 'tokenizer_3'] as const;

function folderComponents(root: string, dir: string, files: readonly string[],
  tokenizerDirs: readonly { sub: string; files: readonly string[] }[]): ModelComponentSet | undefined {
  const at = (file: string): string => path.join(root, dir, file);
  const roles = new Map<Role, string>();
  const others: string[] = [];
  for (const file of [...files].sort()) {
    const role = roleOf(file);
    if (role && !roles.has(role)) roles.set(role, file);
    else if (checkpointExtensions.some((ext) => file.toLowerCase().endsWith(ext))) others.push(file);
  }
  const isComponentFolder = roles.has('t5xxl') || roles.has('clipL') || roles.has('clipG') || roles.has('llm');
  if (!isComponentFolder || others.length !== 1) return undefined;
  const set: ModelComponentSet = { diffusionModel: at(others[0]!) };
  for (const [role, file] of roles) set[role] = at(file);
  const tokenizer = ['spiece.model', 'tokenizer.json'].flatMap((file) => [
    files.includes(file) ? file : undefined,
    ...tokenizerDirs.map(({ sub, files: inside }) => (inside.includes(file) ? `${sub}/${file}` : undefined)),
  ]).find((file) => file !== undefined);
  if (tokenizer !== undefined) set.t5Tokenizer = at(tokenizer);
  return set;
}

function stemOf(file: string): string {
  const base = path.basename(file);
  const extension = checkpointExtensions.find((ext) => base.toLowerCase().endsWith(ext));
  return extension === undefined ? base : base.slice(0, -extension.length);
}
