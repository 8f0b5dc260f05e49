// The Express app: /health, the API dialects chosen with --api, the OpenAPI document and /docs,
// all under --api-prefix when one is given, and one 404 for everything else.

import express, { Router, type Express, type RequestHandler } from 'express';

import { m1ErrorShape } from '../dialects/m1/routes.js';
import type { Dialect, ServerContext } from './context.js';
import { docsRoutes } from './docs.js';
import { ApiError, errorHandler } from './errors.js';
import { healthRoutes } from './health.js';
import { originGuard } from './origin.js';
import { webPageRoutes } from './web-page.js';

export function createApp(context: ServerContext, dialects: readonly Dialect[], version: string): Express {
  const app = express();
  app.disable('x-powered-by');
  // Most clients are people with curl.
  app.set('json spaces', 2);
  app.use(originGuard(context.allowedHosts));
  const routes = Router();
  routes.use(healthRoutes(context));
  routes.use(webPageRoutes(context.apiPrefix));
  for (const dialect of dialects) routes.use(dialect.router());
  routes.use(docsRoutes(context.api, {
    version, prefix: context.apiPrefix, dialects: dialects.map(({ name, description }) => ({ name, description })),
  }));
  if (context.apiPrefix === '') app.use(routes);
  else app.use(context.apiPrefix, routes);
  app.use(routeNotFound(dialects, context.apiPrefix));
  app.use(errorHandler(context.log, m1ErrorShape));
  return app;
}

function routeNotFound(dialects: readonly Dialect[], prefix: string): RequestHandler {
  const mounted = dialects.map((dialect) => dialect.name).join(', ');
  const served = prefix === '' ? '' : `, all under ${prefix}`;
  return (req, _res, next) => {
    next(new ApiError(404, 'NOT_FOUND', `No route ${req.method} ${req.originalUrl.split('?')[0]}. APIs served here: ${mounted}${served}; `
      + `see ${prefix}/docs for every endpoint, and GET ${prefix}/health`));
  };
}
