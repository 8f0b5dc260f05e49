// Progress from the engine to a call's onProgress: the public Progress (previews as PNGs), a
// callback that throws stopping the call, and waiting for a turn that an AbortSignal can cut short.
import type { NativeProgress } from '../bindings/native.js';
import { abortError } from './errors.js';
import type { Progress } from './option-types.js';
import { encodeRgbPng } from './png.js';

// The preview is encoded here, synchronously: the engine waits for this callback to return before
// it goes on, so events keep their step order and a preview never outlives its call.
export function publicProgress({
  step, steps, pass, passStep, passSteps, image, images, elapsedMs, preview,
}: NativeProgress): Progress {
  const progress: Progress = { step, steps, pass: pass === 1 ? 'hires' : 'first', passStep, passSteps, image, images, elapsedMs };
  if (preview) {
    const { width, height, data } = preview;
    progress.preview = { png: encodeRgbPng(data, width, height), width, height, step };
  }
  return progress;
}

/**
 * Hands the engine's progress to a call's `onProgress` as the public Progress. A callback that
 * throws stops the call (`abort`), and its error becomes the call's rejection (`rethrow`).
 */
export class ProgressRelay {
  #failure: { error: unknown } | undefined;

  constructor(private readonly onProgress: ((progress: Progress) => void) | undefined, private readonly abort: () => void) {}

  readonly listener = (progress: NativeProgress): void => {
    if (!this.onProgress || this.#failure) return;
    try {
      this.onProgress(publicProgress(progress));
    } catch (error) {
      this.#failure = { error };
      this.abort();
    }
  };

  /** Throws the callback's error when it threw. */
  rethrow(): void {
    if (this.#failure) throw this.#failure.error;
  }
}

/** `promise`, or an AbortError as soon as `signal` fires, whichever is first. */
export function untilAborted(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
