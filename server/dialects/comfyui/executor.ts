// Runs a workflow job: its nodes in dependency order on the library's stage API, each node's
// outputs kept for the next workflow as ComfyUI keeps them (a node whose class, inputs and sources
// are unchanged is not run again and is reported cached), images stored as the job's images.

import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { Model, Progress } from '../../../lib/index.js';
import type { WorkflowProgress } from '../../jobs/job.js';
import type { WorkflowRunner } from '../../jobs/runner.js';
import { dependencies, linkOf, type Graph } from './graph.js';
import { findComponentModel } from './nodes/components.js';
import { nodeClasses } from './nodes/index.js';
import type { CheckpointRef, NodeContext } from './nodes/types.js';

export interface WorkflowRunnerOptions {
  /** The folder /upload/image writes to and LoadImage reads from. */
  inputDir: string;
  /** The folder LoraLoader's names are in; undefined: the server has none. */
  loraDir: string | undefined;
  /** The folder UpscaleModelLoader's names are in (ESRGAN files); undefined: the server has none. */
  upscalerDir?: string | undefined;
  /** The folder ControlNetLoader's names are in; undefined: the server has none. */
  controlNetDir?: string | undefined;
}

/** A file of the input folder by ComfyUI's name for it ("sub/name.png", optionally "… [input]"); throws for names outside it. */
export function inputPath(inputDir: string, name: string): string {
  const relative = name.replace(/\s*\[input\]$/, '');
  const resolved = path.resolve(inputDir, relative);
  if (relative === '' || path.isAbsolute(relative) || !resolved.startsWith(path.resolve(inputDir) + path.sep)) {
    throw new RangeError(`The image name ${JSON.stringify(name)} is not a file of the input folder`);
  }
  return resolved;
}

/** Each node's cache key: its class, its values and its sources' keys, so a change upstream is a change here. */
function signatures(graph: Graph, order: string[]): Map<string, string> {
  const keys = new Map<string, string>();
  for (const id of order) {
    const { class_type, inputs } = graph[id]!;
    const resolved = Object.entries(inputs).sort(([a], [b]) => a.localeCompare(b)).map(([name, value]) => {
      const link = linkOf(value);
      return [name, link ? { from: keys.get(link[0]), output: link[1] } : value];
    });
    keys.set(id, JSON.stringify([class_type, resolved]));
  }
  return keys;
}

/** A LoRA file by ComfyUI's name for it (its path in the LoRA folder); throws for names outside it. */
export function loraPath(loraDir: string | undefined, name: string): string {
  return folderFile(loraDir, name, 'LoRA', '--lora-dir or --models');
}

/** An upscaler file by ComfyUI's name for it (its path in the upscaler folder); throws for names outside it. */
export function upscalerPath(upscalerDir: string | undefined, name: string): string {
  return folderFile(upscalerDir, name, 'upscale model', '--upscaler-dir or --models');
}

/** A ControlNet file by ComfyUI's name for it (its path in the ControlNet folder); throws for names outside it. */
export function controlNetPath(controlNetDir: string | undefined, name: string): string {
  return folderFile(controlNetDir, name, 'ControlNet', '--controlnet-dir or --models');
}

function folderFile(dir: string | undefined, name: string, what: string, flags: string): string {
  if (dir === undefined) throw new RangeError(`The ${what} ${JSON.stringify(name)}: the server has no ${what} folder (${flags})`);
  const resolved = path.resolve(dir, name);
  if (path.isAbsolute(name) || !resolved.startsWith(path.resolve(dir) + path.sep)) {
    throw new RangeError(`The ${what} name ${JSON.stringify(name)} is not a file of the ${what} folder`);
  }
  return resolved;
}

