// POST /generate: JSON in; the PNG out (one grid for several images, the seeds in X-Seeds), or
// JSON with every image and its seed when the client asks for application/json. Answered when the
// job is done; a client that leaves cancels it.

import express, { Router, type RequestHandler } from 'express';

import { watchClient } from '../../http/client-gone.js';
import type { Dialect, ServerContext } from '../../http/context.js';
import { ApiError, errorHandler, fastApiErrorShape } from '../../http/errors.js';
import { parseWith } from '../../http/schema.js';
import { imagesWhenDone, requireAcceptingJobs } from '../../http/sync-job.js';
import { base64BodyLimit } from '../../http/uploads.js';
import { imageSeed } from '../../jobs/parameters.js';
import { detailSchema } from '../a1111/schemas.js';
import { checkSizeForEntry } from '../model-family.js';
import { generateParameters, imageGrid } from './mapping.js';
import { generateResponseSchema, generateSchema } from './schemas.js';

const tag = 'generate';
const answers = ['image/png', 'application/json'];

export function generateDialect(context: ServerContext): Dialect {
  return {
    name: tag,
    description: 'POST /generate: JSON in, a PNG (or JSON) out',
    router: () => generateRouter(context),
  };
}

function generateRouter(context: ServerContext): Router {
  const { api, keys, jobs, models } = context;
  const router = Router();

  api.route(router, {
    method: 'post',
    path: '/generate',
    tag,
    summary: 'Images from a prompt: one PNG (a grid of them for several), or JSON with Accept: application/json',
    description: 'Answers image/png by default: the image, or for number_of_images > 1 one grid of them (round(√n) rows, '
      + 'filled row by row), with the seeds used in the X-Seeds header (comma-separated). With Accept: application/json, '
      + '{ images: [{ base64, seed }] }. Errors are FastAPI\'s { detail }. /generate/ works too.',
    body: { contentType: 'application/json', schema: generateSchema },
    responses: {
      200: {
        description: 'The PNG (X-Seeds: the seeds), or JSON',
        contentType: 'image/png',
        alternatives: { 'application/json': { schema: generateResponseSchema } },
      },
      401: { description: 'A wrong or missing API key', schema: detailSchema },
      406: { description: 'Accept allows neither image/png nor application/json', schema: detailSchema },
      422: { description: 'A field is invalid: FastAPI\'s detail list naming it', schema: detailSchema },
      500: { description: 'The generation failed', schema: detailSchema },
      503: { description: 'No model, a full queue or a server shutting down', schema: detailSchema },
    },
  }, keys.required(), watchClient, express.json({ limit: base64BodyLimit(0, context.maxUploadBytes) }), (async (req, res) => {
    requireAcceptingJobs(context);
    const format = req.accepts(answers);
    if (format === false) throw new ApiError(406, 'NOT_ACCEPTABLE', `/generate answers ${answers.join(' or ')}`);
    const body = parseWith(generateSchema, req.body ?? {}, '/generate');
    const parameters = generateParameters(body);
    const checkpoint = await models.resolve();
    await checkSizeForEntry(checkpoint, parameters);
    const record = await jobs.submit({ mode: 'txt2img', dialect: tag, model: checkpoint.name, parameters });
    const images = await imagesWhenDone(context, record, res);
    if (!images) return;
    const seeds = images.map((_, i) => imageSeed(parameters.seed, i));
    res.vary('Accept').set('X-Seeds', seeds.join(','));
    if (format === 'application/json') {
      res.json({ images: images.map((png, i) => ({ base64: png.toString('base64'), seed: seeds[i] })) });
      return;
    }
    res.type('image/png').send(images.length === 1 ? images[0] : await imageGrid(images));
  }) satisfies RequestHandler);

  api.refuseOtherMethods(router, tag);
  router.use('/generate', errorHandler(context.log, fastApiErrorShape));
  return router;
}
