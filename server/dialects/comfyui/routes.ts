// ComfyUI's API (--api comfyui), each route also under /api/…: POST /prompt queues an API-format
// workflow as a job; /queue, /interrupt, /history, /view, /upload/image|mask, /object_info,
// /system_stats, /embeddings, /models, /extensions, /features; the websocket /ws?clientId=.
// With the task API mounted too, GET /models is the task API's; ComfyUI's answers at /api/models.

import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import express, { Router, type Request, type RequestHandler } from 'express';
import sharp from 'sharp';

import { listControlNets, listLoras, systemInfo } from '../../../lib/index.js';
import { UpscalerCatalog } from '../../models/upscalers.js';
import type { Dialect, ServerContext } from '../../http/context.js';
import { ApiError, errorHandler, type ErrorShape } from '../../http/errors.js';
import { requireAcceptingJobs } from '../../http/sync-job.js';
import { multipartForm } from '../../http/uploads.js';
import { isFinished } from '../../jobs/job.js';
import { packageVersion } from '../../version.js';
import { inputPath } from './executor.js';
import { checkGraph } from './graph.js';
import {
  dialectTag, findPrompt, historyEntry, parseImageFilename, promptIdOf, queueRow, workflowJobs,
} from './history.js';
import { componentFileLists } from './nodes/components.js';
import { nodeClasses, objectInfo, type ChoiceLists } from './nodes/index.js';
import { ComfyEvents } from './websocket.js';

export interface ComfyUiOptions {
  /** The folder /upload/image writes to and LoadImage reads from. */
  inputDir: string;
  /** The folder LoraLoader's names are in. */
  loraDir: string | undefined;
  /** The folder UpscaleModelLoader's names are in (ESRGAN files). */
  upscalerDir?: string | undefined;
  /** The folder ControlNetLoader's names are in. */
  controlNetDir?: string | undefined;
}

const imageExtensions = ['.png', '.jpg', '.jpeg', '.webp'];
const modelFolders = ['checkpoints', 'loras', 'vae', 'text_encoders', 'diffusion_models', 'clip_vision', 'embeddings', 'upscale_models', 'controlnet'];

/** ComfyUI's error body: { error: { type, message, details, extra_info }, node_errors }. */
const comfyErrorShape: ErrorShape = (error) => ({
  body: { error: { type: error.code.toLowerCase(), message: error.message, details: error.param ?? '', extra_info: {} }, node_errors: [] },
});

export function comfyuiDialect(context: ServerContext, options: ComfyUiOptions): Dialect {
  const events = new ComfyEvents(context.jobs);
  const wsPaths = [`${context.apiPrefix}/ws`, `${context.apiPrefix}/api/ws`];
  return {
    name: dialectTag,
    description: 'ComfyUI\'s API: API-format workflows of core nodes on /prompt, progress on /ws, images on /history and /view',
    router: () => comfyRouter(context, options, events),
    attach: (server) => { for (const wsPath of wsPaths) events.attach(server, wsPath, context.keys, context.allowedHosts); },
    upgradePaths: wsPaths,
    close: async () => events.close(),
  };
}

