// The generation form: its mode (which M1 endpoint), the fields it sends (named as M1's form
// fields, empty ones left out so the server's defaults apply), the fields that follow the chosen
// model's family, and filling it from an image's `parameters` text ("use these settings").

import type { ParsedParameters } from '../lib/parameters-text.js';
import {
  findSampler, findScheduler, flowSamplerNames, flowSchedulerNames, samplerDisplayNames, samplerNames, schedulerDisplayNames,
  schedulerNames,
} from '../lib/samplers.js';
import type { FamilyDefaults, FlowFamily } from '../server/dialects/model-family.js';
import { byId } from './dom.js';
import { jobKinds, type JobKind } from './jobs.js';

/** A model of GET /v1/models: flow models (FLUX.1, SD3) say their family, with its defaults; FLUX.1 Kontext says so. */
export interface ModelChoice {
  id: string;
  family?: FlowFamily;
  defaults?: FamilyDefaults;
  kontext?: boolean;
}

/** The placeholders and size step the page is written with: those of the UNet models (SD 1.x, 2.x, SDXL). */
interface UnetFields {
  steps: string;
  cfgScale: string;
  size: string;
  sizeStep: string;
}

const sizeFields = ['width', 'height'] as const;

export class GenerateForm {
  readonly element: HTMLFormElement;
  readonly #onModeChange: (mode: JobKind) => void;
  readonly #unetFields: UnetFields;
  #defaultModel: string | null = null;
  #models: readonly ModelChoice[] = [];
  /** The sampler and schedule the user picked, picked again when a model that offers them is chosen. */
  readonly #picked = new Map<'sampler' | 'scheduler', string>();

