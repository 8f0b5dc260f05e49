// AUTOMATIC1111's ControlNet extension (sd-webui-controlnet): the units of
// alwayson_scripts.controlnet.args in txt2img / img2img requests (with the field names and values
// its clients send: webuiapi's ControlNetUnit, the extension's own API), and its /controlnet routes:
// version, model_list, module_list, control_types, settings and detect.

import type { RequestHandler, Router } from 'express';
import sharp from 'sharp';
import { z } from 'zod';

import { canny, listControlNets, type ControlMode, type ControlResizeMode } from '../../../lib/index.js';
import type { ResponseSpec } from '../../http/api.js';
import type { ServerContext } from '../../http/context.js';
import { ApiError } from '../../http/errors.js';
import { parseWith } from '../../http/schema.js';
import { controlSlots, type JobControlNet, type UploadSlot } from '../../jobs/job.js';
import type { Upload } from '../../jobs/store.js';
import { base64Image } from './images.js';

/** The extension's API version that /controlnet/version reports. */
const apiVersion = 2;
/** Preprocessors run here; any other map is made elsewhere and sent with module "none". */
const modules = ['none', 'canny'] as const;
const cannyDefaults = { low: 100, high: 200 };

const resizeModes: Readonly<Record<string, ControlResizeMode>> = {
  'just resize': 'just-resize', 'crop and resize': 'crop-and-resize', 'resize and fill': 'resize-and-fill',
  // The extension's older names.
  'inner fit (scale to fit)': 'crop-and-resize', 'scale to fit (inner fit)': 'crop-and-resize', 'envelope (outer fit)': 'resize-and-fill',
};
const resizeByIndex: readonly ControlResizeMode[] = ['just-resize', 'crop-and-resize', 'resize-and-fill'];
const controlModes: Readonly<Record<string, ControlMode>> = {
  balanced: 'balanced', 'my prompt is more important': 'prompt', 'controlnet is more important': 'control',
};
const controlModeByIndex: readonly ControlMode[] = ['balanced', 'prompt', 'control'];

const imageField = z.union([z.string(), z.object({ image: z.string(), mask: z.string().nullable().optional() }).loose()]).nullable();

/** One unit, as the extension's API takes it (unknown fields pass: clients send their UI's state too). */
export const controlNetUnitSchema = z.looseObject({
  enabled: z.boolean().default(true),
  module: z.string().default('none').meta({ description: 'Preprocessor: none (the image is the map) or canny' }),
  model: z.string().default('None').meta({ description: 'A name of /controlnet/model_list, with or without its [hash]; None: the unit is off' }),
  weight: z.number().min(0).max(2).default(1),
  image: imageField.default(null).meta({ description: 'Base64 control image, or { image, mask }; img2img without one: the init image' }),
  input_image: imageField.default(null).meta({ description: 'The older name of image' }),
  mask: z.string().nullable().default(null).meta({ description: 'Accepted; not used (sdnode has no inpaint preprocessor)' }),
  resize_mode: z.union([z.number().int().min(0).max(2), z.string()]).default(1)
    .meta({ description: '0 / "Just Resize", 1 / "Crop and Resize" (default), 2 / "Resize and Fill"' }),
  processor_res: z.number().default(-1).meta({ description: 'Accepted; preprocessors run at the generation size (pixel perfect)' }),
  threshold_a: z.number().default(-1).meta({ description: 'canny: the low threshold, 1–255 (-1: 100)' }),
  threshold_b: z.number().default(-1).meta({ description: 'canny: the high threshold, 1–255 (-1: 200)' }),
  guidance_start: z.number().min(0).max(1).default(0),
  guidance_end: z.number().min(0).max(1).default(1),
  control_mode: z.union([z.number().int().min(0).max(2), z.string()]).default(0)
    .meta({ description: '0 / "Balanced", 1 / "My prompt is more important", 2 / "ControlNet is more important"' }),
  pixel_perfect: z.boolean().default(false),
  low_vram: z.boolean().default(false),
  lowvram: z.boolean().default(false),
  hr_option: z.string().default('Both')
    .meta({ description: 'With enable_hr, the passes the unit steers: Both (sdnode\'s only; other values are reported in sdnode_ignored)' }),
});
type ControlNetUnitRequest = z.output<typeof controlNetUnitSchema>;

const scriptSchema = z.looseObject({ args: z.array(z.unknown()).default([]) });

/** What the units of a request become: the job's units, their images, and the fields left aside. */
export interface ControlNetJob {
  units: JobControlNet[];
  uploads: Partial<Record<UploadSlot, Upload>>;
  ignored: string[];
}

/** The alwayson_scripts key of the extension: its title, lower-cased ("controlnet"), in any case. */
export function controlNetScriptKey(scripts: Record<string, unknown>): string | undefined {
  return Object.keys(scripts).find((key) => key.toLowerCase() === 'controlnet');
}

