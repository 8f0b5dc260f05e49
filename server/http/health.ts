// GET /health: whether the server can take generation requests, and how busy it is. Open even
// when API keys are set, but then only `{ ready }` without a key: the models and the queue are the
// key holders' business.

import { Router } from 'express';

import { methodNotAllowed } from './errors.js';
import type { ServerContext } from './context.js';

export function healthRoutes(context: ServerContext): Router {
  const router = Router();
  router.route('/health')
    .get(async (req, res) => {
      if (!context.keys.accepts(req)) {
        res.json({ ready: context.acceptingJobs() && (await context.models.defaultModel()) !== undefined });
        return;
      }
      const queue = await context.jobs.counts();
      const model = (await context.models.defaultModel())?.name ?? null;
      const loaded = context.models.loadedNames();
      if (model === null) {
        // Why a request naming no model would be refused, and what to do about it.
        const hint = await context.models.resolve().then(
          (entry) => `No worker offers the default model ${entry.name} now`,
          (error: unknown) => (error as Error).message,
        );
        res.json({ ready: false, model, queue, hint });
      } else if (!context.acceptingJobs()) {
        res.json({ ready: false, model, loaded, queue, hint: 'The server is shutting down' });
      } else {
        res.json({ ready: true, model, loaded, queue });
      }
    })
    .all(methodNotAllowed(['GET']));
  return router;
}
