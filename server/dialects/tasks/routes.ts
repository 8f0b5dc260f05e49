// The task API: GET /txt2img|/img2img|/inpaint answer the picture itself (a URL that works typed
// into a browser); POST /task, GET/DELETE /task/{id} and the /events websocket for asynchronous
// clients; blobs; users and tokens; GET /models.

import type { Server } from 'node:http';

import express, { Router, type Request, type RequestHandler, type Response } from 'express';

import { clientGone, watchClient } from '../../http/client-gone.js';
import type { Dialect, ServerContext } from '../../http/context.js';
import { ApiError, errorHandler, fastApiErrorShape } from '../../http/errors.js';
import { parseWith } from '../../http/schema.js';
import { RateLimiter } from '../../http/rate-limit.js';
import { sweepEvery } from '../../jobs/retention.js';
import { base64BodyLimit, imageUpload, multipartForm, uploadedFiles } from '../../http/uploads.js';
import { resolveRefiner, withoutUndefined } from '../../jobs/parameters.js';
import { safetyVerdicts } from '../../jobs/safety.js';
import { isKontext, kontextJob, kontextParameters } from '../kontext.js';
import { flowDefaults, flowFamilyOf } from '../model-family.js';
import { BlobStore } from './blobs.js';
import { TaskEventHub } from './events.js';
import { jobParameters, modeByTaskType, taskRefinerFields, taskUploads, withInitialImageSize } from './mapping.js';
import {
  blobIdParams, blobResponseSchema, eventSchema, modelsResponseSchema, parametersSchema, passwordFormSchema, taskIdParams,
  taskSchema, tokenQuery, tokenResponseSchema, userSchema, type TaskParameters, type TaskType,
} from './schemas.js';
import { apiKeyUser, isReservedUsername, publicUser, Tokens, UserStore, type TaskAuthSettings } from './users.js';
import { attachEventSocket } from './websocket.js';

const tag = 'tasks';

export interface TasksOptions extends TaskAuthSettings {
  outputDir: string;
  /** Hosts whose URLs initial_image / mask may name (--allow-fetch). */
  allowFetch: string[];
  /** How long uploaded blobs and the events of ended tasks are kept (--retention). */
  retentionMs: number;
}

export function tasksDialect(context: ServerContext, options: TasksOptions): Dialect {
  const users = new UserStore(options.outputDir);
  const tokens = new Tokens(options.secretKey, options.tokenTtlSeconds);
  const blobs = new BlobStore(options.outputDir, context.jobs);
  const hub = new TaskEventHub(context.jobs, tag, context.apiPrefix);
  const identify = userOf(context, options, tokens);
  const stopSweeping = sweepEvery(options.retentionMs, async () => {
    const cutoffMs = Date.now() - options.retentionMs;
    hub.forgetEndedBefore(cutoffMs);
    await blobs.removeBefore(cutoffMs);
  }, context.log);
  const authenticate = (req: Request) => identify({
    authorization: req.get('authorization'), token: typeof req.query.token === 'string' ? req.query.token : undefined,
  });
  return {
    name: tag,
    description: 'The task API: synchronous GET /txt2img, tasks with websocket events, blobs, users and tokens',
    router: () => tasksRouter(context, options, { users, tokens, blobs, hub, authenticate }),
    attach: (server: Server) => attachEventSocket(server, `${context.apiPrefix}/events`, hub, identify, context.allowedHosts),
    upgradePaths: [`${context.apiPrefix}/events`],
    close: async () => {
      stopSweeping();
      hub.close();
    },
    // Without server credentials: open to all, to all who sign up, or without a SECRET_KEY.
    open: () => !context.keys.enabled && (options.enablePublicAccess || options.enableSignup || options.secretKey === undefined),
    welcome: async (baseUrl: string) => (options.printLinkWithToken
      ? [`Open: ${options.baseUrl?.replace(/\/$/, '') ?? baseUrl}/txt2img?prompt=corgi&token=${await tokens.issue(publicUser)}`]
      : []),
  };
}

interface Parts {
  users: UserStore;
  tokens: Tokens;
  blobs: BlobStore;
  hub: TaskEventHub;
  authenticate: (req: Request) => Promise<string | undefined>;
}

/** What identifies a caller: the Authorization header and a ?token= query parameter. */
export interface Credentials {
  authorization: string | undefined;
  token: string | undefined;
}

