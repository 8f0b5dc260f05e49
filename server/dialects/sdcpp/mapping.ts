// sd-server's img_gen ↔ jobs: its fields to JobParameters (LoRAs as the prompt's <lora:> tags the
// job runner reads, seeds reduced to the generator's range), and a job record to its job object.

import path from 'node:path';

import { hiresUpscalerNames } from '../../../lib/index.js';
import type { JobSnapshot } from '../../jobs/service.js';
import type { JobParameters } from '../../jobs/job.js';
import { reducedSeed, samplerFields, withoutUndefined } from '../../jobs/parameters.js';
import { cacheSettings } from '../../cache-option.js';
import { InvalidFieldError } from '../../parse.js';
import type { ImgGenRequest, SdcppJob } from './schemas.js';

export function imgGenParameters(body: ImgGenRequest): JobParameters {
  const sample = body.sample_params ?? {};
  const loraTags = (body.lora ?? []).map((lora, i) => {
    const name = lora.path.replace(/\.(safetensors|gguf)$/i, '');
    if (path.isAbsolute(lora.path) || name.split(/[\\/]/).includes('..')) {
      throw new InvalidFieldError(`lora.${i}.path`, `lora[${i}].path must be a file under the LoRA folder, got ${JSON.stringify(lora.path)}`);
    }
    return `<lora:${path.posix.basename(name.replaceAll('\\', '/'))}:${lora.multiplier}>`;
  });
  const hires = body.hires?.enabled ? hiresParameters(body.hires) : undefined;
  return withoutUndefined({
    prompt: [body.prompt, ...loraTags].join(' ').trim(),
    negativePrompt: body.negative_prompt,
    count: body.batch_count ?? 1,
    seed: reducedSeed(body.seed),
    width: body.width,
    height: body.height,
    steps: sample.sample_steps,
    cfgScale: sample.guidance?.txt_cfg,
    guidance: sample.guidance?.distilled_guidance,
    ...samplerFields(sample.sample_method, sample.scheduler, { sampler: 'sample_params.sample_method', scheduler: 'sample_params.scheduler' }),
    strength: body.init_image ? body.strength : undefined,
    clipSkip: body.clip_skip !== undefined && body.clip_skip > 0 ? body.clip_skip : undefined,
    vaeTiling: body.vae_tiling_params?.enabled || undefined,
    cache: cacheSettings(body.cache_mode, body.cache_option, { mode: 'cache_mode', option: 'cache_option' }),
    hires,
  });
}

function hiresParameters(hires: NonNullable<ImgGenRequest['hires']>): JobParameters['hires'] {
  const upscaler = hires.upscaler ?? 'Latent';
  if (!(hiresUpscalerNames as readonly string[]).includes(upscaler)) {
    throw new InvalidFieldError('hires.upscaler', `Expected one of ${hiresUpscalerNames.join(', ')} for hires.upscaler but received ${JSON.stringify(upscaler)}`);
  }
  const sized = (hires.target_width ?? 0) > 0 && (hires.target_height ?? 0) > 0;
  return withoutUndefined({
    upscaler,
    ...(sized ? { width: hires.target_width, height: hires.target_height } : { scale: hires.scale ?? 2 }),
    steps: hires.steps !== undefined && hires.steps > 0 ? hires.steps : undefined,
    denoisingStrength: hires.denoising_strength,
  });
}

const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** A job as sd-server shows it; `images` are the finished job's PNGs. */
export function jobObject(snapshot: JobSnapshot, images: Buffer[]): SdcppJob {
  const { record } = snapshot;
  const cancelled = record.state === 'FAILED' && record.error?.code === 'CANCELLED';
  const status = record.state === 'QUEUED' ? 'queued' : record.state === 'IN_PROGRESS' ? 'generating'
    : record.state === 'COMPLETE' ? 'completed' : cancelled ? 'cancelled' : 'failed';
  const finished = status === 'completed' || status === 'failed' || status === 'cancelled';
  return {
    id: record.id,
    kind: 'img_gen',
    status,
    created: seconds(record.createdAt),
    // The store keeps one update time: a running job's is when it started (a cancelled one's is unknown).
    started: status === 'queued' || status === 'cancelled' ? null : seconds(record.updatedAt),
    completed: finished ? seconds(record.updatedAt) : null,
    queue_position: snapshot.position ?? 0,
    result: status === 'completed'
      ? { output_format: 'png', images: images.map((png, index) => ({ index, b64_json: png.toString('base64') })) }
      : null,
    error: finished && status !== 'completed'
      ? { code: cancelled ? 'cancelled' : (record.error?.code ?? 'generation_failed').toLowerCase(), message: record.error?.message ?? 'The generation failed' }
      : null,
  };
}