/**
 * The enabled units of alwayson_scripts.controlnet with a model, checked, their models looked up in
 * `dir` and their images decoded; `initImage`: img2img's first init image, the control image of a
 * unit that sends none. 422 naming the field (and, for a model, the names that exist) otherwise.
 */
export async function controlNetJob(scripts: Record<string, unknown>, dir: string | undefined, initImage: string | undefined):
Promise<ControlNetJob> {
  const key = controlNetScriptKey(scripts);
  const job: ControlNetJob = { units: [], uploads: {}, ignored: [] };
  if (key === undefined) return job;
  const field = `alwayson_scripts.${key}.args`;
  const { args } = parseWith(scriptSchema, scripts[key], `alwayson_scripts.${key}`);
  const requested = args.map((unit, i) => parseWith(controlNetUnitSchema, unit, `${field}[${i}]`));
  const active = requested.map((unit, i) => ({ unit, i })).filter(({ unit }) => unit.enabled && unit.model.trim().toLowerCase() !== 'none'
    && unit.model.trim() !== '');
  if (active.length > controlSlots.length) {
    throw invalid(field, `Expected at most ${controlSlots.length} enabled ControlNet units but received ${active.length}`);
  }
  const available = active.length > 0 ? await modelList(dir) : [];
  for (const [n, { unit, i }] of active.entries()) {
    const at = `${field}[${i}]`;
    job.units.push(jobUnit(unit, at, available));
    const source = imageText(unit.image) ?? imageText(unit.input_image) ?? initImage;
    if (source === undefined) throw invalid(`${at}.image`, `${at}.image is required: the control image (base64)`);
    job.uploads[controlSlots[n]!] = await base64Image(`${at}.image`, source);
    if (unit.mask !== null || maskOf(unit.image) !== undefined) job.ignored.push(`${at}.mask`);
    if (unit.hr_option.trim().toLowerCase() !== 'both') job.ignored.push(`${at}.hr_option`);
  }
  return job;
}

function jobUnit(unit: ControlNetUnitRequest, at: string, available: ControlNetName[]): JobControlNet {
  const module = unit.module.trim().toLowerCase();
  if (!(modules as readonly string[]).includes(module)) {
    throw invalid(`${at}.module`, `Expected one of ${modules.join(', ')} for ${at}.module but received ${unit.module}: `
      + 'other preprocessors are not built into sdnode; run one elsewhere and send its map with module none');
  }
  const wanted = unit.model.trim().replace(/\s*\[[0-9a-f]+\]$/i, '').toLowerCase();
  const found = available.find((entry) => entry.name.toLowerCase() === wanted);
  if (!found) {
    throw invalid(`${at}.model`, `Expected one of ${available.length > 0 ? available.map((entry) => entry.title).join(', ') : '(none: the ControlNet folder is empty)'} `
      + `for ${at}.model but received ${unit.model}`);
  }
  if (unit.guidance_start > unit.guidance_end) {
    throw invalid(`${at}.guidance_start`, `${at}.guidance_start (${unit.guidance_start}) must not be after guidance_end (${unit.guidance_end})`);
  }
  const threshold = (value: number, name: string, fallback: number): number => {
    if (value < 0) return fallback;
    const rounded = Math.round(value);
    if (rounded < 1 || rounded > 255) throw invalid(`${at}.${name}`, `Expected a number between 1 and 255 for ${at}.${name} (canny) but received ${value}`);
    return rounded;
  };
  return {
    model: found.name,
    weight: unit.weight,
    guidanceStart: unit.guidance_start,
    guidanceEnd: unit.guidance_end,
    controlMode: choice(unit.control_mode, controlModes, controlModeByIndex, `${at}.control_mode`),
    resizeMode: choice(unit.resize_mode, resizeModes, resizeByIndex, `${at}.resize_mode`),
    preprocessor: module as JobControlNet['preprocessor'],
    ...(module === 'canny' && {
      cannyLow: threshold(unit.threshold_a, 'threshold_a', cannyDefaults.low),
      cannyHigh: threshold(unit.threshold_b, 'threshold_b', cannyDefaults.high),
    }),
  };
}

function choice<T>(value: number | string, byName: Readonly<Record<string, T>>, byIndex: readonly T[], field: string): T {
  const found = typeof value === 'number' ? byIndex[value] : byName[value.trim().toLowerCase()];
  if (found === undefined) {
    throw invalid(field, `Expected 0–${byIndex.length - 1} or one of ${Object.keys(byName).join(', ')} (any case) for ${field} but received ${value}`);
  }
  return found;
}

function imageText(value: ControlNetUnitRequest['image']): string | undefined {
  if (value === null) return undefined;
  return typeof value === 'string' ? (value === '' ? undefined : value) : value.image;
}

