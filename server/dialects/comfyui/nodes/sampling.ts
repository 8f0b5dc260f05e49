// Loaders, text and the samplers: CheckpointLoaderSimple, CLIPSetLastLayer, CLIPTextEncode,
// ConditioningZeroOut, KSampler, KSamplerAdvanced. Sampler and scheduler names are ComfyUI's,
// mapped onto the engine's; the noise is ComfyUI's (torch's CPU generator, one draw for the batch).

import type { Latent, PromptConditioning } from '../../../../lib/index.js';
import { outputs, seedInput, type CheckpointRef, type InputSpec, type NodeContext, type NodeDefinition } from './types.js';

/** ComfyUI's sampler names and the engine's for each. */
export const comfySamplers: Readonly<Record<string, string>> = {
  euler: 'euler',
  euler_ancestral: 'euler_a',
  heun: 'heun',
  dpm_2: 'dpm2',
  lms: 'lms',
  dpmpp_2s_ancestral: 'dpm++2s_a',
  dpmpp_2m: 'dpm++2m',
  ddim: 'ddim',
  lcm: 'lcm',
  ipndm: 'ipndm',
  ipndm_v: 'ipndm_v',
  res_multistep: 'res_multistep',
};

/**
 * ComfyUI's scheduler names and the engine's schedule for each: 'normal' is the evenly spaced
 * timesteps ('discrete'), 'simple' every (1000 / steps)-th one; sgm_uniform and ddim_uniform are
 * run as their nearest engine schedules (a little different sigmas).
 */
export const comfySchedulers: Readonly<Record<string, string>> = {
  normal: 'discrete',
  karras: 'karras',
  exponential: 'exponential',
  sgm_uniform: 'discrete',
  simple: 'simple',
  ddim_uniform: 'simple',
  beta: 'beta',
};

const samplerInputs: Record<string, InputSpec> = {
  steps: ['INT', { default: 20, min: 1, max: 10000 }],
  cfg: ['FLOAT', { default: 8.0, min: 0.0, max: 100.0, step: 0.1, round: 0.01 }],
  sampler_name: [Object.keys(comfySamplers)],
  scheduler: [Object.keys(comfySchedulers)],
  positive: ['CONDITIONING'],
  negative: ['CONDITIONING'],
  latent_image: ['LATENT'],
};

interface SampleInputs {
  model: CheckpointRef;
  seed: number;
  steps: number;
  cfg: number;
  sampler_name: string;
  scheduler: string;
  positive: Guided[];
  negative: Guided[];
  latent_image: Latent;
}

/**
 * CONDITIONING values: a list, as in ComfyUI (ConditioningCombine joins lists; the sampler takes the
 * mean of their predictions), each the prompt's with FluxGuidance's guidance when set.
 */
type Guided = PromptConditioning & { guidance?: number };

/** The ref with one more LoRA; strength 0 leaves it as it was, as ComfyUI does. */
function withLora(ref: CheckpointRef, file: string, weight: number): CheckpointRef {
  if (weight === 0) return ref;
  if (Math.abs(weight) > 10) throw new RangeError(`LoRA strength ${weight} is outside −10–10, the range sdnode merges`);
  return { ...ref, loras: [...ref.loras, { path: file, weight }] };
}

