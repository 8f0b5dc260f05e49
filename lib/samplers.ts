// Sampler and schedule names: the engine's own, and AUTOMATIC1111's display names that users copy
// from its UI and its PNG `parameters` text ("DPM++ 2M Karras" is sampler + schedule in one).

/** Sampler names the engine knows. */
export const samplerNames = [
  'euler_a', 'euler', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'lcm', 'ddim',
  'lms', 'ipndm', 'ipndm_v', 'plms', 'ddim_trailing', 'tcd', 'res_multistep',
] as const;
export type SamplerName = (typeof samplerNames)[number];

/** Noise schedules the engine knows. */
export const schedulerNames = ['discrete', 'karras', 'exponential', 'lcm', 'simple', 'sgm_uniform', 'flux', 'beta', 'smoothstep'] as const;
export type SchedulerName = (typeof schedulerNames)[number];

/** AUTOMATIC1111's name for each engine sampler, as written in `parameters` ("Sampler: Euler a"). */
export const samplerDisplayNames: Readonly<Record<SamplerName, string>> = {
  euler_a: 'Euler a',
  euler: 'Euler',
  heun: 'Heun',
  dpm2: 'DPM2',
  'dpm++2s_a': 'DPM++ 2S a',
  'dpm++2m': 'DPM++ 2M',
  lcm: 'LCM',
  ddim: 'DDIM',
  lms: 'LMS',
  // AUTOMATIC1111 has no iPNDM or trailing DDIM; these are ComfyUI's and stable-diffusion.cpp's names.
  ipndm: 'iPNDM',
  ipndm_v: 'iPNDM_v',
  plms: 'PLMS',
  ddim_trailing: 'DDIM Trailing',
  tcd: 'TCD',
  res_multistep: 'RES Multistep',
};

/**
 * Other names tools use for engine samplers: the task API's 'k-lms' and AUTOMATIC1111's internal
 * 'k_lms' (its API lists it as an alias of "LMS").
 */
export const samplerAliases: Readonly<Record<string, SamplerName>> = {
  'k-lms': 'lms',
  k_lms: 'lms',
};

/**
 * AUTOMATIC1111's name for each non-default schedule, as written in `parameters` ("Schedule type:
 * Karras"); the default 'discrete' schedule is not written at all.
 */
export const schedulerDisplayNames: Readonly<Record<Exclude<SchedulerName, 'discrete'>, string>> = {
  karras: 'Karras',
  exponential: 'Exponential',
  lcm: 'LCM',
  simple: 'Simple',
  sgm_uniform: 'SGM Uniform',
  flux: 'Flux',
  beta: 'Beta',
  smoothstep: 'Smoothstep',
};

/**
 * Samplers that run flow-matching models (FLUX.1, SD3): those that need nothing but the sigmas, and
 * the ancestral ones in their flow form (the re-noising also scales the signal down).
 */
export const flowSamplerNames: readonly SamplerName[] = [
  'euler', 'euler_a', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'lcm', 'ipndm', 'ipndm_v', 'res_multistep',
];
/** Schedules of flow-matching models; 'flux' (FLUX.1's resolution-dependent shift) is their default. */
export const flowSchedulerNames: readonly SchedulerName[] = [
  'flux', 'discrete', 'simple', 'sgm_uniform', 'karras', 'exponential', 'beta', 'smoothstep',
];
/** Schedules of the UNet families (SD 1.x, 2.x, SDXL). */
export const unetSchedulerNames: readonly SchedulerName[] = ['discrete', 'karras', 'exponential', 'lcm', 'simple', 'beta', 'smoothstep'];

/**
 * The schedule a sampler gets when none is given, as stable-diffusion.cpp picks it: LCM and TCD
 * models were distilled on the LCM timestep grid, so `lcm` and `tcd` default to it; DDIM "trailing"
 * is DDIM on the trailing timesteps, the 'simple' schedule; every other sampler gets 'discrete'.
 */
export function defaultScheduler(sampler: SamplerName): SchedulerName {
  if (sampler === 'lcm' || sampler === 'tcd') return 'lcm';
  return sampler === 'ddim_trailing' ? 'simple' : 'discrete';
}

export interface SamplerChoice {
  sampler: SamplerName;
  /** Set when the name carried a schedule suffix ("DPM++ 2M Karras"). */
  scheduler?: SchedulerName;
}

const samplersByLowerName = new Map<string, SamplerName>();
for (const name of samplerNames) {
  samplersByLowerName.set(name, name);
  samplersByLowerName.set(samplerDisplayNames[name].toLowerCase(), name);
}
for (const [alias, name] of Object.entries(samplerAliases)) samplersByLowerName.set(alias, name);

const schedulerSuffixes = Object.entries(schedulerDisplayNames)
  .map(([scheduler, display]) => [` ${display.toLowerCase()}`, scheduler as SchedulerName] as const);

/** Looks up an engine or AUTOMATIC1111 sampler name, case-insensitively; undefined if unknown. */
export function findSampler(name: string): SamplerChoice | undefined {
  const lower = name.trim().toLowerCase();
  const sampler = samplersByLowerName.get(lower);
  if (sampler) return { sampler };
  for (const [suffix, scheduler] of schedulerSuffixes) {
    if (!lower.endsWith(suffix)) continue;
    const base = samplersByLowerName.get(lower.slice(0, -suffix.length));
    if (base) return { sampler: base, scheduler };
  }
  return undefined;
}

/** Looks up a schedule name case-insensitively; undefined if unknown. */
export function findScheduler(name: string): SchedulerName | undefined {
  const lower = name.trim().toLowerCase();
  return schedulerNames.find((known) => known === lower);
}
