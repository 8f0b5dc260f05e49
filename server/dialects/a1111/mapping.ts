// AUTOMATIC1111 ↔ jobs: its request fields to JobParameters (and the fields sdnode leaves aside,
// reported, never silently dropped), and the `info` object of its answers.

import { hiresUpscalerNames, parseParameters, readPngText, samplerDisplayNames } from '../../../lib/index.js';
import { ApiError } from '../../http/errors.js';
import type { JobParameters } from '../../jobs/job.js';
import { maxJobImages } from '../../jobs/limits.js';
import { UnknownUpscalerError, type UpscalerCatalog } from '../../models/upscalers.js';
import {
  a1111RefinerFields, checkSizeForModel, chosenSeed, imageSeed, multipleOf8, refinerParameters, samplerFields, withoutUndefined,
} from '../../jobs/parameters.js';
import { safetyVerdicts } from '../../jobs/safety.js';
import { kontextJob, kontextParameters, maxReferenceImages, type KontextJob } from '../kontext.js';
import { flowDefaults, type FlowFamily } from '../model-family.js';
import { controlNetScriptKey } from './controlnet.js';
import { base64Image } from './images.js';
import type { Img2ImgRequest, Txt2ImgRequest } from './schemas.js';
import { img2imgSchema, txt2imgSchema } from './schemas.js';

/** A1111's scheduler field values → sdnode's schedules ('automatic': the sampler's own). */
const schedulerByA1111Name: Readonly<Record<string, string | undefined>> = {
  automatic: undefined, uniform: 'discrete', karras: 'karras', exponential: 'exponential',
  // Forge's picks for FLUX.1 and SD3 ("Simple", "Beta"), and SGM Uniform.
  simple: 'simple', beta: 'beta', sgm_uniform: 'sgm_uniform',
};

/** Server-wide settings a client can change with POST /sdapi/v1/options. */
export interface A1111Settings {
  /** CLIP_stop_at_last_layers; undefined: the model family's own choice. */
  clipSkip: number | undefined;
  samplesFormat: string;
  /** Options sdnode keeps and reports but does not act on. */
  other: Record<string, unknown>;
}

export interface MappedRequest {
  parameters: JobParameters;
  /** Checkpoint asked for with override_settings.sd_model_checkpoint. */
  checkpoint: string | undefined;
  /** Fields given that sdnode does not act on. */
  ignored: string[];
}

export function txt2imgParameters(body: Txt2ImgRequest, settings: A1111Settings): MappedRequest {
  const mapped = commonParameters(body, settings, Object.keys(txt2imgSchema.shape));
  if (body.hr_checkpoint_name) mapped.ignored.push('hr_checkpoint_name');
  if (body.hr_sampler_name) mapped.ignored.push('hr_sampler_name');
  if (body.firstphase_width || body.firstphase_height) mapped.ignored.push('firstphase_width/firstphase_height');
  if (body.enable_hr) {
    const sized = body.hr_resize_x > 0 || body.hr_resize_y > 0;
    mapped.parameters.hires = withoutUndefined({
      ...(sized
        ? { width: optionalSize('hr_resize_x', body.hr_resize_x), height: optionalSize('hr_resize_y', body.hr_resize_y) }
        : { scale: body.hr_scale }),
      upscaler: hiresUpscaler(body.hr_upscaler),
      steps: body.hr_second_pass_steps > 0 ? body.hr_second_pass_steps : undefined,
      denoisingStrength: body.denoising_strength ?? 0.7,
      prompt: body.hr_prompt === '' ? undefined : body.hr_prompt,
      negativePrompt: body.hr_negative_prompt === '' ? undefined : body.hr_negative_prompt,
    });
  }
  return mapped;
}