async function runSampler(
  i: SampleInputs, context: NodeContext, extra: { denoise?: number; startStep?: number; endStep?: number; addNoise?: boolean; returnWithLeftoverNoise?: boolean },
): Promise<Latent> {
  if (!Number.isSafeInteger(i.seed)) throw new RangeError(`seed ${i.seed} is above 2^53 - 1, the largest seed sdnode takes`);
  const model = await context.model(i.model);
  let latent = i.latent_image;
  // As ComfyUI does: an empty latent made for another family (EmptyLatentImage for FLUX.1) becomes
  // this model's empty latent of the same size.
  const own = model.emptyLatent({ width: latent.width, height: latent.height, batch: latent.batch });
  if (latent.channels !== own.channels && latent.data.every((v) => v === 0)) latent = own;
  const guidance = i.positive.find((c) => c.guidance !== undefined)?.guidance;
  const { flowShift } = i.model;
  // The shift of the discrete flow schedule; FLUX.1's schedule shifts by its mu (ModelSamplingFlux, not here).
  if (flowShift !== undefined && !['sd3', 'sd3.5', 'z-image'].includes(model.info.family)) {
    throw new RangeError(`ModelSamplingSD3 and ModelSamplingAuraFlow shift SD3 and Z-Image models; this is a ${model.info.family} model`);
  }
  return model.sample({
    latent, positive: i.positive, negative: i.negative, seed: i.seed, steps: i.steps, cfgScale: i.cfg,
    ...(guidance !== undefined && { guidance }),
    ...(flowShift !== undefined && { flowShift }),
    sampler: comfySamplers[i.sampler_name]!, scheduler: comfySchedulers[i.scheduler]!, rng: 'cpu', ...extra,
    ...(i.model.loras.length > 0 && { loras: i.model.loras }),
    signal: context.signal, onProgress: (p) => context.onProgress(p),
    ...(context.previewEvery > 0 && { previewEvery: context.previewEvery }),
  });
}

function modelSampling(defaultShift: number, description: string): NodeDefinition {
  return {
    category: 'advanced/model',
    description,
    required: { model: ['MODEL'], shift: ['FLOAT', { default: defaultShift, min: 0.0, max: 100.0, step: 0.01 }] },
    outputs: [['MODEL', 'MODEL']],
    run: async (i) => outputs({ ...(i.model as CheckpointRef), flowShift: i.shift as number }),
  };
}

