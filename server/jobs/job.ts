// What a job is, independent of the API dialect that asked for it, where it is stored or which
// process runs it. Every dialect translates its requests into these and back.

import type { CacheOptions, ControlNetUnit, MaskedStart } from '../../lib/index.js';

/** What the engine is asked to do; 'workflow': a graph of stage calls (ComfyUI's API format). */
export const jobModes = ['txt2img', 'img2img', 'inpaint', 'workflow'] as const;
export type JobMode = (typeof jobModes)[number];

export type JobState = 'QUEUED' | 'IN_PROGRESS' | 'COMPLETE' | 'FAILED';

/**
 * FLUX.1 Kontext's reference images (the library's `referenceImages`, at most 4), in order. An
 * img2img job with these and no `image` reads them beside the prompt and noises nothing.
 */
export const referenceSlots = ['reference1', 'reference2', 'reference3', 'reference4'] as const;

/** ControlNet units' control images, in the order of the job's `controlNets`. */
export const controlSlots = ['control1', 'control2', 'control3', 'control4', 'control5', 'control6', 'control7', 'control8'] as const;

/** Upload slots a job can have; the stored file is `<slot>.<ext>`, never a user-supplied name. */
export type UploadSlot = 'image' | 'mask' | (typeof referenceSlots)[number] | (typeof controlSlots)[number];

/**
 * A ControlNet unit of a job: the library's unit with every value given, less its image (upload
 * slot control<N>); `model` is the ControlNet's name in the server's ControlNet folder.
 */
export type JobControlNet = Required<Omit<ControlNetUnit, 'image' | 'cannyLow' | 'cannyHigh'>> & Pick<ControlNetUnit, 'cannyLow' | 'cannyHigh'>;

/** Generation parameters in the library's terms; absent fields take the library's defaults. */
export interface JobParameters {
  prompt: string;
  negativePrompt?: string;
  /** Images to make, 1–16. */
  count: number;
  /** Seed of the first image; image i uses seed + i. Always chosen before the job is stored. */
  seed: number;
  steps?: number;
  width?: number;
  height?: number;
  cfgScale?: number;
  /** FLUX.1 dev's distilled guidance (the library's `guidance`; Forge's "Distilled CFG Scale"). */
  guidance?: number;
  /** Step caching (the library's `cache`). */
  cache?: CacheOptions;
  sampler?: string;
  scheduler?: string;
  strength?: number;
  maskBlur?: number;
  /** What the masked region starts from (the library's `maskedStart`). */
  maskedStart?: MaskedStart;
  /** Run the VAE in tiles (the library's `vaeTiling`). */
  vaeTiling?: boolean;
  /** CLIP skip in AUTOMATIC1111's numbering (the library's `clipSkip`). */
  clipSkip?: number;
  /** Seamless tiling (the library's `tiling`). */
  tiling?: boolean;
  /** Variation seed of the first image and how far toward it (the library's `subseed`, `subseedStrength`). */
  subseed?: number;
  subseedStrength?: number;
  /** Size the noise is drawn at (the library's `seedResizeFromWidth/Height`). */
  seedResizeFromWidth?: number;
  seedResizeFromHeight?: number;
  /** A second, image-to-image pass at a larger size (the library's `hires`). */
  hires?: {
    scale?: number;
    width?: number;
    height?: number;
    upscaler?: string;
    steps?: number;
    denoisingStrength?: number;
    prompt?: string;
    negativePrompt?: string;
  };
  /** Another checkpoint (by its name in the server's models) takes over from step round(steps × switchAt) (the library's `refiner`). */
  refiner?: { checkpoint: string; switchAt: number };
  /** ControlNet units (the library's `controlNets`); unit i's image is upload slot control<i+1>. */
  controlNets?: JobControlNet[];
  /** Inpaint only the mask's bounding box (plus this many pixels) at the full size, then paste it back. */
  inpaintRegionPadding?: number;
  /** Scale each finished image to this size (an OpenAI size larger than the preset's pixel budget). */
  outputWidth?: number;
  outputHeight?: number;
  /**
   * Run the safety checker on each finished image and store its verdict with the image (read it
   * with `imageSafety()` from jobs/safety.ts): 'report' keeps a flagged image, 'filter' makes it
   * black. Absent: no check.
   */
  safetyCheck?: 'report' | 'filter';
  /**
   * Workflow jobs: the graph in ComfyUI's API format (node id → { class_type, inputs }), checked
   * when it was submitted, and what the submitting client sent beside it.
   */
  workflow?: {
    graph: Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    /** The node ids whose outputs the client wants (the graph's output nodes). */
    outputs: string[];
    clientId?: string;
    /** The id the client gave the prompt (ComfyUI's prompt_id); absent: the job id is the prompt id. */
    promptId?: string;
    extraData?: Record<string, unknown>;
    /** The queue number ComfyUI clients see. */
    number: number;
  };
}

export interface JobError {
  code: string;
  message: string;
}

/** What job.json holds. */
export interface JobRecord {
  id: string;
  mode: JobMode;
  /** The dialect that created it ('m1', 'openai', …): decides which URLs show it. */
  dialect: string;
  /** Name of the checkpoint in the models registry; absent: the server's default model. */
  model?: string;
  /** The user who made it, for dialects with users (the task API); absent elsewhere. */
  owner?: string;
  parameters: JobParameters;
  /** File names of the uploads inside the job folder, e.g. { image: 'image.png' }. */
  uploads: Partial<Record<UploadSlot, string>>;
  state: JobState;
  error: JobError | null;
  /** ISO 8601 times. */
  createdAt: string;
  updatedAt: string;
}

/** Live progress of a running job. */
export interface JobProgress {
  /** 0-based index of the image being made. */
  currentImageIndex: number;
  /** 0–1 within the current image. */
  currentImageProgress: number;
  totalImages: number;
  /** Sampling step of the current image just finished, and how many it takes (once sampling started). */
  step?: number;
  steps?: number;
  /** Workflow jobs: where the graph stands. */
  workflow?: WorkflowProgress;
}

/** How far a workflow job has got: every field is the whole state, so each report stands alone. */
export interface WorkflowProgress {
  /** The node running now; null once every node has run. */
  node: string | null;
  /** Nodes whose outputs came from the previous workflow's (not run again). */
  cached: string[];
  /** Nodes that have run, in order. */
  executed: string[];
  /** Output nodes done so far: the numbers of the job images each wrote, and their kind. */
  outputs: Record<string, { images: number[]; type: 'output' | 'temp' }>;
}

/** The latest preview of a running job: a small PNG of the current latent. */
export interface JobPreview {
  png: Buffer;
  /** 0-based index of the image it belongs to. */
  imageIndex: number;
  /** Sampling step it shows, 1-based. */
  step: number;
}

/** Error codes the job system itself gives failed jobs. */
export const jobErrorCodes = {
  cancelled: 'CANCELLED',
  generationFailed: 'GENERATION_FAILED',
  invalidParameter: 'INVALID_PARAMETER',
  /** With --redis: no worker offered the job's model within --no-worker-timeout. */
  noWorker: 'NO_WORKER',
  /** With --redis: the job's workers died or lost Redis more often than --attempts allows. */
  workerLost: 'WORKER_LOST',
} as const;

export function isJobMode(value: string): value is JobMode {
  return (jobModes as readonly string[]).includes(value);
}

export function isFinished(state: JobState): boolean {
  return state === 'COMPLETE' || state === 'FAILED';
}
