// What a ComfyUI node is here: its inputs and outputs as /object_info lists them (ComfyUI's class
// names, input names, types, defaults and ranges), and a run() over the library's stage API.

import type { DecodedImage, Latent, Model, Progress, PromptConditioning } from '../../../../lib/index.js';

/** An input as /object_info lists it: a type name or a list of allowed values, and its options. */
export type InputSpec = [type: string | readonly (string | number)[], options?: Record<string, unknown>];

/** MODEL, CLIP and VAE values: the checkpoint they come from (every stage runs on its Model). */
export interface CheckpointRef {
  checkpoint: string;
  /** CLIPSetLastLayer's layer as the library counts it (1: the last). 0: the family's default. */
  clipSkip: number;
  /** LoRAs applied to this MODEL (in the sampler) or CLIP (in the text encoders): absolute paths and weights. */
  loras: { path: string; weight: number }[];
  /** ModelSamplingSD3's / ModelSamplingAuraFlow's flow shift for the sampler; absent: the family's. */
  flowShift?: number;
}

/** MASK values: one per pixel, 0–1 (1: repaint). */
export interface MaskValue {
  width: number;
  height: number;
  data: Float32Array;
}

/** IMAGE values: a batch of RGB images of one size. */
export type ImageBatch = DecodedImage[];

export type { Latent, PromptConditioning };

/** What a node's run() may use beside its inputs. */
export interface NodeContext {
  nodeId: string;
  /** The checkpoint's Model, held for the rest of the workflow. */
  model(ref: CheckpointRef): Promise<Model>;
  /** A file from the input folder (/upload/image), by ComfyUI's image name ("sub/name.png [input]"). */
  readInput(name: string): Promise<Buffer>;
  /** The absolute path of a LoRA by its name in the LoRA folder ("sub/name.safetensors"). */
  loraPath(name: string): string;
  /** The absolute path of an ESRGAN-family upscaler by its name in the upscaler folder. */
  upscalerPath(name: string): string;
  /** The absolute path of a ControlNet by its name in the ControlNet folder. */
  controlNetPath(name: string): string;
  /** The name of the server's component model that has every one of these files (by file name) as a part of `kind`. */
  componentModel(kind: 'diffusionModel' | 'textEncoder' | 'vae', files: string[]): Promise<string>;
  /** Stores a PNG among the job's images; returns its number. */
  saveImage(png: Buffer, type: 'output' | 'temp'): Promise<number>;
  /** The workflow and the client's extra_pnginfo, for the PNG text chunks ComfyUI writes. */
  pngInfo: Record<string, string>;
  signal: AbortSignal;
  previewEvery: number;
  onProgress(progress: Progress): void;
}

/** What run() returns: the node's outputs in order, and for output nodes the images they stored. */
export interface NodeResult {
  outputs: unknown[];
  images?: { n: number; type: 'output' | 'temp' }[];
}

export interface NodeDefinition {
  category: string;
  description: string;
  required: Record<string, InputSpec>;
  optional?: Record<string, InputSpec>;
  /** [type, name] of each output. */
  outputs: [string, string][];
  /** Whether the node is a workflow's goal (SaveImage, PreviewImage). */
  outputNode?: boolean;
  run(inputs: Record<string, unknown>, context: NodeContext): Promise<NodeResult>;
}

/** ComfyUI's int range of seeds (its 64-bit max): values above 2^53 - 1 are refused when they run. */
export const seedInput: InputSpec = ['INT', { default: 0, min: 0, max: 0xffffffffffffffff, control_after_generate: true }];

export function outputs(...values: unknown[]): NodeResult {
  return { outputs: values };
}
