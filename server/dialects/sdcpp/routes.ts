// stable-diffusion.cpp's sd-server native API (--api sdcpp): GET /sdcpp/v1/capabilities,
// POST /sdcpp/v1/img_gen (202 and a job to poll), GET /sdcpp/v1/jobs/{id},
// POST /sdcpp/v1/jobs/{id}/cancel. Errors are { error: { code, message } }.

import path from 'node:path';

import express, { Router } from 'express';

import { hiresUpscalerNames, listLoras, samplers, schedulers } from '../../../lib/index.js';
import type { Dialect, ServerContext } from '../../http/context.js';
import { ApiError, errorHandler, type ErrorShape } from '../../http/errors.js';
import { parseWith } from '../../http/schema.js';
import { requireAcceptingJobs } from '../../http/sync-job.js';
import { base64BodyLimit } from '../../http/uploads.js';
import { isFinished, type JobMode } from '../../jobs/job.js';
import { maxJobImages } from '../../jobs/limits.js';
import type { Upload } from '../../jobs/store.js';
import { base64Image } from '../a1111/images.js';
import { checkSizeForEntry } from '../model-family.js';
import { imgGenParameters, jobObject } from './mapping.js';
import { errorSchema, imgGenSchema, jobSchema, type ImgGenRequest } from './schemas.js';

const tag = 'sdcpp';
const base = '/sdcpp/v1';

export interface SdcppOptions {
  /** The folder `lora[].path` is relative to. */
  loraDir: string | undefined;
  /** Most jobs waiting (--max-queue), for the capabilities' limits. */
  maxQueue: number;
}

const sdcppErrorShape: ErrorShape = (error) => ({
  status: error.code === 'QUEUE_FULL' ? 429 : error.status === 422 ? 400 : error.status,
  body: { error: { code: error.code.toLowerCase(), message: error.message } },
});

export function sdcppDialect(context: ServerContext, options: SdcppOptions): Dialect {
  return {
    name: tag,
    description: 'stable-diffusion.cpp\'s sd-server API: /sdcpp/v1/img_gen jobs to poll and cancel',
    router: () => sdcppRouter(context, options),
  };
}

