// Loaders of model parts: UNETLoader, CLIPLoader, DualCLIPLoader, TripleCLIPLoader, VAELoader. A
// part names a file of one of the server's models given as components (FLUX.1, SD3, Z-Image: the
// diffusion model, text encoders, VAE); the MODEL, CLIP or VAE it gives is that model's.

import path from 'node:path';

import type { ModelEntry } from '../../../models/registry.js';
import { outputs, type CheckpointRef, type NodeDefinition } from './types.js';

/** Which component of a model a loader names. */
export type ComponentKind = 'diffusionModel' | 'textEncoder' | 'vae';

/** The file names of a model's parts of one kind. */
function partsOf(entry: ModelEntry, kind: ComponentKind): string[] {
  const c = entry.components;
  if (!c) return [];
  const files = kind === 'diffusionModel' ? [c.diffusionModel] : kind === 'vae' ? [c.vae] : [c.clipL, c.clipG, c.t5xxl, c.llm];
  return files.filter((file): file is string => file !== undefined).map((file) => path.basename(file));
}

/** Every part file name of the component models, by kind, for /object_info's lists. */
export function componentFileLists(entries: readonly ModelEntry[]): { diffusionModels: string[]; textEncoders: string[]; vaes: string[] } {
  const names = (kind: ComponentKind) => [...new Set(entries.flatMap((entry) => partsOf(entry, kind)))].sort();
  return { diffusionModels: names('diffusionModel'), textEncoders: names('textEncoder'), vaes: names('vae') };
}

/** The model that has all of `files` as parts of `kind`; a RangeError naming them when none does. */
export function findComponentModel(entries: readonly ModelEntry[], kind: ComponentKind, files: string[]): string {
  const found = entries.find((entry) => files.every((file) => partsOf(entry, kind).includes(file)));
  if (!found) throw new RangeError(`No model of this server has ${files.join(' and ')} as its ${kind === 'textEncoder' ? 'text encoders' : kind}`);
  return found.name;
}

const ref = (checkpoint: string): CheckpointRef => ({ checkpoint, clipSkip: 0, loras: [] });

function clipLoader(names: string[], types: string[], description: string): NodeDefinition {
  return {
    category: 'advanced/loaders',
    description,
    // The names are the text encoder files of the server's component models; routes fill them in.
    required: { ...Object.fromEntries(names.map((name) => [name, [[]]])), type: [types] },
    optional: { device: [['default', 'cpu'], { advanced: true }] },
    outputs: [['CLIP', 'CLIP']],
    run: async (i, context) => outputs(ref(await context.componentModel('textEncoder', names.map((name) => i[name] as string)))),
  };
}

export const componentNodes: Record<string, NodeDefinition> = {
  UNETLoader: {
    category: 'advanced/loaders',
    description: 'The diffusion model of one of the server\'s component models (weight_dtype: as the model was loaded).',
    required: { unet_name: [[]], weight_dtype: [['default', 'fp8_e4m3fn', 'fp8_e4m3fn_fast', 'fp8_e5m2']] },
    outputs: [['MODEL', 'MODEL']],
    run: async (i, context) => outputs(ref(await context.componentModel('diffusionModel', [i.unet_name as string]))),
  },
  // ComfyUI loads Z-Image's Qwen3 as type lumina2 (Z-Image reads its text as Lumina 2 does).
  CLIPLoader: clipLoader(['clip_name'], ['stable_diffusion', 'sd3', 'chroma', 'flux', 'lumina2'], 'A text encoder of one of the server\'s component models.'),
  DualCLIPLoader: clipLoader(['clip_name1', 'clip_name2'], ['sdxl', 'sd3', 'flux'], 'Two text encoders of one of the server\'s component models (FLUX.1: CLIP-L and T5-XXL).'),
  TripleCLIPLoader: clipLoader(['clip_name1', 'clip_name2', 'clip_name3'], ['sd3'], 'Three text encoders of one of the server\'s component models (SD3: CLIP-L, CLIP-G, T5-XXL).'),
  VAELoader: {
    category: 'loaders',
    description: 'The VAE of one of the server\'s component models.',
    required: { vae_name: [[]] },
    outputs: [['VAE', 'VAE']],
    run: async (i, context) => outputs(ref(await context.componentModel('vae', [i.vae_name as string]))),
  },
};
