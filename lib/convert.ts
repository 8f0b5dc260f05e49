// convertModel(): a checkpoint rewritten as a GGUF file, its weights already in the type a load with
// `weightType` would give them, so that the file loads fast and small here and in
// stable-diffusion.cpp. The engine writes under a temporary name and renames at the end.
import { stat } from 'node:fs/promises';
import path from 'node:path';

import type { NativeConvertJob } from '../bindings/native.js';
import { abortError, fromNativeError, SdnodeError } from './errors.js';
import { addonOrThrow } from './model.js';
import type { ConvertOptions } from './option-types.js';
import { nonEmptyString, normalizeConvertOptions } from './options.js';

/** What `convertModel()` wrote. */
export interface ConvertResult {
  /** Absolute path of the GGUF file. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** Tensors in it. */
  tensors: number;
  /** Tensors in it by ggml type name ('f32', 'f16', 'q8_0', 'q4_K', …). */
  types: Record<string, number>;
  /** Tensors of the input that are not weights of the model (EMA copies, position ids, …), left out. */
  skipped: string[];
}

/**
 * Writes the model weights of `input` (a checkpoint `loadModel` reads) to `output` as GGUF, under
 * stable-diffusion.cpp's tensor names, in the type `weightType` asks for: 2-D matrices whose rows are
 * whole blocks are quantized; convolution kernels stay f16, vectors f32. Runs off the main thread.
 * Rejects with an SdnodeError: 'ERR_OUTPUT_EXISTS' (without `overwrite`), 'ERR_MODEL_IO',
 * 'ERR_MODEL_FORMAT', 'ERR_MODEL_UNSUPPORTED', 'ERR_INVALID_ARGUMENT' (output is the input), or an
 * AbortError; `output` is then unchanged.
 */
export async function convertModel(input: string, output: string, options?: ConvertOptions): Promise<ConvertResult> {
  const source = path.resolve(nonEmptyString(input, 'input'));
  const target = path.resolve(nonEmptyString(output, 'output'));
  const { weightType, threads, overwrite, signal, onProgress } = normalizeConvertOptions(options);
  if (signal?.aborted) throw abortError(signal);
  if (!overwrite && await exists(target)) {
    throw new SdnodeError('ERR_OUTPUT_EXISTS', `${target} exists; pass overwrite: true to replace it`);
  }
  const addon = addonOrThrow();
  let job: NativeConvertJob;
  try {
    job = addon.convertModel(source, target, { weightType, threads: threads ?? addon.systemInfo().physicalCores },
      onProgress && ((progress) => onProgress({ tensor: progress.tensor, tensors: progress.tensors })));
  } catch (err) {
    throw fromNativeError(err);
  }
  const stop = () => job.abort();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const result = await job.done;
    return { path: target, ...result };
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw fromNativeError(err);
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