function sdcppRouter(context: ServerContext, options: SdcppOptions): Router {
  const { api, keys, jobs, models } = context;
  const router = Router();
  const errors = { 400: { description: 'An invalid field', schema: errorSchema }, 404: { description: 'No such job', schema: errorSchema } };

  const jobOf = async (id: string) => {
    const snapshot = await jobs.find(id);
    if (!snapshot || snapshot.record.dialect !== tag) throw new ApiError(404, 'NOT_FOUND', `No job ${id}`, { param: 'id' });
    const images = snapshot.record.state === 'COMPLETE'
      ? await Promise.all(Array.from({ length: snapshot.imagesDone }, (_, i) => jobs.readImage(id, i + 1)))
      : [];
    return { snapshot, job: jobObject(snapshot, images) };
  };

  api.route(router, {
    method: 'get', path: `${base}/capabilities`, tag, summary: 'The model, samplers, schedulers, LoRAs, defaults and limits',
    responses: { 200: { description: 'Capabilities' } },
  }, keys.required(), async (_req, res) => {
    const model = await models.defaultModel();
    const loras = options.loraDir === undefined ? [] : (await listLoras(options.loraDir))
      .map((lora) => ({ name: lora.name, path: path.relative(options.loraDir!, lora.path).split(path.sep).join('/') }));
    const defaults = {
      prompt: '', negative_prompt: '', clip_skip: -1, width: 512, height: 512, strength: 0.75, seed: -1, batch_count: 1,
      sample_params: { scheduler: 'discrete', sample_method: 'euler_a', sample_steps: 20, eta: null, flow_shift: null, guidance: { txt_cfg: 7, img_cfg: null, distilled_guidance: 3.5 } },
      vae_tiling_params: { enabled: false }, cache_mode: 'disabled', cache_option: '', output_format: 'png', output_compression: 100,
    };
    const features = {
      init_image: true, mask_image: true, control_image: false, ip_adapter_image: false, ref_images: false, lora: true, vae_tiling: true,
      hires: true, cache: true, cancel_queued: true, cancel_generating: true,
    };
    res.json({
      model: model ? { name: path.basename(model.path || model.name), stem: model.name, path: model.path } : null,
      current_mode: 'img_gen', supported_modes: ['img_gen'],
      defaults, output_formats: ['png'], features,
      defaults_by_mode: { img_gen: defaults }, output_formats_by_mode: { img_gen: ['png'] }, features_by_mode: { img_gen: features },
      samplers: samplers(), schedulers: schedulers(), loras,
      upscalers: ['None', ...hiresUpscalerNames].map((name) => ({ name })),
      limits: { min_width: 64, max_width: 4096, min_height: 64, max_height: 4096, max_batch_count: maxJobImages, max_queue_size: options.maxQueue },
    });
  });

  api.route(router, {
    method: 'post', path: `${base}/img_gen`, tag, summary: 'Queues an image job; 202 with its id and poll_url',
    body: { contentType: 'application/json', schema: imgGenSchema },
    responses: { 202: { description: 'The job was queued' }, ...errors, 429: { description: 'The queue is full', schema: errorSchema } },
  }, keys.required(), express.json({ limit: base64BodyLimit(2, context.maxUploadBytes) }), async (req, res) => {
    requireAcceptingJobs(context);
    if (req.body === undefined || Object.keys(req.body as object).length === 0) throw new ApiError(400, 'INVALID_REQUEST', 'The request body is empty');
    const body = parseWith(imgGenSchema, req.body, `${base}/img_gen`);
    const parameters = imgGenParameters(body);
    const checkpoint = await models.resolve();
    await checkSizeForEntry(checkpoint, parameters);
    const { mode, uploads } = await inputs(body);
    const record = await jobs.submit({ mode, dialect: tag, model: checkpoint.name, parameters, uploads });
    res.status(202).json({ id: record.id, kind: 'img_gen', status: 'queued', created: Math.floor(Date.parse(record.createdAt) / 1000), poll_url: `${context.apiPrefix}${base}/jobs/${record.id}` });
  });

  api.route(router, {
    method: 'get', path: `${base}/jobs/:id`, tag, summary: 'A job: its status, and its images once completed',
    responses: { 200: { description: 'The job', schema: jobSchema }, 404: errors[404] },
  }, keys.required(), async (req, res) => {
    res.json((await jobOf(String(req.params.id))).job);
  });

  api.route(router, {
    method: 'post', path: `${base}/jobs/:id/cancel`, tag, summary: 'Cancels a queued or running job; 409 once it has finished',
    responses: { 200: { description: 'The job after the cancel', schema: jobSchema }, 404: errors[404], 409: { description: 'The job has finished', schema: errorSchema } },
  }, keys.required(), async (req, res) => {
    const id = String(req.params.id);
    const { snapshot } = await jobOf(id);
    if (isFinished(snapshot.record.state)) throw new ApiError(409, 'CONFLICT', `Job ${id} has already finished`, { param: 'id' });
    await jobs.cancel(id);
    res.json((await jobOf(id)).job);
  });

  api.refuseOtherMethods(router, tag);
  router.use(base, errorHandler(context.log, sdcppErrorShape));
  return router;
}

async function inputs(body: ImgGenRequest): Promise<{ mode: JobMode; uploads: Partial<Record<'image' | 'mask', Upload>> }> {
  if (!body.init_image) {
    if (body.mask_image) throw new ApiError(400, 'INVALID_PARAMETER', 'mask_image needs an init_image', { param: 'mask_image' });
    return { mode: 'txt2img', uploads: {} };
  }
  const image = await base64Image('init_image', body.init_image);
  if (!body.mask_image) return { mode: 'img2img', uploads: { image } };
  return { mode: 'inpaint', uploads: { image, mask: await base64Image('mask_image', body.mask_image) } };
}
