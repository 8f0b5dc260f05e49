// One set of error codes for every dialect. Anything thrown while handling a request becomes an
// ApiError here; each dialect's error handler then writes it in its own shape (M1's
// `{ error: { code, message } }`, OpenAI's `{ error: { message, type, param, code } }`, …).

import type { ErrorRequestHandler, RequestHandler, Response } from 'express';

import type { JobError } from '../jobs/job.js';
import { QueueClosedError, QueueFullError, QueueUnavailableError } from '../jobs/queue.js';
import { NoModelError, UnknownModelError } from '../models/registry.js';
import { InvalidFieldError } from '../parse.js';

/** An error with the HTTP status and stable code the client sees. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The request field at fault, when there is one. */
  readonly param: string | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: string, message: string, options: { param?: string; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.param = options.param;
    this.headers = options.headers ?? {};
  }
}

/**
 * HTTP status of a failed job's error code; any other is 500. INVALID_PARAMETER: the library refused
 * a value the request allowed for this model, the client's to fix. ERR_TOKENIZER_MISSING: a FLUX.1
 * or SD3 prompt on a server started without T5's vocabulary (--t5-tokenizer). That is a setup
 * error, but a 4xx: retrying cannot fix it, and client SDKs retry 5xx answers (OpenAI's twice, each
 * a new job), while the message says which file to get and the request can still succeed here with
 * an empty prompt. `param` names the field a code is about.
 */
const jobErrorAnswers: Readonly<Record<string, { status: number; param?: string }>> = {
  INVALID_PARAMETER: { status: 400 },
  MODEL_NOT_FOUND: { status: 404, param: 'model' },
  ERR_TOKENIZER_MISSING: { status: 400, param: 'prompt' },
};

/** A failed job's error as the client sees it, in every dialect alike. */
export function jobFailureError(error: JobError | null): ApiError {
  const { code, message } = error ?? { code: 'GENERATION_FAILED', message: 'The generation failed' };
  const answer = jobErrorAnswers[code];
  return new ApiError(answer?.status ?? 500, code, message, answer?.param === undefined ? {} : { param: answer.param });
}

/** Seconds a client should wait before retrying when the queue is full or the server is stopping. */
export const retryAfterSeconds = '10';

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof InvalidFieldError) return new ApiError(400, 'INVALID_PARAMETER', err.message, { param: err.field });
  if (err instanceof QueueFullError) {
    return new ApiError(503, 'QUEUE_FULL', err.message, { headers: { 'Retry-After': retryAfterSeconds } });
  }
  if (err instanceof QueueClosedError) {
    return new ApiError(503, 'SHUTTING_DOWN', err.message, { headers: { 'Retry-After': retryAfterSeconds } });
  }
  if (err instanceof QueueUnavailableError) {
    // Its message names the Redis host; the server's log has it, clients do not need it.
    return new ApiError(503, 'QUEUE_UNAVAILABLE', 'The job queue is unreachable; retry later', { headers: { 'Retry-After': '1' } });
  }
  if (err instanceof UnknownModelError) return new ApiError(404, 'MODEL_NOT_FOUND', err.message, { param: err.field ?? 'model' });
  if (err instanceof NoModelError) return new ApiError(503, 'MODEL_NOT_LOADED', err.message);
  if (isJsonSyntaxError(err)) {
    return new ApiError(400, 'INVALID_JSON', `The request body is not valid JSON: ${(err as Error).message}`);
  }
  // Errors express and body-parser raise for malformed requests (bad JSON, a bad %-escape in the
  // path, a body over the limit) carry a 4xx status.
  const clientStatus = clientErrorStatus(err);
  if (clientStatus !== undefined) {
    const message = err instanceof Error ? err.message : 'Bad request';
    const code = clientStatus === 404 ? 'NOT_FOUND' : clientStatus === 413 ? 'BODY_TOO_LARGE' : 'BAD_REQUEST';
    return new ApiError(clientStatus, code, message);
  }
  return new ApiError(500, 'INTERNAL_ERROR', 'The server failed to handle this request; see its log');
}

function isJsonSyntaxError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { type?: unknown }).type === 'entity.parse.failed';
}

function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status } = err as { status?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/** How a dialect writes an error: its status (it may differ, e.g. 429 for a full queue) and body. */
export type ErrorShape = (error: ApiError) => { status?: number; body: unknown };

/** The one place errors become responses, in the dialect's shape. `log` receives the 500s. */
export function errorHandler(log: (line: string) => void, shape: ErrorShape): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const apiError = toApiError(err);
    if (apiError.status === 500) log(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    else if (err instanceof QueueUnavailableError) log(`warning: ${err.message}`);
    sendError(res, apiError, shape);
  };
}

export function sendError(res: Response, apiError: ApiError, shape: ErrorShape): void {
  const { status, body } = shape(apiError);
  res.status(status ?? apiError.status).set(apiError.headers).json(body);
}

/** FastAPI's shapes (AUTOMATIC1111, the task API): 422 with a `detail` list for invalid fields, `{ detail }` otherwise. */
export const fastApiErrorShape: ErrorShape = (error) => {
  if (error.status === 400 || error.status === 422) {
    return {
      status: 422,
      body: { detail: [{ loc: ['body', ...(error.param ? error.param.split('.') : [])], msg: error.message, type: 'value_error' }] },
    };
  }
  return { body: { detail: error.message } };
};

/** The route exists but not with this method: 405 with the methods it does take. */
export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  const allow = allowed.join(', ');
  return (req, _res, next) => {
    next(new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}; use ${allow}`, {
      headers: { Allow: allow },
    }));
  };
}
