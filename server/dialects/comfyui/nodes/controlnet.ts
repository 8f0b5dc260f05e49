// ControlNetLoader, ControlNetApply and ControlNetApplyAdvanced: a ControlNet of the ControlNet
// folder attached to conditionings with its image, as ComfyUI's nodes attach it. The sampler then
// runs the network on every UNet pass those conditionings condition (the library's
// PromptConditioning.controlNets); start_percent and end_percent are fractions of the steps.

import type { ConditioningControlNet, PromptConditioning } from '../../../../lib/index.js';
import { outputs, type ImageBatch, type NodeDefinition } from './types.js';

/** CONTROL_NET values: the ControlNet file. */
export interface ControlNetRef {
  path: string;
}

const strengthInput = ['FLOAT', { default: 1.0, min: 0.0, max: 10.0, step: 0.01 }] as const;
const percentInput = (value: number) => ['FLOAT', { default: value, min: 0.0, max: 1.0, step: 0.001 }] as const;

/** Each conditioning of the list with one more unit; strength 0 leaves it as it was, as in ComfyUI. */
function withControl(conditionings: PromptConditioning[], unit: ConditioningControlNet): PromptConditioning[] {
  if (unit.strength === 0) return conditionings;
  return conditionings.map((c) => ({ ...c, controlNets: [...(c.controlNets ?? []), unit] }));
}

/** The unit of a CONTROL_NET, an IMAGE (its first image, as ComfyUI's hint) and the node's settings. */
function unitOf(controlNet: ControlNetRef, images: ImageBatch, strength: number, start = 0, end = 1): ConditioningControlNet {
  const image = images[0];
  if (!image) throw new RangeError('The ControlNet image batch is empty');
  return { model: controlNet.path, image, strength, start, end };
}

export const controlNetNodes: Record<string, NodeDefinition> = {
  ControlNetLoader: {
    category: 'loaders',
    description: 'A ControlNet from the ControlNet folder (original layout control_model.*, or diffusers\' ControlNetModel).',
    required: { control_net_name: [[]] },
    outputs: [['CONTROL_NET', 'CONTROL_NET']],
    run: async (i, context) => outputs({ path: context.controlNetPath(i.control_net_name as string) } satisfies ControlNetRef),
  },
  ControlNetApply: {
    category: 'conditioning/controlnet',
    description: 'Steers the sampling of this conditioning by the ControlNet and its image (the positive pass only).',
    required: { conditioning: ['CONDITIONING'], control_net: ['CONTROL_NET'], image: ['IMAGE'], strength: [...strengthInput] },
    outputs: [['CONDITIONING', 'CONDITIONING']],
    run: async (i) => outputs(withControl(i.conditioning as PromptConditioning[],
      unitOf(i.control_net as ControlNetRef, i.image as ImageBatch, i.strength as number))),
  },
  ControlNetApplyAdvanced: {
    category: 'conditioning/controlnet',
    description: 'Steers both the positive and the negative pass by the ControlNet and its image, from start_percent to '
      + 'end_percent of the steps (vae: accepted, not needed).',
    required: {
      positive: ['CONDITIONING'], negative: ['CONDITIONING'], control_net: ['CONTROL_NET'], image: ['IMAGE'], strength: [...strengthInput],
      start_percent: [...percentInput(0)], end_percent: [...percentInput(1)],
    },
    optional: { vae: ['VAE'] },
    outputs: [['CONDITIONING', 'positive'], ['CONDITIONING', 'negative']],
    run: async (i) => {
      const start = i.start_percent as number;
      const end = i.end_percent as number;
      if (start > end) throw new RangeError(`start_percent (${start}) must not be after end_percent (${end})`);
      const unit = unitOf(i.control_net as ControlNetRef, i.image as ImageBatch, i.strength as number, start, end);
      return outputs(withControl(i.positive as PromptConditioning[], unit), withControl(i.negative as PromptConditioning[], unit));
    },
  },
};
