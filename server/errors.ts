import type { ErrorRequestHandler, RequestHandler } from 'express';

import { InvalidFieldError } from './parse.js';
import { QueueClosedError, QueueFullError } from './queue.js';

/** An error with the HTTP status and stable code the client sees as `{ error: { code, message } }`. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** Seconds a client should wait before retrying when the queue is full or the server is stopping. */
const retryAfterSeconds = '10';

export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof InvalidFieldError) return new HttpError(400, 'INVALID_PARAMETER', err.message);
  if (err instanceof QueueFullError) {
    return new HttpError(503, 'QUEUE_FULL', err.message, { 'Retry-After': retryAfterSeconds });
  }
  if (err instanceof QueueClosedError) {
    return new HttpError(503, 'SHUTTING_DOWN', err.message, { 'Retry-After': retryAfterSeconds });
  }
  // Errors express's router raises for malformed requests (a bad %-escape in the path, …) carry
  // a 4xx status.
  const clientStatus = clientErrorStatus(err);
  if (clientStatus !== undefined) {
    const message = err instanceof Error ? err.message : 'Bad request';
    return new HttpError(clientStatus, clientStatus === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', message);
  }
  return new HttpError(500, 'INTERNAL_ERROR', 'The server failed to handle this request; see its log');
}

function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status } = err as { status?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/** The one place errors become responses. `log` receives the unexpected ones (500s). */
export function errorHandler(log: (line: string) => void): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const httpError = toHttpError(err);
    if (httpError.status === 500) {
      log(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    res.status(httpError.status).set(httpError.headers).json({
      error: { code: httpError.code, message: httpError.message },
    });
  };
}

/** The route exists but not with this method: 405 with the methods it does take. */
export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  const allow = allowed.join(', ');
  return (req, _res, next) => {
    next(new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}; use ${allow}`, {
      Allow: allow,
    }));
  };
}

export const routeNotFound: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'NOT_FOUND',
    `No route ${req.method} ${req.path}. Endpoints: POST /text-to-image, POST /image-to-image, `
    + 'POST /inpaint-image, GET /<kind>/<id>, GET /<kind>/<id>/<n>.png, GET /health'));
};
