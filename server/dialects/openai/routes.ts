// The OpenAI Images API under /v1: what the official SDKs send, so that an app written for
// DALL·E or gpt-image works against sdnode by changing only its base URL and key.

import express, { Router } from 'express';

import { watchClient } from '../../http/client-gone.js';
import { ApiError, errorHandler, type ErrorShape } from '../../http/errors.js';
import type { Dialect, ServerContext } from '../../http/context.js';
import { formFields, parseWith } from '../../http/schema.js';
import { base64BodyLimit, imageUpload, multipartForm, uploadedFiles } from '../../http/uploads.js';
import { parseParameters, readPngText } from '../../../lib/index.js';
import type { Upload } from '../../jobs/store.js';
import type { PresetTable } from '../../models/presets.js';
import { isKontext, kontextJob, kontextParameters, maxReferenceImages } from '../kontext.js';
import { checkSizeForEntry, flowDefaults, flowFamilyOf } from '../model-family.js';
import {
  baseParameters, contentTypes, editInputs, encodeOutput, generationSize, parseSize, resolveTarget, type OutputFormat,
} from './mapping.js';
import { answerWhenDone, type ResultOptions } from './results.js';
import {
  editSchema, fileParams, generationSchema, imagesResponseSchema, modelIdParams, modelListSchema, modelSchema,
  openaiErrorSchema, signedUrlQuery, streamEventSchema, variationSchema,
} from './schemas.js';
import { ResultUrls } from './urls.js';

const tag = 'openai';

export interface OpenAiOptions {
  presets: PresetTable;
  urlTtlSeconds: number;
  urlSecret: Buffer;
}

export function openaiDialect(context: ServerContext, options: OpenAiOptions): Dialect {
  return {
    name: tag,
    description: 'The OpenAI Images API (/v1/images/generations, edits, variations; /v1/models)',
    router: () => openaiRouter(context, options),
  };
}

