// AUTOMATIC1111's settings and listing routes: options (switching the default checkpoint),
// sd-models with their hashes, samplers, schedulers, the lists sdnode has nothing in
// (empty, honestly), memory, and png-info.

import { freemem, totalmem } from 'node:os';
import path from 'node:path';

import type { RequestHandler, Router } from 'express';
import sharp from 'sharp';
import type { z } from 'zod';

import { hiresUpscalerNames, listLoras, parseParameters, readPngText, samplerDisplayNames, samplers, systemInfo } from '../../../lib/index.js';
import type { ResponseSpec } from '../../http/api.js';
import type { ServerContext } from '../../http/context.js';
import { ApiError } from '../../http/errors.js';
import { parseWith } from '../../http/schema.js';
import type { FileHashes } from '../../models/hashes.js';
import type { ModelEntry } from '../../models/registry.js';
import { embeddingList, embeddingListSchema } from './embeddings.js';
import { base64Image } from './images.js';
import type { A1111Settings } from './mapping.js';
import { loraListSchema, optionsSchema, pngInfoResponseSchema, pngInfoSchema, sdModelSchema } from './schemas.js';

/** The hires fix's latent interpolation modes (the library's other upscaler, Lanczos, works on pixels). */
const latentUpscaleModes = hiresUpscalerNames.filter((name) => name.startsWith('Latent'));

export interface InfoRouteOptions {
  tag: string;
  auth: RequestHandler;
  json: RequestHandler;
  settings: A1111Settings;
  hashes: FileHashes;
  errors: Record<number, ResponseSpec>;
  /** The LoRA folder /sdapi/v1/loras lists. */
  loraDir: string | undefined;
  /** The embeddings folder /sdapi/v1/embeddings lists. */
  embeddingsDir: string | undefined;
}

