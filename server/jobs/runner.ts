// The worker side: turns one queued job into PNGs, one library call per image (count 1, seed =
// base seed + index), so that progress, previews, persistence and resume all work per image.

import sharp from 'sharp';

import {
  familyNames, insertPngText, readPngText, SdnodeError, type GeneratedImage, type HiresOptions, type ImageOptions, type Model, type Progress,
  type RefinerOptions,
} from '../../lib/index.js';
import { UnknownModelError, type ModelRegistry } from '../models/registry.js';
import { withoutPaths } from '../redact.js';
import { inpaintMaskedRegion } from './inpaint-region.js';
import { imageSeed } from './parameters.js';
import type { JobLog } from './log.js';
import { screenImage, type ImageSafetyChecker } from './safety.js';
import type { JobProcessor, QueuedJob } from './queue.js';
import type { JobStore } from './store.js';
import { controlSlots, isFinished, jobErrorCodes, referenceSlots, type JobError, type JobRecord, type UploadSlot } from './job.js';

/** The part of the library's Model the server uses. */
export type ImageModel = Pick<Model, 'path' | 'textToImage' | 'imageToImage' | 'inpaint' | 'close'>;

export interface JobRunnerOptions {
  store: JobStore;
  models: ModelRegistry;
  log: JobLog;
  /** Sampling steps between previews; 0 turns them off. */
  previewEvery: number;
  /** Checks the images of jobs that ask for it (JobParameters.safetyCheck). */
  safetyChecker?: ImageSafetyChecker;
  /** Runs workflow jobs (ComfyUI's API); without it they fail. */
  runWorkflow?: WorkflowRunner;
}

/** What a workflow job's runner gets: the job, where its images go, and the models. */
export interface WorkflowRun {
  record: JobRecord;
  job: QueuedJob;
  store: JobStore;
  models: ModelRegistry;
  previewEvery: number;
}

/** Runs one workflow job to its end; throws as a failed image would (the job then FAILED). */
export type WorkflowRunner = (run: WorkflowRun) => Promise<void>;

type JobInputs = Partial<Record<UploadSlot, Buffer>>;

export function createJobProcessor({ store, models, log, previewEvery, safetyChecker, runWorkflow }: JobRunnerOptions): JobProcessor {
  return async (job) => {
    const record = await store.read(job.jobId);
    if (!record || isFinished(record.state)) return;
    const totalImages = record.parameters.count;
    let imagesDone = await store.countImages(record.id);
    log.started(record, imagesDone);
    let release: (() => void) | undefined;
    let releaseRefiner: (() => void) | undefined;
    try {
      if (record.state !== 'IN_PROGRESS') await store.setState(record.id, 'IN_PROGRESS');
      if (record.mode === 'workflow') {
        if (!runWorkflow) throw new Error('This server runs no workflows: start it with the comfyui API (--api comfyui)');
        await runWorkflow({ record, job, store, models, previewEvery });
        await store.setState(record.id, 'COMPLETE');
        log.completed(record);
        return;
      }
      const inputs = await readInputs(store, record);
      const lease = await models.acquire(await models.resolve(record.model));
      // Previews are not checked: a job whose images the checker may black out shows none.
      const jobPreviewEvery = record.parameters.safetyCheck === 'filter' && safetyChecker ? 0 : previewEvery;
      release = lease.release;
      const { refiner } = record.parameters;
      const refinerLease = refiner && await models.acquire(await models.resolve(refiner.checkpoint), true);
      releaseRefiner = refinerLease?.release;
      if (refiner && refinerLease) checkRefinerFamily(refiner.checkpoint, refinerLease.model);
      // The registry's models are the library's Model objects; ImageModel only narrows what the
      // runner calls on them.
      const handOff = refiner && refinerLease && { model: refinerLease.model as Model, switchAt: refiner.switchAt };
      // Files are numbered 1, 2, … in the order images finish; a skipped image leaves no file, so
      // after a skip the file number runs behind the image index (and its seed).
      for (let index = imagesDone; index < totalImages; index++) {
        if (job.stopRequested()) {
          log.stopped(record, imagesDone);
          return;
        }
        job.reportProgress({ currentImageIndex: index, currentImageProgress: 0, totalImages });
        const startedAt = Date.now();
        const signal = job.imageSignal();
        let png: Buffer;
        try {
          png = await generateImage(lease.model, handOff, record, inputs, index, signal, jobPreviewEvery, (progress) => {
            job.reportProgress({
              currentImageIndex: index, currentImageProgress: progress.step / progress.steps, totalImages, step: progress.step, steps: progress.steps,
            });
            if (progress.preview) job.reportPreview({ png: progress.preview.png, imageIndex: index, step: progress.step });
            log.step(record, index, progress.step, progress.steps);
          });
        } catch (error) {
          if (signal.aborted && !job.signal.aborted) {
            log.skipped(record, index);
            continue;
          }
          throw error;
        }
        let finished = await scaledToOutput(png, record);
        const { safetyCheck } = record.parameters;
        if (safetyCheck !== undefined) finished = await screenImage(finished, safetyCheck, safetyChecker);
        await store.writeImage(record.id, imagesDone + 1, finished);
        imagesDone++;
        job.reportImage(imagesDone);
        log.imageDone(record, index, Date.now() - startedAt, store.imageLocation(record.id, imagesDone));
      }
      await store.setState(record.id, 'COMPLETE');
      log.completed(record);
    } catch (error) {
      if (job.cancelled()) {
        const cancelled = { code: jobErrorCodes.cancelled, message: 'The job was cancelled' };
        await store.setState(record.id, 'FAILED', cancelled);
        log.failed(record, cancelled);
        return;
      }
      if (job.signal.aborted) {
        // Interrupted by shutdown: the unfinished image is simply missing and is made on resume.
        log.stopped(record, imagesDone);
        return;
      }
      const failure = describeFailure(error);
      await store.setState(record.id, 'FAILED', failure);
      log.failed(record, failure);
    } finally {
      releaseRefiner?.();
      release?.();
    }
  };
}