function openaiRouter(context: ServerContext, options: OpenAiOptions): Router {
  const { api, keys, jobs, models } = context;
  const { presets } = options;
  const urls = new ResultUrls(options.urlSecret, options.urlTtlSeconds, context.apiPrefix);
  const router = Router();
  const errors = {
    400: { description: 'invalid_request_error: the message and param name the field', schema: openaiErrorSchema },
    401: { description: 'A wrong or missing API key', schema: openaiErrorSchema },
    404: { description: 'Unknown model', schema: openaiErrorSchema },
    429: { description: 'The queue is full (Retry-After)', schema: openaiErrorSchema },
    500: { description: 'The generation failed', schema: openaiErrorSchema },
  };
  const imagesAnswer = {
    description: 'The images; with stream: true, Server-Sent Events instead',
    schema: imagesResponseSchema,
    alternatives: { 'text/event-stream': { schema: streamEventSchema } },
  };
  const accepting = (): void => {
    if (!context.acceptingJobs()) throw new ApiError(503, 'SHUTTING_DOWN', 'The server is shutting down; retry later');
  };
  const multipart = (route: string, files: { name: string; maxCount: number }[]) => multipartForm({
    route, files, maxUploadBytes: context.maxUploadBytes, example: `curl -F image=@photo.png -F prompt="…" …${route}`,
  });

  api.route(router, {
    method: 'post',
    path: '/v1/images/generations',
    tag,
    summary: 'Create images from a prompt',
    body: { contentType: 'application/json', schema: generationSchema },
    responses: { 200: imagesAnswer, ...errors },
  }, keys.required(), watchClient, express.json({ limit: base64BodyLimit(0, context.maxUploadBytes) }), async (req, res) => {
    accepting();
    const body = parseWith(generationSchema, req.body ?? {}, '/v1/images/generations');
    refuseTransparency(body.background);
    const target = await resolveTarget(models, presets, body.model, [body.quality, body.style]);
    const parameters = {
      ...baseParameters(target, body.prompt, body.n, body.seed, body.negative_prompt),
      ...generationSize(parseSize(body.size), target.settings),
      // 'low': less restrictive; the checker only flags (nsfw), the images stay.
      ...(body.moderation === 'low' && { safetyCheck: 'report' as const }),
    };
    await checkSizeForEntry(target.checkpoint, parameters, { width: 'size', height: 'size' });
    const record = await jobs.submit({ mode: 'txt2img', dialect: tag, model: target.checkpoint.name, parameters });
    await answerWhenDone(context, urls, req, res, record, resultOptions(body, 'image_generation'));
  });

  api.route(router, {
    method: 'post',
    path: '/v1/images/edits',
    tag,
    summary: 'Edit an image: repaint its transparent pixels (or the mask\'s), or change it all; FLUX.1 Kontext: by the prompt\'s instruction',
    description: 'For a FLUX.1 Kontext model the images (up to 4) are read beside the prompt, which says what to change '
      + '("make the car red"); the result has the first image\'s size in whole 16-pixel patches unless size is given, and '
      + 'a mask is refused. Other models edit one image.',
    body: {
      contentType: 'multipart/form-data',
      schema: editSchema,
      files: [
        { name: 'image', required: true, description: 'PNG, JPEG or WebP; one image (also accepted as image[]), up to 4 for FLUX.1 Kontext' },
        { name: 'mask', required: false, description: 'PNG of the same size whose fully transparent pixels mark what to edit' },
      ],
    },
    responses: { 200: imagesAnswer, ...errors, 413: { description: 'An upload is over --max-upload-mb', schema: openaiErrorSchema } },
  }, keys.required(), watchClient, multipart('/v1/images/edits', [
    { name: 'image', maxCount: maxReferenceImages }, { name: 'image[]', maxCount: maxReferenceImages }, { name: 'mask', maxCount: 1 },
  ]), async (req, res) => {
    accepting();
    const body = parseWith(editSchema, formFields(req.body), '/v1/images/edits');
    refuseTransparency(body.background);
    const images = await imageUploads(req.files);
    const [maskData] = uploadedFiles(req.files, 'mask');
    const mask = maskData ? await imageUpload('mask', maskData) : undefined;
    const target = await resolveTarget(models, presets, body.model, [body.quality]);
    if (target.kontext) {
      if (mask) {
        throw new ApiError(400, 'INVALID_PARAMETER', `mask is not used by ${target.checkpoint.name}, a FLUX.1 Kontext model: it changes `
          + 'what the prompt says ("make the sky red") and keeps the rest; leave mask out', { param: 'mask' });
      }
      const kontext = await kontextJob(images, 'image');
      const parameters = kontextParameters({
        ...baseParameters(target, body.prompt, body.n, body.seed),
        ...generationSize(parseSize(body.size) ?? kontext.size, { scaleToSize: true, ...target.settings }, 16),
      }, kontext);
      const record = await jobs.submit({ mode: 'img2img', dialect: tag, model: target.checkpoint.name, parameters, uploads: kontext.uploads });
      await answerWhenDone(context, urls, req, res, record, resultOptions(body, 'image_edit'));
      return;
    }
    const inputs = await editInputs(oneImage(images), mask);
    const parameters = {
      ...baseParameters(target, body.prompt, body.n, body.seed),
      ...generationSize(parseSize(body.size) ?? inputs.imageSize, { scaleToSize: true, ...target.settings }, target.flow ? 16 : 8),
      // A transparent area is repainted from scratch, with a hard edge: every opaque pixel is kept
      // as it was. Without one the whole image changes by the preset's strength.
      ...(inputs.mode === 'inpaint' ? { strength: 1, maskBlur: 0 } : { strength: target.settings.strength ?? 0.75 }),
    };
    const record = await jobs.submit({ mode: inputs.mode, dialect: tag, model: target.checkpoint.name, parameters, uploads: inputs.uploads });
    await answerWhenDone(context, urls, req, res, record, resultOptions(body, 'image_edit'));
  });

  api.route(router, {
    method: 'post',
    path: '/v1/images/variations',
    tag,
    summary: 'Variations of an image (image-to-image with the preset\'s strength and the prompt in its PNG parameters)',
    body: {
      contentType: 'multipart/form-data',
      schema: variationSchema,
      files: [{ name: 'image', required: true, description: 'PNG, JPEG or WebP' }],
    },
    responses: { 200: { description: 'The images', schema: imagesResponseSchema }, ...errors },
  }, keys.required(), watchClient, multipart('/v1/images/variations', [{ name: 'image', maxCount: 1 }]), async (req, res) => {
    accepting();
    const body = parseWith(variationSchema, formFields(req.body), '/v1/images/variations');
    const image = oneImage(await imageUploads(req.files));
    const target = await resolveTarget(models, presets, body.model, []);
    // FLUX.1 Kontext reads the image as a reference; its prompt (the image's own, or none) asks for no change.
    const kontext = target.kontext ? await kontextJob([image], 'image') : undefined;
    const requested = parseSize(body.size) ?? kontext?.size ?? (await editInputs(image, undefined)).imageSize;
    const common = {
      ...baseParameters(target, promptOf(image), body.n, body.seed),
      ...generationSize(requested, { scaleToSize: true, ...target.settings }, target.flow ? 16 : 8),
    };
    const parameters = kontext ? kontextParameters(common, kontext) : { ...common, strength: target.settings.strength ?? 0.75 };
    const uploads = kontext?.uploads ?? { image };
    const record = await jobs.submit({ mode: 'img2img', dialect: tag, model: target.checkpoint.name, parameters, uploads });
    // DALL·E 2's variations answer with links unless asked otherwise.
    await answerWhenDone(context, urls, req, res, record, resultOptions({ response_format: 'url', ...body }, 'image_edit'));
  });

  api.route(router, {
    method: 'get',
    path: '/v1/models',
    tag,
    summary: 'The preset names and the checkpoints, in OpenAI\'s list shape (loads nothing)',
    responses: { 200: { description: 'The models', schema: modelListSchema }, 401: errors[401] },
  }, keys.required(), async (_req, res) => {
    res.json({ object: 'list', data: await modelList(context, presets) });
  });

  api.route(router, {
    method: 'get',
    path: '/v1/models/:id',
    tag,
    summary: 'One preset or checkpoint',
    params: modelIdParams,
    responses: { 200: { description: 'The model', schema: modelSchema }, 401: errors[401], 404: errors[404] },
  }, keys.required(), async (req, res) => {
    const id = String(req.params.id);
    const found = (await modelList(context, presets)).find((model) => model.id === id);
    if (!found) await resolveTarget(models, presets, id, []);
    res.json(found ?? modelObject(id));
  });

  api.route(router, {
    method: 'get',
    path: '/v1/images/files/:id/:file',
    tag,
    summary: 'A result image behind a signed, expiring link (response_format url); no API key needed',
    auth: false,
    params: fileParams,
    query: signedUrlQuery,
    responses: {
      200: { description: 'The image', contentType: 'image/png', alternatives: { 'image/jpeg': {}, 'image/webp': {} } },
      403: { description: 'The link is not valid or has expired', schema: openaiErrorSchema },
      404: { description: 'No such image', schema: openaiErrorSchema },
    },
  }, async (req, res) => {
    const id = String(req.params.id);
    const file = String(req.params.file);
    const verdict = urls.check(`/v1/images/files/${id}/${file}`, String(req.query.expires ?? ''), String(req.query.signature ?? ''));
    if (verdict !== 'ok') {
      throw new ApiError(403, 'INVALID_LINK', verdict === 'expired' ? 'This image link has expired (--url-ttl)' : 'This image link is not valid');
    }
    const match = /^([1-9]\d{0,5})\.(png|jpeg|webp)$/.exec(file);
    const png = match ? await jobs.image(id, Number(match[1])) : undefined;
    if (!match || png === undefined) throw new ApiError(404, 'IMAGE_NOT_FOUND', `No image ${file} for ${id}`);
    const format = match[2] as OutputFormat;
    const image = await encodeOutput(png, format, undefined);
    res.type(contentTypes[format]).set('Cache-Control', 'private, max-age=3600').send(image);
  });

  api.refuseOtherMethods(router, tag);
  router.use('/v1', (req, _res, next) => {
    next(new ApiError(404, 'NOT_FOUND', `No route ${req.method} ${req.originalUrl.split('?')[0]}; see ${context.apiPrefix}/docs`));
  });
  router.use('/v1', errorHandler(context.log, openaiErrorShape));
  return router;
}