  constructor(element: HTMLFormElement, onModeChange: (mode: JobKind) => void) {
    this.element = element;
    this.#onModeChange = onModeChange;
    this.#unetFields = {
      steps: this.#number('steps').placeholder,
      cfgScale: this.#number('cfg_scale').placeholder,
      size: this.#number('width').placeholder,
      sizeStep: this.#number('width').step,
    };
    for (const radio of this.#modeRadios()) radio.addEventListener('change', () => this.#showMode());
    this.#showMode();
    this.#select('refiner_checkpoint').addEventListener('change', () => this.#enableSwitchAt());
    this.#select('model').addEventListener('change', () => this.#followModel());
    this.#number('cfg_scale').addEventListener('input', () => this.#enableNegativePrompt());
    for (const name of ['sampler', 'scheduler'] as const) {
      const select = this.#select(name);
      select.addEventListener('change', () => this.#picked.set(name, select.value));
    }
    this.#followModel();
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

  /** The model choices: the server default (named when known), then the models; the refiner's: none, then the models. */
  setModels(defaultName: string | null, models: readonly ModelChoice[]): void {
    this.#defaultModel = defaultName;
    this.#models = models;
    const named = models.map(({ id }): [string, string] => [id, id]);
    replaceOptions(this.#select('model'), [['', defaultName ? `Server default (${defaultName})` : 'Server default'], ...named]);
    replaceOptions(this.#select('refiner_checkpoint'), [['', 'None'], ...named]);
    this.#enableSwitchAt();
    this.#followModel();
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
    this.#setIfPresent('guidance', fields['Distilled CFG Scale']);
    this.#setIfPresent('seed', fields.Seed);
    this.#setIfPresent('strength', fields['Denoising strength']);
    this.#setIfPresent('mask_blur', fields['Mask blur']);
    const choice = fields.Sampler === undefined ? undefined : findSampler(fields.Sampler);
    if (choice) this.#picked.set('sampler', choice.sampler);
    const scheduler = fields['Schedule type'] === undefined ? choice?.scheduler : findScheduler(fields['Schedule type']);
    // No "Schedule type" means the sampler's default schedule.
    this.#picked.set('scheduler', scheduler ?? '');
    this.#selectIfListed('model', fields.Model);
    this.#followModel();
    // An image made without a refiner is filled in as one without.
    this.#select('refiner_checkpoint').value = '';
    this.#selectIfListed('refiner_checkpoint', fields.Refiner);
    this.#enableSwitchAt();
    this.#setIfPresent('refiner_switch_at', fields.Refiner === undefined ? undefined : fields['Refiner switch at']);
  }

  /** Sets width and height (multiples of the model's size step, within 64–2048) to an image's size, keeping its aspect ratio. */
  useSize(width: number, height: number): void {
    const scale = Math.min(1, 2048 / Math.max(width, height));
    const step = Number(this.#number('width').step);
    const fit = (value: number): string => String(Math.max(64, Math.round((value * scale) / step) * step));
    this.#input('width').value = fit(width);
    this.#input('height').value = fit(height);
  }

  /** The chosen model's flow defaults; undefined for a UNet model or one whose family the server does not know. */
  #flowDefaults(): (FamilyDefaults & { family: FlowFamily }) | undefined {
    const model = this.#chosenModel();
    return model?.family && model.defaults ? { ...model.defaults, family: model.family } : undefined;
  }

  #chosenModel(): ModelChoice | undefined {
    const name = this.#select('model').value || this.#defaultModel;
    return this.#models.find(({ id }) => id === name);
  }

  // A flow model takes its own samplers and schedules, sizes in steps of 16 (2×2 patches of 8-pixel
  // latent cells) and other defaults; the placeholders show them, as empty fields get them.
  #followModel(): void {
    const flow = this.#flowDefaults();
    const unet = this.#unetFields;
    const samplers = flow ? flowSamplerNames : samplerNames;
    this.#offer('sampler', samplers.map((name) => [name, samplerDisplayNames[name]]), flow?.sampler ?? samplers[0] ?? '');
    const schedules = flow ? flowSchedulerNames : schedulerNames;
    const defaultSchedule = flow ? `Default (${scheduleName(flow.scheduler)})` : 'Sampler\'s default';
    this.#offer('scheduler', [['', defaultSchedule], ...schedules.map((name): [string, string] => [name, scheduleName(name)])], '');
    this.#number('steps').placeholder = flow ? String(flow.steps) : unet.steps;
    this.#number('cfg_scale').placeholder = flow ? String(flow.cfgScale) : unet.cfgScale;
    for (const name of sizeFields) this.#number(name).step = flow ? '16' : unet.sizeStep;
    // Only FLUX.1 dev was distilled with a guidance input; a hidden field is also disabled, so it is not sent.
    const guidance = this.#number('guidance');
    const withGuidance = flow?.family === 'flux-dev';
    byId('guidance-field', HTMLElement).hidden = !withGuidance;
    guidance.disabled = !withGuidance;
    if (flow) guidance.placeholder = String(flow.guidance);
    this.#enableNegativePrompt();
    // FLUX.1 Kontext reads the input image as a reference: no strength, a hint on how to prompt it.
    this.#showMode();
  }

  // At cfg 1 a flow model runs one pass per step, which never reads the negative prompt (FLUX.1's
  // default); a disabled field is not sent, and its text stays for a higher cfg.
  #enableNegativePrompt(): void {
    const flow = this.#flowDefaults();
    const cfg = this.#number('cfg_scale').value;
    const unused = flow !== undefined && (cfg === '' ? flow.cfgScale : Number(cfg)) === 1;
    this.#input('negative_prompt').disabled = unused;
    byId('negative-prompt-hint', HTMLElement).hidden = !unused;
  }

  /** Offers `options` in a select: what the user picked when offered, else `fallback`. */
  #offer(name: 'sampler' | 'scheduler', options: readonly (readonly [string, string])[], fallback: string): void {
    const select = this.#select(name);
    const picked = this.#picked.get(name);
    select.replaceChildren();
    fillOptions(select, options);
    select.value = options.some(([value]) => value === picked) ? picked as string : fallback;
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

  // Elements show in their data-modes; data-kontext="only" ones only for a FLUX.1 Kontext model, "never" ones never for one.
  #showMode(): void {
    const mode = this.mode;
    const kontext = this.#chosenModel()?.kontext === true;
    // A Kontext edit makes the input image's size unless one is given.
    const size = kontext && mode === 'image-to-image' ? 'image\'s' : String(this.#flowDefaults()?.size ?? this.#unetFields.size);
    for (const name of sizeFields) this.#number(name).placeholder = size;
    for (const element of this.element.querySelectorAll<HTMLElement>('[data-modes]')) {
      const forModel = element.dataset.kontext === undefined || (element.dataset.kontext === 'only') === kontext;
      const shown = forModel && (element.dataset.modes ?? '').split(' ').includes(mode);
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

  #number(name: string): HTMLInputElement {
    const element = this.element.elements.namedItem(name);
    if (element instanceof HTMLInputElement) return element;
    throw new Error(`The form has no input ${name}`);
  }

  #select(name: string): HTMLSelectElement {
    const element = this.element.elements.namedItem(name);
    if (element instanceof HTMLSelectElement) return element;
    throw new Error(`The form has no select ${name}`);
  }
}

/** A schedule as AUTOMATIC1111 names it; a name the page does not know, as given. */
function scheduleName(name: string): string {
  const known = schedulerNames.find((schedule) => schedule === name);
  if (known === undefined) return name;
  return known === 'discrete' ? 'Discrete' : schedulerDisplayNames[known];
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