export function infoRoutes(router: Router, context: ServerContext, options: InfoRouteOptions): void {
  const { api, models } = context;
  const { tag, auth, settings, hashes } = options;
  const list = (route: string, summary: string, schema: z.ZodType | undefined, answer: () => Promise<unknown> | unknown): void => {
    api.route(router, {
      method: 'get', path: `/sdapi/v1/${route}`, tag, summary,
      responses: { 200: { description: summary, ...(schema && { schema }) }, 401: options.errors[401] as ResponseSpec },
    }, auth, async (_req, res) => {
      res.json(await answer());
    });
  };

  const title = async (entry: ModelEntry): Promise<string> => modelTitle(entry, await hashes.ofEntry(entry));
  const currentOptions = async () => {
    const model = await models.defaultModel();
    return {
      ...settings.other,
      sd_model_checkpoint: model ? await title(model) : null,
      CLIP_stop_at_last_layers: settings.clipSkip ?? 1,
      samples_format: settings.samplesFormat,
      sd_vae: 'Automatic',
      return_grid: false,
    };
  };

  list('options', 'Current settings', optionsSchema, currentOptions);
  api.route(router, {
    method: 'post', path: '/sdapi/v1/options', tag,
    summary: 'Change settings: sd_model_checkpoint switches the default checkpoint; CLIP_stop_at_last_layers sets the default clip skip',
    body: { contentType: 'application/json', schema: optionsSchema },
    responses: { 200: { description: 'Applied' }, ...options.errors },
  }, auth, options.json, async (req, res) => {
    const changes = parseWith(optionsSchema, req.body ?? {}, '/sdapi/v1/options');
    for (const [key, value] of Object.entries(changes)) {
      switch (key) {
        case 'sd_model_checkpoint':
          if (typeof value !== 'string') throw new ApiError(422, 'INVALID_PARAMETER', 'sd_model_checkpoint must be a checkpoint title or name', { param: key });
          await models.setDefault(value);
          break;
        case 'CLIP_stop_at_last_layers':
          if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 12) {
            throw new ApiError(422, 'INVALID_PARAMETER', `Expected an integer between 1 and 12 for CLIP_stop_at_last_layers but received ${JSON.stringify(value)}`, { param: key });
          }
          settings.clipSkip = value === 1 ? undefined : value;
          break;
        case 'samples_format':
          if (value !== 'png') throw new ApiError(422, 'INVALID_PARAMETER', 'samples_format: sdnode returns PNG images', { param: key });
          break;
        default:
          // An own property whatever the key (`__proto__` included), as JSON.parse made it.
          Object.defineProperty(settings.other, key, { value, enumerable: true, configurable: true, writable: true });
      }
    }
    res.json(null);
  });

  list('sd-models', 'The checkpoints (hashing each file once, the first time)', undefined, async () => {
    const entries = await models.list();
    return Promise.all(entries.map(async (entry): Promise<z.output<typeof sdModelSchema>> => {
      const sha256 = await hashes.ofEntry(entry);
      return {
        title: modelTitle(entry, sha256),
        model_name: entry.name,
        hash: sha256?.slice(0, 10) ?? null,
        sha256: sha256 ?? null,
        // The file's name only: where the server keeps its models is not the clients' business.
        filename: `${entry.name}${path.extname(entry.path)}`,
        config: null,
      };
    }));
  });
  list('samplers', 'Samplers, by AUTOMATIC1111 name', undefined, () => samplers().map((name) => ({
    name: samplerDisplayNames[name as keyof typeof samplerDisplayNames] ?? name, aliases: [name], options: {},
  })));
  list('schedulers', 'Noise schedules', undefined, () => [
    ['automatic', 'Automatic'], ['uniform', 'Uniform'], ['karras', 'Karras'], ['exponential', 'Exponential'],
    ['sgm_uniform', 'SGM Uniform'], ['simple', 'Simple'], ['beta', 'Beta'],
  ].map(([name, label]) => ({ name, label, aliases: null, default_rho: -1, need_inner_model: false })));
  list('latent-upscale-modes', 'Latent upscalers for the hires fix', undefined, () => latentUpscaleModes.map((name) => ({ name })));
  list('sd-vae', 'Separate VAE files (none: each checkpoint\'s own VAE is used)', undefined, () => []);
  list('embeddings', 'Textual-inversion embeddings of the embeddings folder (--embeddings-dir): those the default model takes, and those skipped with the reason',
    embeddingListSchema, async () => embeddingList(options.embeddingsDir, await models.defaultModel()));
  list('loras', 'LoRA files of the LoRA folder (--lora-dir): what <lora:NAME:weight> in a prompt selects', loraListSchema,
    async () => {
      if (options.loraDir === undefined) return [];
      const folder = options.loraDir;
      // Paths within the LoRA folder: where the server keeps it is not the clients' business.
      return (await listLoras(folder)).map((lora) => ({ ...lora, path: path.relative(folder, lora.path) }));
    });
  list('prompt-styles', 'Saved prompt styles (none)', undefined, () => []);
  list('face-restorers', 'Face restorers (none)', undefined, () => []);
  list('cmd-flags', 'How this server was started', undefined, () => ({ api: true, nowebui: true, sdnode: true }));
  list('memory', 'Memory of this machine and of the GPU backend', undefined, () => memory());

  api.route(router, {
    method: 'post', path: '/sdapi/v1/refresh-checkpoints', tag, summary: 'Re-read the models folder (it is read on every request anyway)',
    responses: { 200: { description: 'Done' }, 401: options.errors[401] as ResponseSpec },
  }, auth, async (_req, res) => {
    await models.list();
    res.json(null);
  });

  api.route(router, {
    method: 'post', path: '/sdapi/v1/png-info', tag, summary: 'The generation parameters written in a PNG',
    body: { contentType: 'application/json', schema: pngInfoSchema },
    responses: { 200: { description: 'The parameters text, every text chunk, and the parsed fields', schema: pngInfoResponseSchema }, ...options.errors },
  }, auth, options.json, async (req, res) => {
    const { image } = parseWith(pngInfoSchema, req.body ?? {}, '/sdapi/v1/png-info');
    const upload = await base64Image('image', image);
    const png = upload.ext === 'png' ? upload.data : await sharp(upload.data).png().toBuffer();
    const { parameters: info = '', ...items } = readPngText(png);
    const parsed = parseParameters(info);
    res.json({
      info,
      items,
      parameters: info === '' ? {} : { Prompt: parsed.prompt, 'Negative prompt': parsed.negativePrompt, ...parsed.fields },
    });
  });
}

function memory(): Record<string, unknown> {
  const total = totalmem();
  const free = freemem();
  const gpu = systemInfo().devices.find((device) => device.backend === 'cuda');
  return {
    ram: { free, used: total - free, total },
    cuda: gpu
      ? { system: { free: gpu.memoryFree, used: gpu.memoryTotal - gpu.memoryFree, total: gpu.memoryTotal } }
      : { error: 'sdnode runs on the CPU here (no CUDA backend in this build or no CUDA device)' },
  };
}

/** AUTOMATIC1111's checkpoint title, "v1-5.safetensors [6ce0161689]"; without the hash while it is unknown. */
function modelTitle(entry: ModelEntry, sha256: string | undefined): string {
  const file = `${entry.name}${path.extname(entry.path)}`;
  return sha256 === undefined ? file : `${file} [${sha256.slice(0, 10)}]`;
}
