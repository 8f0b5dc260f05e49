import express, { type Express } from 'express';

import { errorHandler, routeNotFound } from './errors.js';
import type { WriteLine } from './log.js';
import { generateRoutes } from './routes/generate.js';
import { healthRoutes } from './routes/health.js';
import { resultRoutes } from './routes/results.js';
import type { TaskService } from './tasks.js';

/** What the HTTP layer needs; startServer() builds it. */
export interface AppContext {
  tasks: TaskService;
  /** File name of the loaded model; undefined when the server runs without one. */
  modelName: string | undefined;
  /** Per-file upload limit in bytes. */
  maxUploadBytes: number;
  /** False once shutdown has begun. */
  acceptingTasks(): boolean;
  /** Where unexpected errors are reported. */
  log: WriteLine;
}

/** The Express app speaking the M1 REST API. */
export function createApp(context: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  // Most clients are people with curl.
  app.set('json spaces', 2);
  app.use(healthRoutes(context), generateRoutes(context), resultRoutes(context));
  app.use(routeNotFound);
  app.use(errorHandler(context.log));
  return app;
}