function tasksRouter(context: ServerContext, options: TasksOptions, parts: Parts): Router {
  const { api, jobs, models } = context;
  const { blobs, hub, tokens, users } = parts;
  const router = Router();
  const json = express.json({ limit: base64BodyLimit(0, context.maxUploadBytes) });
  // Each attempt costs a password hash: a guesser gets few per username, and per client.
  const attempts = { client: new RateLimiter(passwordAttemptsPerMinute.client, 60_000), user: new RateLimiter(passwordAttemptsPerMinute.user, 60_000) };
  const form = express.urlencoded({ extended: false, limit: '64kb' });
  const auth: RequestHandler = (req, res, next) => {
    parts.authenticate(req).then((user) => {
      if (user === undefined) {
        next(new ApiError(401, 'UNAUTHORIZED', 'Not authenticated', { headers: { 'WWW-Authenticate': 'Bearer' } }));
        return;
      }
      res.locals.user = user;
      next();
    }, next);
  };
  const errors = {
    401: { description: 'No valid token', schema: eventSchema.pick({ reason: true }) },
    422: { description: 'FastAPI\'s detail list naming the field' },
  };
  // BASE_URL is the public address as clients reach it (with any --api-prefix); without it, this request's.
  const ownBase = (req: Request): string => `${req.protocol}://${req.get('host') ?? 'localhost'}${context.apiPrefix}`;
  const base = (req: Request): string => options.baseUrl?.replace(/\/$/, '') ?? ownBase(req);
  const submit = async (req: Request, res: Response, type: TaskType, parameters: TaskParameters) => {
    if (!context.acceptingJobs()) throw new ApiError(503, 'SHUTTING_DOWN', 'The server is shutting down; retry later');
    const owner = user(res);
    const checkpoint = await models.resolve(parameters.model);
    const family = await flowFamilyOf(checkpoint);
    const requested = jobParameters(type, parameters, family);
    const refiner = await resolveRefiner(models, requested.refiner, checkpoint.name, taskRefinerFields.checkpoint);
    const jobParams = withoutUndefined({ ...requested, refiner });
    const given = await taskUploads(type, parameters, {
      blobs, owner, ownBases: [base(req), ownBase(req)], allowFetch: options.allowFetch,
      maxBytes: context.maxUploadBytes,
    });
    // FLUX.1 Kontext reads the initial image as a reference beside the prompt, noising nothing.
    const kontext = type === 'img2img' && given.image && await isKontext(checkpoint) ? await kontextJob([given.image], 'initial_image') : undefined;
    const uploads = kontext?.uploads ?? given;
    const sized = kontext ? kontextParameters(jobParams, kontext) : await withInitialImageSize(jobParams, given.image, family !== undefined);
    const record = await jobs.submit({ mode: modeByTaskType[type], dialect: tag, model: checkpoint.name, owner, parameters: sized, uploads });
    hub.pending(record, {
      owner,
      baseUrl: base(req),
      parametersUsed: { ...parameters, task_type: type, model: checkpoint.name, steps: jobParams.steps, guidance: jobParams.cfgScale,
        ...(family === 'flux-dev' && { distilled_guidance: jobParams.guidance ?? flowDefaults(family).guidance }),
        scheduler: jobParams.sampler ?? 'euler_a', width: sized.width, height: sized.height, strength: sized.strength,
        ...(jobParams.refiner && { refiner_model: jobParams.refiner.checkpoint, refiner_switch_at: jobParams.refiner.switchAt }) },
      warnings: [],
    });
    return record;
  };

  for (const type of ['txt2img', 'img2img', 'inpaint'] as const) {
    api.route(router, {
      method: 'get',
      path: `/${type}`,
      tag,
      summary: `${type}: the parameters in the query string; answers the PNG itself (closing the connection cancels it)`,
      query: parametersSchema.extend(tokenQuery.shape),
      responses: {
        200: {
          description: 'The picture. Headers: X-Seed; with safety_filter, X-NSFW (true: flagged and black; null: not checked, '
            + 'X-Warning says why)',
          contentType: 'image/png',
        },
        ...errors,
      },
    }, watchClient, auth, async (req, res) => {
      const { token: _token, ...query } = req.query as Record<string, unknown>;
      const parameters = parseWith(parametersSchema, query, `GET /${type}`);
      const record = await submit(req, res, type, parameters);
      const done = await jobs.waitForClient(record.id, clientGone(res));
      if (!done) return;
      if (done.record.state !== 'COMPLETE' || done.imagesDone === 0) {
        throw new ApiError(500, done.record.error?.code ?? 'GENERATION_FAILED', done.record.error?.message ?? 'The generation failed');
      }
      const png = await jobs.readImage(record.id, 1);
      res.type('png').set('X-Seed', String(record.parameters.seed));
      if (record.parameters.safetyCheck !== undefined) {
        const { nsfw: [nsfw], warning } = safetyVerdicts([png]);
        res.set('X-NSFW', String(nsfw ?? null));
        if (warning !== undefined) res.set('X-Warning', warning);
      }
      res.send(png);
    });
  }

  api.route(router, {
    method: 'post', path: '/task', tag, summary: 'Start a task; follow it with GET /task/{id} or the /events websocket',
    body: { contentType: 'application/json', schema: taskSchema },
    responses: { 200: { description: 'The task id', schema: eventSchema.pick({ task_id: true }) }, ...errors },
  }, auth, json, async (req, res) => {
    const { task_type: type, ...parameters } = parseWith(taskSchema, req.body ?? {}, 'POST /task');
    const record = await submit(req, res, type, parameters);
    res.json({ task_id: record.id });
  });

  api.route(router, {
    method: 'get', path: '/task/:task_id', tag, summary: 'The task\'s latest event', params: taskIdParams,
    responses: { 200: { description: 'The latest event', schema: eventSchema }, 404: { description: 'No such task of yours' }, ...errors },
  }, auth, async (req, res) => {
    const event = await hub.latest(user(res), String(req.params.task_id));
    if (!event) throw new ApiError(404, 'TASK_NOT_FOUND', 'Task not found');
    res.json(event);
  });

  api.route(router, {
    method: 'delete', path: '/task/:task_id', tag, summary: 'Cancel a task, queued or running (an aborted event follows)', params: taskIdParams,
    responses: { 200: { description: 'The aborted event', schema: eventSchema }, 404: { description: 'No such task of yours' }, ...errors },
  }, auth, async (req, res) => {
    const id = String(req.params.task_id);
    if (!(await hub.latest(user(res), id))) throw new ApiError(404, 'TASK_NOT_FOUND', 'Task not found');
    await jobs.cancel(id);
    hub.aborted(id, 'cancelled by the client');
    res.json(await hub.latest(user(res), id));
  });

  api.route(router, {
    method: 'post', path: '/blob', tag, summary: 'Upload an image (multipart field "file", or the raw body); it belongs to you',
    body: { contentType: 'multipart/form-data', schema: tokenQuery, files: [{ name: 'file', required: true, description: 'PNG, JPEG or WebP' }] },
    responses: { 200: { description: 'The blob', schema: blobResponseSchema }, 413: { description: 'Over --max-upload-mb' }, ...errors },
  }, auth, blobBody(context), async (req, res) => {
    const [file] = uploadedFiles(req.files, 'file');
    const data = file ?? (Buffer.isBuffer(req.body) ? req.body : undefined);
    if (!data || data.length === 0) throw new ApiError(422, 'MISSING_UPLOAD', 'Send the image as the multipart field "file" or as the body', { param: 'file' });
    const id = await blobs.put(user(res), await imageUpload('file', data));
    res.json({ blob_id: id, blob_url: `${base(req)}/blob/${id}` });
  });

  api.route(router, {
    method: 'get', path: '/blob/:blob_id', tag, summary: 'A blob of yours: an upload, a result or a live preview', params: blobIdParams,
    responses: { 200: { description: 'The image', contentType: 'image/png' }, 404: { description: 'No such blob of yours' }, ...errors },
  }, auth, async (req, res) => {
    const blob = await blobs.get(user(res), String(req.params.blob_id));
    if (!blob) throw new ApiError(404, 'BLOB_NOT_FOUND', 'Blob not found');
    res.type(blob.contentType).send(blob.data);
  });

  api.route(router, {
    method: 'post', path: '/user', tag, summary: 'Sign up (ENABLE_SIGNUP=1)', auth: false,
    body: { contentType: 'application/json', schema: userSchema },
    responses: { 200: { description: 'A token for the new user', schema: tokenResponseSchema }, 403: { description: 'Sign-up is off' }, 409: { description: 'The name is taken' } },
  }, json, async (req, res) => {
    if (!options.enableSignup) throw new ApiError(403, 'SIGNUP_DISABLED', 'Sign-up is disabled on this server (ENABLE_SIGNUP=1 enables it)');
    // With server credentials set, a new user (who may then generate) is made by a holder of one.
    if (!context.keys.accepts(req)) {
      throw new ApiError(401, 'UNAUTHORIZED', 'This server has API keys: sign-up needs one (Authorization: Bearer <key>)', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    const { username, password } = parseWith(userSchema, req.body ?? {}, 'POST /user');
    throttle(attempts.client, req.ip ?? '');
    if (isReservedUsername(username)) throw new ApiError(409, 'USER_EXISTS', `The name ${username} is reserved by the server`);
    if (!(await users.add(username, password))) throw new ApiError(409, 'USER_EXISTS', `The user ${username} exists`);
    res.json({ access_token: await tokens.issue(username), token_type: 'bearer' });
  });

  api.route(router, {
    method: 'post', path: '/token', tag, summary: 'Log in (OAuth2 password form: username, password)', auth: false,
    body: { contentType: 'application/x-www-form-urlencoded', schema: passwordFormSchema },
    responses: { 200: { description: 'A token', schema: tokenResponseSchema }, 401: { description: 'Wrong name or password' } },
  }, form, json, async (req, res) => {
    const { username, password } = parseWith(passwordFormSchema, req.body ?? {}, 'POST /token');
    throttle(attempts.client, req.ip ?? '');
    throttle(attempts.user, username);
    if (!(await users.verify(username, password))) {
      throw new ApiError(401, 'UNAUTHORIZED', 'Incorrect username or password', { headers: { 'WWW-Authenticate': 'Bearer' } });
    }
    res.json({ access_token: await tokens.issue(username), token_type: 'bearer' });
  });

  api.route(router, {
    method: 'post', path: '/token/:username', tag,
    summary: 'A token for a user: "all" for the public token (ENABLE_PUBLIC_ACCESS=1); others need that user\'s own token or an API key',
    auth: false,
    params: userSchema.pick({ username: true }),
    responses: { 200: { description: 'A token', schema: tokenResponseSchema }, 401: { description: 'Not allowed' } },
  }, async (req, res) => {
    const name = String(req.params.username);
    const caller = await parts.authenticate(req);
    const allowed = name === publicUser ? publicAccess(context, options) : caller === name || (context.keys.enabled && context.keys.accepts(req));
    if (!allowed || (name !== publicUser && !(await users.exists(name)))) {
      throw new ApiError(401, 'UNAUTHORIZED', name === publicUser
        ? 'Public access is disabled (ENABLE_PUBLIC_ACCESS=1 enables it on a server without API keys)' : 'Not authenticated');
    }
    res.json({ access_token: await tokens.issue(name), token_type: 'bearer' });
  });

  api.route(router, {
    method: 'get', path: '/models', tag, summary: 'The checkpoints this server offers (loads nothing)',
    responses: { 200: { description: 'The models', schema: modelsResponseSchema }, ...errors },
  }, auth, async (_req, res) => {
    res.json((await models.list()).map((entry) => ({ id: entry.name, name: entry.name, description: `Checkpoint ${entry.name}`, author: '' })));
  });

  router.use(['/txt2img', '/img2img', '/inpaint', '/task', '/blob', '/user', '/token', '/models'], errorHandler(context.log, fastApiErrorShape));
  return router;
}

/** Log-ins and sign-ups per minute: per client address, and log-ins per username. */
export const passwordAttemptsPerMinute = { client: 30, user: 10 } as const;

function throttle(limiter: RateLimiter, key: string): void {
  const waitSeconds = limiter.attempt(key);
  if (waitSeconds !== undefined) {
    throw new ApiError(429, 'TOO_MANY_ATTEMPTS', `Too many attempts; retry in ${waitSeconds} s`, { headers: { 'Retry-After': String(waitSeconds) } });
  }
}

function user(res: Response): string {
  return res.locals.user as string;
}

// A multipart "file" field, or the image as the raw body.
function blobBody(context: ServerContext): RequestHandler {
  const multipart = multipartForm({ route: '/blob', files: [{ name: 'file', maxCount: 1 }], maxUploadBytes: context.maxUploadBytes, example: 'curl -F file=@photo.png …' });
  const raw = express.raw({ type: () => true, limit: context.maxUploadBytes });
  return (req, res, next) => (req.is('multipart/form-data') ? multipart(req, res, next) : raw(req, res, next));
}

/**
 * Who a request is: the user a valid token names (header or ?token=), the API-key holder, or —
 * with public access on, or when the server has neither keys nor a SECRET_KEY — the public user.
 */
function userOf(context: ServerContext, options: TaskAuthSettings, tokens: Tokens): (credentials: Credentials) => Promise<string | undefined> {
  return async ({ authorization, token: query }) => {
    const header = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '')?.[1];
    const token = header ?? query;
    if (token !== undefined) {
      const name = await tokens.user(token);
      if (name !== undefined) return name;
      if (context.keys.enabled && header !== undefined && context.keys.acceptsHeader(authorization)) return apiKeyUser;
      return undefined;
    }
    // Basic credentials of --api-auth.
    if (context.keys.enabled && authorization !== undefined && context.keys.acceptsHeader(authorization)) return apiKeyUser;
    return publicAccess(context, options) || (!context.keys.enabled && options.secretKey === undefined) ? publicUser : undefined;
  };
}

/**
 * Whether requests without a token count as the public user: ENABLE_PUBLIC_ACCESS=1 on a server
 * without credentials. With API keys or --api-auth set, every generating route needs one.
 */
export function publicAccess(context: ServerContext, options: TaskAuthSettings): boolean {
  return options.enablePublicAccess && !context.keys.enabled;
}
