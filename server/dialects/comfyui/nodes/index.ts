// Every node class a workflow may use, and /object_info's description of each.

import { componentNodes } from './components.js';
import { controlNetNodes } from './controlnet.js';
import { imageNodes } from './images.js';
import { latentNodes } from './latents.js';
import { samplingNodes } from './sampling.js';
import type { InputSpec, NodeDefinition } from './types.js';

export const nodeClasses: Readonly<Record<string, NodeDefinition>> = {
  ...samplingNodes, ...componentNodes, ...latentNodes, ...imageNodes, ...controlNetNodes,
};

/** The lists of values that depend on the server: its checkpoints and the input folder's images. */
export interface ChoiceLists {
  checkpoints: string[];
  inputImages: string[];
  /** The LoRA folder's files, relative to it. */
  loras: string[];
  /** The upscaler folder's files, relative to it. */
  upscaleModels: string[];
  /** The ControlNet folder's files, relative to it. */
  controlNets: string[];
  /** The file names of the component models' parts: diffusion models, text encoders, VAEs. */
  diffusionModels: string[];
  textEncoders: string[];
  vaes: string[];
}

/** An input's spec with the server's lists filled in where the node takes one of them. */
export function inputSpec(className: string, name: string, spec: InputSpec, lists: ChoiceLists): InputSpec {
  if (className === 'CheckpointLoaderSimple' && name === 'ckpt_name') return [lists.checkpoints];
  if (name === 'lora_name') return [lists.loras];
  if (className === 'UpscaleModelLoader' && name === 'model_name') return [lists.upscaleModels];
  if (name === 'control_net_name') return [lists.controlNets];
  if (name === 'unet_name') return [lists.diffusionModels];
  if (/^clip_name\d?$/.test(name)) return [lists.textEncoders];
  if (name === 'vae_name') return [lists.vaes];
  if ((className === 'LoadImage' || className === 'LoadImageMask') && name === 'image') return [lists.inputImages, spec[1] ?? {}];
  return spec;
}

/** One class as /object_info describes it. */
export function objectInfo(className: string, lists: ChoiceLists): Record<string, unknown> {
  const node = nodeClasses[className]!;
  const section = (inputs: Record<string, InputSpec> = {}) =>
    Object.fromEntries(Object.entries(inputs).map(([name, spec]) => [name, inputSpec(className, name, spec, lists)]));
  return {
    input: { required: section(node.required), ...(node.optional && { optional: section(node.optional) }) },
    input_order: { required: Object.keys(node.required), ...(node.optional && { optional: Object.keys(node.optional) }) },
    output: node.outputs.map(([type]) => type),
    output_is_list: node.outputs.map(() => false),
    output_name: node.outputs.map(([, name]) => name),
    name: className,
    display_name: className,
    description: node.description,
    python_module: 'nodes',
    category: node.category,
    output_node: node.outputNode === true,
    deprecated: false,
    experimental: false,
  };
}
