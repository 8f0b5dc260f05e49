// What a task is, independent of where it is stored or which process runs it.

/** The three M1 endpoints; each is also the first segment of its tasks' URLs. */
export const taskKinds = ['text-to-image', 'image-to-image', 'inpaint-image'] as const;
export type TaskKind = (typeof taskKinds)[number];

export type TaskState = 'QUEUED' | 'IN_PROGRESS' | 'COMPLETE' | 'FAILED';

/** Upload slots a task can have; the stored file is `<slot>.<ext>`, never a user-supplied name. */
export type UploadSlot = 'image' | 'mask';

/** Generation parameters after form parsing; absent fields take the library's defaults. */
export interface TaskParameters {
  prompt: string;
  negativePrompt?: string;
  /** Images to make, 1–16. */
  iterations: number;
  /** Seed of the first image; image i uses seed + i. Chosen by the server when the form has none. */
  seed: number;
  steps?: number;
  width?: number;
  height?: number;
  cfgScale?: number;
  sampler?: string;
  scheduler?: string;
  strength?: number;
  maskBlur?: number;
  /** Run the VAE in tiles (the library's `vaeTiling`). */
  vaeTiling?: boolean;
}

export interface TaskError {
  code: string;
  message: string;
}

/** What task.json holds. */
export interface TaskRecord {
  id: string;
  kind: TaskKind;
  parameters: TaskParameters;
  /** File names of the uploads inside the task folder, e.g. { image: 'image.png' }. */
  uploads: Partial<Record<UploadSlot, string>>;
  state: TaskState;
  error: TaskError | null;
  /** ISO 8601 times. */
  createdAt: string;
  updatedAt: string;
}

/** Live progress of a running task, as GET /<kind>/<id> reports it. */
export interface TaskProgress {
  /** 0-based index of the image being made. */
  currentImageIndex: number;
  /** 0–1 within the current image. */
  currentImageProgress: number;
  totalImages: number;
}

export function isTaskKind(value: string): value is TaskKind {
  return (taskKinds as readonly string[]).includes(value);
}

export function isFinished(state: TaskState): boolean {
  return state === 'COMPLETE' || state === 'FAILED';
}