function comfyRouter(context: ServerContext, options: ComfyUiOptions, events: ComfyEvents): Router {
  const { api, keys, jobs, models } = context;
  const { inputDir } = options;
  const router = Router();
  let nextNumber = 0;

  const route = (method: 'get' | 'post', routePath: string, summary: string, ...handlers: RequestHandler[]) => {
    for (const prefix of ['', '/api']) {
      api.route(router, { method, path: `${prefix}${routePath}`, tag: dialectTag, summary, responses: { 200: { description: 'ComfyUI\'s answer' } } },
        keys.required(), ...handlers);
    }
  };
  const json = express.json({ limit: `${Math.max(1, Math.ceil(context.maxUploadBytes / (1024 * 1024)))}mb` });

  const choiceLists = async (): Promise<ChoiceLists> => {
    const entries = await models.list();
    return {
      checkpoints: entries.map((entry) => checkpointName(entry.name, entry.path)),
      ...componentFileLists(entries),
      inputImages: await inputImages(inputDir),
      loras: options.loraDir === undefined ? []
        : (await listLoras(options.loraDir)).map((lora) => path.relative(options.loraDir!, lora.path).split(path.sep).join('/')),
      upscaleModels: (await new UpscalerCatalog(options.upscalerDir).list())
        .map((entry) => path.relative(options.upscalerDir!, entry.path).split(path.sep).join('/')),
      controlNets: options.controlNetDir === undefined ? []
        : (await listControlNets(options.controlNetDir)).map((entry) => path.relative(options.controlNetDir!, entry.path).split(path.sep).join('/')),
    };
  };

  route('post', '/prompt', 'Queues an API-format workflow; a graph that does not validate is answered with ComfyUI\'s node_errors', json, async (req, res) => {
    requireAcceptingJobs(context);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (body.prompt === undefined) {
      res.status(400).json({ error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} });
      return;
    }
    const check = checkGraph(body.prompt, await choiceLists());
    if (!check.ok) {
      res.status(400).json({ error: check.error, node_errors: check.nodeErrors });
      return;
    }
    const clientId = optionalString(body.client_id, 'client_id');
    const promptId = optionalString(body.prompt_id, 'prompt_id');
    const extraData = body.extra_data === undefined ? {} : objectField(body.extra_data, 'extra_data');
    // ComfyUI: a given number is kept (it orders ComfyUI's queue; sdnode's runs in arrival order); else the counter's, negative for front.
    const number = typeof body.number === 'number' ? body.number : body.front === true ? -nextNumber : nextNumber;
    if (typeof body.number !== 'number') nextNumber++;
    const checkpoint = Object.values(check.graph).find((node) => node.class_type === 'CheckpointLoaderSimple')?.inputs.ckpt_name;
    const model = typeof checkpoint === 'string' ? (await models.resolve(checkpoint)).name : undefined;
    const record = await jobs.submit({
      mode: 'workflow', dialect: dialectTag, ...(model !== undefined && { model }),
      parameters: {
        prompt: '', count: 1, seed: 0,
        workflow: {
          graph: check.graph, outputs: check.outputs, number, extraData,
          ...(clientId !== undefined && { clientId }), ...(promptId !== undefined && { promptId }),
        },
      },
    });
    void events.broadcastStatus();
    res.json({ prompt_id: promptIdOf(record), number, node_errors: check.nodeErrors });
  });

  route('get', '/prompt', 'How many prompts are queued or running', async (_req, res) => {
    const counts = await jobs.counts();
    res.json({ exec_info: { queue_remaining: counts.waiting + counts.running } });
  });

  route('get', '/queue', 'The running and pending prompts', async (_req, res) => {
    const records = await workflowJobs(jobs);
    res.json({
      queue_running: records.filter((r) => r.state === 'IN_PROGRESS').map(queueRow),
      queue_pending: records.filter((r) => r.state === 'QUEUED').map(queueRow),
    });
  });

  route('post', '/queue', 'Deletes pending prompts ({ delete: [prompt ids] }) or all of them ({ clear: true })', json, async (req, res) => {
    const body = (req.body ?? {}) as { clear?: unknown; delete?: unknown };
    const pending = (await workflowJobs(jobs)).filter((r) => r.state === 'QUEUED');
    const targets = body.clear === true ? pending : pending.filter((r) => Array.isArray(body.delete) && body.delete.includes(promptIdOf(r)));
    for (const record of targets) await jobs.cancel(record.id, { remove: true });
    void events.broadcastStatus();
    res.status(200).end();
  });

  route('post', '/interrupt', 'Stops the running prompt (or the one named by prompt_id)', json, async (req, res) => {
    const promptId = optionalString((req.body as { prompt_id?: unknown } | undefined)?.prompt_id, 'prompt_id');
    for (const id of await jobs.running()) {
      const snapshot = await jobs.find(id);
      if (!snapshot || snapshot.record.dialect !== dialectTag) continue;
      if (promptId === undefined || promptIdOf(snapshot.record) === promptId) await jobs.cancel(id);
    }
    res.status(200).end();
  });

  route('get', '/history', 'Finished prompts, their outputs and status (max_items: the latest n)', async (req, res) => {
    const finished = (await workflowJobs(jobs)).filter((r) => isFinished(r.state));
    const max = Number(req.query.max_items);
    const shown = Number.isInteger(max) && max > 0 ? finished.slice(-max) : finished;
    const entries: Record<string, unknown> = {};
    for (const record of shown) {
      const snapshot = await jobs.find(record.id);
      if (snapshot) entries[promptIdOf(record)] = await historyEntry(jobs, snapshot);
    }
    res.json(entries);
  });

  route('get', '/history/:promptId', 'One finished prompt ({} while it runs or when unknown)', async (req, res) => {
    const promptId = String(req.params.promptId);
    const snapshot = await findPrompt(jobs, promptId);
    res.json(snapshot && isFinished(snapshot.record.state) ? { [promptId]: await historyEntry(jobs, snapshot) } : {});
  });

  route('post', '/history', 'Deletes finished prompts ({ delete: [prompt ids] }) or all of them ({ clear: true })', json, async (req, res) => {
    const body = (req.body ?? {}) as { clear?: unknown; delete?: unknown };
    const finished = (await workflowJobs(jobs)).filter((r) => isFinished(r.state));
    const targets = body.clear === true ? finished : finished.filter((r) => Array.isArray(body.delete) && body.delete.includes(promptIdOf(r)));
    for (const record of targets) await jobs.cancel(record.id, { remove: true });
    res.status(200).end();
  });

  route('get', '/view', 'An image: a workflow\'s output or temp image, or an uploaded input (filename, subfolder, type)', async (req, res) => {
    const filename = String(req.query.filename ?? '');
    const type = String(req.query.type ?? 'output');
    const subfolder = String(req.query.subfolder ?? '');
    let image: Buffer | undefined;
    if (type === 'input') {
      image = await readFile(inputPath(inputDir, path.posix.join(subfolder, filename))).catch(() => undefined);
    } else {
      // Only workflow jobs' images: other APIs' jobs stay out of sight.
      const ref = parseImageFilename(filename);
      const owner = ref && (await jobs.find(ref.jobId));
      image = ref && owner?.record.dialect === dialectTag ? await jobs.image(ref.jobId, ref.n) : undefined;
    }
    if (!image) throw new ApiError(404, 'NOT_FOUND', `No ${type} image ${JSON.stringify(filename)}`, { param: 'filename' });
    res.type(imageType(filename)).send(image);
  });

  const upload = multipartForm({
    route: '/upload/image', files: [{ name: 'image', maxCount: 1 }], maxUploadBytes: context.maxUploadBytes, example: 'curl -F image=@photo.png',
  });
  route('post', '/upload/image', 'Stores an image in the input folder for LoadImage: { name, subfolder, type }', upload, async (req, res) => {
    const { file, subfolder, overwrite } = uploadedImage(req);
    const name = await storeInput(inputDir, subfolder, file.originalname, file.buffer, overwrite);
    res.json({ name, subfolder, type: 'input' });
  });

  route('post', '/upload/mask', 'Stores an input image whose alpha is the uploaded mask\'s (original_ref names the image)', upload, async (req, res) => {
    const { file, subfolder, overwrite } = uploadedImage(req);
    const ref = JSON.parse(String((req.body as Record<string, unknown>).original_ref ?? 'null')) as { filename?: string; subfolder?: string } | null;
    if (!ref?.filename) throw new ApiError(400, 'INVALID_PARAMETER', 'original_ref must name the image the mask belongs to', { param: 'original_ref' });
    const original = await readFile(inputPath(inputDir, path.posix.join(ref.subfolder ?? '', ref.filename)))
      .catch(() => { throw new ApiError(404, 'NOT_FOUND', `No input image ${JSON.stringify(ref.filename)}`, { param: 'original_ref' }); });
    const { width, height } = await sharp(original).metadata();
    const alpha = await sharp(file.buffer).resize(width, height, { fit: 'fill' }).ensureAlpha().extractChannel(3).raw().toBuffer();
    const masked = await sharp(original).removeAlpha().joinChannel(alpha, { raw: { width: width!, height: height!, channels: 1 } }).png().toBuffer();
    const name = await storeInput(inputDir, subfolder, file.originalname, masked, overwrite);
    res.json({ name, subfolder, type: 'input' });
  });

  route('get', '/object_info', 'Every node class: inputs (types, defaults, ranges), outputs, category', async (_req, res) => {
    const lists = await choiceLists();
    res.json(Object.fromEntries(Object.keys(nodeClasses).map((name) => [name, objectInfo(name, lists)])));
  });

  route('get', '/object_info/:nodeClass', 'One node class', async (req, res) => {
    const name = String(req.params.nodeClass);
    res.json(Object.hasOwn(nodeClasses, name) ? { [name]: objectInfo(name, await choiceLists()) } : {});
  });

  route('get', '/system_stats', 'The machine and its devices', async (_req, res) => {
    res.json(systemStats());
  });

  route('get', '/embeddings', 'Textual inversion embeddings (none)', (_req, res) => { res.json([]); });
  route('get', '/extensions', 'Web extensions (none)', (_req, res) => { res.json([]); });
  route('get', '/features', 'What this server supports', (_req, res) => {
    res.json({ supports_preview_metadata: false, max_upload_size: context.maxUploadBytes });
  });
  route('get', '/models', 'Model folders', (_req, res) => { res.json(modelFolders); });
  route('get', '/models/:folder', 'The files of one model folder', async (req, res) => {
    const folder = String(req.params.folder);
    if (!modelFolders.includes(folder)) throw new ApiError(404, 'NOT_FOUND', `No model folder ${JSON.stringify(folder)}`, { param: 'folder' });
    const lists = await choiceLists();
    const byFolder: Record<string, string[]> = {
      checkpoints: lists.checkpoints, loras: lists.loras, diffusion_models: lists.diffusionModels, text_encoders: lists.textEncoders, vae: lists.vaes,
      controlnet: lists.controlNets,
    };
    res.json(byFolder[folder] ?? []);
  });

  api.refuseOtherMethods(router, dialectTag);
  router.use(['/prompt', '/queue', '/interrupt', '/history', '/view', '/upload', '/object_info', '/system_stats', '/embeddings', '/extensions',
    '/features', '/models', '/api'], errorHandler(context.log, comfyErrorShape));
  return router;
}

