// Sampler and schedule names: the engine's own, and AUTOMATIC1111's display names that users copy
// from its UI and its PNG `parameters` text ("DPM++ 2M Karras" is sampler + schedule in one).

/** Sampler names the engine knows. */
export const samplerNames = ['euler_a', 'euler', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'lcm', 'ddim'] as const;
export type SamplerName = (typeof samplerNames)[number];

/** Noise schedules the engine knows. */
export const schedulerNames = ['discrete', 'karras', 'exponential', 'lcm'] as const;
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
};

/**
 * AUTOMATIC1111's name for each non-default schedule, as written in `parameters` ("Schedule type:
 * Karras"); the default 'discrete' schedule is not written at all.
 */
export const schedulerDisplayNames: Readonly<Record<Exclude<SchedulerName, 'discrete'>, string>> = {
  karras: 'Karras',
  exponential: 'Exponential',
  lcm: 'LCM',
};

/**
 * The schedule a sampler gets when none is given: LCM models were distilled on their own timestep
 * grid, so `lcm` defaults to it (as stable-diffusion.cpp does); every other sampler to 'discrete'.
 */
export function defaultScheduler(sampler: SamplerName): SchedulerName {
  return sampler === 'lcm' ? 'lcm' : 'discrete';
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
