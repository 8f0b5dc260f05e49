// Task API ↔ jobs: parameters to JobParameters, and `initial_image` / `mask` references (blob
// ids, this server's blob URLs, and URLs of hosts allowed with --allow-fetch) to uploads.

import { ApiError } from '../../http/errors.js';
import { imageSize, imageUpload } from '../../http/uploads.js';
import type { JobMode, JobParameters } from '../../jobs/job.js';
import {
  checkSizeForModel, chosenSeed, multipleOf8, refinerParameters, samplerFields, withoutUndefined, type RefinerFieldNames,
} from '../../jobs/parameters.js';
import type { Upload } from '../../jobs/store.js';
import { flowDefaults, type FlowFamily } from '../model-family.js';
import type { BlobStore } from './blobs.js';
import type { TaskParameters, TaskType } from './schemas.js';

export const modeByTaskType: Readonly<Record<TaskType, JobMode>> = { txt2img: 'txt2img', img2img: 'img2img', inpaint: 'inpaint' };

export const taskRefinerFields: RefinerFieldNames = { checkpoint: 'refiner_model', switchAt: 'refiner_switch_at' };

/**
 * The job for a task. What it leaves out takes the seed API's defaults (20 steps, guidance 7.5,
 * 512²), or for a flow model (`family`) the family's (FLUX.1: cfg 1, one pass), which the library
 * would choose too but `parameters_used` reports.
 */
export function jobParameters(type: TaskType, p: TaskParameters, family?: FlowFamily): JobParameters {
  const defaults = family === undefined ? undefined : flowDefaults(family);
  const size = defaults?.size ?? 512;
  const parameters: JobParameters = withoutUndefined({
    prompt: p.prompt,
    negativePrompt: p.negative_prompt,
    count: 1,
    seed: chosenSeed(p.seed),
    steps: p.steps ?? defaults?.steps ?? 20,
    cfgScale: p.guidance ?? defaults?.cfgScale ?? 7.5,
    guidance: p.distilled_guidance,
    ...samplerFields(p.scheduler ?? defaults?.sampler, undefined, { sampler: 'scheduler', scheduler: 'scheduler' }),
    width: multipleOf8('width', p.width ?? (type === 'txt2img' ? size : undefined)),
    height: multipleOf8('height', p.height ?? (type === 'txt2img' ? size : undefined)),
    strength: type === 'txt2img' ? undefined : (p.strength ?? 0.8),
    safetyCheck: (p.safety_filter ?? true) ? 'filter' as const : undefined,
    refiner: refinerParameters(p.refiner_model, p.refiner_switch_at, taskRefinerFields),
  });
  checkSizeForModel(parameters, family !== undefined);
  return parameters;
}

export interface ImageSources {
  blobs: BlobStore;
  owner: string;
  /** This server's own base URL(s) (origin and --api-prefix), whose <base>/blob/<id> URLs are read from the blob store. */
  ownBases: string[];
  /** Hosts whose URLs may be fetched (--allow-fetch). */
  allowFetch: string[];
  maxBytes: number;
}

/**
 * The parameters with the initial image's size where the task gave none: the seed API documents
 * width and height for txt2img only, and its diffusers pipeline makes an image-to-image result at
 * the input's size, each side rounded down to a multiple of 8 (16 for a `flow` model; here also
 * kept within 64–2048).
 */
export async function withInitialImageSize(parameters: JobParameters, image: Upload | undefined, flow = false): Promise<JobParameters> {
  if (image === undefined || (parameters.width !== undefined && parameters.height !== undefined)) return parameters;
  const size = await imageSize(image);
  // Flow models (FLUX.1, SD3) take multiples of 16.
  const step = flow ? 16 : 8;
  const side = (value: number): number => Math.min(2048, Math.max(64, Math.floor(value / step) * step));
  return { ...parameters, width: parameters.width ?? side(size.width), height: parameters.height ?? side(size.height) };
}

/** The uploads a task of this type needs, from its references; 422s naming the field otherwise. */
export async function taskUploads(type: TaskType, p: TaskParameters, sources: ImageSources):
  Promise<Partial<Record<'image' | 'mask', Upload>>> {
  if (type === 'txt2img') return {};
  if (p.initial_image === undefined) throw new ApiError(422, 'INVALID_PARAMETER', `initial_image is required for ${type}`, { param: 'initial_image' });
  const image = await resolveImage('initial_image', p.initial_image, sources);
  if (type === 'img2img') return { image };
  if (p.mask === undefined) throw new ApiError(422, 'INVALID_PARAMETER', 'mask is required for inpaint', { param: 'mask' });
  return { image, mask: await resolveImage('mask', p.mask, sources) };
}

async function resolveImage(field: string, reference: string, sources: ImageSources): Promise<Upload> {
  let url: URL | undefined;
  try {
    url = new URL(reference);
  } catch {
    url = undefined;
  }
  const blobId = url === undefined ? reference : ownBlobId(url, sources.ownBases);
  if (blobId !== undefined) {
    const blob = await sources.blobs.get(sources.owner, blobId);
    if (!blob) throw new ApiError(422, 'INVALID_PARAMETER', `${field}: no blob ${JSON.stringify(blobId)} of yours on this server`, { param: field });
    return imageUpload(field, blob.data);
  }
  if (url === undefined) throw new ApiError(422, 'INVALID_PARAMETER', `${field} must be a blob id or URL`, { param: field });
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !sources.allowFetch.includes(url.host)) {
    throw new ApiError(422, 'INVALID_PARAMETER',
      `${field}: this server does not fetch ${url.protocol === 'file:' ? 'file: URLs' : `from ${url.host}`}; upload the image with POST /blob`
      + ' and pass its blob id (or start the server with --allow-fetch <host>)', { param: field });
  }
  return imageUpload(field, await fetchLimited(field, url, sources.maxBytes));
}

function ownBlobId(url: URL, ownBases: string[]): string | undefined {
  const match = /^(.*)\/blob\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
  return match && ownBases.includes(url.origin + match[1]) ? match[2] : undefined;
}

// Redirects are followed only within the same host, a few times; the body is cut at the limit.
async function fetchLimited(field: string, url: URL, maxBytes: number): Promise<Buffer> {
  let current = url;
  for (let hop = 0; hop < 3; hop++) {
    const response = await fetch(current, { redirect: 'manual', signal: AbortSignal.timeout(15_000) }).catch((error: unknown) => {
      throw new ApiError(422, 'FETCH_FAILED', `${field}: could not fetch ${current.href}: ${error instanceof Error ? error.message : String(error)}`, { param: field });
    });
    if (response.status >= 300 && response.status < 400) {
      const next = new URL(response.headers.get('location') ?? '', current);
      if (next.host !== url.host) throw new ApiError(422, 'FETCH_FAILED', `${field}: ${current.href} redirects to another host`, { param: field });
      current = next;
      continue;
    }
    if (!response.ok || !response.body) throw new ApiError(422, 'FETCH_FAILED', `${field}: ${current.href} answered ${response.status}`, { param: field });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += chunk.byteLength;
      if (size > maxBytes) throw new ApiError(413, 'UPLOAD_TOO_LARGE', `${field}: ${current.href} is larger than the upload limit`, { param: field });
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks);
  }
  throw new ApiError(422, 'FETCH_FAILED', `${field}: too many redirects at ${url.href}`, { param: field });
}