/** A checkpoint as ComfyUI lists it: its name with the file's extension. */
function checkpointName(name: string, file: string): string {
  const extension = path.extname(file);
  return extension === '' ? `${name}.safetensors` : `${name}${extension}`;
}

async function inputImages(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile() && imageExtensions.includes(path.extname(e.name).toLowerCase())).map((e) => e.name).sort();
}

function imageType(filename: string): string {
  const extension = path.extname(filename).toLowerCase();
  return extension === '.jpg' || extension === '.jpeg' ? 'image/jpeg' : extension === '.webp' ? 'image/webp' : 'image/png';
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length > 200) throw new ApiError(400, 'INVALID_PARAMETER', `${field} must be a string of at most 200 characters`, { param: field });
  return value;
}

function objectField(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError(400, 'INVALID_PARAMETER', `${field} must be an object`, { param: field });
  }
  return value as Record<string, unknown>;
}

function uploadedImage(req: Request): { file: Express.Multer.File; subfolder: string; overwrite: boolean } {
  const file = (req.files as Partial<Record<string, Express.Multer.File[]>> | undefined)?.image?.[0];
  if (!file) throw new ApiError(400, 'INVALID_PARAMETER', 'Send the image as the multipart file field "image"', { param: 'image' });
  const body = req.body as Record<string, unknown>;
  const subfolder = String(body.subfolder ?? '');
  if (subfolder !== '' && !/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/.test(subfolder)) {
    throw new ApiError(400, 'INVALID_PARAMETER', 'subfolder must be folder names of letters, digits, _ and -', { param: 'subfolder' });
  }
  return { file, subfolder, overwrite: body.overwrite === 'true' || body.overwrite === '1' };
}

