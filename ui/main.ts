// The web page of `sdnode serve`: the form, the input image and its mask, the queue and the
// gallery, wired to the server's public APIs only (M1 to generate, GET /v1/models for the model
// list, GET /health for the header).

import { Api, ApiError, describeError } from './api.js';
import { byId } from './dom.js';
import { GenerateForm, type ModelChoice } from './form.js';
import { Gallery } from './gallery.js';
import { InputImage } from './input-image.js';
import { JobList } from './job-list.js';
import { JobTracker } from './jobs.js';

/** GET /v1/models lists OpenAI's preset names too; M1 takes model names only. */
const builtInPresets = new Set(['dall-e-2', 'dall-e-3', 'gpt-image-1']);
const healthIntervalMs = 5000;
const keyHint = 'Enter the server\'s API key in the field at the top of the page.';

interface Health {
  ready: boolean;
  model: string | null;
  queue: { waiting: number; running: number };
  hint?: string;
}

/** The page-wide error line: one message per source (models, polling), the first one shown. */
class Banner {
  readonly #element: HTMLElement;
  readonly #messages = new Map<string, string>();

  constructor(element: HTMLElement) {
    this.#element = element;
  }

  set(source: string, error: unknown): void {
    if (error === undefined) this.#messages.delete(source);
    else this.#messages.set(source, error instanceof ApiError && error.status === 401 ? `${describeError(error)}. ${keyHint}` : describeError(error));
    const first = this.#messages.values().next();
    this.#element.hidden = first.done === true;
    this.#element.textContent = first.value ?? '';
  }
}

const api = new Api();
const banner = new Banner(byId('page-error', HTMLElement));
const formError = byId('form-error', HTMLElement);
const showFormError = (message: string): void => {
  formError.textContent = message;
  formError.hidden = message === '';
};

const input = new InputImage(showFormError, (width, height) => form.useSize(width, height));
const form = new GenerateForm(byId('generate-form', HTMLFormElement), (mode) => input.showMask(mode === 'inpaint-image'));
const tracker = new JobTracker(api, {
  onChange: () => {
    gallery.render(tracker);
    jobList.render();
    scheduleHealth();
  },
  onPollError: (error) => banner.set('poll', error),
});
const jobList = new JobList(byId('job-list', HTMLOListElement), byId('job-list-empty', HTMLElement), tracker, {
  onError: (message) => banner.set('cancel', new Error(message)),
  imageFor: (url) => gallery.objectUrl(url),
});
const gallery = new Gallery(api, byId('gallery', HTMLUListElement), byId('gallery-empty', HTMLElement), {
  useSettings: (parameters) => {
    form.fill(parameters);
    byId('prompt', HTMLTextAreaElement).focus();
  },
  useAsInput: (image) => {
    if (form.mode === 'text-to-image') form.mode = 'image-to-image';
    input.set(image.blob).catch((error: unknown) => showFormError(describeError(error)));
    byId('input-image-fields', HTMLElement).scrollIntoView({ behavior: 'smooth', block: 'start' });
  },
  onLoaded: () => jobList.render(),
});

const generateButton = byId('generate', HTMLButtonElement);
form.element.addEventListener('submit', (event) => {
  event.preventDefault();
  showFormError('');
  if (!form.element.reportValidity()) return;
  generateButton.disabled = true;
  submit().catch((error: unknown) => {
    showFormError(describeError(error));
    if (error instanceof ApiError && error.status === 401) byId('api-key', HTMLInputElement).focus();
  }).finally(() => {
    generateButton.disabled = false;
  });
});

async function submit(): Promise<void> {
  const mode = form.mode;
  const data = form.fields();
  if (mode !== 'text-to-image') {
    const image = input.blob;
    if (!image) throw new Error('Choose an input image first.');
    data.append('image', image, 'image');
    if (mode === 'inpaint-image') {
      if (input.mask.isEmpty()) throw new Error('Paint over the part of the image to repaint first (or use "Fill all").');
      data.append('mask', await input.mask.maskPng(), 'mask.png');
    }
  }
  await tracker.submit(mode, data);
}

const keyInput = byId('api-key', HTMLInputElement);
keyInput.value = api.key;
byId('key-form', HTMLFormElement).addEventListener('submit', (event) => {
  event.preventDefault();
  api.setKey(keyInput.value);
  const button = event.submitter instanceof HTMLButtonElement ? event.submitter : undefined;
  if (button) {
    button.textContent = 'Saved';
    setTimeout(() => { button.textContent = 'Save key'; }, 1500);
  }
  banner.set('poll', undefined);
  void refreshModels();
  gallery.retryFailed();
  tracker.poll();
});

byId('random-seed', HTMLButtonElement).addEventListener('click', () => {
  byId('seed', HTMLInputElement).value = '';
});
byId('clear-finished', HTMLButtonElement).addEventListener('click', () => tracker.forgetFinished());

let defaultModel: string | null = null;
let lastHealth = 0;
let healthTimer: ReturnType<typeof setTimeout> | undefined;
let models: ModelChoice[] = [];
const serverStatus = byId('server-status', HTMLElement);

/** The header's queue counts follow the jobs, refreshed at most once a second. */
function scheduleHealth(): void {
  if (healthTimer !== undefined) return;
  healthTimer = setTimeout(() => {
    healthTimer = undefined;
    void refreshHealth();
  }, Math.max(0, lastHealth + 1000 - Date.now()));
}

async function refreshHealth(): Promise<void> {
  lastHealth = Date.now();
  try {
    const health = await api.json<Health>(api.route('/health'));
    const { waiting, running } = health.queue;
    const model = health.model === null ? 'No model' : `Model: ${health.model}`;
    serverStatus.textContent = `${model} · ${running} running · ${waiting} waiting${health.ready ? '' : ` · ${health.hint ?? 'not ready'}`}`;
    serverStatus.dataset.ready = String(health.ready);
    if (health.model !== defaultModel) {
      defaultModel = health.model;
      form.setModels(defaultModel, models);
    }
  } catch (error) {
    serverStatus.textContent = describeError(error);
    serverStatus.dataset.ready = 'false';
  }
}

async function refreshModels(): Promise<void> {
  try {
    const list = await api.json<{ data: ModelChoice[] }>(api.route('/v1/models'));
    models = list.data.filter(({ id }) => !builtInPresets.has(id));
    banner.set('models', undefined);
  } catch (error) {
    // 404: the server was started without the OpenAI API (--api m1); the default model still works.
    models = [];
    banner.set('models', error instanceof ApiError && error.status === 404 ? undefined : error);
  }
  form.setModels(defaultModel, models);
}

gallery.render(tracker);
jobList.render();
tracker.poll();
void refreshHealth();
void refreshModels();
setInterval(() => void refreshHealth(), healthIntervalMs);
