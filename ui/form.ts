// The generation form: its mode (which M1 endpoint), the fields it sends (named as M1's form
// fields, empty ones left out so the server's defaults apply), and filling it from an image's
// `parameters` text ("use these settings").

import type { ParsedParameters } from '../lib/parameters-text.js';
import {
  findSampler, findScheduler, samplerDisplayNames, samplerNames, schedulerDisplayNames, schedulerNames,
} from '../lib/samplers.js';
import { jobKinds, type JobKind } from './jobs.js';

export class GenerateForm {
  readonly element: HTMLFormElement;
  readonly #onModeChange: (mode: JobKind) => void;

  constructor(element: HTMLFormElement, onModeChange: (mode: JobKind) => void) {
    this.element = element;
    this.#onModeChange = onModeChange;
    fillOptions(this.#select('sampler'), samplerNames.map((name) => [name, samplerDisplayNames[name]]));
    fillOptions(this.#select('scheduler'), schedulerNames.map((name) => [name, name === 'discrete'
      ? 'Discrete' : schedulerDisplayNames[name]]));
    for (const radio of this.#modeRadios()) radio.addEventListener('change', () => this.#showMode());
    this.#showMode();
    this.#select('refiner_checkpoint').addEventListener('change', () => this.#enableSwitchAt());
  }

  get mode(): JobKind {
    const checked = this.#modeRadios().find((radio) => radio.checked)?.value;
    return (jobKinds as readonly string[]).includes(checked ?? '') ? checked as JobKind : 'text-to-image';
  }

  set mode(mode: JobKind) {
    for (const radio of this.#modeRadios()) radio.checked = radio.value === mode;
    this.#showMode();
  }

  /** The M1 form fields that have a value; the images are the caller's to add. */
  fields(): FormData {
    const data = new FormData(this.element);
    data.delete('mode');
    data.delete('brush');
    for (const [name, value] of [...data.entries()]) {
      if (typeof value === 'string' && value.trim() === '' && name !== 'prompt') data.delete(name);
    }
    return data;
  }

  /** The model choices: the server default (named when known), then the checkpoints; the refiner's: none, then the checkpoints. */
  setModels(defaultName: string | null, checkpoints: readonly string[]): void {
    const named = checkpoints.map((name): [string, string] => [name, name]);
    replaceOptions(this.#select('model'), [['', defaultName ? `Server default (${defaultName})` : 'Server default'], ...named]);
    replaceOptions(this.#select('refiner_checkpoint'), [['', 'None'], ...named]);
    this.#enableSwitchAt();
  }

  /** Fills the fields an A1111 `parameters` text names; the others keep their values. */
  fill(parameters: ParsedParameters): void {
    const { fields } = parameters;
    this.#input('prompt').value = parameters.prompt;
    this.#input('negative_prompt').value = parameters.negativePrompt;
    const size = /^(\d+)x(\d+)$/.exec(fields.Size ?? '');
    if (size) {
      this.#input('width').value = size[1] as string;
      this.#input('height').value = size[2] as string;
    }
    this.#setIfPresent('steps', fields.Steps);
    this.#setIfPresent('cfg_scale', fields['CFG scale']);
    this.#setIfPresent('seed', fields.Seed);
    this.#setIfPresent('strength', fields['Denoising strength']);
    this.#setIfPresent('mask_blur', fields['Mask blur']);
    const choice = fields.Sampler === undefined ? undefined : findSampler(fields.Sampler);
    if (choice) this.#select('sampler').value = choice.sampler;
    const scheduler = fields['Schedule type'] === undefined ? choice?.scheduler : findScheduler(fields['Schedule type']);
    // No "Schedule type" means the sampler's default schedule.
    this.#select('scheduler').value = scheduler ?? '';
    this.#selectIfListed('model', fields.Model);
    // An image made without a refiner is filled in as one without.
    this.#select('refiner_checkpoint').value = '';
    this.#selectIfListed('refiner_checkpoint', fields.Refiner);
    this.#enableSwitchAt();
    this.#setIfPresent('refiner_switch_at', fields.Refiner === undefined ? undefined : fields['Refiner switch at']);
  }

  /** Sets width and height (multiples of 8, within 64–2048) to an image's size, keeping its aspect ratio. */
  useSize(width: number, height: number): void {
    const scale = Math.min(1, 2048 / Math.max(width, height));
    const fit = (value: number): string => String(Math.max(64, Math.round((value * scale) / 8) * 8));
    this.#input('width').value = fit(width);
    this.#input('height').value = fit(height);
  }

  #selectIfListed(name: string, value: string | undefined): void {
    const select = this.#select(name);
    if (value !== undefined && [...select.options].some((option) => option.value === value)) select.value = value;
  }

  // The switch-at is sent only with a refiner (a disabled input is left out of the form data).
  #enableSwitchAt(): void {
    this.#input('refiner_switch_at').disabled = this.#select('refiner_checkpoint').value === '';
  }

  #setIfPresent(name: string, value: string | undefined): void {
    if (value !== undefined && value !== '') this.#input(name).value = value;
  }

  #showMode(): void {
    const mode = this.mode;
    for (const element of this.element.querySelectorAll<HTMLElement>('[data-modes]')) {
      const shown = (element.dataset.modes ?? '').split(' ').includes(mode);
      element.hidden = !shown;
      // A disabled fieldset's fields are left out of the form data.
      if (element instanceof HTMLFieldSetElement) element.disabled = !shown;
    }
    this.#onModeChange(mode);
  }

  #modeRadios(): HTMLInputElement[] {
    return [...this.element.querySelectorAll<HTMLInputElement>('input[name="mode"]')];
  }

  #input(name: string): HTMLInputElement | HTMLTextAreaElement {
    const element = this.element.elements.namedItem(name);
    if (element instanceof HTMLInputElement || element instanceof HTMLTextAreaElement) return element;
    throw new Error(`The form has no field ${name}`);
  }

  #select(name: string): HTMLSelectElement {
    const element = this.element.elements.namedItem(name);
    if (element instanceof HTMLSelectElement) return element;
    throw new Error(`The form has no select ${name}`);
  }
}

function fillOptions(select: HTMLSelectElement, options: readonly (readonly [string, string])[]): void {
  for (const [value, text] of options) select.append(new Option(text, value));
}

// The choice made stays when it is still offered.
function replaceOptions(select: HTMLSelectElement, options: readonly (readonly [string, string])[]): void {
  const current = select.value;
  select.replaceChildren();
  fillOptions(select, options);
  select.value = options.some(([value]) => value === current) ? current : '';
}
