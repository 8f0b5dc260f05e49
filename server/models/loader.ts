// How the server loads a checkpoint or a safety checker: the library's loaders with the CLI's
// engine options, and one line saying what was loaded. Shared by `sdnode serve` and `sdnode worker`.

import { existsSync } from 'node:fs';
import path from 'node:path';

import { familyNames, loadModel, loadSafetyChecker, type LoadOptions, type Model, type ModelComponents } from '../../lib/index.js';
import { defaultModelsDir, pullModel, type PullProgress } from '../../lib/pull.js';
import type { ImageModel } from '../jobs/runner.js';
import type { ImageSafetyChecker } from '../jobs/safety.js';
import { checkComponentSet, libraryComponents, requireComponentJson, type ModelComponentSet } from './components.js';
import { ModelRegistry } from './registry.js';

export interface EngineOptions {
  threads?: number;
  backend?: LoadOptions['backend'];
  prediction?: LoadOptions['prediction'];
  weightType?: LoadOptions['weightType'];
  /** A TAESD decoder file loaded with every model: previews use it, and so can requests. */
  taesd?: string;
  /** Folder of the LoRA files prompts select with <lora:NAME:weight> (--lora-dir). */
  loraDir?: string;
  /** Folder of the textual-inversion embeddings prompts name (--embeddings-dir). */
  embeddingsDir?: string;
  /** Folder of ESRGAN-family upscalers (--upscaler-dir); its files are not checkpoints. */
  upscalerDir?: string;
  /** Folder of ControlNet files that requests name (--controlnet-dir); its files are not checkpoints. */
  controlNetDir?: string;
  /** T5's tokenizer file (--t5-tokenizer) for models with a T5 encoder whose components name none. */
  t5Tokenizer?: string;
  /** Models given as components: never hold the transformer and the text encoders at once (--low-memory). */
  lowMemory?: boolean;
}

/**
 * The LoRA folder: --lora-dir, else the models folder's `Lora` (AUTOMATIC1111's name) when it
 * exists, else its `loras`; none without either flag.
 */
export function loraFolder(loraDir: string | undefined, modelsDir: string | undefined): string | undefined {
  if (loraDir !== undefined) return path.resolve(loraDir);
  if (modelsDir === undefined) return undefined;
  const a1111 = path.resolve(modelsDir, 'Lora');
  return existsSync(a1111) ? a1111 : path.resolve(modelsDir, 'loras');
}

/** The embeddings folder: --embeddings-dir, else the models folder's `embeddings` (A1111's); none without either. */
export function embeddingsFolder(embeddingsDir: string | undefined, modelsDir: string | undefined): string | undefined {
  if (embeddingsDir !== undefined) return path.resolve(embeddingsDir);
  return modelsDir === undefined ? undefined : path.resolve(modelsDir, 'embeddings');
}

/**
 * The ControlNet folder: --controlnet-dir, else the models folder's `ControlNet` (AUTOMATIC1111's)
 * when it exists, else its `controlnet` (ComfyUI's); none without either.
 */
export function controlNetFolder(controlNetDir: string | undefined, modelsDir: string | undefined): string | undefined {
  if (controlNetDir !== undefined) return path.resolve(controlNetDir);
  if (modelsDir === undefined) return undefined;
  const a1111 = path.resolve(modelsDir, 'ControlNet');
  return existsSync(a1111) ? a1111 : path.resolve(modelsDir, 'controlnet');
}

/**
 * The folder of ESRGAN-family upscalers: --upscaler-dir, else the models folder's `ESRGAN`
 * (AUTOMATIC1111's) when it exists, else its `upscale_models` (ComfyUI's).
 */
export function upscalerFolder(upscalerDir: string | undefined, modelsDir: string | undefined): string | undefined {
  if (upscalerDir !== undefined) return path.resolve(upscalerDir);
  if (modelsDir === undefined) return undefined;
  const a1111 = path.resolve(modelsDir, 'ESRGAN');
  return existsSync(a1111) ? a1111 : path.resolve(modelsDir, 'upscale_models');
}

export function modelLoader(options: EngineOptions, log: (line: string) => void):
(checkpointPath: string, components?: ModelComponentSet) => Promise<ImageModel> {
  return async (checkpointPath, components) => {
    let source: string | ModelComponents = checkpointPath;
    let t5Tokenizer: string | undefined;
    if (components) {
      checkComponentSet(components, `the components of ${path.basename(checkpointPath)}`);
      const { files, t5Tokenizer: own } = libraryComponents(components);
      source = files;
      t5Tokenizer = own ?? options.t5Tokenizer;
    }
    const model = await loadModel(source, {
      ...(options.backend !== undefined && { backend: options.backend }),
      ...(options.threads !== undefined && { threads: options.threads }),
      ...(options.prediction !== undefined && { prediction: options.prediction }),
      ...(options.weightType !== undefined && { weightType: options.weightType }),
      ...(options.loraDir !== undefined && { loraDir: options.loraDir }),
      ...(options.embeddingsDir !== undefined && { embeddingsDir: options.embeddingsDir }),
      ...(options.controlNetDir !== undefined && { controlNetDir: options.controlNetDir }),
      ...(options.taesd !== undefined && { taesd: options.taesd }),
      ...(t5Tokenizer !== undefined && { t5Tokenizer }),
      ...(components && options.lowMemory && { lowMemory: true }),
    });
    log(describeModel(model));
    return model;
  };
}

