// generate(): one call that loads (once) and runs. Models loaded from a path stay cached per
// (absolute path, load options) until they are closed or the process is about to exit.
import path from 'node:path';

import { loadModel, Model, runImageCall, type GeneratedImage } from './model.js';
import type { ImageToImageOptions, InpaintOptions, LoadOptions, RefinerOptions, TextToImageOptions } from './option-types.js';
import {
  invalid, loadOptionKeys, nonEmptyString, normalizeImageOptions, normalizeLoadOptions,
  type GenerateMode, type NormalizedLoadOptions,
} from './options.js';

// generate() takes the refiner's model as a path too.
type WithRefinerPath<T> = T extends unknown ? Omit<T, 'refiner'> & {
  /** As the image calls' `refiner`; `model` may be a checkpoint path, loaded and cached as `model` is. */
  refiner?: Omit<RefinerOptions, 'model'> & { model: string | Model };
} : never;

/** Options of `generate()`: the image options of the call it makes, load options and the model. */
export type GenerateOptions = WithRefinerPath<TextToImageOptions | ImageToImageOptions | InpaintOptions> & LoadOptions & {
  /**
   * A loaded Model, or the path of a checkpoint file. A path is loaded once and cached per absolute
   * path and load options; later calls reuse it until it is closed.
   */
  model: string | Model;
};

const generateKeys = ['model', ...loadOptionKeys];
const callerByMode: Readonly<Record<GenerateMode, string>> = {
  txt2img: 'generate without image',
  img2img: 'generate with image',
  inpaint: 'generate with mask',
};

const cachedModels = new Map<string, Promise<Model>>();
let closesCachedModelsBeforeExit = false;

/**
 * Makes images in one call: text-to-image, image-to-image when `image` is given, inpainting when
 * `image` and `mask` are (`hires` applies to text-to-image only). Options are checked before any
 * model is loaded.
 */
export async function generate(options: GenerateOptions): Promise<GeneratedImage[]> {
  if (typeof options !== 'object' || options === null) throw invalid(TypeError, 'the options of generate', 'object', options);
  const { model, backend, threads, prediction, weightType, taesd } = options;
  const { image, mask } = options as Partial<InpaintOptions>;
  const mode: GenerateMode = mask !== undefined ? 'inpaint' : image !== undefined ? 'img2img' : 'txt2img';
  const caller = callerByMode[mode];
  // Checked against any family: the defaults and which family-specific options apply depend on the
  // model, and are checked again once it is loaded.
  const hasTaesd = model instanceof Model ? model.info.taesd : taesd !== undefined;
  normalizeImageOptions(options, mode, { family: 'any', prediction: 'eps', taesd: hasTaesd }, caller, generateKeys);

  let target: Model;
  // The refiner's latents are decoded by the model's VAE (or TAESD): it loads without a TAESD.
  let refinerLoadOptions = normalizeLoadOptions({}, 'generate');
  if (model instanceof Model) {
    const loadOption = loadOptionKeys.find((key) => options[key] !== undefined);
    if (loadOption) {
      throw new TypeError(`Option ${loadOption} of generate applies only when model is a path; `
        + 'pass it to loadModel() for a Model');
    }
    target = model;
  } else if (typeof model === 'string') {
    const loadOptions = normalizeLoadOptions({ backend, threads, prediction, weightType, taesd }, 'generate');
    refinerLoadOptions = normalizeLoadOptions({ backend, threads, prediction, weightType }, 'generate');
    target = await cachedModel(nonEmptyString(model, 'model'), loadOptions);
  } else {
    throw invalid(TypeError, 'model', 'Model or path of a checkpoint file', model);
  }
  // A refiner given by path loads as `model` does (a Model `model`: with the default load options).
  const { refiner } = options;
  const refinerPath = typeof refiner?.model === 'string' ? nonEmptyString(refiner.model, 'refiner.model') : undefined;
  const call = refiner && refinerPath !== undefined
    ? { ...options, refiner: { ...refiner, model: await cachedModel(refinerPath, refinerLoadOptions) } }
    : options;
  return runImageCall(target, call, mode, caller, generateKeys);
}

async function cachedModel(file: string, loadOptions: NormalizedLoadOptions): Promise<Model> {
  const resolved = path.resolve(file);
  const key = JSON.stringify([
    resolved, loadOptions.backend, loadOptions.threads ?? 'default', loadOptions.prediction, loadOptions.weightType,
    loadOptions.taesd === undefined ? null : path.resolve(loadOptions.taesd),
  ]);
  for (;;) {
    let entry = cachedModels.get(key);
    if (!entry) {
      const loading = loadModel(resolved, loadOptions);
      entry = loading;
      cachedModels.set(key, loading);
      // A failed load is not cached: the next call tries again.
      loading.catch(() => forget(key, loading));
      closeCachedModelsBeforeExit();
    }
    const model = await entry;
    if (!model.closed) return model;
    forget(key, entry);
  }
}

function forget(key: string, entry: Promise<Model>): void {
  if (cachedModels.get(key) === entry) cachedModels.delete(key);
}

// Frees native weights deterministically when the program is done instead of leaving it to
// finalizers. beforeExit fires again after these closes settle, with nothing left to do.
function closeCachedModelsBeforeExit(): void {
  if (closesCachedModelsBeforeExit) return;
  closesCachedModelsBeforeExit = true;
  process.on('beforeExit', () => {
    const entries = [...cachedModels.values()];
    cachedModels.clear();
    for (const entry of entries) entry.then((model) => model.close()).catch(() => undefined);
  });
}