async function readInputs(store: JobStore, record: JobRecord): Promise<JobInputs> {
  const inputs: JobInputs = {};
  for (const slot of Object.keys(record.uploads) as UploadSlot[]) {
    inputs[slot] = await store.readUpload(record.id, slot);
  }
  return inputs;
}

async function generateImage(
  model: ImageModel,
  refiner: RefinerOptions | undefined,
  record: JobRecord,
  inputs: JobInputs,
  index: number,
  signal: AbortSignal,
  previewEvery: number,
  onProgress: (progress: Progress) => void,
): Promise<Buffer> {
  const p = record.parameters;
  const references = referenceSlots.map((slot) => inputs[slot]).filter((data): data is Buffer => data !== undefined);
  const options: ImageOptions = {
    ...(p.prompt !== '' && { prompt: p.prompt }),
    ...(p.negativePrompt !== undefined && !negativePromptUnused(model, p) && { negativePrompt: p.negativePrompt }),
    ...(p.width !== undefined && { width: p.width }),
    ...(p.height !== undefined && { height: p.height }),
    ...(p.steps !== undefined && { steps: p.steps }),
    ...(p.cfgScale !== undefined && { cfgScale: p.cfgScale }),
    ...(p.guidance !== undefined && { guidance: p.guidance }),
    ...(p.cache !== undefined && { cache: p.cache }),
    ...(p.sampler !== undefined && { sampler: p.sampler }),
    ...(p.scheduler !== undefined && { scheduler: p.scheduler }),
    ...(p.vaeTiling !== undefined && { vaeTiling: p.vaeTiling }),
    ...(p.clipSkip !== undefined && { clipSkip: p.clipSkip }),
    ...(p.tiling !== undefined && { tiling: p.tiling }),
    // One library call per image: image i's variation seed is the first one + i, as its seed.
    ...(p.subseed !== undefined && { subseed: imageSeed(p.subseed, index) }),
    ...(p.subseedStrength !== undefined && { subseedStrength: p.subseedStrength }),
    ...(p.seedResizeFromWidth !== undefined && { seedResizeFromWidth: p.seedResizeFromWidth }),
    ...(p.seedResizeFromHeight !== undefined && { seedResizeFromHeight: p.seedResizeFromHeight }),
    ...(previewEvery > 0 && { previewEvery }),
    ...(refiner && { refiner }),
    ...(references.length > 0 && { referenceImages: references }),
    ...(p.controlNets && p.controlNets.length > 0 && {
      controlNets: p.controlNets.map((unit, i) => ({ ...unit, image: requireInput(inputs[controlSlots[i]!], controlSlots[i]!) })),
    }),
    seed: imageSeed(p.seed, index),
    count: 1,
    signal,
    onProgress,
  };
  const strength = p.strength !== undefined ? { strength: p.strength } : {};
  let images: GeneratedImage[];
  switch (record.mode) {
    case 'txt2img':
      images = await model.textToImage({ ...options, ...(p.hires && { hires: p.hires as HiresOptions }) });
      break;
    case 'img2img':
      // A FLUX.1 Kontext edit starts from noise: its images are read as references, beside the prompt.
      images = inputs.image === undefined && references.length > 0
        ? await model.textToImage(options)
        : await model.imageToImage({ ...options, ...strength, image: requireInput(inputs.image, 'image') });
      break;
    case 'inpaint': {
      const inpaint = async (image: Buffer, mask: Buffer): Promise<Buffer> => firstPng(await model.inpaint({
        ...options,
        ...strength,
        ...(p.maskBlur !== undefined && { maskBlur: p.maskBlur }),
        ...(p.maskedStart !== undefined && { maskedStart: p.maskedStart }),
        image,
        mask,
      }));
      const image = requireInput(inputs.image, 'image');
      const mask = requireInput(inputs.mask, 'mask');
      if (p.inpaintRegionPadding !== undefined && p.width !== undefined && p.height !== undefined) {
        return inpaintMaskedRegion(image, mask, p.width, p.height, p.inpaintRegionPadding, inpaint);
      }
      return inpaint(image, mask);
    }
    case 'workflow':
      throw new Error('A workflow job reached the image runner');
  }
  return firstPng(images);
}

