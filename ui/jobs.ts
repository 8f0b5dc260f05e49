// The jobs this page started, kept in localStorage so a reload (or a closed tab) loses none, and
// polled through their M1 resultUrl until they end. While a job runs its live preview is fetched
// too (the last one stays as the job's thumbnail); the page shows it from an object URL, since
// images need the API key.

import { Api, ApiError } from './api.js';

export const jobKinds = ['text-to-image', 'image-to-image', 'inpaint-image'] as const;
export type JobKind = (typeof jobKinds)[number];

export type JobStatus = 'QUEUED' | 'IN_PROGRESS' | 'COMPLETE' | 'FAILED';

export interface Job {
  resultUrl: string;
  kind: JobKind;
  prompt: string;
  submittedAt: number;
  status: JobStatus;
  imageUrls: string[];
  /** 0–1 over all the job's images. */
  progress?: number;
  /** "Image 2 of 3" while it runs. */
  progressText?: string;
  error?: { code: string; message: string };
}

/** M1's status object, as GET resultUrl answers it. */
interface M1Status {
  status: JobStatus;
  imageUrls?: string[];
  previewUrl?: string;
  progress?: { currentImageIndex: number; currentImageProgress: number; totalImages: number };
  error?: { code: string; message: string };
}

const storageKey = 'sdnode.jobs';
/** Finished jobs beyond this many (oldest first) are forgotten; their images stay on the server. */
const maxKeptJobs = 60;
const pollIntervalMs = 400;

export class JobTracker {
  readonly #api: Api;
  readonly #onChange: () => void;
  readonly #onPollError: (error: ApiError | undefined) => void;
  #jobs: Job[];
  /** resultUrl → object URL of its latest preview. */
  readonly #previews = new Map<string, string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #polling = false;
  #pollAgain = false;

  constructor(api: Api, handlers: { onChange: () => void; onPollError: (error: ApiError | undefined) => void }) {
    this.#api = api;
    this.#onChange = handlers.onChange;
    this.#onPollError = handlers.onPollError;
    this.#jobs = loadJobs();
  }

  /** Newest first. */
  get jobs(): readonly Job[] {
    return this.#jobs;
  }

  preview(job: Job): string | undefined {
    return this.#previews.get(job.resultUrl);
  }

  /** Sends the form to the M1 endpoint of `kind` and starts following the job. */
  async submit(kind: JobKind, form: FormData): Promise<Job> {
    const queued = await this.#api.json<{ status: JobStatus; resultUrl: string }>(this.#api.route(`/${kind}`), { method: 'POST', body: form });
    const prompt = form.get('prompt');
    const job: Job = {
      resultUrl: queued.resultUrl,
      kind,
      prompt: typeof prompt === 'string' ? prompt : '',
      submittedAt: Date.now(),
      status: queued.status,
      imageUrls: [],
    };
    this.#jobs.unshift(job);
    this.#changed();
    this.poll();
    return job;
  }

  /** DELETE resultUrl: a waiting job leaves the queue, a running one stops between steps. */
  async cancel(job: Job): Promise<void> {
    this.#apply(job, await this.#api.json<M1Status>(job.resultUrl, { method: 'DELETE' }));
    this.#changed();
  }

  /** Drops finished jobs from the page (their files stay on the server). */
  forgetFinished(): void {
    this.#keep(this.#jobs.filter((job) => !isFinished(job)));
    this.#changed();
  }

  /** Polls now and then every interval while any job is unfinished. */
  poll(): void {
    if (this.#polling) {
      this.#pollAgain = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#pollOnce(), 0);
  }

  async #pollOnce(): Promise<void> {
    this.#polling = true;
    this.#pollAgain = false;
    const running = this.#jobs.filter((job) => !isFinished(job));
    let failure: ApiError | undefined;
    for (const job of running) {
      try {
        const status = await this.#api.json<M1Status>(job.resultUrl);
        this.#apply(job, status);
        await this.#refreshPreview(job, status.previewUrl);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        // A job the server no longer knows (another --output, deleted files) has ended for good.
        if (error.status === 404) this.#apply(job, { status: 'FAILED', error: { code: error.code, message: error.message } });
        else failure = error;
      }
    }
    this.#polling = false;
    this.#onPollError(failure);
    if (running.length > 0) this.#changed();
    if (this.#pollAgain || this.#jobs.some((job) => !isFinished(job))) {
      this.#timer = setTimeout(() => void this.#pollOnce(), this.#pollAgain ? 0 : failure ? 4 * pollIntervalMs : pollIntervalMs);
    }
  }

  #apply(job: Job, status: M1Status): void {
    // A status fetched before a cancel can arrive after it; an ended job stays ended.
    if (isFinished(job) && status.status !== 'COMPLETE' && status.status !== 'FAILED') return;
    job.status = status.status;
    job.imageUrls = status.imageUrls ?? job.imageUrls;
    if (status.error) job.error = status.error;
    if (status.progress) {
      const { currentImageIndex, currentImageProgress, totalImages } = status.progress;
      job.progress = Math.min(1, (currentImageIndex + currentImageProgress) / totalImages);
      job.progressText = `Image ${Math.min(currentImageIndex + 1, totalImages)} of ${totalImages}`;
    } else {
      delete job.progress;
      delete job.progressText;
    }
  }

  async #refreshPreview(job: Job, previewUrl: string | undefined): Promise<void> {
    if (previewUrl === undefined) return;
    try {
      const blob = await this.#api.blob(previewUrl);
      this.#dropPreview(job);
      this.#previews.set(job.resultUrl, URL.createObjectURL(blob));
    } catch {
      // The job finished between the status and this request: the next poll says so.
    }
  }

  #dropPreview(job: Job): void {
    const url = this.#previews.get(job.resultUrl);
    if (url !== undefined) URL.revokeObjectURL(url);
    this.#previews.delete(job.resultUrl);
  }

  /** Keeps only `jobs`, and the previews of those. */
  #keep(jobs: Job[]): void {
    for (const job of this.#jobs) if (!jobs.includes(job)) this.#dropPreview(job);
    this.#jobs = jobs;
  }

  #changed(): void {
    const finished = this.#jobs.filter(isFinished);
    if (finished.length > maxKeptJobs) {
      const dropped = new Set(finished.slice(maxKeptJobs));
      this.#keep(this.#jobs.filter((job) => !dropped.has(job)));
    }
    localStorage.setItem(storageKey, JSON.stringify(this.#jobs));
    this.#onChange();
  }
}

export function isFinished(job: Job): boolean {
  return job.status === 'COMPLETE' || job.status === 'FAILED';
}

function loadJobs(): Job[] {
  try {
    const stored: unknown = JSON.parse(localStorage.getItem(storageKey) ?? '[]');
    return Array.isArray(stored) ? stored.filter(isJob) : [];
  } catch {
    return [];
  }
}

function isJob(value: unknown): value is Job {
  if (typeof value !== 'object' || value === null) return false;
  const job = value as Partial<Job>;
  return typeof job.resultUrl === 'string' && job.resultUrl.startsWith('/')
    && (jobKinds as readonly unknown[]).includes(job.kind)
    && typeof job.status === 'string' && Array.isArray(job.imageUrls);
}
