// Helpers every dialect uses to build JobParameters from its own fields.

import { randomInt } from 'node:crypto';

import { resolveSampler } from '../../lib/index.js';
import { findSampler } from '../../lib/samplers.js';
import { UnknownModelError, type ModelCatalog } from '../models/registry.js';
import { InvalidFieldError } from '../parse.js';
import type { JobParameters } from './job.js';

/** Largest seed (AUTOMATIC1111's range, as the library's). */
export const maxSeed = 2 ** 32 - 1;

/** Image `index`'s seed in a job whose first image has `first`: first + index, wrapping as the library's count does. */
export function imageSeed(first: number, index: number): number {
  return (first + index) % (maxSeed + 1);
}

/** The seed to store: the one given, or a random one for undefined / -1. */
export function chosenSeed(seed: number | undefined): number {
  return seed === undefined || seed < 0 ? randomInt(0, maxSeed + 1) : seed;
}

/** A request's seed of any size (up to 2^53) reduced modulo 2^32, the generator's range; undefined / -1: a random one. */
export function reducedSeed(seed: number | undefined): number {
  return seed === undefined || seed < 0 ? chosenSeed(undefined) : seed % (maxSeed + 1);
}

/** Throws unless `value` is a multiple of 8 (what the VAE needs). */
export function multipleOf8(field: string, value: number | undefined): number | undefined {
  if (value !== undefined && value % 8 !== 0) {
    throw new InvalidFieldError(field, `Expected a multiple of 8 for ${field} but received ${value}`);
  }
  return value;
}

/** A dialect's names for the size fields, for messages. */
export interface SizeFieldNames {
  width: string;
  height: string;
}

/**
 * Throws the dialect's invalid-field error for a size the model cannot take: flow models (FLUX.1,
 * SD3) make images in multiples of 16 (2×2 patches of 8-pixel latent cells), where the dialect's
 * own check allowed multiples of 8. `flow`: whether the model is one, as known before the job runs.
 */
export function checkSizeForModel(parameters: Pick<JobParameters, 'width' | 'height'>, flow: boolean,
  names: SizeFieldNames = { width: 'width', height: 'height' }): void {
  if (!flow) return;
  for (const side of ['width', 'height'] as const) {
    const value = parameters[side];
    if (value !== undefined && value % 16 !== 0) {
      throw new InvalidFieldError(names[side], `Expected a multiple of 16 for ${names[side]} on this flow model (FLUX.1, SD3) but received ${value}`);
    }
  }
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
  // A schedule neither given nor implied by the sampler's name ("DPM++ 2M Karras") is left to the
  // library, which picks the model family's (FLUX.1's flux schedule, not UNet's discrete).
  const implied = sampler !== undefined && findSampler(sampler)?.scheduler !== undefined;
  return {
    ...(sampler !== undefined && { sampler: resolved.sampler }),
    ...((scheduler !== undefined || implied) && { scheduler: resolved.scheduler }),
  };
}

/** A dialect's names for the refiner's two fields, for messages. */
export interface RefinerFieldNames {
  checkpoint: string;
  switchAt: string;
}

/** AUTOMATIC1111's names, which the M1 form and the OpenAI presets use too. */
export const a1111RefinerFields: RefinerFieldNames = { checkpoint: 'refiner_checkpoint', switchAt: 'refiner_switch_at' };

/** AUTOMATIC1111's (and the library's) default hand-off point. */
export const defaultRefinerSwitchAt = 0.8;

/** The allowed switch-at values: above 0 (the base runs at least one step), at most 1. */
export const refinerSwitchAtRange = { min: 0, max: 1, minExclusive: true } as const;

/**
 * The refiner hand-off a request asks for: none without a checkpoint or with "None" (what
 * AUTOMATIC1111 clients send for none). A switch-at without a checkpoint is refused; the
 * checkpoint name is resolved against the server's models by `resolveRefiner`.
 */
export function refinerParameters(checkpoint: string | undefined, switchAt: number | undefined, names: RefinerFieldNames):
  JobParameters['refiner'] {
  if (checkpoint === undefined || checkpoint.trim() === '') {
    if (switchAt !== undefined) {
      throw new InvalidFieldError(names.switchAt, `${names.switchAt} needs ${names.checkpoint}: the checkpoint that takes over`);
    }
    return undefined;
  }
  if (checkpoint.trim().toLowerCase() === 'none') return undefined;
  const at = switchAt ?? defaultRefinerSwitchAt;
  if (!(at > refinerSwitchAtRange.min && at <= refinerSwitchAtRange.max)) {
    throw new InvalidFieldError(names.switchAt, `Expected a number above 0 and at most 1 for ${names.switchAt} but received ${at}`);
  }
  return { checkpoint, switchAt: at };
}

/**
 * The refiner with its checkpoint resolved by name as the main model is (`base`: the generating
 * model's name): an unknown name is the dialect's "unknown model" error naming `field`, and the
 * generating model itself is refused.
 */
export async function resolveRefiner(models: ModelCatalog, refiner: JobParameters['refiner'], base: string, field: string):
  Promise<JobParameters['refiner']> {
  if (!refiner) return undefined;
  let name: string;
  try {
    name = (await models.resolve(refiner.checkpoint)).name;
  } catch (error) {
    if (error instanceof UnknownModelError) throw new UnknownModelError(error.requested, error.available, field);
    throw error;
  }
  if (name === base) {
    throw new InvalidFieldError(field, `${field} names ${name}, the model that generates; name another checkpoint (an SDXL refiner)`);
  }
  return { ...refiner, checkpoint: name };
}

/** Job records stay free of `"steps": null`-style noise, and the library sees only options given. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
