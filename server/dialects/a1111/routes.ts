// AUTOMATIC1111's /sdapi/v1 API: txt2img and img2img answer when their job is done (a client that
// leaves cancels it); progress, interrupt and skip act on the running A1111 job.

import express, { Router, type Request, type RequestHandler } from 'express';

import { clientGone, watchClient } from '../../http/client-gone.js';
import type { Dialect, ServerContext } from '../../http/context.js';
import { ApiError, errorHandler, fastApiErrorShape, jobFailureError } from '../../http/errors.js';
import { parseWith } from '../../http/schema.js';
import { base64BodyLimit } from '../../http/uploads.js';
import type { JobMode, JobRecord } from '../../jobs/job.js';
import { a1111RefinerFields, resolveRefiner, withoutUndefined } from '../../jobs/parameters.js';
import type { Upload } from '../../jobs/store.js';
import { FileHashes } from '../../models/hashes.js';
import type { UpscalerCatalog } from '../../models/upscalers.js';
import { packageVersion } from '../../version.js';
import { isKontext } from '../kontext.js';
import { flowFamilyOf } from '../model-family.js';
import { base64Image, filledUnderMask, greyPng, maskBytes, resized } from './images.js';
import { controlNetJob, controlNetRoutes } from './controlnet.js';
import { extrasRoutes } from './extras.js';
import { infoRoutes } from './info-routes.js';
import {
  applyFamilyDefaults, img2imgParameters, infoObject, jobTimestamp, kontextImg2img, resolveHiresUpscaler, txt2imgParameters,
  type A1111Settings, type MappedRequest,
} from './mapping.js';
import {
  detailSchema, img2imgSchema, imagesResponseSchema, progressQuery, progressSchema, txt2imgSchema,
  type Img2ImgRequest, type Txt2ImgRequest,
} from './schemas.js';

const tag = 'a1111';

export interface A1111Options {
  /** The LoRA folder /sdapi/v1/loras lists; none: an empty list. */
  loraDir: string | undefined;
  /** The embeddings folder /sdapi/v1/embeddings lists. */
  embeddingsDir: string | undefined;
  /** The ESRGAN-family upscalers /sdapi/v1/upscalers lists and the extras routes run. */
  upscalers: UpscalerCatalog;
  /** The ControlNet folder: what alwayson_scripts.controlnet units name and /controlnet/model_list lists. */
  controlNetDir: string | undefined;
}

export function a1111Dialect(context: ServerContext, options: A1111Options): Dialect {
  return {
    name: tag,
    description: 'AUTOMATIC1111\'s web UI API (/sdapi/v1): txt2img, img2img, extras (upscaling), progress, options, models, png-info',
    router: () => a1111Router(context, options),
    close: () => options.upscalers.close(),
  };
}