function maskOf(value: ControlNetUnitRequest['image']): string | undefined {
  return value !== null && typeof value === 'object' && typeof value.mask === 'string' ? value.mask : undefined;
}

function invalid(param: string, message: string): ApiError {
  return new ApiError(422, 'INVALID_PARAMETER', message, { param });
}

/** A ControlNet as the extension lists it: "name [hash]". */
interface ControlNetName {
  name: string;
  title: string;
}

async function modelList(dir: string | undefined): Promise<ControlNetName[]> {
  if (dir === undefined) return [];
  return (await listControlNets(dir)).map(({ name, hash }) => ({ name, title: `${name} [${hash}]` }));
}

const moduleDetail = {
  none: { model_free: false, sliders: [] },
  canny: {
    model_free: false,
    sliders: [
      { name: 'Canny Low Threshold', value: cannyDefaults.low, min: 1, max: 255, step: 1 },
      { name: 'Canny High Threshold', value: cannyDefaults.high, min: 1, max: 255, step: 1 },
    ],
  },
};

const detectSchema = z.looseObject({
  controlnet_module: z.string().default('none'),
  controlnet_input_images: z.array(z.string()).min(1).max(16),
  controlnet_processor_res: z.number().default(512),
  controlnet_threshold_a: z.number().default(-1),
  controlnet_threshold_b: z.number().default(-1),
});

export interface ControlNetRouteOptions {
  tag: string;
  auth: RequestHandler;
  bodyFor: (images: number) => RequestHandler;
  errors: Record<number, ResponseSpec>;
  /** The ControlNet folder model_list lists and units name their models in. */
  controlNetDir: string | undefined;
}

export function controlNetRoutes(router: Router, context: ServerContext, options: ControlNetRouteOptions): void {
  const { api } = context;
  const { tag, auth, errors } = options;
  const get = (route: string, summary: string, answer: () => Promise<unknown> | unknown): void => {
    api.route(router, {
      method: 'get', path: `/controlnet/${route}`, tag, summary,
      responses: { 200: { description: summary }, 401: errors[401] as ResponseSpec },
    }, auth, async (_req, res) => {
      res.json(await answer());
    });
  };
  get('version', 'The ControlNet extension API version sdnode answers as', () => ({ version: apiVersion }));
  get('model_list', 'ControlNet files of the ControlNet folder (--controlnet-dir), as "name [hash]"', async () => ({
    model_list: (await modelList(options.controlNetDir)).map((entry) => entry.title),
  }));
  get('module_list', 'Preprocessors built in: none and canny', () => ({ module_list: [...modules], module_detail: moduleDetail }));
  get('control_types', 'Control types with their preprocessors and models', async () => {
    const models = (await modelList(options.controlNetDir)).map((entry) => entry.title);
    const cannyModels = models.filter((title) => /canny/i.test(title));
    return {
      control_types: {
        All: { module_list: [...modules], model_list: ['None', ...models], default_option: 'none', default_model: 'None' },
        Canny: { module_list: ['none', 'canny'], model_list: ['None', ...cannyModels], default_option: 'canny', default_model: cannyModels[0] ?? 'None' },
      },
    };
  });
  get('settings', 'How many units a request may enable', () => ({
    control_net_unit_count: controlSlots.length, control_net_max_models_num: controlSlots.length,
  }));
  api.route(router, {
    method: 'post', path: '/controlnet/detect', tag,
    summary: 'Runs a preprocessor (none, canny) on images: what a unit with that module would use as its map',
    body: { contentType: 'application/json', schema: detectSchema },
    responses: { 200: { description: 'The maps, base64 PNG' }, ...errors },
  }, auth, options.bodyFor(4), async (req, res) => {
    const body = parseWith(detectSchema, req.body ?? {}, '/controlnet/detect');
    const module = body.controlnet_module.trim().toLowerCase();
    if (!(modules as readonly string[]).includes(module)) {
      throw invalid('controlnet_module', `Expected one of ${modules.join(', ')} for controlnet_module but received ${body.controlnet_module}`);
    }
    const low = body.controlnet_threshold_a < 0 ? cannyDefaults.low : body.controlnet_threshold_a;
    const high = body.controlnet_threshold_b < 0 ? cannyDefaults.high : body.controlnet_threshold_b;
    const images = await Promise.all(body.controlnet_input_images.map(async (text, i) => {
      const upload = await base64Image(`controlnet_input_images[${i}]`, text);
      const { data, info } = await sharp(Buffer.from(upload.data)).autoOrient().flatten({ background: '#000000' }).removeAlpha()
        .toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      const map = module === 'canny' ? Buffer.from(canny(data, info.width, info.height, 3, { low, high })) : data;
      const png = await sharp(map, { raw: { width: info.width, height: info.height, channels: module === 'canny' ? 1 : 3 } }).png().toBuffer();
      return png.toString('base64');
    }));
    res.json({ images, info: 'Success' });
  });
}
