// What a dialect knows of a model's family before a job runs, so that a request's defaults and
// size checks can follow the family (FLUX.1 takes sizes in multiples of 16 and runs at cfg 1).
// Checkpoints in one file are UNet models (SD 1.x, 2.x, SDXL): the library loads flow models only
// from components, so those are the models asked about. Which flow family is read from the names in
// the diffusion model's header, by the tensors the engine tells them apart by (flow_model.cpp:
// SD3's x_embedder with CLIP-G, SD3.5's q/k norms, FLUX.1 dev's guidance_in). A model offered by a
// Redis worker has no components here (its paths are the worker's), so its family is unknown and
// the library decides at run time.

import { open, stat } from 'node:fs/promises';

import { familyDefaults } from '../../lib/options.js';
import type { ModelInfo } from '../../lib/index.js';
import type { JobParameters } from '../jobs/job.js';
import { checkSizeForModel, type SizeFieldNames } from '../jobs/parameters.js';
import type { ModelEntry } from '../models/registry.js';

export type FlowFamily = Extract<ModelInfo['family'], 'flux-schnell' | 'flux-dev' | 'chroma' | 'sd3' | 'sd3.5' | 'z-image'>;

/** What a request gets for what it does not give, per family (the library's own table). */
export interface FamilyDefaults {
  steps: number;
  cfgScale: number;
  size: number;
  sampler: string;
  scheduler: string;
  /** FLUX.1 dev's distilled guidance (the library's `guidance` default, as the model card's). */
  guidance: number;
}

// Tensor names sit in the first bytes: a safetensors header, or a GGUF file's metadata and tensor infos.
const largestHeaderBytes = 16 * 1024 * 1024;
const familyByFile = new Map<string, { stamp: string; family: FlowFamily | undefined }>();

/** The flow family of a model given as components; undefined for a checkpoint (a UNet family) or a file that cannot be read. */
export async function flowFamilyOf(entry: ModelEntry): Promise<FlowFamily | undefined> {
  const components = entry.components;
  if (!components) return undefined;
  const file = components.diffusionModel;
  let stamp: string;
  try {
    const { size, mtimeMs } = await stat(file);
    stamp = `${size}:${mtimeMs}`;
  } catch {
    return undefined;
  }
  const known = familyByFile.get(file);
  if (known?.stamp === stamp) return known.family;
  const header = await readHeader(file).catch(() => undefined);
  const family = header === undefined ? undefined : familyFromNames(header, components.clipG !== undefined);
  familyByFile.set(file, { stamp, family });
  return family;
}

/**
 * Throws the dialect's invalid-field error when the request's size does not suit the model: flow
 * models take multiples of 16 (see checkSizeForModel); `names`: the request's fields for messages.
 */
export async function checkSizeForEntry(entry: ModelEntry, parameters: Pick<JobParameters, 'width' | 'height'>,
  names?: SizeFieldNames): Promise<void> {
  checkSizeForModel(parameters, (await flowFamilyOf(entry)) !== undefined, names);
}

/** The library's defaults for a flow family (what it uses for fields a call leaves out). */
export function flowDefaults(family: FlowFamily): FamilyDefaults {
  const defaults = familyDefaults({ family, prediction: 'flow' });
  return {
    steps: defaults.steps, cfgScale: defaults.cfgScale, size: defaults.size,
    sampler: defaults.sampler ?? 'euler', scheduler: defaults.scheduler ?? 'discrete', guidance: 3.5,
  };
}

function familyFromNames(header: string, hasClipG: boolean): FlowFamily {
  if (header.includes('cap_embedder.')) return 'z-image';
  if (hasClipG || header.includes('x_embedder.proj.weight')) return /ln_q\.weight|norm_q\.weight/.test(header) ? 'sd3.5' : 'sd3';
  if (header.includes('distilled_guidance_layer.')) return 'chroma';
  return header.includes('guidance_in.') || header.includes('guidance_embedder.') ? 'flux-dev' : 'flux-schnell';
}

async function readHeader(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const start = Buffer.alloc(8);
    await handle.read(start, 0, 8, 0);
    const isGguf = start.subarray(0, 4).toString('latin1') === 'GGUF';
    // safetensors: a little-endian u64 header length, then the JSON header.
    const offset = isGguf ? 0 : 8;
    const length = isGguf ? largestHeaderBytes : Number(start.readBigUInt64LE(0));
    const bytes = Buffer.alloc(Math.min(length, largestHeaderBytes));
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, offset);
    return bytes.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
}

/**
 * The family of a model by the names in its checkpoint's header, as the engine tells them apart
 * (a flow family for components, else SDXL with two text encoders, the SDXL refiner with bigG
 * alone, SD 2.x with OpenCLIP, or SD 1.x), and its text encoders' width together: the token
 * embeddings' widths in a safetensors header, the family's usual one in a GGUF. Undefined when the
 * file cannot be read (or sits on a Redis worker).
 */
export async function modelTraitsOf(entry: ModelEntry): Promise<{ family: ModelInfo['family']; contextDim: number } | undefined> {
  if (entry.components) {
    const flow = await flowFamilyOf(entry);
    return flow === undefined ? undefined : { family: flow, contextDim: 0 };
  }
  if (entry.path === '') return undefined;
  const header = await readHeader(entry.path).catch(() => undefined);
  if (header === undefined) return undefined;
  const family = header.includes('conditioner.embedders.1.') ? 'sdxl'
    : header.includes('conditioner.embedders.0.model.') ? 'sdxl-refiner'
      : header.includes('cond_stage_model.model.') ? 'sd2' : 'sd1';
  let widths: number[] = [];
  try {
    const tensors = JSON.parse(header) as Record<string, { shape?: number[] }>;
    widths = Object.entries(tensors).filter(([name]) => /token_embedding\.weight$/.test(name)).map(([, t]) => t.shape?.[1] ?? 0);
  } catch {
    // A GGUF header: the family's widths.
  }
  const usual: Record<string, number> = { sd1: 768, sd2: 1024, sdxl: 2048, 'sdxl-refiner': 1280 };
  return { family, contextDim: widths.length > 0 ? widths.reduce((a, b) => a + b, 0) : usual[family] };
}
