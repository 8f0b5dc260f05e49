// GET /health: whether the server can take generation requests, and how busy it is.

import { Router } from 'express';

import type { AppContext } from '../app.js';
import { methodNotAllowed } from '../errors.js';

export function healthRoutes(context: AppContext): Router {
  const router = Router();
  router.route('/health')
    .get(async (_req, res) => {
      const queue = await context.tasks.counts();
      if (context.modelName === undefined) {
        res.json({
          ready: false,
          model: null,
          queue,
          hint: 'No model loaded: start the server with sdnode serve --model <path to a .safetensors or .gguf checkpoint>',
        });
      } else if (!context.acceptingTasks()) {
        res.json({ ready: false, model: context.modelName, queue, hint: 'The server is shutting down' });
      } else {
        res.json({ ready: true, model: context.modelName, queue });
      }
    })
    .all(methodNotAllowed(['GET']));
  return router;
}