/** Writes an upload into the input folder; an existing name gets " (n)" unless overwrite. Returns the name used. */
async function storeInput(inputDir: string, subfolder: string, original: string, data: Buffer, overwrite: boolean): Promise<string> {
  const extension = path.extname(original).toLowerCase();
  const base = path.basename(original, path.extname(original)).replace(/[^A-Za-z0-9 ._()-]/g, '_').slice(0, 100) || 'image';
  if (!imageExtensions.includes(extension)) {
    throw new ApiError(400, 'INVALID_PARAMETER', `The image must be a ${imageExtensions.join(', ')} file`, { param: 'image' });
  }
  const dir = path.join(inputDir, subfolder);
  await mkdir(dir, { recursive: true });
  for (let i = 0; ; i++) {
    const name = i === 0 ? `${base}${extension}` : `${base} (${i})${extension}`;
    try {
      await writeFile(inputPath(inputDir, path.posix.join(subfolder, name)), data, { flag: overwrite ? 'w' : 'wx' });
      return name;
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
    }
  }
}

function systemStats(): Record<string, unknown> {
  let devices: { name: string; backend: string; memoryTotal: number; memoryFree: number }[] = [];
  try {
    devices = systemInfo().devices;
  } catch {
    // An API process without the addon (--redis): the machine's own numbers only.
  }
  return {
    system: {
      os: process.platform, ram_total: os.totalmem(), ram_free: os.freemem(), comfyui_version: `sdnode ${packageVersion()}`,
      python_version: '', pytorch_version: '', embedded_python: false, argv: ['sdnode', 'serve'],
    },
    devices: devices.map((device, index) => ({
      name: device.name, type: device.backend, index, vram_total: device.memoryTotal, vram_free: device.memoryFree,
      torch_vram_total: device.memoryTotal, torch_vram_free: device.memoryFree,
    })),
  };
}

