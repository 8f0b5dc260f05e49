// Presets: model names a client knows (OpenAI's "dall-e-3", "gpt-image-1", …) mapped to generation
// settings. The file (--presets) uses AUTOMATIC1111's field names, so a configuration written for
// the A1111-to-OpenAI relays works as is; a few sdnode fields (max_pixels, scale_to_size) decide
// how large images are really made. Fields sdnode does not use are reported, never silently dropped.

import { readFile } from 'node:fs/promises';

import { refinerSwitchAtRange } from '../jobs/parameters.js';

/** Settings of a preset, in the library's terms. */
export interface PresetSettings {
  /** Checkpoint name (override_settings.sd_model_checkpoint); absent: the server's default. */
  checkpoint?: string;
  negativePrompt?: string;
  /** As given (an A1111 name such as "DPM++ 2M Karras" or an engine name); resolved per job. */
  sampler?: string;
  scheduler?: string;
  steps?: number;
  cfgScale?: number;
  /** Strength of image-to-image (variations, edits without a transparent area). */
  strength?: number;
  /** Size for "auto" (and when the request has none). */
  width?: number;
  height?: number;
  /** Largest width × height actually generated; larger requests keep their aspect ratio within it. */
  maxPixels?: number;
  /** Scale images generated within max_pixels up to the size the client asked for. */
  scaleToSize?: boolean;
  /** Checkpoint name of the refiner that takes over at `refinerSwitchAt` ("None": none); resolved per job. */
  refinerCheckpoint?: string;
  /** Fraction of the steps before the refiner takes over, above 0 and at most 1. */
  refinerSwitchAt?: number;
}

export interface Preset extends PresetSettings {
  /** Overrides for a quality or style: hd, standard, low, medium, high, vivid, natural. */
  variants: Partial<Record<PresetVariant, PresetSettings>>;
}

export const presetVariants = ['standard', 'hd', 'low', 'medium', 'high', 'vivid', 'natural'] as const;
export type PresetVariant = (typeof presetVariants)[number];

export type PresetTable = Record<string, Preset>;

/** What a file holds: A1111 fields per name, each possibly with variant objects. */
export type RawPresets = Record<string, Record<string, unknown>>;

// Chosen so that a CPU user gets a picture in minutes: every size is generated within 512×512
// pixels (its aspect ratio kept) and scaled to what the client asked for.
const builtInPresets: RawPresets = {
  'dall-e-2': { sampler_name: 'Euler a', steps: 20, cfg_scale: 7, max_pixels: 512 * 512, scale_to_size: true, denoising_strength: 0.75 },
  'dall-e-3': {
    sampler_name: 'DPM++ 2M Karras', steps: 25, cfg_scale: 7, max_pixels: 512 * 512, scale_to_size: true,
    negative_prompt: 'lowres, blurry, worst quality, watermark, text',
    hd: { steps: 40 },
    natural: { cfg_scale: 5 },
  },
  'gpt-image-1': {
    sampler_name: 'DPM++ 2M Karras', steps: 25, cfg_scale: 6, max_pixels: 512 * 512, scale_to_size: true,
    low: { steps: 12 }, medium: { steps: 25 }, high: { steps: 40 },
  },
};

export interface LoadedPresets {
  table: PresetTable;
  /** One line per field that is ignored or invalid. */
  warnings: string[];
}