export function img2imgParameters(body: Img2ImgRequest, settings: A1111Settings): MappedRequest {
  const mapped = commonParameters(body, settings, Object.keys(img2imgSchema.shape));
  const { parameters } = mapped;
  parameters.strength = body.denoising_strength ?? 0.75;
  if (body.mask !== null) {
    parameters.maskBlur = body.mask_blur ?? Math.max(body.mask_blur_x, body.mask_blur_y);
    if (body.inpaint_full_res === true || body.inpaint_full_res === 1) parameters.inpaintRegionPadding = body.inpaint_full_res_padding;
    // 0 (fill) is done on the pixels before the job (see routes.ts); 1 is the original latent.
    if (body.inpainting_fill === 2) parameters.maskedStart = 'noise';
    if (body.inpainting_fill === 3) parameters.maskedStart = 'zeros';
  }
  if (body.initial_noise_multiplier !== null && body.initial_noise_multiplier !== 1) mapped.ignored.push('initial_noise_multiplier');
  if (body.image_cfg_scale !== null) mapped.ignored.push('image_cfg_scale');
  if (body.init_images.length > 1) mapped.ignored.push('init_images beyond the first');
  return mapped;
}

/**
 * For a flow model, the fields the request left out take the model family's defaults instead of
 * A1111's (50 steps, cfg 7, "Euler a", 512²: FLUX.1 cannot use Euler a and runs cfg 1 in one
 * pass), and `body` is filled in with them, so its `parameters` and `info` report what was used.
 * `given`: the keys the request had; `family`: undefined for a UNet model (A1111's defaults stay);
 * `size`: the default size in place of the family's (a Kontext edit's: its image's).
 */
export function applyFamilyDefaults(mapped: MappedRequest, body: Txt2ImgRequest | Img2ImgRequest, given: ReadonlySet<string>,
  family: FlowFamily | undefined, size?: { width: number; height: number }): void {
  if (family === undefined) return;
  const defaults = flowDefaults(family);
  const { parameters } = mapped;
  if (!given.has('steps')) body.steps = parameters.steps = defaults.steps;
  if (!given.has('cfg_scale')) body.cfg_scale = parameters.cfgScale = defaults.cfgScale;
  if (!given.has('width')) body.width = parameters.width = size?.width ?? defaults.size;
  if (!given.has('height')) body.height = parameters.height = size?.height ?? defaults.size;
  if (!given.has('sampler_name') && !given.has('sampler_index')) {
    parameters.sampler = defaults.sampler;
    body.sampler_name = samplerDisplayNames[defaults.sampler as keyof typeof samplerDisplayNames];
    if (body.scheduler === null) parameters.scheduler = defaults.scheduler;
  }
  checkSizeForModel(parameters, true);
}

/**
 * A FLUX.1 Kontext img2img: every init image (up to 4) is a reference image read beside the
 * prompt; nothing is noised, so denoising_strength and resize_mode do not apply, and a mask is
 * refused (inpainting with FLUX.1 is not there). `mapped` loses its strength and says what is unused.
 */
export async function kontextImg2img(body: Img2ImgRequest, mapped: MappedRequest, checkpoint: string): Promise<KontextJob> {
  if (body.mask !== null) {
    throw new ApiError(422, 'INVALID_PARAMETER', `mask is not used by ${checkpoint}, a FLUX.1 Kontext model: it changes what the prompt `
      + 'says ("make the sky red") and keeps the rest; leave mask out', { param: 'mask' });
  }
  if (body.init_images.length > maxReferenceImages) {
    throw new ApiError(422, 'INVALID_PARAMETER', `Expected at most ${maxReferenceImages} init_images (FLUX.1 Kontext's reference images) `
      + `but received ${body.init_images.length}`, { param: 'init_images' });
  }
  const images = await Promise.all(body.init_images.map((text, i) => base64Image(`init_images[${i}]`, text)));
  const job = await kontextJob(images, 'init_images');
  mapped.parameters = kontextParameters(mapped.parameters, job);
  mapped.ignored = mapped.ignored.filter((field) => field !== 'init_images beyond the first');
  if (body.denoising_strength !== null) mapped.ignored.push('denoising_strength');
  if (body.resize_mode !== 0) mapped.ignored.push('resize_mode');
  return job;
}