/** OpenAI's `{ error: { message, type, param, code } }`, with its status for a full queue (429). */
export const openaiErrorShape: ErrorShape = (error) => {
  const status = error.code === 'QUEUE_FULL' ? 429 : error.status;
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = error.code === 'UNAUTHORIZED' ? 'invalid_api_key'
    : error.code === 'MODEL_NOT_FOUND' ? 'model_not_found'
      : error.code === 'QUEUE_FULL' ? 'rate_limit_exceeded'
        : error.code.toLowerCase();
  return { status, body: { error: { message: error.message, type, param: error.param ?? null, code } } };
};

/** How to answer, from the fields every image route shares (absent ones take OpenAI's defaults). */
function resultOptions(body: {
  response_format?: 'url' | 'b64_json'; output_format?: OutputFormat; output_compression?: number;
  stream?: boolean; partial_images?: number; quality?: string; background?: string;
}, eventPrefix: ResultOptions['eventPrefix']): ResultOptions {
  return {
    responseFormat: body.response_format ?? 'b64_json',
    outputFormat: body.output_format ?? 'png',
    compression: body.output_compression,
    eventPrefix,
    stream: body.stream ? { partialImages: body.partial_images ?? 0 } : undefined,
    quality: body.quality ?? 'auto',
    background: body.background ?? 'auto',
  };
}

