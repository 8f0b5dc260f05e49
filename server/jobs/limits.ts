// What one job may ask for, checked once in the job core for every dialect: the runner makes
// images one library call at a time, so the library's own per-call limits (16 images) would not
// hold, and a prompt that the library refuses is better a 4xx now than a failed job later.

import { extractLoraTags, withoutLoraTags } from '../../lib/lora.js';
import { buildConditioning } from '../../lib/prompt.js';
import { InvalidFieldError } from '../parse.js';
import type { JobParameters } from './job.js';

/** Most images one job makes (the library's `count` range), whatever the dialect multiplies. */
export const maxJobImages = 16;

/**
 * Largest side of a finished image (16 megapixels at most): dialects that scale results to an
 * upload's size (OpenAI's size "auto", Photoshop) make no larger ones.
 */
export const maxOutputSide = 4096;

/** Throws an InvalidFieldError naming `field` when a result of width × height would be over maxOutputSide. */
export function checkOutputSize(field: string, width: number, height: number): void {
  if (width > maxOutputSide || height > maxOutputSide) {
    throw new InvalidFieldError(field, `Expected a result of at most ${maxOutputSide}×${maxOutputSide} pixels for ${field} `
      + `but it would be ${width}×${height}`);
  }
}

/** Throws an InvalidFieldError naming the first parameter over a limit. */
export function checkJobLimits(parameters: JobParameters): void {
  const { count } = parameters;
  if (!(Number.isInteger(count) && count >= 1 && count <= maxJobImages)) {
    throw new InvalidFieldError('count', `Expected at most ${maxJobImages} images in one request but received ${count}`);
  }
  checkOutputSize('size', parameters.outputWidth ?? 0, parameters.outputHeight ?? 0);
  const prompts: [string, string | undefined][] = [
    ['prompt', parameters.prompt],
    ['negativePrompt', parameters.negativePrompt],
    ['hires.prompt', parameters.hires?.prompt],
    ['hires.negativePrompt', parameters.hires?.negativePrompt],
  ];
  for (const [field, text] of prompts) {
    if (text === undefined) continue;
    try {
      // What the library tokenises: the prompt without its tags (which it reads), the hires
      // prompt without them, the negative prompts as written.
      const tokenised = field === 'prompt' ? extractLoraTags(text).text : field === 'hires.prompt' ? withoutLoraTags(text) : text;
      buildConditioning(tokenised, 0, field);
    } catch (error) {
      if (error instanceof RangeError) throw new InvalidFieldError(field, error.message);
      throw error;
    }
  }
}
