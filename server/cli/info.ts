// `sdnode info MODEL`: what a checkpoint is, as the engine reads it. Loads the model, so the
// resident size is the real one (and --weight-type shows what a conversion on load would give).

import path from 'node:path';
import { familyNames, loadModel, weightTypes, type Model, type ModelComponents, type ModelInfo } from '../../lib/index.js';
import { InvalidFieldError, parseInteger } from '../parse.js';
import { errorMessage, formatBytes, oneOf, parseCommand, usageError } from './common.js';
import { libraryComponents, markedKontext } from '../models/components.js';
import { componentFlags, componentOptionSpec, componentUsage } from './components.js';

const optionSpec = {
  ...componentOptionSpec,
  'weight-type': { type: 'string' },
  prediction: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string', short: 't' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const help = 'sdnode info --help';
const listedUnused = 10;

export const infoUsage = `Usage: sdnode info <model> [options]
       sdnode info --diffusion-model <file> [--clip-l <file>] [--t5xxl <file>] [--vae <file>] [options]

Loads a checkpoint (or a model given as components) and tells what it is: family (FLUX.1 Kontext
by --kontext or its file name), prediction, default image size, each component's file, the types
its weights are stored in, their size in memory, and weights no part of the network used.

${componentUsage}
      --weight-type <type>  Report the memory after converting on load: ${weightTypes.join(', ')}.
      --prediction <kind>   auto, eps or v (default auto).
      --backend <name>      auto, cpu, metal or cuda (default auto).
  -t, --threads <n>         CPU threads for loading (default: physical cores).
      --json                Print the library's ModelInfo as JSON.
  -h, --help                Show this help.`;

/** Runs `sdnode info` with the arguments after the command; resolves to the exit code. */
export async function infoCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('info', argv, optionSpec, infoUsage);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  let source: string | ModelComponents;
  let t5Tokenizer: string | undefined;
  let kontextFlag: boolean | undefined;
  try {
    const components = componentFlags({ ...values, model: positionals[0] });
    if (components) ({ files: source, t5Tokenizer } = libraryComponents(components));
    else source = positionals[0] ?? '';
    kontextFlag = components?.kontext;
  } catch (error) {
    if (error instanceof InvalidFieldError) return usageError(error.message.replace('--model', 'the model argument'), help);
    throw error;
  }
  if (typeof source === 'string' && positionals.length !== 1) {
    return usageError(positionals.length === 0 ? 'Missing the model: sdnode info <model> (or --diffusion-model <file>)'
      : `Unexpected argument ${positionals[1]}`, help);
  }
  let model: Model;
  try {
    const weightType = oneOf(values['weight-type']?.toLowerCase(), '--weight-type', weightTypes);
    model = await loadModel(source, {
      ...(t5Tokenizer !== undefined && { t5Tokenizer }),
      weightType,
      prediction: oneOf(values.prediction, '--prediction', ['auto', 'eps', 'v'] as const),
      backend: oneOf(values.backend, '--backend', ['auto', 'cpu', 'metal', 'cuda'] as const),
      threads: values.threads === undefined ? undefined : parseInteger('--threads', values.threads, { min: 1, max: 1024 }),
    });
  } catch (error) {
    if (error instanceof InvalidFieldError) return usageError(error.message, help);
    console.error(`sdnode: ${errorMessage(error)}`);
    return 1;
  }
  // As the server tells FLUX.1 Kontext from FLUX.1 dev: by --kontext or the file's name.
  const kontext = model.info.family.startsWith('flux') && markedKontext(kontextFlag, '', [model.path]);
  try {
    console.log(values.json ? JSON.stringify({ path: model.path, ...model.info, ...(kontext && { kontext }) }, null, 2)
      : describe(model, values['weight-type'], kontext));
  } finally {
    await model.close();
  }
  return 0;
}

function describe(model: Model, weightType: string | undefined, kontext: boolean): string {
  const info = model.info;
  const family = familyNames[info.family] + (kontext ? ', Kontext (the server reads image-to-image inputs as reference images)' : '');
  const rows: [string, string][] = [
    ['file', `${formatBytes(info.fileBytes)}, ${info.format}`],
    ...componentRows(info),
    ['family', `${family}${info.inpainting ? ' inpainting (9-channel UNet)' : ''}`],
    ['prediction', predictionNames[info.prediction]],
    ['text encoders', info.textEncoders.map((encoder) => encoderNames[encoder] ?? encoder).join(', ')],
    ['default size', `${info.defaultWidth}×${info.defaultHeight}`],
    ...cardRows(info),
    ['stored as', storedTypes(info)],
    ['in memory', `${formatBytes(info.weightBytes)} of weights on ${info.backend}`
      + (weightType === undefined || weightType.toLowerCase() === 'auto' ? ' (as stored)' : ` (converted to ${weightType.toLowerCase()} on load)`)],
    ['unused', unused(info.unusedTensors)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return [path.basename(model.path), ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
}

const predictionNames: Readonly<Record<ModelInfo['prediction'], string>> = {
  eps: 'eps (noise)', v: 'v (velocity)', flow: 'flow (rectified flow)',
};
const encoderNames: Readonly<Record<string, string>> = { clipL: 'CLIP-L', clipG: 'OpenCLIP bigG', t5xxl: 'T5-XXL', llm: 'Qwen3' };
const componentLabels: readonly (readonly [keyof ModelComponents, string])[] = [
  ['diffusionModel', 'diffusion model'], ['clipL', 'CLIP-L'], ['clipG', 'CLIP-G'], ['t5xxl', 'T5-XXL'], ['llm', 'Qwen3'], ['vae', 'VAE'],
];

// A model given as components: one row per file.
function componentRows(info: ModelInfo): [string, string][] {
  const { components } = info;
  if (!components) return [];
  return componentLabels.flatMap(([key, label]): [string, string][] => (components[key] === undefined ? [] : [[label, components[key]]]));
}

// A pulled model's card: "1 step at cfg 1 unless a call says otherwise (from the sd-turbo model card)".
function cardRows(info: ModelInfo): [string, string][] {
  const card = info.card;
  if (!card) return [];
  const parts = [
    card.steps !== undefined && `${card.steps} step${card.steps === 1 ? '' : 's'}`,
    card.cfgScale !== undefined && `cfg ${card.cfgScale}`,
    card.sampler !== undefined && card.sampler,
    card.scheduler !== undefined && `${card.scheduler} schedule`,
  ].filter((part) => part !== false);
  return parts.length === 0 ? [] : [['card', `${parts.join(', ')} unless a call says otherwise (the model card's, pulled by its catalogue name)`]];
}

// "f16 (686 tensors), f32 (444 tensors)", most used first.
function storedTypes(info: ModelInfo): string {
  return Object.entries(info.storedTypes)
    .sort(([, a], [, b]) => b - a)
    .map(([type, count]) => `${type} (${count} tensor${count === 1 ? '' : 's'})`)
    .join(', ');
}

function unused(names: string[]): string {
  if (names.length === 0) return 'none: every weight is used';
  const shown = names.slice(0, listedUnused).map((name) => `\n    ${name}`).join('');
  const more = names.length > listedUnused ? `\n    … and ${names.length - listedUnused} more` : '';
  return `${names.length} weight${names.length === 1 ? '' : 's'} no part of the network uses (ignored):${shown}${more}`;
}
