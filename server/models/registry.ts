// The checkpoints a server offers: every .safetensors / .gguf under --models (subfolders too) plus
// --model, by name (the path inside the folder without its extension, e.g. "anime/v3"), and the
// models given as component files (a JSON file or a folder of them, see components.ts). Listing
// reads the folder and never loads anything; at most `maxLoaded` models stay resident, and a job
// that names another one waits for a free slot, unloading the least recently used idle model.

import { readdir } from 'node:fs/promises';
import path from 'node:path';

import { isModelReference, pulledModelName, type PulledModel } from '../../lib/pull.js';
import type { ImageModel } from '../jobs/runner.js';
import { findComponentModels, type ModelComponentSet } from './components.js';

const checkpointExtensions = ['.safetensors', '.gguf'];
// References named by requests (--allow-pull) remembered until their jobs have pulled them.
const maxPendingReferences = 256;
// A component JSON file's name is the model's without it.
const modelFileExtensions = [...checkpointExtensions, '.json'];

export interface ModelEntry {
  /** What clients call it: the path under --models without extension, or --model's file name without it. */
  name: string;
  /**
   * Absolute path of the checkpoint, or of the diffusion model of a model given as components (on
   * the worker that offers it, with --redis; '' while none does).
   */
  path: string;
  /** For a model given as component files: each file (absolute paths). */
  components?: ModelComponentSet;
  /** The file's SHA-256 in hex, when the worker that offers it has computed it. */
  sha256?: string;
  /**
   * Whether the model is FLUX.1 Kontext, as the worker that offers it (--redis) tells from its
   * files and marks, which this process cannot read. Unset for a model of this process's own.
   */
  kontext?: boolean;
  /**
   * A model reference (a catalogue name, hf:…, https://…) not downloaded yet, named by a request
   * to a server started with --allow-pull: the load downloads it into the models folder first.
   */
  reference?: string;
}

/** What the HTTP side asks of models: names, the default, and what is resident. Files or Redis. */
export interface ModelCatalog {
  /** Whether any model can be used (or may be offered later). */
  readonly configured: boolean;
  /** Every model offered, the default first, then by name. */
  list(): Promise<ModelEntry[]>;
  defaultModel(): Promise<ModelEntry | undefined>;
  /** Makes `name` the default for requests that name no model (AUTOMATIC1111's options). */
  setDefault(name: string): Promise<ModelEntry>;
  /** Names currently resident. */
  loadedNames(): string[];
  /** The entry a client's name refers to; undefined or '' means the default. */
  resolve(requested?: string): Promise<ModelEntry>;
}

export interface ModelRegistryOptions {
  /** Folder scanned (recursively) for checkpoints. */
  dir?: string;
  /** Folders inside `dir` whose files are not checkpoints (the LoRA and upscaler folders). */
  excludeDirs?: string[];
  /** The default checkpoint (--model, or a component JSON file); it need not be inside `dir`. */
  defaultPath?: string;
  /** The default model's component files (--diffusion-model, … or --model's JSON file); named after `defaultPath` when given, else its diffusion model. */
  defaultComponents?: ModelComponentSet;
  /** A model loaded by the caller: the default, never unloaded or closed here. */
  preloaded?: ImageModel;
  /** Models kept resident at once, >= 1. */
  maxLoaded: number;
  /** Loads a checkpoint, or the components when the entry has them (`checkpointPath` is then the diffusion model). */
  load: (checkpointPath: string, components?: ModelComponentSet) => Promise<ImageModel>;
  /** Told about loads and unloads. */
  log: (line: string) => void;
  /**
   * With --allow-pull: downloads a model reference into `dir`. A request may then name a reference
   * that is not there yet; its job downloads it before loading it.
   */
  pull?: (reference: string) => Promise<PulledModel>;
}

export class UnknownModelError extends Error {
  readonly requested: string;
  readonly available: string[];
  /** The request field that named it, when not `model` (e.g. `refiner_checkpoint`). */
  readonly field: string | undefined;

  constructor(requested: string, available: string[], field?: string) {
    super(`Unknown model ${JSON.stringify(requested)}${field === undefined ? '' : ` for ${field}`}; `
      + `available: ${available.length > 0 ? available.join(', ') : 'none'}`);
    this.name = 'UnknownModelError';
    this.requested = requested;
    this.available = available;
    this.field = field;
  }
}

export class NoModelError extends Error {
  constructor(message = 'No model is configured, so this server cannot generate images; start it with '
    + 'sdnode serve --model <checkpoint> or --models <folder>') {
    super(message);
    this.name = 'NoModelError';
  }
}

/** A model in use by one job; `release()` lets it be unloaded again. */
export interface ModelLease {
  model: ImageModel;
  release(): void;
}

