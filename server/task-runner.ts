// The worker side: turns one queued task into PNGs, one library call per image (count 1, seed =
// base seed + index), so that progress, persistence and resume all work per image.

import path from 'node:path';

import { SdnodeError, type GeneratedImage, type ImageOptions, type Model, type Progress } from '../lib/index.js';
import type { TaskLog } from './log.js';
import type { TaskJob, TaskProcessor } from './queue.js';
import type { TaskStore } from './task-store.js';
import { isFinished, type TaskError, type TaskRecord } from './task.js';

/** The part of the library's Model the server uses. */
export type ImageModel = Pick<Model, 'path' | 'textToImage' | 'imageToImage' | 'inpaint' | 'close'>;

export interface TaskRunnerOptions {
  store: TaskStore;
  model: ImageModel;
  log: TaskLog;
}

interface TaskInputs {
  image?: Buffer;
  mask?: Buffer;
}

export function createTaskProcessor({ store, model, log }: TaskRunnerOptions): TaskProcessor {
  return async (job) => {
    const record = await store.read(job.taskId);
    if (!record || isFinished(record.state)) return;
    const totalImages = record.parameters.iterations;
    let imagesDone = await store.countImages(record.id);
    log.started(record, imagesDone);
    try {
      if (record.state !== 'IN_PROGRESS') await store.setState(record.id, 'IN_PROGRESS');
      const inputs = await readInputs(store, record);
      for (let index = imagesDone; index < totalImages; index++) {
        if (job.stopRequested()) {
          log.stopped(record, imagesDone);
          return;
        }
        job.reportProgress({ currentImageIndex: index, currentImageProgress: 0, totalImages });
        const startedAt = Date.now();
        const png = await generateImage(model, record, inputs, index, job, (progress) => {
          job.reportProgress({ currentImageIndex: index, currentImageProgress: progress.step / progress.steps, totalImages });
          log.step(record, index, progress.step, progress.steps);
        });
        await store.writeImage(record.id, index + 1, png);
        imagesDone = index + 1;
        log.imageDone(record, index, Date.now() - startedAt,
          path.relative(process.cwd(), store.imagePath(record.id, index + 1)));
      }
      await store.setState(record.id, 'COMPLETE');
      log.completed(record);
    } catch (error) {
      if (job.signal.aborted) {
        // Interrupted by shutdown: the unfinished image is simply missing and is made on resume.
        log.stopped(record, imagesDone);
        return;
      }
      const failure = describeFailure(error);
      await store.setState(record.id, 'FAILED', failure);
      log.failed(record, failure);
    }
  };
}

async function readInputs(store: TaskStore, record: TaskRecord): Promise<TaskInputs> {
  const inputs: TaskInputs = {};
  for (const slot of Object.keys(record.uploads) as (keyof TaskInputs)[]) {
    inputs[slot] = await store.readUpload(record.id, slot);
  }
  return inputs;
}

async function generateImage(
  model: ImageModel,
  record: TaskRecord,
  inputs: TaskInputs,
  index: number,
  job: TaskJob,
  onProgress: (progress: Progress) => void,
): Promise<Buffer> {
  const p = record.parameters;
  const options: ImageOptions = {
    ...(p.prompt !== '' && { prompt: p.prompt }),
    ...(p.negativePrompt !== undefined && { negativePrompt: p.negativePrompt }),
    ...(p.width !== undefined && { width: p.width }),
    ...(p.height !== undefined && { height: p.height }),
    ...(p.steps !== undefined && { steps: p.steps }),
    ...(p.cfgScale !== undefined && { cfgScale: p.cfgScale }),
    ...(p.sampler !== undefined && { sampler: p.sampler }),
    ...(p.scheduler !== undefined && { scheduler: p.scheduler }),
    ...(p.vaeTiling !== undefined && { vaeTiling: p.vaeTiling }),
    seed: p.seed + index,
    count: 1,
    signal: job.signal,
    onProgress,
  };
  const strength = p.strength !== undefined ? { strength: p.strength } : {};
  let images: GeneratedImage[];
  switch (record.kind) {
    case 'text-to-image':
      images = await model.textToImage(options);
      break;
    case 'image-to-image':
      images = await model.imageToImage({ ...options, ...strength, image: requireInput(inputs.image, 'image') });
      break;
    case 'inpaint-image':
      images = await model.inpaint({
        ...options,
        ...strength,
        ...(p.maskBlur !== undefined && { maskBlur: p.maskBlur }),
        image: requireInput(inputs.image, 'image'),
        mask: requireInput(inputs.mask, 'mask'),
      });
      break;
  }
  const [image] = images;
  if (!image) throw new Error('The library returned no image');
  return image.png;
}

function requireInput(data: Buffer | undefined, slot: string): Buffer {
  if (!data) throw new Error(`The task folder has no ${slot} upload`);
  return data;
}

function describeFailure(error: unknown): TaskError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof SdnodeError) return { code: error.code, message };
  // The library's option checks: a value the form allowed that this model does not.
  if (error instanceof TypeError || error instanceof RangeError) return { code: 'INVALID_PARAMETER', message };
  return { code: 'GENERATION_FAILED', message };
}
