// The M1 REST API: POST a multipart form to /text-to-image, /image-to-image or /inpaint-image →
// QUEUED with a resultUrl; GET the resultUrl for QUEUED / IN_PROGRESS / COMPLETE; GET its PNGs.

import { Router, type RequestHandler } from 'express';

import { ApiError, errorHandler } from '../../http/errors.js';
import type { Dialect, ServerContext } from '../../http/context.js';
import { formFields, parseWith } from '../../http/schema.js';
import { imageUpload, multipartForm, uploadedFiles } from '../../http/uploads.js';
import { a1111RefinerFields, resolveRefiner, withoutUndefined } from '../../jobs/parameters.js';
import type { Upload } from '../../jobs/store.js';
import { QueueClosedError } from '../../jobs/queue.js';
import { InvalidFieldError } from '../../parse.js';
import { isKontext, kontextJob, kontextParameters } from '../kontext.js';
import { checkSizeForEntry } from '../model-family.js';
import { imageParams, jobIdParams, m1ErrorSchema, m1FormSchemas, m1Kinds, m1StatusSchema, m1UploadSlots, type M1Kind }
  from './schemas.js';
import { jobParameters, modeByKind, queuedBody, statusBody } from './status.js';

const imageFilePattern = /^([1-9]\d{0,5})\.png$/;
const tag = 'm1';

export function m1Dialect(context: ServerContext): Dialect {
  return {
    name: tag,
    description: 'The M1 REST API: multipart uploads, QUEUED / IN_PROGRESS / COMPLETE status objects',
    router: () => m1Router(context),
  };
}

function m1Router(context: ServerContext): Router {
  const { api, jobs, keys } = context;
  const router = Router();
  const errorResponses = {
    400: { description: 'A field is missing or invalid; the message names it', schema: m1ErrorSchema },
    401: { description: 'An API key is required or wrong', schema: m1ErrorSchema },
    404: { description: 'No such job', schema: m1ErrorSchema },
  };
  for (const kind of m1Kinds) {
    api.route(router, {
      method: 'post',
      path: `/${kind}`,
      tag,
      summary: { 'text-to-image': 'Make images from a prompt', 'image-to-image': 'Change an uploaded image',
        'inpaint-image': 'Repaint the white part of a mask' }[kind],
      body: {
        contentType: 'multipart/form-data',
        schema: m1FormSchemas[kind],
        files: m1UploadSlots[kind].map((name) => ({ name, required: true, description: uploadDescription(kind, name) })),
      },
      responses: {
        200: { description: 'Queued', schema: m1StatusSchema },
        ...errorResponses,
        413: { description: 'An upload is over --max-upload-mb', schema: m1ErrorSchema },
        503: { description: 'No model, a full queue or shutting down (Retry-After)', schema: m1ErrorSchema },
      },
    }, keys.required(), refuseWhenUnavailable(context), multipartForm({
      route: `/${kind}`,
      files: m1UploadSlots[kind].map((name) => ({ name, maxCount: 1 })),
      maxUploadBytes: context.maxUploadBytes,
      example: 'curl -F prompt="a photo of a cat" …',
    }), async (req, res) => {
      const fields = formFields(req.body);
      for (const slot of m1UploadSlots[kind]) {
        if (slot in fields) throw new InvalidFieldError(slot, `${slot} must be a file upload, e.g. curl -F ${slot}=@photo.png`);
      }
      const form = parseWith(m1FormSchemas[kind], fields, `/${kind}`);
      const requested = jobParameters(form);
      const model = await context.models.resolve(form.model);
      await checkSizeForEntry(model, requested);
      const refiner = await resolveRefiner(context.models, requested.refiner, model.name, a1111RefinerFields.checkpoint);
      const given = await m1Uploads(kind, req.files);
      // FLUX.1 Kontext reads the image as a reference beside the prompt, noising nothing.
      const kontext = kind === 'image-to-image' && given.image && await isKontext(model) ? await kontextJob([given.image], 'image') : undefined;
      const parameters = withoutUndefined(kontext ? kontextParameters({ ...requested, refiner }, kontext) : { ...requested, refiner });
      const uploads = kontext?.uploads ?? given;
      const record = await jobs.submit({ mode: modeByKind[kind], dialect: tag, model: model.name, parameters, uploads });
      res.json(queuedBody(context.apiPrefix, kind, record.id));
    });

    api.route(router, {
      method: 'get',
      path: `/${kind}/:id`,
      tag,
      summary: 'Status of a job, with the URLs of the images made so far',
      params: jobIdParams,
      responses: { 200: { description: 'The status object', schema: m1StatusSchema }, ...errorResponses },
    }, keys.required(), async (req, res) => {
      res.json(statusBody(context.apiPrefix, kind, await findJob(context, kind, String(req.params.id))));
    });

    api.route(router, {
      method: 'delete',
      path: `/${kind}/:id`,
      tag,
      summary: 'Cancel a job (sdnode extension): a waiting one leaves the queue, a running one stops between steps',
      params: jobIdParams,
      responses: { 200: { description: 'The status object, FAILED with code CANCELLED', schema: m1StatusSchema }, ...errorResponses },
    }, keys.required(), async (req, res) => {
      const id = String(req.params.id);
      await findJob(context, kind, id);
      await jobs.cancel(id);
      res.json(statusBody(context.apiPrefix, kind, await findJob(context, kind, id)));
    });

    api.route(router, {
      method: 'get',
      path: `/${kind}/:id/:file`,
      tag,
      summary: 'An image of a job (1.png, 2.png, …) or the live preview (preview.png)',
      params: imageParams,
      responses: { 200: { description: 'The PNG', contentType: 'image/png' }, ...errorResponses },
    }, keys.required(), async (req, res) => {
      const id = String(req.params.id);
      const file = String(req.params.file);
      if (file === 'preview.png') {
        await findJob(context, kind, id);
        const preview = await jobs.preview(id);
        if (!preview) {
          throw new ApiError(404, 'IMAGE_NOT_FOUND', `Job ${id} has no preview now (only while it runs)`);
        }
        res.type('png').set('Cache-Control', 'no-store').send(preview.png);
        return;
      }
      const n = imageFilePattern.exec(file)?.[1];
      const snapshot = await findJob(context, kind, id);
      const image = n === undefined ? undefined : await jobs.image(snapshot.record.id, Number(n));
      if (image === undefined) throw new ApiError(404, 'IMAGE_NOT_FOUND', `Job ${id} has no image ${file} (yet)`);
      // Images never change once written; they may be a key holder's, so no shared cache keeps them.
      res.type('png').set('Cache-Control', 'private, max-age=31536000, immutable').send(image);
    });
  }
  api.refuseOtherMethods(router, tag);
  router.use(m1Kinds.map((kind) => `/${kind}`), errorHandler(context.log, m1ErrorShape));
  return router;
}

