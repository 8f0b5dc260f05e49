// How the server loads a checkpoint: the library's loadModel with the CLI's engine options, and
// one line saying what was loaded. Shared by `sdnode serve` and `sdnode worker`.

import path from 'node:path';

import { loadModel, type LoadOptions, type Model } from '../../lib/index.js';
import type { ImageModel } from '../jobs/runner.js';
import { ModelRegistry } from './registry.js';

export interface EngineOptions {
  threads?: number;
  backend?: LoadOptions['backend'];
  prediction?: LoadOptions['prediction'];
  weightType?: LoadOptions['weightType'];
  /** A TAESD decoder file loaded with every model: previews use it, and so can requests. */
  taesd?: string;
}

export function modelLoader(options: EngineOptions, log: (line: string) => void): (checkpointPath: string) => Promise<ImageModel> {
  return async (checkpointPath) => {
    const model = await loadModel(checkpointPath, {
      ...(options.backend !== undefined && { backend: options.backend }),
      ...(options.threads !== undefined && { threads: options.threads }),
      ...(options.prediction !== undefined && { prediction: options.prediction }),
      ...(options.weightType !== undefined && { weightType: options.weightType }),
      ...(options.taesd !== undefined && { taesd: options.taesd }),
    });
    log(describeModel(model));
    return model;
  };
}

export interface ModelSources extends EngineOptions {
  modelPath?: string;
  modelsDir?: string;
  model?: ImageModel;
  maxLoaded?: number;
  loadModel?: (checkpointPath: string) => Promise<ImageModel>;
}

/**
 * The registry of --model and --models, with the default model loaded before the caller goes on:
 * a bad checkpoint stops the start.
 */
export async function openModels(sources: ModelSources, log: (line: string) => void): Promise<ModelRegistry> {
  const models = new ModelRegistry({
    dir: sources.modelsDir,
    defaultPath: sources.modelPath,
    preloaded: sources.model,
    maxLoaded: sources.maxLoaded ?? 1,
    load: sources.loadModel ?? modelLoader(sources, log),
    log,
  });
  const defaultModel = sources.model === undefined && sources.modelPath !== undefined ? await models.defaultModel() : undefined;
  if (defaultModel) (await models.acquire(defaultModel)).release();
  return models;
}

// "Loaded v1-5.gguf: SD 1.x, eps prediction, 1642 MB of weights on cpu".
function describeModel(model: Model): string {
  const { family, prediction, inpainting, weightBytes, backend } = model.info;
  const kind = `${family === 'sd1' ? 'SD 1.x' : 'SD 2.x'}${inpainting ? ' inpainting' : ''}`;
  return `Loaded ${path.basename(model.path)}: ${kind}, ${prediction} prediction, `
    + `${(weightBytes / 2 ** 20).toFixed(weightBytes < 2 ** 30 ? 1 : 0)} MB of weights on ${backend}`;
}
