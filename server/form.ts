// Form fields of the three POST endpoints → TaskParameters. Field names follow the M1 API
// (snake_case); every value arrives as text and is parsed strictly, so "12abc" is a 400 that
// names the field rather than a silent 12.

import { randomInt } from 'node:crypto';

import { resolveSampler } from '../lib/index.js';
import { InvalidFieldError, parseDecimal, parseInteger } from './parse.js';
import type { TaskKind, TaskParameters, UploadSlot } from './task.js';

/** Largest seed (AUTOMATIC1111's range, as the library's); no seed or -1 asks for a random one. */
const maxSeed = 2 ** 32 - 1;

type FieldName =
  | 'prompt' | 'negative_prompt' | 'iterations' | 'steps' | 'seed' | 'width' | 'height'
  | 'cfg_scale' | 'sampler' | 'scheduler' | 'strength' | 'mask_blur' | 'vae_tiling';

const commonFields: readonly FieldName[] = [
  'prompt', 'negative_prompt', 'iterations', 'steps', 'seed', 'width', 'height', 'cfg_scale', 'sampler',
  'scheduler', 'vae_tiling',
];

const fieldsByKind: Readonly<Record<TaskKind, readonly FieldName[]>> = {
  'text-to-image': commonFields,
  'image-to-image': [...commonFields, 'strength'],
  'inpaint-image': [...commonFields, 'strength', 'mask_blur'],
};

/** File fields each endpoint takes; all of them are required. */
export const uploadSlotsByKind: Readonly<Record<TaskKind, readonly UploadSlot[]>> = {
  'text-to-image': [],
  'image-to-image': ['image'],
  'inpaint-image': ['image', 'mask'],
};

export function parseTaskForm(kind: TaskKind, body: Readonly<Record<string, unknown>>): TaskParameters {
  const allowed = fieldsByKind[kind];
  const text = new Map<FieldName, string>();
  for (const [name, value] of Object.entries(body)) {
    if ((uploadSlotsByKind[kind] as readonly string[]).includes(name)) {
      throw new InvalidFieldError(name, `${name} must be a file upload, e.g. curl -F ${name}=@photo.png`);
    }
    if (!(allowed as readonly string[]).includes(name)) {
      throw new InvalidFieldError(name, `Unknown field ${name} for /${kind}; accepted fields: ${allowed.join(', ')}`);
    }
    if (typeof value !== 'string') throw new InvalidFieldError(name, `${name} was given more than once`);
    // An empty input in an HTML form arrives as "": treat it as not given.
    if (value.trim() !== '') text.set(name as FieldName, value);
  }

  const prompt = text.get('prompt') ?? '';
  if (prompt === '' && kind !== 'inpaint-image') {
    throw new InvalidFieldError('prompt', `prompt is required for /${kind}, e.g. curl -F prompt="a photo of a cat"`);
  }
  const int = (name: FieldName, min: number, max: number): number | undefined => {
    const value = text.get(name);
    return value === undefined ? undefined : parseInteger(name, value, { min, max });
  };
  const decimal = (name: FieldName, min: number, max: number): number | undefined => {
    const value = text.get(name);
    return value === undefined ? undefined : parseDecimal(name, value, { min, max });
  };

  const seed = int('seed', -1, maxSeed) ?? -1;
  const parameters: TaskParameters = {
    prompt,
    negativePrompt: text.get('negative_prompt'),
    iterations: int('iterations', 1, 16) ?? 1,
    seed: seed === -1 ? randomInt(0, maxSeed + 1) : seed,
    steps: int('steps', 1, 150),
    width: dimension('width', int('width', 64, 2048)),
    height: dimension('height', int('height', 64, 2048)),
    cfgScale: decimal('cfg_scale', 0, 30),
    ...samplerFields(text.get('sampler'), text.get('scheduler')),
    strength: decimal('strength', 0, 1),
    maskBlur: int('mask_blur', 0, 64),
    vaeTiling: flag('vae_tiling', text.get('vae_tiling')),
  };
  return withoutUndefined(parameters);
}

// HTML checkboxes send "on"; curl users write true/false or 1/0.
function flag(name: FieldName, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const lower = value.trim().toLowerCase();
  if (['true', '1', 'on', 'yes'].includes(lower)) return true;
  if (['false', '0', 'off', 'no'].includes(lower)) return false;
  throw new InvalidFieldError(name, `Expected true or false (or 1 / 0) for ${name} but received ${value}`);
}

function dimension(name: FieldName, value: number | undefined): number | undefined {
  if (value !== undefined && value % 8 !== 0) {
    throw new InvalidFieldError(name, `Expected a multiple of 8 for ${name} but received ${value}`);
  }
  return value;
}

// The library's own resolution, so "DPM++ 2M Karras" works here as in the library; only the fields
// the form gave are kept, so a task stored without a sampler keeps the library's defaults.
function samplerFields(sampler: string | undefined, scheduler: string | undefined): { sampler?: string; scheduler?: string } {
  if (sampler === undefined && scheduler === undefined) return {};
  let resolved: { sampler: string; scheduler: string };
  try {
    resolved = resolveSampler(sampler, scheduler);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new InvalidFieldError(message.includes('for scheduler') ? 'scheduler' : 'sampler', message);
  }
  return { ...(sampler !== undefined && { sampler: resolved.sampler }), scheduler: resolved.scheduler };
}

// task.json stays free of `"steps": null`-style noise, and the library sees only options given.
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