/** M1's error body; also the shape of the routes every dialect shares (/health, 404s). */
export function m1ErrorShape(error: ApiError): { body: unknown } {
  return { body: { error: { code: error.code, message: error.message } } };
}

/** A job this API made, of the route's kind; jobs of other APIs are not found here. */
async function findJob(context: ServerContext, kind: M1Kind, id: string) {
  const snapshot = await context.jobs.find(id);
  if (!snapshot || snapshot.record.dialect !== tag || snapshot.record.mode !== modeByKind[kind]) {
    throw new ApiError(404, 'TASK_NOT_FOUND', `No ${kind} task with id ${JSON.stringify(id)}`);
  }
  return snapshot;
}

function uploadDescription(kind: M1Kind, slot: 'image' | 'mask'): string {
  if (slot === 'mask') return 'PNG, JPEG or WebP: white repaints, black keeps';
  return kind === 'image-to-image' ? 'PNG, JPEG or WebP (a FLUX.1 Kontext model reads it as a reference image beside the prompt, '
    + 'without strength, and makes its size unless width and height are given)' : 'PNG, JPEG or WebP';
}

async function m1Uploads(kind: M1Kind, files: unknown): Promise<Partial<Record<'image' | 'mask', Upload>>> {
  const uploads: Partial<Record<'image' | 'mask', Upload>> = {};
  for (const slot of m1UploadSlots[kind]) {
    const [data] = uploadedFiles(files, slot);
    if (!data) throw new ApiError(400, 'MISSING_UPLOAD', `/${kind} needs the ${slot} file, e.g. curl -F ${slot}=@${slot}.png`, { param: slot });
    uploads[slot] = await imageUpload(slot, data);
  }
  return uploads;
}

// Checked before the body is read, so a refused request costs no upload parsing.
function refuseWhenUnavailable(context: ServerContext): RequestHandler {
  return (_req, _res, next) => {
    if (!context.models.configured) {
      next(new ApiError(503, 'MODEL_NOT_LOADED',
        'No model is loaded, so this server cannot generate images; start it with '
        + 'sdnode serve --model <path to a .safetensors or .gguf checkpoint>'));
    } else if (!context.acceptingJobs()) {
      next(new QueueClosedError());
    } else {
      next();
    }
  };
}