export const samplingNodes: Record<string, NodeDefinition> = {
  CheckpointLoaderSimple: {
    category: 'loaders',
    description: 'Loads a diffusion model checkpoint; its MODEL, CLIP and VAE.',
    // The names are the server's models; routes fill them in (comfyui/object-info.ts).
    required: { ckpt_name: [[]] },
    outputs: [['MODEL', 'MODEL'], ['CLIP', 'CLIP'], ['VAE', 'VAE']],
    run: async (i) => {
      const ref: CheckpointRef = { checkpoint: i.ckpt_name as string, clipSkip: 0, loras: [] };
      return outputs(ref, ref, ref);
    },
  },
  LoraLoader: {
    category: 'loaders',
    description: 'Applies a LoRA to the MODEL (the sampler) and the CLIP (the text encoders), each with its strength.',
    // The names are the LoRA folder's files; routes fill them in.
    required: {
      model: ['MODEL'], clip: ['CLIP'], lora_name: [[]],
      strength_model: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01 }],
      strength_clip: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01 }],
    },
    outputs: [['MODEL', 'MODEL'], ['CLIP', 'CLIP']],
    run: async (i, context) => {
      const file = context.loraPath(i.lora_name as string);
      return outputs(withLora(i.model as CheckpointRef, file, i.strength_model as number), withLora(i.clip as CheckpointRef, file, i.strength_clip as number));
    },
  },
  LoraLoaderModelOnly: {
    category: 'loaders',
    description: 'Applies a LoRA to the MODEL only.',
    required: { model: ['MODEL'], lora_name: [[]], strength_model: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01 }] },
    outputs: [['MODEL', 'MODEL']],
    run: async (i, context) => outputs(withLora(i.model as CheckpointRef, context.loraPath(i.lora_name as string), i.strength_model as number)),
  },
  ModelSamplingSD3: modelSampling(3.0, 'The flow shift of the sampler that runs this MODEL (SD3, Z-Image): sigma = shift·t / (1 + (shift − 1)·t).'),
  // ComfyUI's Z-Image Turbo workflow sets its shift (3) with this node.
  ModelSamplingAuraFlow: modelSampling(1.73, 'The flow shift of the sampler that runs this MODEL (Z-Image, AuraFlow), as ModelSamplingSD3.'),
  CLIPSetLastLayer: {
    category: 'conditioning',
    description: 'Which CLIP layer the text is read from: -1 the last, -2 the one before (CLIP skip 2).',
    required: { clip: ['CLIP'], stop_at_clip_layer: ['INT', { default: -1, min: -24, max: -1, step: 1 }] },
    outputs: [['CLIP', 'CLIP']],
    run: async (i) => outputs({ ...(i.clip as CheckpointRef), clipSkip: -(i.stop_at_clip_layer as number) }),
  },
  CLIPTextEncode: {
    category: 'conditioning',
    description: 'Encodes a prompt (emphasis syntax as AUTOMATIC1111) with the text encoders.',
    required: { text: ['STRING', { multiline: true, dynamicPrompts: true }], clip: ['CLIP'] },
    outputs: [['CONDITIONING', 'CONDITIONING']],
    run: async (i, context) => {
      const clip = i.clip as CheckpointRef;
      const model = await context.model(clip);
      return outputs([await model.encodePrompt(i.text as string, {
        clipSkip: clip.clipSkip, signal: context.signal, ...(clip.loras.length > 0 && { loras: clip.loras }),
      })] satisfies Guided[]);
    },
  },
  FluxGuidance: {
    category: 'advanced/conditioning/flux',
    description: 'FLUX.1 dev\'s distilled guidance for the sampler that reads this conditioning.',
    required: { conditioning: ['CONDITIONING'], guidance: ['FLOAT', { default: 3.5, min: 0.0, max: 100.0, step: 0.1 }] },
    outputs: [['CONDITIONING', 'CONDITIONING']],
    run: async (i) => outputs((i.conditioning as Guided[]).map((c) => ({ ...c, guidance: i.guidance as number }))),
  },
  ConditioningZeroOut: {
    category: 'advanced/conditioning',
    description: 'Conditioning of zeros (what some workflows use as the negative).',
    required: { conditioning: ['CONDITIONING'] },
    outputs: [['CONDITIONING', 'CONDITIONING']],
    run: async (i) => outputs((i.conditioning as Guided[])
      .map((c) => ({ ...c, hidden: new Float32Array(c.hidden.length), pooled: new Float32Array(c.pooled.length) }))),
  },
  ConditioningCombine: {
    category: 'conditioning',
    description: 'Both conditionings: the sampler takes the mean of their predictions.',
    required: { conditioning_1: ['CONDITIONING'], conditioning_2: ['CONDITIONING'] },
    outputs: [['CONDITIONING', 'CONDITIONING']],
    run: async (i) => {
      const combined = [...(i.conditioning_1 as Guided[]), ...(i.conditioning_2 as Guided[])];
      if (combined.length > 16) throw new RangeError(`ConditioningCombine would hold ${combined.length} conditionings; sdnode samples with at most 16`);
      return outputs(combined);
    },
  },
  KSampler: {
    category: 'sampling',
    description: 'Denoises the latent with the prompt\'s conditioning.',
    required: {
      model: ['MODEL'], seed: seedInput, ...samplerInputs, denoise: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.01 }],
    },
    outputs: [['LATENT', 'LATENT']],
    run: async (i, context) => {
      const denoise = i.denoise as number;
      // ComfyUI: denoise 0 runs no step and hands the latent on.
      if (denoise === 0) return outputs(i.latent_image);
      return outputs(await runSampler(i as unknown as SampleInputs, context, { denoise }));
    },
  },
  KSamplerAdvanced: {
    category: 'sampling',
    description: 'KSampler that runs a window of the schedule (start_at_step to end_at_step), for multi-pass workflows.',
    required: {
      model: ['MODEL'], add_noise: [['enable', 'disable']], noise_seed: seedInput, ...samplerInputs,
      start_at_step: ['INT', { default: 0, min: 0, max: 10000 }],
      end_at_step: ['INT', { default: 10000, min: 0, max: 10000 }],
      return_with_leftover_noise: [['disable', 'enable']],
    },
    outputs: [['LATENT', 'LATENT']],
    run: async (i, context) => outputs(await runSampler({ ...(i as unknown as SampleInputs), seed: i.noise_seed as number }, context, {
      startStep: i.start_at_step as number,
      endStep: i.end_at_step as number,
      addNoise: i.add_noise === 'enable',
      returnWithLeftoverNoise: i.return_with_leftover_noise === 'enable',
    })),
  },
};
