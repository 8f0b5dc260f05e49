// Helpers every dialect uses to build JobParameters from its own fields.

import { randomInt } from 'node:crypto';

import { resolveSampler } from '../../lib/index.js';
import { InvalidFieldError } from '../parse.js';

/** Largest seed (AUTOMATIC1111's range, as the library's). */
export const maxSeed = 2 ** 32 - 1;

/** The seed to store: the one given, or a random one for undefined / -1. */
export function chosenSeed(seed: number | undefined): number {
  return seed === undefined || seed < 0 ? randomInt(0, maxSeed + 1) : seed;
}

/** Throws unless `value` is a multiple of 8 (what the VAE needs). */
export function multipleOf8(field: string, value: number | undefined): number | undefined {
  if (value !== undefined && value % 8 !== 0) {
    throw new InvalidFieldError(field, `Expected a multiple of 8 for ${field} but received ${value}`);
  }
  return value;
}

/**
 * The library's own sampler resolution, so "DPM++ 2M Karras" works in every dialect as in the
 * library; only the fields given are kept, so a job stored without a sampler keeps the library's
 * defaults. `names` are the request's field names for messages.
 */
export function samplerFields(sampler: string | undefined, scheduler: string | undefined,
  names: { sampler: string; scheduler: string } = { sampler: 'sampler', scheduler: 'scheduler' }):
  { sampler?: string; scheduler?: string } {
  if (sampler === undefined && scheduler === undefined) return {};
  let resolved: { sampler: string; scheduler: string };
  try {
    resolved = resolveSampler(sampler, scheduler);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const isScheduler = message.includes('for scheduler');
    const field = isScheduler ? names.scheduler : names.sampler;
    throw new InvalidFieldError(field, message.replace(/for (sampler|scheduler)/, `for ${field}`));
  }
  return { ...(sampler !== undefined && { sampler: resolved.sampler }), scheduler: resolved.scheduler };
}

/** Job records stay free of `"steps": null`-style noise, and the library sees only options given. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