// The refiner continues an SDXL latent. The library refuses any other family too, but in terms of
// its own options; a client named a checkpoint.
function checkRefinerFamily(name: string, model: ImageModel): void {
  // Models passed in by an embedding app (loadModel) need not carry the library's info.
  const family = (model as Partial<Pick<Model, 'info'>>).info?.family;
  if (family === undefined || family === 'sdxl' || family === 'sdxl-refiner') return;
  throw new RangeError(`The refiner checkpoint ${name} is an ${familyNames[family]} model; a refiner must be an SDXL refiner `
    + 'or another SDXL checkpoint');
}

// A flow model (FLUX.1) at cfg 1, its default, runs one pass without the negative prompt; a preset's
// or client's negative prompt then must not need T5's tokenizer, nor show in the parameters.
function negativePromptUnused(model: ImageModel, p: JobRecord['parameters']): boolean {
  const prediction = (model as Partial<Pick<Model, 'info'>>).info?.prediction;
  return prediction === 'flow' && (p.cfgScale ?? 1) === 1;
}

function firstPng(images: GeneratedImage[]): Buffer {
  const [image] = images;
  if (!image) throw new Error('The library returned no image');
  return image.png;
}

// A size over the preset's pixel budget was generated smaller; the client asked for this one.
async function scaledToOutput(png: Buffer, record: JobRecord): Promise<Buffer> {
  const { outputWidth, outputHeight } = record.parameters;
  if (outputWidth === undefined || outputHeight === undefined) return png;
  const { width, height } = await sharp(png).metadata();
  if (width === outputWidth && height === outputHeight) return png;
  const scaled = await sharp(png).resize(outputWidth, outputHeight, { fit: 'fill', kernel: 'lanczos3' }).png().toBuffer();
  const { parameters } = readPngText(png);
  return parameters === undefined ? scaled : insertPngText(scaled, 'parameters', parameters);
}

function requireInput(data: Buffer | undefined, slot: string): Buffer {
  if (!data) throw new Error(`The job folder has no ${slot} upload`);
  return data;
}

/** The job's error as its clients read it: a code, and a message without the server's paths. */
// The library's advice names its load option; a server is given the file by a flag or a models folder.
const tokenizerMissing = 'This model\'s T5-XXL text encoder needs T5\'s SentencePiece vocabulary, which sdnode does not ship: '
  + 'get spiece.model or tokenizer.json from FLUX.1\'s tokenizer_2/ folder (google/t5-v1_1-xxl\'s) and start the server with '
  + '--t5-tokenizer <file>, or put it beside the model\'s components in the models folder (README, "Flux, SD3 and Chroma")';

function describeFailure(error: unknown): JobError {
  if (error instanceof SdnodeError && error.code === 'ERR_TOKENIZER_MISSING') return { code: error.code, message: tokenizerMissing };
  const message = withoutPaths(error instanceof Error ? error.message : String(error));
  if (error instanceof SdnodeError) return { code: error.code, message };
  // The library's option checks: a value the request allowed that this model does not.
  if (error instanceof TypeError || error instanceof RangeError) return { code: jobErrorCodes.invalidParameter, message };
  if (error instanceof UnknownModelError) return { code: 'MODEL_NOT_FOUND', message };
  return { code: jobErrorCodes.generationFailed, message };
}