/** The built-in presets, with those of `source` (a JSON file or a table) replacing them by name. */
export async function loadPresets(source: string | RawPresets | PresetTable | undefined): Promise<LoadedPresets> {
  let raw: unknown = {};
  if (typeof source === 'string') {
    const text = await readFile(source, 'utf8');
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new TypeError(`The presets file ${source} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else if (source !== undefined) {
    raw = source;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TypeError('Presets must be a JSON object of model name → settings');
  }
  const warnings: string[] = [];
  const table: PresetTable = {};
  for (const [name, settings] of Object.entries({ ...builtInPresets, ...(raw as RawPresets) })) {
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      throw new TypeError(`Preset ${name} must be an object of AUTOMATIC1111 settings`);
    }
    table[name] = readPreset(name, settings as Record<string, unknown>, warnings);
  }
  if (warnings.length > 0) warnings.unshift(`${warnings.length} preset field(s) not used by sdnode:`);
  return { table, warnings };
}

function readPreset(name: string, raw: Record<string, unknown>, warnings: string[]): Preset {
  const variants: Preset['variants'] = {};
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if ((presetVariants as readonly string[]).includes(key)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new TypeError(`Preset ${name}.${key} must be an object of settings`);
      }
      variants[key as PresetVariant] = readSettings(`${name}.${key}`, value as Record<string, unknown>, warnings);
    } else {
      settings[key] = value;
    }
  }
  const preset = { ...readSettings(name, settings, warnings), variants };
  // A switch-at is for the refiner the preset or one of its variants names.
  const all: [string, PresetSettings][] = [
    [name, preset], ...Object.entries(variants).map(([variant, v]): [string, PresetSettings] => [`${name}.${variant}`, v]),
  ];
  if (!all.some(([, s]) => s.refinerCheckpoint !== undefined)) {
    for (const [where, s] of all) {
      if (s.refinerSwitchAt !== undefined) warnings.push(`${where}.refiner_switch_at is ignored: the preset names no refiner_checkpoint`);
    }
  }
  return preset;
}

function readSettings(where: string, raw: Record<string, unknown>, warnings: string[]): PresetSettings {
  const settings: PresetSettings = {};
  const ignored = (key: string, why = 'not supported yet'): void => {
    warnings.push(`${where}.${key} is ${why} and is ignored`);
  };
  const number = (key: string, value: unknown, min: number, max: number, integer: boolean): number | undefined => {
    if (typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max && (!integer || Number.isInteger(value))) {
      return value;
    }
    throw new TypeError(`Preset ${where}.${key} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}, `
      + `but is ${JSON.stringify(value)}`);
  };
  const text = (key: string, value: unknown): string => {
    if (typeof value === 'string') return value;
    throw new TypeError(`Preset ${where}.${key} must be text, but is ${JSON.stringify(value)}`);
  };
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'sampler_name': case 'sampler_index': settings.sampler = text(key, value); break;
      case 'scheduler': settings.scheduler = text(key, value); break;
      case 'steps': settings.steps = number(key, value, 1, 150, true); break;
      case 'cfg_scale': settings.cfgScale = number(key, value, 0, 30, false); break;
      case 'negative_prompt': settings.negativePrompt = text(key, value); break;
      case 'denoising_strength': settings.strength = number(key, value, 0, 1, false); break;
      case 'width': settings.width = number(key, value, 64, 2048, true); break;
      case 'height': settings.height = number(key, value, 64, 2048, true); break;
      case 'max_pixels': settings.maxPixels = number(key, value, 64 * 64, 2048 * 2048, true); break;
      case 'refiner_checkpoint': settings.refinerCheckpoint = text(key, value); break;
      case 'refiner_switch_at':
        if (typeof value !== 'number' || !(value > refinerSwitchAtRange.min && value <= refinerSwitchAtRange.max)) {
          throw new TypeError(`Preset ${where}.${key} must be a number above 0 and at most 1, but is ${JSON.stringify(value)}`);
        }
        settings.refinerSwitchAt = value;
        break;
      case 'scale_to_size':
        if (typeof value !== 'boolean') throw new TypeError(`Preset ${where}.${key} must be true or false`);
        settings.scaleToSize = value;
        break;
      case 'override_settings':
        if (typeof value !== 'object' || value === null) throw new TypeError(`Preset ${where}.${key} must be an object`);
        for (const [setting, settingValue] of Object.entries(value)) {
          if (setting === 'sd_model_checkpoint') settings.checkpoint = text(`${key}.${setting}`, settingValue);
          else ignored(`${key}.${setting}`);
        }
        break;
      case 'override_settings_restore_afterwards':
        // sdnode never changes a global model setting, so there is nothing to restore.
        break;
      default:
        ignored(key);
    }
  }
  return settings;
}

/** The preset's settings with the variants for this quality and style applied, in that order. */
export function presetSettings(preset: Preset, ...variants: (string | undefined)[]): PresetSettings {
  const { variants: table, ...base } = preset;
  let settings: PresetSettings = base;
  for (const variant of variants) {
    const override = variant === undefined ? undefined : table[variant as PresetVariant];
    if (override) settings = { ...settings, ...override };
  }
  return settings;
}
