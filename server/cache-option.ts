// Step caching as stable-diffusion.cpp spells it, a mode and a "key=value,…" string: its CLI's
// --cache-mode / --cache-option and its sd-server's cache_mode / cache_option, turned into the
// library's `cache` option. "--cache-mode easycache --cache-option threshold=0.25,start=0.1".
import type { CacheOptions } from '../lib/index.js';
import { InvalidFieldError, parseDecimal } from './parse.js';

export const cacheOptionSpec = {
  'cache-mode': { type: 'string' },
  'cache-option': { type: 'string' },
} as const;

export const cacheUsage = `      --cache-mode <mode>       Step caching: skip model passes whose result the last steps foresee.
                                easycache (FLUX.1, Chroma, SD3) or ucache (SD 1.x, 2.x, SDXL);
                                none by default. Faster; the image moves a little.
      --cache-option <k=v,…>    Its settings: threshold (easycache 0.2, ucache 1.0: higher skips
                                more), start and end (the part of the schedule where steps may be
                                skipped, 0.15 and 0.95); ucache also decay (1), relative (1) and
                                reset (1).`;

const numberKeys = ['threshold', 'start', 'end', 'decay'] as const;
const switchKeys = ['relative', 'reset'] as const;

/** The names the two settings have where they come from: the CLI's flags or a request's fields. */
export interface CacheFieldNames { mode: string; option: string }

const cliNames: CacheFieldNames = { mode: '--cache-mode', option: '--cache-option' };

/** The `cache` option the CLI flags give, or undefined without --cache-mode. InvalidFieldError names the flag. */
export function cacheFlags(values: { 'cache-mode'?: string; 'cache-option'?: string }): CacheOptions | undefined {
  return cacheSettings(values['cache-mode'], values['cache-option'], cliNames);
}

/**
 * The `cache` option of a mode and its "key=value,…" settings; undefined without a mode, and for
 * sd-server's "disabled". InvalidFieldError names the field as `names` give it.
 */
export function cacheSettings(modeText: string | undefined, text: string | undefined, names: CacheFieldNames): CacheOptions | undefined {
  const mode = modeText?.trim().toLowerCase();
  if (mode === undefined || mode === '' || mode === 'disabled') {
    if (text !== undefined && text.trim() !== '') {
      throw new InvalidFieldError(names.option, `${names.option} sets step caching's settings: give ${names.mode} easycache or ucache too`);
    }
    return undefined;
  }
  if (mode !== 'none' && mode !== 'easycache' && mode !== 'ucache') {
    throw new InvalidFieldError(names.mode, `Expected none, easycache or ucache for ${names.mode} but received ${modeText}`);
  }
  const cache: CacheOptions = { mode };
  for (const pair of (text ?? '').split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    const [key = '', value, ...rest] = pair.split('=').map((part) => part.trim());
    if (value === undefined || rest.length > 0) {
      throw new InvalidFieldError(names.option, `Expected key=value pairs separated by commas for ${names.option} but received ${JSON.stringify(pair)}`);
    }
    if ((numberKeys as readonly string[]).includes(key)) {
      cache[key as (typeof numberKeys)[number]] = parseDecimal(`${names.option} ${key}`, value, { min: 0, max: 1000 });
    } else if ((switchKeys as readonly string[]).includes(key)) {
      if (value !== '0' && value !== '1') throw new InvalidFieldError(names.option, `Expected 0 or 1 for ${names.option} ${key} but received ${value}`);
      cache[key as (typeof switchKeys)[number]] = value === '1';
    } else {
      throw new InvalidFieldError(names.option, `Unknown ${names.option} ${JSON.stringify(key)}; known: ${[...numberKeys, ...switchKeys].join(', ')}`);
    }
  }
  return cache;
}