function commonParameters(body: Txt2ImgRequest | Img2ImgRequest, settings: A1111Settings, known: string[]): MappedRequest {
  const ignored = Object.keys(body).filter((key) => !known.includes(key));
  if (body.restore_faces) ignored.push('restore_faces');
  if (body.styles.length > 0) ignored.push('styles');
  if (body.script_name) ignored.push('script_name');
  // The ControlNet extension's units are taken (controlnet.ts); other scripts are not run.
  const scripts = Object.keys(body.alwayson_scripts).filter((key) => key !== controlNetScriptKey(body.alwayson_scripts));
  ignored.push(...scripts.map((key) => `alwayson_scripts.${key}`));
  if (body.eta !== null) ignored.push('eta');
  const { sd_model_checkpoint: checkpoint, CLIP_stop_at_last_layers: clipStop, ...otherSettings } = body.override_settings;
  ignored.push(...Object.keys(otherSettings).map((key) => `override_settings.${key}`));
  if (checkpoint !== undefined && typeof checkpoint !== 'string') {
    throw new ApiError(422, 'INVALID_PARAMETER', 'override_settings.sd_model_checkpoint must be a checkpoint name', { param: 'override_settings' });
  }
  const clipSkip = clipStop === undefined ? settings.clipSkip : clipSkipValue(clipStop);
  const sampler = body.sampler_name ?? body.sampler_index ?? 'Euler a';
  // By name ("sgm_uniform") or label ("SGM Uniform").
  const schedulerName = body.scheduler?.trim().toLowerCase().replace(/\s+/g, '_');
  if (schedulerName !== undefined && !(schedulerName in schedulerByA1111Name)) {
    throw new ApiError(422, 'INVALID_PARAMETER',
      `Expected one of Automatic, Uniform, Karras, Exponential, SGM Uniform, Simple, Beta for scheduler but received ${body.scheduler}`, { param: 'scheduler' });
  }
  const scheduler = schedulerName === undefined ? undefined : schedulerByA1111Name[schedulerName];
  if (body.batch_size * body.n_iter > maxJobImages) {
    throw new ApiError(422, 'INVALID_PARAMETER', `Expected batch_size × n_iter of at most ${maxJobImages} but received `
      + `${body.batch_size} × ${body.n_iter}`, { param: 'n_iter' });
  }
  const seed = chosenSeed(body.seed);
  const parameters: JobParameters = withoutUndefined({
    prompt: body.prompt,
    negativePrompt: body.negative_prompt === '' ? undefined : body.negative_prompt,
    count: body.batch_size * body.n_iter,
    seed,
    steps: body.steps,
    width: multipleOf8('width', body.width),
    height: multipleOf8('height', body.height),
    cfgScale: body.cfg_scale,
    guidance: body.distilled_cfg_scale ?? undefined,
    ...samplerFields(sampler, scheduler, { sampler: 'sampler_name', scheduler: 'scheduler' }),
    clipSkip,
    tiling: body.tiling === true ? true : undefined,
    ...(body.subseed_strength > 0 && { subseed: chosenSeed(body.subseed), subseedStrength: body.subseed_strength }),
    ...(body.seed_resize_from_w > 0 && body.seed_resize_from_h > 0
      && { seedResizeFromWidth: body.seed_resize_from_w, seedResizeFromHeight: body.seed_resize_from_h }),
    // A1111 keeps every image: the checker (--safety-checker) only flags, in info.nsfw.
    safetyCheck: 'report' as const,
    // A1111 clients send refiner_switch_at with no refiner; it is used only with one.
    refiner: body.refiner_checkpoint ? refinerParameters(body.refiner_checkpoint, body.refiner_switch_at ?? undefined, a1111RefinerFields) : undefined,
  });
  return { parameters, checkpoint, ignored };
}

// A1111's "None" resizes the pixels without an upscaler model: Lanczos here. No name: its default,
// "Latent". Another name stays as given: resolveHiresUpscaler looks it up among the ESRGAN files.
function hiresUpscaler(name: string | null): string {
  if (name === null || name.trim() === '') return 'Latent';
  if (name.trim().toLowerCase() === 'none') return 'Lanczos';
  return hiresUpscalerNames.find((upscaler) => upscaler.toLowerCase() === name.trim().toLowerCase()) ?? name;
}