interface Resident {
  model: ImageModel | undefined;
  loading: Promise<ImageModel>;
  users: number;
  lastUsed: number;
  pinned: boolean;
}

export class ModelRegistry implements ModelCatalog {
  readonly #options: ModelRegistryOptions;
  readonly #resident = new Map<string, Resident>();
  readonly #waiters: (() => void)[] = [];
  readonly #defaultEntry: ModelEntry | undefined;
  readonly #references = new Map<string, string>();
  #clock = 0;
  #chosenDefault: string | undefined;

  constructor(options: ModelRegistryOptions) {
    this.#options = options;
    const components = options.preloaded ? undefined : options.defaultComponents;
    const defaultPath = options.preloaded?.path ?? options.defaultPath ?? components?.diffusionModel;
    this.#defaultEntry = defaultPath === undefined ? undefined : {
      name: nameOf(defaultPath), path: path.resolve(components?.diffusionModel ?? defaultPath), ...(components && { components }),
    };
    if (options.preloaded && this.#defaultEntry) {
      this.#resident.set(this.#defaultEntry.name, {
        model: options.preloaded, loading: Promise.resolve(options.preloaded), users: 0, lastUsed: 0, pinned: true,
      });
    }
  }

  /** Whether any model can be used: --model given, or --models given (even if empty now). */
  get configured(): boolean {
    return this.#defaultEntry !== undefined || this.#options.dir !== undefined;
  }

  /** Every checkpoint offered, the default first, then by name. Reads the folder; loads nothing. */
  async list(): Promise<ModelEntry[]> {
    const excludeDirs = this.#options.excludeDirs ?? [];
    const found = (this.#options.dir === undefined ? [] : await scan(path.resolve(this.#options.dir)))
      .filter((entry) => excludeDirs.every((excluded) => path.relative(excluded, entry.path).startsWith('..')));
    const entries = found.filter((entry) => entry.name !== this.#defaultEntry?.name);
    entries.sort((a, b) => a.name.localeCompare(b.name));
    return this.#defaultEntry ? [this.#defaultEntry, ...entries] : entries;
  }

  /** The default model: the one chosen with `setDefault`, else --model, else the first in --models. */
  async defaultModel(): Promise<ModelEntry | undefined> {
    if (this.#chosenDefault) {
      const chosen = (await this.list()).find((entry) => entry.name === this.#chosenDefault);
      if (chosen) return chosen;
    }
    return this.#defaultEntry ?? (await this.list())[0];
  }

  /** Makes `name` the default for requests that name no model (AUTOMATIC1111's options). */
  async setDefault(name: string): Promise<ModelEntry> {
    const entry = await this.resolve(name);
    this.#chosenDefault = entry.name;
    return entry;
  }

  /** Names currently resident. */
  loadedNames(): string[] {
    return [...this.#resident.entries()].filter(([, resident]) => resident.model !== undefined).map(([name]) => name);
  }

  /**
   * The entry a client's name refers to: the name itself, or with the file extension, or an
   * AUTOMATIC1111 title ("v1-5.safetensors [6ce0161689]"), or a unique file name in a subfolder.
   * Undefined or '' means the default. Throws UnknownModelError / NoModelError.
   */
  async resolve(requested?: string): Promise<ModelEntry> {
    const entries = await this.list();
    if (requested === undefined || requested.trim() === '') {
      const fallback = await this.defaultModel();
      if (!fallback) throw new NoModelError();
      return fallback;
    }
    const found = findModelEntry(entries, requested);
    if (found) return found;
    const reference = this.#references.get(modelNameOf(requested)) ?? requested.trim();
    if (this.#options.pull && isModelReference(reference)) {
      const name = pulledModelName(reference);
      const pulled = entries.find((entry) => entry.name === name);
      if (pulled) return pulled;
      // Jobs keep the name; the reference it stands for is remembered until the model is there
      // (the oldest forgotten past a bound, so requests naming many references cannot grow it).
      this.#references.set(name, reference);
      if (this.#references.size > maxPendingReferences) this.#references.delete(this.#references.keys().next().value!);
      return { name, path: '', reference };
    }
    throw new UnknownModelError(requested, entries.map((entry) => entry.name));
  }

  /**
   * Loads the model if needed (waiting for a free slot) and holds it until `release()`. A job's
   * second model (`second`: its refiner, acquired while it holds its first) never waits: with no
   * slot free it loads one beyond `maxLoaded`, since the slot it would wait for is its own job's.
   */
  async acquire(entry: ModelEntry, second = false): Promise<ModelLease> {
    for (;;) {
      const resident = this.#resident.get(entry.name);
      if (resident) {
        resident.users++;
        resident.lastUsed = ++this.#clock;
        try {
          const model = await resident.loading;
          return { model, release: once(() => this.#release(entry.name)) };
        } catch (error) {
          resident.users--;
          throw error;
        }
      }
      if ((await this.#makeRoom()) || second) {
        this.#startLoading(entry);
        continue;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Closes every model this registry loaded (not a preloaded one). */
  async closeAll(): Promise<void> {
    const closing = [...this.#resident.entries()].filter(([, resident]) => !resident.pinned)
      .map(async ([name, resident]) => {
        this.#resident.delete(name);
        const model = await resident.loading.catch(() => undefined);
        await model?.close();
      });
    await Promise.all(closing);
  }

  #startLoading(entry: ModelEntry): void {
    const resident: Resident = { model: undefined, loading: undefined as unknown as Promise<ImageModel>, users: 0, lastUsed: ++this.#clock, pinned: false };
    this.#options.log(entry.reference === undefined ? `Loading model ${entry.name} (${entry.path}) …`
      : `Downloading and loading model ${entry.name} (${entry.reference}) …`);
    resident.loading = this.#load(entry).then((model) => {
      resident.model = model;
      return model;
    }, (error: unknown) => {
      // A failed load frees its slot; the next job naming it tries again.
      this.#resident.delete(entry.name);
      this.#wakeWaiters();
      throw error;
    });
    this.#resident.set(entry.name, resident);
  }

  async #load(entry: ModelEntry): Promise<ImageModel> {
    const { pull } = this.#options;
    if (entry.reference === undefined || !pull) return this.#options.load(entry.path, entry.components);
    const pulled = await pull(entry.reference);
    this.#references.delete(entry.name);
    if (!pulled.components) return this.#options.load(pulled.path);
    const components: ModelComponentSet = { ...pulled.components, ...(pulled.t5Tokenizer !== undefined && { t5Tokenizer: pulled.t5Tokenizer }) };
    return this.#options.load(components.diffusionModel, components);
  }

  // True when a slot is free now, unloading the least recently used idle model if that is needed.
  async #makeRoom(): Promise<boolean> {
    const counted = [...this.#resident.values()].filter((resident) => !resident.pinned);
    if (counted.length < this.#options.maxLoaded) return true;
    const idle = [...this.#resident.entries()].filter(([, resident]) => !resident.pinned && resident.users === 0
      && resident.model !== undefined);
    if (idle.length === 0) return false;
    const [name, victim] = idle.reduce((oldest, candidate) => (candidate[1].lastUsed < oldest[1].lastUsed ? candidate : oldest));
    this.#resident.delete(name);
    this.#options.log(`Unloading model ${name}`);
    await victim.model?.close();
    return true;
  }

  #release(name: string): void {
    const resident = this.#resident.get(name);
    if (resident) resident.users--;
    this.#wakeWaiters();
  }

  #wakeWaiters(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/**
 * The entry a client's name refers to: the name itself, or with the file extension, or an
 * AUTOMATIC1111 title ("v1-5.safetensors [6ce0161689]"), or a unique file name in a subfolder.
 */
export function findModelEntry(entries: readonly ModelEntry[], requested: string): ModelEntry | undefined {
  const wanted = modelNameOf(requested);
  const exact = entries.find((entry) => entry.name === wanted);
  if (exact) return exact;
  const byBaseName = entries.filter((entry) => path.posix.basename(entry.name) === wanted);
  return byBaseName.length === 1 ? byBaseName[0] : undefined;
}

/** The name a client's model name, title or file name stands for: no extension, no hash, forward slashes. */
export function modelNameOf(requested: string): string {
  return nameOf(requested.replace(/\s*\[[0-9a-f]{8,64}\]\s*$/i, '').trim()).replaceAll('\\', '/');
}

function nameOf(checkpointPath: string): string {
  const extension = modelFileExtensions.find((ext) => checkpointPath.toLowerCase().endsWith(ext));
  const base = path.basename(checkpointPath);
  return extension === undefined ? base : base.slice(0, -extension.length);
}

async function scan(root: string): Promise<ModelEntry[]> {
  let names: string[];
  try {
    names = await readdir(root, { recursive: true });
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return [];
    throw error;
  }
  const { models, taken } = await findComponentModels(root, names);
  const checkpoints = names
    .filter((name) => checkpointExtensions.some((ext) => name.toLowerCase().endsWith(ext)) && !taken.has(path.join(root, name)))
    .map((relative) => {
      const posix = relative.split(path.sep).join('/');
      const dir = path.posix.dirname(posix);
      const name = dir === '.' ? nameOf(posix) : `${dir}/${nameOf(posix)}`;
      return { name, path: path.join(root, relative) };
    });
  const sets = models.map(({ name, components }): ModelEntry => ({ name, path: path.resolve(components.diffusionModel), components }));
  return [...checkpoints, ...sets];
}

function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}