function a1111Router(context: ServerContext, options: A1111Options): Router {
  const { api, jobs } = context;
  const router = Router();
  const settings: A1111Settings = { clipSkip: undefined, samplesFormat: 'png', other: {} };
  const hashes = new FileHashes();
  const auth = a1111Auth(context);
  // Bodies as large as the route's images need: none, one (png-info), or an image and a mask.
  const bodyFor = (images: number): RequestHandler => {
    const parse = express.json({ limit: base64BodyLimit(images, context.maxUploadBytes) });
    return (req, res, next) => parse(req, res, (err?: unknown) => next(err ?? missingJsonObject(req)));
  };
  const json = bodyFor(1);
  const errors = {
    401: { description: 'Credentials required or wrong', schema: detailSchema },
    422: { description: 'A field is invalid: FastAPI\'s detail list naming it', schema: detailSchema },
    500: { description: 'The generation failed', schema: detailSchema },
  };

  const generate = (kind: 'txt2img' | 'img2img'): RequestHandler => async (req, res) => {
    if (!context.acceptingJobs()) throw new ApiError(503, 'SHUTTING_DOWN', 'The server is shutting down; retry later');
    const body = kind === 'txt2img'
      ? parseWith(txt2imgSchema, req.body ?? {}, '/sdapi/v1/txt2img')
      : parseWith(img2imgSchema, req.body ?? {}, '/sdapi/v1/img2img');
    const mapped = kind === 'txt2img' ? txt2imgParameters(body as Txt2ImgRequest, settings) : img2imgParameters(body as Img2ImgRequest, settings);
    await resolveHiresUpscaler(mapped, options.upscalers);
    const checkpoint = await context.models.resolve(mapped.checkpoint);
    const kontext = kind === 'img2img' && await isKontext(checkpoint)
      ? await kontextImg2img(body as Img2ImgRequest, mapped, checkpoint.name) : undefined;
    const family = await flowFamilyOf(checkpoint);
    const initImage = kind === 'img2img' ? (body as Img2ImgRequest).init_images[0] : undefined;
    const control = await controlNetJob(body.alwayson_scripts, options.controlNetDir, initImage);
    if (control.units.length > 0) {
      if (family !== undefined) {
        throw new ApiError(422, 'INVALID_PARAMETER', `alwayson_scripts.controlnet: ControlNet units are for SD 1.x, SD 2.x and SDXL checkpoints; `
          + `${checkpoint.name} is a ${family} model`, { param: 'alwayson_scripts' });
      }
      mapped.parameters.controlNets = control.units;
    }
    mapped.ignored.push(...control.ignored);
    applyFamilyDefaults(mapped, body, new Set(Object.keys(req.body ?? {})), family, kontext?.size);
    const refiner = await resolveRefiner(context.models, mapped.parameters.refiner, checkpoint.name, a1111RefinerFields.checkpoint);
    mapped.parameters = withoutUndefined({ ...mapped.parameters, refiner });
    const { mode, uploads } = kind === 'txt2img' ? { mode: 'txt2img' as const, uploads: {} }
      : kontext ? { mode: 'img2img' as const, uploads: kontext.uploads } : await img2imgInputs(body as Img2ImgRequest, mapped);
    const modelHash = hashes.ofEntry(checkpoint).then((sha256) => sha256?.slice(0, 10) ?? null);
    const record = await jobs.submit({
      mode, dialect: tag, model: checkpoint.name, parameters: mapped.parameters, uploads: { ...uploads, ...control.uploads },
    });
    const done = await jobs.waitForClient(record.id, clientGone(res));
    if (!done) return;
    // An interrupted job answers with the images it finished, as A1111 does.
    if (done.record.state === 'FAILED' && done.record.error?.code !== 'CANCELLED') throw failure(done.record);
    const images: Buffer[] = [];
    for (let n = 1; n <= done.imagesDone; n++) images.push(await jobs.readImage(record.id, n));
    const info = infoObject({
      body, parameters: mapped.parameters, images, modelName: checkpoint.name, modelHash: await modelHash,
      ignored: mapped.ignored, jobTimestamp: jobTimestamp(new Date(record.createdAt)), version: packageVersion(),
      isInpainting: mode === 'inpaint',
    });
    const parameters = kind === 'img2img' && !(body as Img2ImgRequest).include_init_images
      ? { ...body, init_images: null, mask: null }
      : body;
    res.json({
      images: body.send_images ? images.map((png) => png.toString('base64')) : [],
      parameters,
      info: JSON.stringify(info),
    });
  };

  for (const kind of ['txt2img', 'img2img'] as const) {
    api.route(router, {
      method: 'post',
      path: `/sdapi/v1/${kind}`,
      tag,
      summary: kind === 'txt2img' ? 'Images from a prompt (with hires fix, variation seeds, tiling)' : 'Images from images, with an optional mask (inpainting)',
      body: { contentType: 'application/json', schema: kind === 'txt2img' ? txt2imgSchema : img2imgSchema },
      responses: { 200: { description: 'The images, the request with defaults, and info', schema: imagesResponseSchema }, ...errors },
    // Room for a few ControlNet units' images beside the init image and mask.
    }, auth, watchClient, bodyFor(kind === 'txt2img' ? 3 : 5), generate(kind));
  }

  api.route(router, {
    method: 'get',
    path: '/sdapi/v1/progress',
    tag,
    summary: 'Progress of the running job, with its latest preview',
    query: progressQuery,
    responses: { 200: { description: 'Progress', schema: progressSchema }, 401: errors[401] },
  }, auth, async (req, res) => {
    const skipImage = parseWith(progressQuery, req.query, '/sdapi/v1/progress').skip_current_image === 'true';
    res.json(await progressBody(context, skipImage));
  });

  for (const action of ['interrupt', 'skip'] as const) {
    api.route(router, {
      method: 'post',
      path: `/sdapi/v1/${action}`,
      tag,
      summary: action === 'interrupt'
        ? 'Stop the running job; its request answers with the images finished so far'
        : 'Skip the image being made; the job goes on with the next',
      responses: { 200: { description: 'Done (also when nothing was running)' }, 401: errors[401] },
    }, auth, async (_req, res) => {
      const id = await currentJob(context);
      if (id !== undefined) {
        if (action === 'interrupt') await jobs.cancel(id);
        else await jobs.skip(id);
      }
      res.json(null);
    });
  }

  infoRoutes(router, context, { tag, auth, json, settings, hashes, errors, loraDir: options.loraDir, embeddingsDir: options.embeddingsDir });
  extrasRoutes(router, context, { tag, auth, bodyFor, errors, upscalers: options.upscalers });
  controlNetRoutes(router, context, { tag, auth, bodyFor, errors, controlNetDir: options.controlNetDir });
  api.refuseOtherMethods(router, tag);
  router.use('/sdapi', (req, _res, next) => {
    next(new ApiError(404, 'NOT_FOUND', `No route ${req.method} ${req.originalUrl.split('?')[0]}; see ${context.apiPrefix}/docs`));
  });
  router.use('/sdapi', errorHandler(context.log, fastApiErrorShape));
  router.use('/controlnet', errorHandler(context.log, fastApiErrorShape));
  return router;
}