export interface ModelSources extends EngineOptions {
  /** The default model: a checkpoint, or a JSON file naming its components (see components.ts). */
  modelPath?: string;
  /** The default model as component files (--diffusion-model, --clip-l, --t5xxl, --vae), in place of modelPath. */
  modelComponents?: ModelComponentSet;
  modelsDir?: string;
  model?: ImageModel;
  maxLoaded?: number;
  loadModel?: (checkpointPath: string, components?: ModelComponentSet) => Promise<ImageModel>;
  /**
   * --allow-pull: requests may name a model reference (a catalogue name, hf:…, https://…) that is
   * not downloaded yet; its job downloads it into the models folder (--models, else the per-user
   * default) and loads it. Off by default: without it nothing is ever downloaded for a request.
   */
  allowPull?: boolean;
}

/** Whether a default model is given, as a file or as components. */
export function hasDefaultModel(sources: Pick<ModelSources, 'model' | 'modelPath' | 'modelComponents'>): boolean {
  return sources.model !== undefined || sources.modelPath !== undefined || sources.modelComponents !== undefined;
}

/**
 * The registry of --model and --models, with the default model loaded before the caller goes on:
 * a bad checkpoint stops the start.
 */
async function openModels(sources: ModelSources, log: (line: string) => void): Promise<ModelRegistry> {
  const loraDir = loraFolder(sources.loraDir, sources.modelsDir);
  const embeddingsDir = embeddingsFolder(sources.embeddingsDir, sources.modelsDir);
  const controlNetDir = controlNetFolder(sources.controlNetDir, sources.modelsDir);
  const { modelPath } = sources;
  const defaultComponents = sources.modelComponents
    ?? (modelPath?.toLowerCase().endsWith('.json') ? await requireComponentJson(path.resolve(modelPath)) : undefined);
  const pullDir = sources.allowPull ? sources.modelsDir ?? defaultModelsDir() : undefined;
  const models = new ModelRegistry({
    dir: sources.modelsDir ?? pullDir,
    excludeDirs: [loraDir, embeddingsDir, controlNetDir, upscalerFolder(sources.upscalerDir, sources.modelsDir)].filter((dir) => dir !== undefined),
    defaultPath: modelPath,
    ...(defaultComponents && { defaultComponents }),
    preloaded: sources.model,
    maxLoaded: sources.maxLoaded ?? 1,
    load: sources.loadModel ?? modelLoader({ ...sources, loraDir, embeddingsDir, controlNetDir }, log),
    log,
    ...(pullDir !== undefined && { pull: (reference: string) => pullModel(reference, { modelsDir: pullDir, onProgress: pullLog(reference, log) }) }),
  });
  const defaultModel = sources.model === undefined && hasDefaultModel(sources) ? await models.defaultModel() : undefined;
  if (defaultModel) (await models.acquire(defaultModel)).release();
  return models;
}

// "Downloading sd-turbo: 40% of 2.6 GB", a line per tenth of each file.
function pullLog(reference: string, log: (line: string) => void): (progress: PullProgress) => void {
  let lastTenth = -1;
  let lastFile = '';
  return ({ file, index, files, receivedBytes, totalBytes }) => {
    if (file !== lastFile) {
      lastFile = file;
      lastTenth = -1;
    }
    const tenth = totalBytes ? Math.floor((10 * receivedBytes) / totalBytes) : -1;
    if (tenth <= lastTenth) return;
    lastTenth = tenth;
    const which = files > 1 ? ` (file ${index} of ${files}, ${file})` : '';
    log(`Downloading ${reference}${which}: ${tenth * 10}% of ${(totalBytes! / 1e9).toFixed(2)} GB`);
  };
}

export interface SafetyCheckerSource extends EngineOptions {
  /** Safety checker file (--safety-checker), loaded at start. */
  safetyCheckerPath?: string;
  /** A safety checker already loaded; the caller keeps it. Takes the place of safetyCheckerPath. */
  safetyChecker?: ImageSafetyChecker;
}

export interface OpenedSafetyChecker {
  checker?: ImageSafetyChecker;
  /** Frees the checker this function loaded; one the caller gave stays open. */
  close(): Promise<void>;
}

/** openModels, then openSafetyChecker; a checker that fails to load closes the models first. */
export async function openModelsAndChecker(sources: ModelSources & SafetyCheckerSource, log: (line: string) => void):
Promise<{ models: ModelRegistry; safety: OpenedSafetyChecker }> {
  const models = await openModels(sources, log);
  try {
    return { models, safety: await openSafetyChecker(sources, log) };
  } catch (error) {
    await models.closeAll();
    throw error;
  }
}

/** The safety checker of --safety-checker, loaded before the caller goes on: a bad file stops the start. */
async function openSafetyChecker(source: SafetyCheckerSource, log: (line: string) => void): Promise<OpenedSafetyChecker> {
  if (source.safetyChecker !== undefined) return { checker: source.safetyChecker, close: async () => {} };
  if (source.safetyCheckerPath === undefined) return { close: async () => {} };
  const checker = await loadSafetyChecker(source.safetyCheckerPath, {
    ...(source.backend !== undefined && { backend: source.backend }),
    ...(source.threads !== undefined && { threads: source.threads }),
  });
  log(`Loaded safety checker ${path.basename(checker.path)} (${checker.info.concepts} concepts) on ${checker.info.backend}`);
  return { checker, close: () => checker.close() };
}

// "Loaded v1-5.gguf: SD 1.x, eps prediction, 1642 MB of weights on cpu"; for components, the
// diffusion model's file name.
function describeModel(model: Model): string {
  const { family, prediction, inpainting, weightBytes, backend } = model.info;
  const kind = `${familyNames[family]}${inpainting ? ' inpainting' : ''}`;
  return `Loaded ${path.basename(model.path)}: ${kind}, ${prediction} prediction, `
    + `${(weightBytes / 2 ** 20).toFixed(weightBytes < 2 ** 30 ? 1 : 0)} MB of weights on ${backend}`;
}