/**
 * The hires fix's upscaler when it names an ESRGAN file of the upscaler folder: the job gets the
 * file's path (the library's hires.upscaler). An unknown name is a 422 listing what exists.
 */
export async function resolveHiresUpscaler(mapped: MappedRequest, upscalers: UpscalerCatalog): Promise<void> {
  const hires = mapped.parameters.hires;
  const name = hires?.upscaler;
  if (hires === undefined || name === undefined || (hiresUpscalerNames as readonly string[]).includes(name)) return;
  try {
    hires.upscaler = (await upscalers.resolve(name)).path;
  } catch (error) {
    if (!(error instanceof UnknownUpscalerError)) throw error;
    const names = [...hiresUpscalerNames, 'None', ...error.available];
    throw new ApiError(422, 'INVALID_PARAMETER', `Expected one of ${names.join(', ')} for hr_upscaler but received ${name}`, { param: 'hr_upscaler' });
  }
}

function clipSkipValue(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 12) {
    throw new ApiError(422, 'INVALID_PARAMETER',
      `Expected an integer between 1 and 12 for override_settings.CLIP_stop_at_last_layers but received ${JSON.stringify(value)}`,
      { param: 'override_settings' });
  }
  return value;
}

function optionalSize(field: string, value: number): number | undefined {
  return value > 0 ? multipleOf8(field, value) : undefined;
}

export interface InfoContext {
  body: Txt2ImgRequest | Img2ImgRequest;
  parameters: JobParameters;
  images: Buffer[];
  modelName: string;
  modelHash: string | null;
  ignored: string[];
  jobTimestamp: string;
  version: string;
  isInpainting: boolean;
}

/**
 * A1111's `info`: prompts, seeds and settings per image, and each image's infotext; sdnode adds
 * `nsfw` per image (null: not checked, and `sdnode_warnings` says why).
 */
export function infoObject(context: InfoContext): Record<string, unknown> {
  const { body, parameters: p, images } = context;
  const safety = safetyVerdicts(images);
  const infotexts = images.map((png) => readPngText(png).parameters ?? '');
  const seeds = infotexts.map((text, i) => Number(parseParameters(text).fields.Seed ?? imageSeed(p.seed, i)));
  const subseeds = seeds.map((_, i) => (p.subseed ?? -1) === -1 ? -1 : (p.subseed as number) + i);
  const count = Math.max(images.length, 1);
  return {
    prompt: p.prompt,
    all_prompts: Array.from({ length: count }, () => p.prompt),
    negative_prompt: p.negativePrompt ?? '',
    all_negative_prompts: Array.from({ length: count }, () => p.negativePrompt ?? ''),
    seed: p.seed,
    all_seeds: seeds.length > 0 ? seeds : [p.seed],
    subseed: p.subseed ?? -1,
    all_subseeds: subseeds.length > 0 ? subseeds : [p.subseed ?? -1],
    subseed_strength: p.subseedStrength ?? 0,
    width: p.width,
    height: p.height,
    sampler_name: body.sampler_name ?? body.sampler_index ?? 'Euler a',
    cfg_scale: p.cfgScale,
    steps: p.steps,
    batch_size: body.batch_size,
    restore_faces: false,
    face_restoration_model: null,
    sd_model_name: context.modelName,
    sd_model_hash: context.modelHash,
    sd_vae_name: null,
    sd_vae_hash: null,
    seed_resize_from_w: body.seed_resize_from_w,
    seed_resize_from_h: body.seed_resize_from_h,
    denoising_strength: p.strength ?? p.hires?.denoisingStrength ?? null,
    extra_generation_params: {},
    index_of_first_image: 0,
    infotexts,
    styles: body.styles,
    job_timestamp: context.jobTimestamp,
    clip_skip: p.clipSkip ?? 1,
    is_using_inpainting_conditioning: context.isInpainting,
    version: `sdnode ${context.version}`,
    sdnode_ignored: context.ignored,
    nsfw: safety.nsfw,
    sdnode_warnings: safety.warning === undefined ? [] : [safety.warning],
  };
}

/** "20261130235959", as A1111 stamps jobs. */
export function jobTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
