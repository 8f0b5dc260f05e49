// GET /<kind>/<id> (the task's status) and GET /<kind>/<id>/<n>.png (its images).

import { Router } from 'express';

import type { AppContext } from '../app.js';
import { HttpError, methodNotAllowed } from '../errors.js';
import { taskKinds } from '../task.js';
import { statusBody } from '../task-view.js';

const imageFilePattern = /^([1-9]\d{0,5})\.png$/;

export function resultRoutes(context: AppContext): Router {
  const router = Router();
  for (const kind of taskKinds) {
    router.route(`/${kind}/:id`)
      .get(async (req, res) => {
        const task = await context.tasks.find(kind, req.params.id);
        if (!task) throw taskNotFound(kind, req.params.id);
        res.json(statusBody(task));
      })
      .all(methodNotAllowed(['GET']));

    router.route(`/${kind}/:id/:file`)
      .get(async (req, res) => {
        const { id, file } = req.params;
        const n = imageFilePattern.exec(file)?.[1];
        const imagePath = n === undefined ? undefined : await context.tasks.imageFile(kind, id, Number(n));
        if (imagePath === undefined) {
          if (!(await context.tasks.find(kind, id))) throw taskNotFound(kind, id);
          throw new HttpError(404, 'IMAGE_NOT_FOUND', `Task ${id} has no image ${file} (yet)`);
        }
        // Images never change once written. The path is ours, so a dot-folder in --output is fine.
        res.sendFile(imagePath, {
          dotfiles: 'allow',
          headers: { 'Cache-Control': 'public, max-age=31536000, immutable' },
        });
      })
      .all(methodNotAllowed(['GET']));
  }
  return router;
}

function taskNotFound(kind: string, id: string): HttpError {
  return new HttpError(404, 'TASK_NOT_FOUND', `No ${kind} task with id ${JSON.stringify(id)}`);
}
