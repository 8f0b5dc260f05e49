// The queue panel: one card per job this page started, updated in place (so focus and the live
// preview stay put) with its state, progress bar, preview and a cancel button.

import { describeError } from './api.js';
import { element } from './dom.js';
import { isFinished, type Job, type JobKind, type JobTracker } from './jobs.js';

const kindNames: Record<JobKind, string> = {
  'text-to-image': 'Text to image',
  'image-to-image': 'Image to image',
  'inpaint-image': 'Inpaint',
};

interface JobCard {
  item: HTMLLIElement;
  preview: HTMLImageElement;
  state: HTMLElement;
  progress: HTMLProgressElement;
  progressText: HTMLElement;
  error: HTMLElement;
  cancel: HTMLButtonElement;
}

export class JobList {
  readonly #list: HTMLOListElement;
  readonly #empty: HTMLElement;
  readonly #tracker: JobTracker;
  readonly #onError: (message: string) => void;
  readonly #imageFor: (url: string) => string | undefined;
  readonly #cards = new Map<string, JobCard>();

  /** `imageFor` gives a loaded result image's object URL, the thumbnail of a finished job. */
  constructor(list: HTMLOListElement, empty: HTMLElement, tracker: JobTracker,
    handlers: { onError: (message: string) => void; imageFor: (url: string) => string | undefined }) {
    this.#list = list;
    this.#empty = empty;
    this.#tracker = tracker;
    this.#onError = handlers.onError;
    this.#imageFor = handlers.imageFor;
  }

  render(): void {
    const jobs = this.#tracker.jobs;
    const wanted = new Set(jobs.map((job) => job.resultUrl));
    for (const [url, card] of this.#cards) {
      if (!wanted.has(url)) {
        card.item.remove();
        this.#cards.delete(url);
      }
    }
    const items = jobs.map((job) => {
      const card = this.#cards.get(job.resultUrl) ?? this.#createCard(job);
      this.#update(card, job);
      return card.item;
    });
    if (items.some((item, i) => this.#list.children[i] !== item)) this.#list.replaceChildren(...items);
    this.#empty.hidden = jobs.length > 0;
  }

  #createCard(job: Job): JobCard {
    const item = element('li', 'job');
    const thumb = element('div', 'job-thumb');
    const preview = element('img');
    preview.alt = '';
    thumb.append(preview);
    const main = element('div', 'job-main');
    const prompt = element('p', 'job-prompt', job.prompt || '(no prompt)');
    const meta = element('p', 'job-meta');
    const state = element('span', 'badge');
    const time = new Date(job.submittedAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    meta.append(state, ` ${kindNames[job.kind]} · ${time}`);
    const progressRow = element('div', 'job-progress');
    const progress = element('progress');
    progress.max = 1;
    progress.setAttribute('aria-label', `Progress of "${shorten(job.prompt)}"`);
    const progressText = element('span', 'job-progress-text');
    progressRow.append(progress, progressText);
    const error = element('p', 'job-error');
    main.append(prompt, meta, progressRow, error);
    const cancel = element('button', 'quiet', 'Cancel');
    cancel.type = 'button';
    cancel.setAttribute('aria-label', `Cancel "${shorten(job.prompt)}"`);
    cancel.addEventListener('click', () => {
      cancel.disabled = true;
      this.#tracker.cancel(job).catch((failure: unknown) => {
        cancel.disabled = false;
        this.#onError(`Could not cancel: ${describeError(failure)}`);
      });
    });
    item.append(thumb, main, cancel);
    const card = { item, preview, state, progress, progressText, error, cancel };
    this.#cards.set(job.resultUrl, card);
    return card;
  }

  #update(card: JobCard, job: Job): void {
    const cancelled = job.status === 'FAILED' && job.error?.code === 'CANCELLED';
    const label = cancelled ? 'Cancelled'
      : { QUEUED: 'Waiting', IN_PROGRESS: 'Running', COMPLETE: 'Done', FAILED: 'Failed' }[job.status];
    card.item.dataset.status = cancelled ? 'CANCELLED' : job.status;
    card.state.textContent = label;
    const running = job.status === 'IN_PROGRESS';
    card.progress.hidden = !running;
    card.progress.value = job.progress ?? 0;
    card.progressText.textContent = running && job.progress !== undefined
      ? `${job.progressText ?? ''} · ${Math.round(job.progress * 100)}%`
      : job.status === 'QUEUED' ? 'In the queue'
        : job.status === 'COMPLETE' ? `${job.imageUrls.length} image${job.imageUrls.length === 1 ? '' : 's'}` : '';
    card.error.textContent = job.status === 'FAILED' && !cancelled && job.error ? describeError(job.error) : '';
    card.error.hidden = card.error.textContent === '';
    card.cancel.hidden = isFinished(job);
    const image = job.imageUrls[0] === undefined ? undefined : this.#imageFor(job.imageUrls[0]);
    const thumbnail = running ? this.#tracker.preview(job) : image ?? this.#tracker.preview(job);
    card.preview.hidden = thumbnail === undefined;
    if (thumbnail !== undefined && card.preview.src !== thumbnail) {
      card.preview.src = thumbnail;
      card.preview.alt = thumbnail === image ? '' : `Live preview of "${shorten(job.prompt)}"`;
    }
  }
}

function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 39)}…` : text || 'job';
}