function refuseTransparency(background: string | undefined): void {
  if (background === 'transparent') {
    throw new ApiError(400, 'INVALID_PARAMETER', 'background "transparent" is not supported: sdnode makes opaque images; use "opaque" or "auto"',
      { param: 'background' });
  }
}

// The images of `image` and `image[]`, in that order, each checked; at least one.
async function imageUploads(files: unknown): Promise<Upload[]> {
  const images = [...uploadedFiles(files, 'image'), ...uploadedFiles(files, 'image[]')];
  if (images.length === 0) throw new ApiError(400, 'MISSING_UPLOAD', 'image is required: a PNG, JPEG or WebP file', { param: 'image' });
  return Promise.all(images.map((data) => imageUpload('image', data)));
}

function oneImage(images: Upload[]): Upload {
  if (images.length > 1) {
    throw new ApiError(400, 'INVALID_PARAMETER', `This model edits one image per request, but received ${images.length}; send one image `
      + `(FLUX.1 Kontext models read up to ${maxReferenceImages})`, { param: 'image' });
  }
  return images[0] as Upload;
}

// A PNG made by sdnode (or AUTOMATIC1111) says what it shows in its parameters chunk.
function promptOf(image: Upload): string {
  if (image.ext !== 'png') return '';
  const parameters = readPngText(image.data).parameters;
  return parameters === undefined ? '' : parseParameters(parameters).prompt;
}

// Checkpoints of a flow family say which, with its defaults, so a client (the web page) can offer
// the fields that apply (guidance for FLUX.1 dev, no negative prompt at cfg 1).
async function modelList(context: ServerContext, presets: PresetTable) {
  const checkpoints = await Promise.all((await context.models.list()).map(async (entry) => {
    const family = await flowFamilyOf(entry);
    const kontext = await isKontext(entry);
    return { ...modelObject(entry.name), ...(family && { family, defaults: flowDefaults(family) }), ...(kontext && { kontext }) };
  }));
  return [...Object.keys(presets).map(modelObject), ...checkpoints];
}

function modelObject(id: string) {
  return { id, object: 'model' as const, created: 0, owned_by: 'sdnode' };
}
