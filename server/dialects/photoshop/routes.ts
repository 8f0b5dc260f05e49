// The Photoshop plug-in's API: GET /ping, and POST /txt2img, /img2img, /masking with form bodies
// and base64 images, answered when the job is done (a client that leaves cancels it). Only POST is
// declared on the generation paths: other methods there belong to other dialects (the task API's
// GET /txt2img) or to the server's 404.

import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler } from 'express';

import { watchClient } from '../../http/client-gone.js';
import type { Dialect, ServerContext } from '../../http/context.js';
import { ApiError, errorHandler, methodNotAllowed, type ErrorShape } from '../../http/errors.js';
import { formFields, parseWith } from '../../http/schema.js';
import { base64BodyLimit } from '../../http/uploads.js';
import { imagesWhenDone, requireAcceptingJobs } from '../../http/sync-job.js';
import { imageSeed } from '../../jobs/parameters.js';
import { safetyVerdicts } from '../../jobs/safety.js';
import { InvalidFieldError } from '../../parse.js';
import { isKontext } from '../kontext.js';
import { checkSizeForEntry, flowFamilyOf } from '../model-family.js';
import { photoshopJob, type PhotoshopRoute } from './mapping.js';
import { failureSchema, imagesResponseSchema, img2imgSchema, maskingSchema, pingSchema, txt2imgSchema } from './schemas.js';

const tag = 'photoshop';

const routes: Readonly<Record<PhotoshopRoute, { schema: typeof txt2imgSchema | typeof img2imgSchema | typeof maskingSchema; summary: string }>> = {
  txt2img: { schema: txt2imgSchema, summary: 'Images from a prompt' },
  img2img: { schema: img2imgSchema, summary: 'Images from a base64 image and a prompt, of the image\'s size' },
  masking: { schema: maskingSchema, summary: 'Repaint the white part of mask_image in init_image (inpainting)' },
};

export function photoshopDialect(context: ServerContext): Dialect {
  return {
    name: tag,
    description: 'The Photoshop plug-in\'s API: GET /ping, POST /txt2img, /img2img, /masking (form fields, base64 images)',
    router: () => photoshopRouter(context),
  };
}

const imagesByRoute: Readonly<Record<PhotoshopRoute, number>> = { txt2img: 0, img2img: 1, masking: 2 };

function photoshopRouter(context: ServerContext): Router {
  const { api, keys, jobs, models } = context;
  const router = Router();
  // Bodies as large as the route's base64 images need.
  const bodies = (images: number) => [
    express.urlencoded({ extended: false, limit: base64BodyLimit(images, context.maxUploadBytes, { percentEncoded: true }), parameterLimit: 64 }),
    express.json({ limit: base64BodyLimit(images, context.maxUploadBytes) }),
  ];
  const errors = {
    400: { description: 'A field is missing or invalid, or an image cannot be read', schema: failureSchema },
    401: { description: 'A wrong or missing API key', schema: failureSchema },
    413: { description: 'An image is over --max-upload-mb', schema: failureSchema },
    500: { description: 'The generation failed', schema: failureSchema },
    503: { description: 'No model, a full queue or a server shutting down', schema: failureSchema },
  };

  api.route(router, {
    method: 'get',
    path: '/ping',
    tag,
    summary: 'Whether the server is up (the plug-in\'s connection check)',
    auth: false,
    responses: { 200: { description: 'Up', schema: pingSchema } },
  }, (_req, res) => {
    res.json({ status: 'success' });
  });
  router.all('/ping', methodNotAllowed(['GET']));

  for (const [route, { schema, summary }] of Object.entries(routes) as [PhotoshopRoute, (typeof routes)[PhotoshopRoute]][]) {
    const path = `/${route}`;
    api.route(router, {
      method: 'post',
      path,
      tag,
      summary,
      description: 'Form fields (application/x-www-form-urlencoded) or the same fields as a JSON object. Images are base64 '
        + 'text. Each image is checked by the safety checker when the server has one (--safety-checker): a flagged image '
        + 'comes back black with nsfw true; without one nsfw is null and the answer carries a warning.',
      body: { contentType: 'application/x-www-form-urlencoded', schema },
      responses: { 200: { description: 'The images', schema: imagesResponseSchema }, ...errors },
    }, keys.required(), watchClient, ...bodies(imagesByRoute[route]), (async (req, res) => {
      requireAcceptingJobs(context);
      const body = parseWith(schema, bodyFields(req, path), path);
      const checkpoint = await models.resolve();
      const model = { flow: (await flowFamilyOf(checkpoint)) !== undefined, kontext: await isKontext(checkpoint) };
      const job = await photoshopJob(route, body, context.maxUploadBytes, model);
      // Image to image makes the input image's size.
      const sizeField = route === 'txt2img' ? undefined : { width: 'init_image', height: 'init_image' };
      await checkSizeForEntry(checkpoint, job.parameters, sizeField);
      const record = await jobs.submit({ ...job, dialect: tag, model: checkpoint.name });
      const images = await imagesWhenDone(context, record, res);
      if (!images) return;
      const { nsfw, warning } = safetyVerdicts(images);
      const answers = images.map((png, i) => ({
        base64: png.toString('base64'),
        seed: imageSeed(record.parameters.seed, i),
        mimetype: 'image/png' as const,
        nsfw: nsfw[i] ?? null,
      }));
      res.json({ status: 'success', images: answers, ...(warning !== undefined && { warning }) });
    }) satisfies RequestHandler);
  }

  const shaped = errorHandler(context.log, photoshopErrorShape);
  router.use('/ping', shaped);
  router.use(Object.keys(routes).map((route) => `/${route}`), postErrors(shaped));
  return router;
}

/** The plug-in's `{ status: 'failure', message }`, with the HTTP status of the error. */
export const photoshopErrorShape: ErrorShape = (error) => ({ body: { status: 'failure', message: error.message } });

// Errors of other dialects' routes on the same paths (a GET /txt2img) pass through untouched.
function postErrors(handler: ErrorRequestHandler): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (req.method === 'POST') handler(err, req, res, next);
    else next(err);
  };
}

/** The fields of a form body, or of a JSON object whose values are text or numbers, as text. */
function bodyFields(req: Request, path: string): Record<string, string> {
  if (req.is('application/x-www-form-urlencoded')) return formFields(req.body);
  if (!req.is('application/json')) {
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `Send ${path} form fields (application/x-www-form-urlencoded) or a JSON object, `
      + `e.g. curl --data-urlencode "prompt=a photo of a cat" …${path}`);
  }
  if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
    throw new ApiError(400, 'INVALID_JSON', `Send ${path} a JSON object of fields`);
  }
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(req.body as Record<string, unknown>)) {
    if (value === null) continue;
    if (typeof value !== 'string' && typeof value !== 'number') throw new InvalidFieldError(name, `${name} must be text or a number`);
    fields[name] = String(value);
  }
  return formFields(fields);
}
