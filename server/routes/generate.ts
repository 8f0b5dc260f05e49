// POST /text-to-image, /image-to-image, /inpaint-image: parse the form → queue a task → QUEUED.

import { Router, type RequestHandler } from 'express';

import type { AppContext } from '../app.js';
import { HttpError, methodNotAllowed } from '../errors.js';
import { parseTaskForm } from '../form.js';
import { QueueClosedError } from '../queue.js';
import { taskKinds } from '../task.js';
import { queuedBody } from '../task-view.js';
import { checkedUploads, multipartForm } from '../uploads.js';

export function generateRoutes(context: AppContext): Router {
  const router = Router();
  for (const kind of taskKinds) {
    router.route(`/${kind}`)
      .post(refuseWhenUnavailable(context), multipartForm(kind, context.maxUploadBytes), async (req, res) => {
        const parameters = parseTaskForm(kind, req.body ?? {});
        const uploads = await checkedUploads(kind, req.files);
        const record = await context.tasks.submit(kind, parameters, uploads);
        res.json(queuedBody(record));
      })
      .all(methodNotAllowed(['POST']));
  }
  return router;
}

// Checked before the body is read, so a refused request costs no upload parsing.
function refuseWhenUnavailable(context: AppContext): RequestHandler {
  return (_req, _res, next) => {
    if (context.modelName === undefined) {
      next(new HttpError(503, 'MODEL_NOT_LOADED',
        'No model is loaded, so this server cannot generate images; start it with '
        + 'sdnode serve --model <path to a .safetensors or .gguf checkpoint>'));
    } else if (!context.acceptingTasks()) {
      next(new QueueClosedError());
    } else {
      next();
    }
  };
}