function failure(record: JobRecord): ApiError {
  return jobFailureError(record.error);
}

async function img2imgInputs(body: Img2ImgRequest, mapped: MappedRequest):
  Promise<{ mode: JobMode; uploads: Partial<Record<'image' | 'mask', Upload>> }> {
  const { width = 512, height = 512 } = mapped.parameters;
  const init = await base64Image('init_images', body.init_images[0] as string);
  let image = await resized(Buffer.from(init.data), body.resize_mode, width, height);
  if (body.mask === null) return { mode: 'img2img', uploads: { image: { ext: 'png', data: image } } };
  const mask = await base64Image('mask', body.mask);
  const bytes = await maskBytes(Buffer.from(mask.data), width, height, body.resize_mode, body.inpainting_mask_invert === 1);
  if (body.inpainting_fill === 0) image = await filledUnderMask(image, bytes, width, height);
  return {
    mode: 'inpaint',
    uploads: { image: { ext: 'png', data: image }, mask: { ext: 'png', data: await greyPng(bytes, width, height) } },
  };
}

/**
 * The oldest running job made through this API. Jobs of other APIs stay out of sight: their
 * prompts and previews may belong to other users, and interrupt / skip must not reach them.
 */
async function currentJob(context: ServerContext): Promise<string | undefined> {
  for (const id of await context.jobs.running()) {
    if ((await context.jobs.find(id))?.record.dialect === tag) return id;
  }
  return undefined;
}

async function progressBody(context: ServerContext, skipImage: boolean) {
  const id = await currentJob(context);
  const snapshot = id === undefined ? undefined : await context.jobs.find(id);
  const idle = {
    progress: 0,
    eta_relative: 0,
    state: { skipped: false, interrupted: false, job: '', job_count: 0, job_timestamp: '0', job_no: 0, sampling_step: 0, sampling_steps: 0 },
    current_image: null,
    textinfo: null,
  };
  if (!snapshot || id === undefined) return idle;
  const { record, progress, imagesDone } = snapshot;
  const total = record.parameters.count;
  const fraction = Math.min(1, (imagesDone + (progress && progress.currentImageIndex >= imagesDone ? progress.currentImageProgress : 0)) / total);
  const elapsedSeconds = (Date.now() - Date.parse(record.updatedAt)) / 1000;
  const preview = skipImage ? undefined : await context.jobs.preview(id);
  return {
    progress: fraction,
    eta_relative: fraction > 0 ? Math.max(0, (elapsedSeconds / fraction) - elapsedSeconds) : 0,
    state: {
      skipped: false,
      interrupted: false,
      job: `job ${id}`,
      job_count: total,
      job_timestamp: jobTimestamp(new Date(record.createdAt)),
      job_no: progress?.currentImageIndex ?? imagesDone,
      sampling_step: progress?.step ?? 0,
      sampling_steps: progress?.steps ?? record.parameters.steps ?? 0,
    },
    current_image: preview ? preview.png.toString('base64') : null,
    textinfo: null,
  };
}

/** The server's credentials (API keys or --api-auth users), with A1111's answer when they are missing or wrong. */
function a1111Auth(context: ServerContext): RequestHandler {
  return (req, _res, next) => {
    if (context.keys.accepts(req)) {
      next();
      return;
    }
    next(new ApiError(401, 'UNAUTHORIZED', 'Incorrect username or password', {
      headers: { 'WWW-Authenticate': context.keys.basicAuth ? 'Basic' : 'Bearer' },
    }));
  };
}

/**
 * FastAPI answers 422 to a body that is absent, empty or not JSON, even where every field has a
 * default (txt2img, options); express.json would pass such a body on as none, or as {}.
 */
function missingJsonObject(req: Request): ApiError | undefined {
  if (req.is('application/json') && req.headers['content-length'] !== '0' && req.body !== undefined) return undefined;
  return new ApiError(422, 'INVALID_PARAMETER', 'The body must be a JSON object, sent with Content-Type: application/json');
}