export function createWorkflowRunner({ inputDir, loraDir, upscalerDir, controlNetDir }: WorkflowRunnerOptions): WorkflowRunner {
  // The outputs of the last workflow's nodes, by cache key.
  let cache = new Map<string, unknown[]>();

  return async ({ record, job, store, models, previewEvery }) => {
    const workflow = record.parameters.workflow;
    if (!workflow) throw new Error('The workflow job has no graph');
    const { graph } = workflow;
    const order = [...new Set(workflow.outputs.flatMap((output) => dependencies(graph, output)))];
    const keys = signatures(graph, order);
    const isOutput = (id: string) => nodeClasses[graph[id]!.class_type]!.outputNode === true;
    const state: WorkflowProgress = {
      node: null, cached: order.filter((id) => !isOutput(id) && cache.has(keys.get(id)!)), executed: [], outputs: {},
    };
    let step: { step: number; steps: number } | undefined;
    const report = () => job.reportProgress({
      currentImageIndex: 0,
      currentImageProgress: step ? step.step / step.steps : state.executed.length / order.length,
      totalImages: 1,
      ...step,
      workflow: { ...state, cached: [...state.cached], executed: [...state.executed], outputs: { ...state.outputs } },
    });

    const leases = new Map<string, Promise<{ model: Model; release: () => void }>>();
    const modelOf = (ref: CheckpointRef): Promise<Model> => {
      let lease = leases.get(ref.checkpoint);
      if (!lease) {
        lease = models.resolve(ref.checkpoint).then((entry) => models.acquire(entry))
          .then(({ model, release }) => ({ model: model as Model, release }));
        leases.set(ref.checkpoint, lease);
      }
      return lease.then(({ model }) => model);
    };
    let imageCount = 0;
    const pngInfo: Record<string, string> = { prompt: JSON.stringify(graph) };
    const extraPngInfo = workflow.extraData?.extra_pnginfo;
    if (typeof extraPngInfo === 'object' && extraPngInfo !== null) {
      for (const [key, value] of Object.entries(extraPngInfo)) if (value !== undefined && value !== null) pngInfo[key] = JSON.stringify(value);
    }

    const values = new Map<string, unknown[]>();
    const nextCache = new Map<string, unknown[]>();
    report();
    try {
      for (const id of order) {
        if (job.signal.aborted) throw new Error('The workflow was stopped');
        const key = keys.get(id)!;
        if (state.cached.includes(id)) {
          values.set(id, cache.get(key)!);
          nextCache.set(key, cache.get(key)!);
          continue;
        }
        const node = graph[id]!;
        state.node = id;
        step = undefined;
        report();
        const inputs = Object.fromEntries(Object.entries(node.inputs).map(([name, value]) => {
          const link = linkOf(value);
          return [name, link ? values.get(link[0])![link[1]] : value];
        }));
        const context: NodeContext = {
          nodeId: id,
          model: modelOf,
          readInput: (name) => readFile(inputPath(inputDir, name)),
          loraPath: (name) => loraPath(loraDir, name),
          upscalerPath: (name) => upscalerPath(upscalerDir, name),
          controlNetPath: (name) => controlNetPath(controlNetDir, name),
          componentModel: async (kind, files) => findComponentModel(await models.list(), kind, files),
          saveImage: async (png) => {
            imageCount++;
            await store.writeImage(record.id, imageCount, png);
            job.reportImage(imageCount);
            return imageCount;
          },
          pngInfo,
          signal: job.signal,
          previewEvery,
          onProgress: (progress: Progress) => {
            step = { step: progress.step, steps: progress.steps };
            report();
            if (progress.preview) job.reportPreview({ png: progress.preview.png, imageIndex: 0, step: progress.step });
          },
        };
        const result = await nodeClasses[node.class_type]!.run(inputs, context);
        values.set(id, result.outputs);
        if (!isOutput(id)) nextCache.set(key, result.outputs);
        state.executed.push(id);
        if (result.images) {
          state.outputs[id] = { images: result.images.map((image) => image.n), type: result.images[0]?.type ?? 'output' };
        }
        step = undefined;
        report();
      }
      state.node = null;
      report();
    } finally {
      cache = nextCache;
      for (const lease of leases.values()) void lease.then(({ release }) => release(), () => {});
    }
  };
}
