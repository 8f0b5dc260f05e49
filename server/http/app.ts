// The Express app: /health, the API dialects chosen with --api, the OpenAPI document and /docs,
// and one 404 for everything else.

import express, { type Express, type RequestHandler } from 'express';

import { m1ErrorShape } from '../dialects/m1/routes.js';
import type { Dialect, ServerContext } from './context.js';
import { docsRoutes } from './docs.js';
import { ApiError, errorHandler } from './errors.js';
import { healthRoutes } from './health.js';
import { webPageRoutes } from './web-page.js';

export function createApp(context: ServerContext, dialects: readonly Dialect[], version: string): Express {
  const app = express();
  app.disable('x-powered-by');
  // Most clients are people with curl.
  app.set('json spaces', 2);
  app.use(healthRoutes(context));
  app.use(webPageRoutes());
  for (const dialect of dialects) app.use(dialect.router());
  app.use(docsRoutes(context.api, { version, dialects: dialects.map(({ name, description }) => ({ name, description })) }));
  app.use(routeNotFound(dialects));
  app.use(errorHandler(context.log, m1ErrorShape));
  return app;
}

function routeNotFound(dialects: readonly Dialect[]): RequestHandler {
  const mounted = dialects.map((dialect) => dialect.name).join(', ');
  return (req, _res, next) => {
    next(new ApiError(404, 'NOT_FOUND', `No route ${req.method} ${req.path}. APIs served here: ${mounted}; `
      + 'see /docs for every endpoint, and GET /health'));
  };
}
