// The `sdnode` command: serve (the default), worker, generate, info, convert, upscale, pull, models, rm,
// build, --help, --version. generate, info, convert, upscale, pull, models and rm parse their own flags
// (server/cli/).

import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';

import { catalogue, defaultCatalogueModel, defaultModelsDir, weightTypes } from '../lib/index.js';
import { dialectNames, isDialectName } from './dialects/index.js';
import { oneOf, usageError } from './cli/common.js';
import { componentFlags, componentOptionSpec, componentUsage } from './cli/components.js';
import { convertCommand } from './cli/convert.js';
import { upscaleCommand } from './cli/upscale.js';
import { generateCommand } from './cli/generate.js';
import { infoCommand } from './cli/info.js';
import { askYes, modelsCommand, pullCommand, pullWithProgress, resolveComponentFlags, resolveModelFlag, rmCommand } from './cli/pull.js';
import { parseApiAuth } from './dialects/a1111/auth.js';
import { checkApiPrefix } from './http/api-prefix.js';
import { collectApiKeys } from './http/auth.js';
import { isLoopback } from './http/origin.js';
import { startServer, type RunningServer, type ServerOptions } from './index.js';
import { redisDisplayUrl } from './jobs/redis.js';
import { startWorker, type WorkerOptions } from './worker.js';
import { InvalidFieldError, parseDecimal, parseInteger } from './parse.js';
import { packageRoot, packageVersion } from './version.js';

const optionSpec = {
  model: { type: 'string', short: 'm' },
  pull: { type: 'boolean' },
  'allow-pull': { type: 'boolean' },
  ...componentOptionSpec,
  models: { type: 'string' },
  'max-loaded': { type: 'string' },
  'api-key': { type: 'string', multiple: true },
  'api-auth': { type: 'string' },
  'api-prefix': { type: 'string' },
  api: { type: 'string' },
  presets: { type: 'string' },
  'allow-fetch': { type: 'string' },
  'allowed-hosts': { type: 'string' },
  'url-ttl': { type: 'string' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  concurrency: { type: 'string' },
  output: { type: 'string', short: 'o' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'delete-incomplete': { type: 'boolean' },
  threads: { type: 'string' },
  backend: { type: 'string' },
  prediction: { type: 'string' },
  'weight-type': { type: 'string' },
  'lora-dir': { type: 'string' },
  'embeddings-dir': { type: 'string' },
  'upscaler-dir': { type: 'string' },
  'controlnet-dir': { type: 'string' },
  taesd: { type: 'string' },
  'low-memory': { type: 'boolean' },
  'max-queue': { type: 'string' },
  'max-upload-mb': { type: 'string' },
  redis: { type: 'string' },
  workers: { type: 'string' },
  retention: { type: 'string' },
  'no-worker-timeout': { type: 'string' },
  attempts: { type: 'string' },
  'stall-timeout': { type: 'string' },
  'safety-checker': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type CliValues = ReturnType<typeof parseArgs<{ options: typeof optionSpec; allowPositionals: true }>>['values'];

const backends = ['auto', 'cpu', 'metal', 'cuda'] as const;
const predictions = ['auto', 'eps', 'v'] as const;

// Commands with flags of their own; they must come first on the line.
const subcommands: Readonly<Record<string, (argv: string[]) => Promise<number>>> = {
  generate: generateCommand,
  info: infoCommand,
  convert: convertCommand,
  upscale: upscaleCommand,
  pull: pullCommand,
  models: modelsCommand,
  rm: rmCommand,
};

const usage = `Usage: sdnode [serve] [options]    start the HTTP server (the default command)
       sdnode pull <ref>…          download models: ${Object.keys(catalogue).join(', ')}, hf:<owner>/<repo>/<file>
                                   or an https:// URL (sdnode pull --help)
       sdnode models               list the downloaded models (--catalogue: the ones pull knows by name)
       sdnode rm <name>…           delete a downloaded model
       sdnode generate -m <model> -p <prompt> [options]
                                   make images from the terminal (sdnode generate --help)
       sdnode info <model>         what a checkpoint is: family, types, memory (sdnode info --help)
       sdnode convert <model> <out.gguf> --type q8_0
                                   write a (quantized) GGUF file (sdnode convert --help)
       sdnode upscale -i <image> --upscale-model <file> [-o out.png] [--scale n]
                                   enlarge an image with ESRGAN (sdnode upscale --help)
       sdnode worker --redis <url> --models <dir> [--model <file|ref> [--pull]] [--concurrency <n>]
                                   take jobs from Redis and generate them (see Several machines)
       sdnode build                compile the native addon from source (npm run build:native)
       sdnode --help | --version

Serve options:
  -m, --model <file>       Stable Diffusion checkpoint (.safetensors or .gguf), or a JSON file
                           naming a model's component files: the default model, loaded at start.
                           Also a reference (a catalogue name such as ${defaultCatalogueModel}, hf:<owner>/<repo>/<file>,
                           an https:// URL) to a model downloaded with sdnode pull. Without it (and
                           --models) the server offers to download ${defaultCatalogueModel}; declined, it runs, but
                           generation requests answer 503.
      --pull               Download the --model reference (or, without --model, ${defaultCatalogueModel}) into
                           --models, else SDNODE_MODELS or ~/.cache/sdnode/models, if it is not there.
      --allow-pull         Requests may name a model reference (a catalogue name, hf:…, https://…)
                           that is not downloaded yet: its job downloads it into --models (else
                           SDNODE_MODELS or ~/.cache/sdnode/models), then loads it. Off by default.
${componentUsage}
      --models <dir>       Serve every .safetensors / .gguf under this folder (subfolders too), by
                           name: the path inside it without the extension; also models given as
                           components: NAME.json naming the files, or a folder holding them
                           (README, "Flux, SD3 and Chroma"). The default model is --model, else
                           the first by name. Listing them loads nothing.
      --lora-dir <dir>     LoRA files (.safetensors, .gguf) that prompts select with
                           <lora:NAME:weight> (default: <models>/Lora if it exists, else
                           <models>/loras; these are not offered as checkpoints).
      --embeddings-dir <dir>
                           Textual-inversion embeddings (.safetensors, .pt) that prompts name by
                           file stem (default: <models>/embeddings; not offered as checkpoints).
      --upscaler-dir <dir> ESRGAN-family upscalers (.safetensors, .gguf) for A1111's extras routes
                           and /sdapi/v1/upscalers, by file name (default: <models>/ESRGAN if it
                           exists, else <models>/upscale_models; not offered as checkpoints).
      --controlnet-dir <dir>
                           ControlNet files (.safetensors, .gguf) that requests name by file stem
                           (A1111's alwayson_scripts.controlnet; default: <models>/ControlNet if it
                           exists, else <models>/controlnet; not offered as checkpoints).
      --max-loaded <n>     Models kept in memory at once (default 1); a job naming another one
                           unloads the least recently used.
      --api <list>         API dialects to serve, comma-separated: ${dialectNames.join(', ')} (default all).
      --api-key <key>      Require Authorization: Bearer <key> on every route that generates, lists
                           or returns images (repeatable; also SDNODE_API_KEYS=k1,k2). /health,
                           /docs and /openapi.json stay open.
      --api-auth <u:p,…>   HTTP basic auth users, as A1111's own --api-auth; taken wherever an
                           --api-key is (every API's generating routes need one or the other).
      --api-prefix <path>  Serve every route under this path, e.g. /sd: POST /sd/sdapi/v1/txt2img,
                           /sd/text-to-image, /sd/docs, /sd/health, the web page at /sd/; the URLs
                           in answers carry it too (for a reverse proxy that forwards /sd unchanged).
      --presets <file>     JSON file mapping OpenAI model names (dall-e-3, …) to generation settings
                           in AUTOMATIC1111's field names (see the README).
      --allow-fetch <hosts> Hosts (host[:port], comma-separated) whose image URLs the task API may
                           fetch for initial_image / mask; others are refused (default none).
      --allowed-hosts <names> Host names (comma-separated; .example.com for every name under it)
                           that requests and web pages may use besides IP addresses and
                           localhost; others get 403 (DNS rebinding, cross-site form posts).
      --url-ttl <seconds>  Lifetime of OpenAI response_format=url links (default 3600).
  -p, --port <n>           TCP port to listen on (default 8888; 0 picks a free one).
      --host <address>     Interface to listen on (default 127.0.0.1; 0.0.0.0 for every interface).
      --concurrency <n>    Jobs generated at the same time (default 1).
  -o, --output <dir>       Folder for jobs: one sub-folder each with job.json, uploads and PNGs
                           (default ./output). Unfinished jobs found there resume at start.
      --delete-incomplete  Delete unfinished jobs found in --output instead of resuming them.
      --cert <file>        PEM certificate; with --key, serve HTTPS.
      --key <file>         PEM private key for --cert.
      --threads <n>        CPU threads for generation (default: physical cores).
      --backend <name>     auto, cpu, metal or cuda (default auto).
      --prediction <kind>  What the UNet predicts: auto, eps or v (default auto: SD 2.x is v;
                           use eps for SD 2.x 512-base checkpoints).
      --weight-type <type> Keep the weights as stored (auto, the default) or convert them on load:
                           ${weightTypes.filter((type) => type !== 'auto').join(', ')}.
                           Quantized types shrink the linear layers (q8_0: SD 1.5's weights
                           2035 → 1719 MB); convolution kernels stay f16.
      --taesd <file>       Load this TAESD decoder (taesd_decoder.safetensors) with every model:
                           live previews become its full-size decode instead of a colour map.
      --low-memory         Models given as components (FLUX.1, SD3): never hold the transformer
                           and the text encoders at once; each new prompt reads the transformer
                           again after encoding (FLUX.1 dev q4_K with T5 f16: ~9.5 GB, not 16).
      --max-queue <n>      Jobs that may wait for a worker, all APIs together; beyond that requests
                           answer 503 (OpenAI: 429) with Retry-After (default 100).
      --max-upload-mb <n>  Largest image or mask upload, in MB (default 20); larger ones answer 413.
      --safety-checker <file>
                           Stable Diffusion's safety checker (model.safetensors of
                           CompVis/stable-diffusion-safety-checker), loaded at start: the Photoshop
                           API, the task API's safety_filter, A1111's info and OpenAI's moderation
                           then check images (flagged ones come back black); without it they
                           report nsfw as null. With --redis, the workers' checker does the checking.

Several machines (jobs, uploads, results and progress in Redis, through BullMQ):
      --redis <url>        serve: keep jobs in Redis (redis://host:6379/0) instead of --output, shared
                           with every API process and worker that uses the same Redis. worker: the
                           Redis to take jobs from (required).
      --workers <n>        serve --redis: jobs this process generates itself (default 1 when --model
                           or --models is given, else 0); 0 makes it an API process only, and then
                           --model is just the name of the default model (the workers' file name).
      --retention <hours>  How long finished jobs and their images (files or Redis), the task API's
                           uploaded blobs and its task events are kept (default 24).
      --no-worker-timeout <s>  serve --redis: a job for a model no worker offers fails after this many
                           seconds (default 60).
      --attempts <n>       Times a job is started before it fails; a worker that dies mid-job costs
                           one (default 3). Give API processes and workers the same value.
      --stall-timeout <s>  A worker that stops answering (killed, cut off) loses its job to another
                           after this many seconds (default 30).
  Worker options: --model, --diffusion-model (and its --clip-l, --clip-g, --t5xxl, --llm, --vae), --t5-tokenizer,
  --models, --max-loaded, --concurrency (jobs at once, default 1),
  --threads, --backend, --prediction, --weight-type, --lora-dir, --embeddings-dir, --controlnet-dir, --taesd, --attempts,
  --stall-timeout, --safety-checker.

  -h, --help               Show this help.
  -v, --version            Print the version.

Example:
  npx sdnode serve --model ${defaultCatalogueModel} --pull
  curl -F prompt="a photo of a cat" http://127.0.0.1:8888/text-to-image
  API documentation: http://127.0.0.1:8888/docs`;

/** Runs the command line (without node and the script); resolves to the exit code. `serve` keeps running. */
export async function main(argv: string[]): Promise<number> {
  const subcommand = subcommands[argv[0] ?? ''];
  if (subcommand) return subcommand(argv.slice(1));
  let values: CliValues;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: optionSpec, allowPositionals: true }));
  } catch (error) {
    return usageError(error instanceof Error ? error.message : String(error));
  }
  if (values.version) {
    console.log(packageVersion());
    return 0;
  }
  const command = positionals[0] ?? 'serve';
  if (values.help || command === 'help') {
    console.log(usage);
    return 0;
  }
  if (subcommands[command]) return usageError(`Put ${command} first: sdnode ${command} [options]`);
  if (positionals.length > 1) return usageError(`Unexpected argument ${positionals[1]}`);
  switch (command) {
    case 'serve':
      return serve(values);
    case 'worker':
      return worker(values);
    case 'build':
      return buildAddon();
    default:
      return usageError(`Unknown command ${command}`);
  }
}

async function serve(values: CliValues): Promise<number> {
  const files = await resolveComponentFlags(values, { pull: values.pull === true, modelsDir: values.models, help: 'sdnode --help' });
  if (typeof files === 'number') return files;
  values = files;
  const model = await serveModel(values);
  if (typeof model === 'number') return model;
  values = { ...values, model };
  let options: ServerOptions;
  try {
    options = serverOptions(values);
  } catch (error) {
    if (error instanceof InvalidFieldError) return usageError(error.message);
    throw error;
  }
  announceLoading(options);
  let running: RunningServer;
  try {
    running = await startServer(options);
  } catch (error) {
    console.error(`sdnode: could not start the server: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  if (!isLoopback(options.host ?? '127.0.0.1')) {
    for (const api of running.openApis) {
      console.warn(`sdnode: warning: the ${api} API is open on ${options.host} without an API key: anyone who can reach `
        + 'this machine can generate images there and read the results. Set --api-key (or SDNODE_API_KEYS) or --api-auth.');
    }
  }
  printWelcome(running, options);
  stopOnSignals(running, 'unfinished images are made again at the next start');
  return 0;
}

async function worker(values: CliValues): Promise<number> {
  const files = await resolveComponentFlags(values, { pull: values.pull === true, modelsDir: values.models, help: 'sdnode --help' });
  if (typeof files === 'number') return files;
  values = files;
  if (values.model !== undefined) {
    const resolved = await resolveModelFlag(values.model, { pull: values.pull === true, modelsDir: values.models, help: 'sdnode --help' });
    if (typeof resolved === 'number') return resolved;
    values = { ...values, model: typeof resolved === 'object' ? resolved.path : resolved };
  }
  let options: WorkerOptions;
  try {
    options = workerOptions(values);
  } catch (error) {
    if (error instanceof InvalidFieldError) return usageError(error.message);
    throw error;
  }
  announceLoading(options);
  let running: Awaited<ReturnType<typeof startWorker>>;
  try {
    running = await startWorker(options);
  } catch (error) {
    console.error(`sdnode: could not start the worker: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  const offered = running.models();
  console.log(`sdnode ${packageVersion()} worker ${running.id} taking jobs from ${redisDisplayUrl(options.redis)}: `
    + `${offered.length > 0 ? `offering ${offered.join(', ')}` : `no checkpoint in ${options.modelsDir} yet`}, `
    + `${options.concurrency ?? 1} at once`);
  console.log('Press Ctrl+C to stop.');
  stopOnSignals(running, 'unfinished jobs go back to the queue for another worker');
  return 0;
}

/**
 * The --model to serve: a reference resolved to its file in the models folder (pulled with --pull
 * or a yes); with no model at all, the catalogue's default when --pull or a yes asks for it.
 * Undefined leaves the server without a model; a number is an exit code.
 */
async function serveModel(values: CliValues): Promise<string | undefined | number> {
  const { model } = values;
  if (model !== undefined) {
    const resolved = await resolveModelFlag(model, { pull: values.pull === true, modelsDir: values.models, help: 'sdnode --help' });
    return typeof resolved === 'object' ? resolved.path : resolved;
  }
  const hasModel = values.models !== undefined || values['diffusion-model'] !== undefined || values.redis !== undefined
    || values['allow-pull'] === true;
  if (hasModel) return undefined;
  const modelsDir = defaultModelsDir();
  const { description, licence } = catalogue[defaultCatalogueModel]!;
  if (values.pull !== true && !await askYes(`No --model given. Serve ${defaultCatalogueModel} (${description}; licence: ${licence}), `
    + `downloading it into ${modelsDir} if it is not there?`)) {
    return undefined;
  }
  const pulled = await pullWithProgress(defaultCatalogueModel, modelsDir, '--model');
  return typeof pulled === 'number' ? pulled : pulled.path;
}

function announceLoading(options: Pick<ServerOptions, 'modelPath' | 'modelComponents'>): void {
  const file = options.modelPath ?? options.modelComponents?.diffusionModel;
  if (file !== undefined) console.log(`Loading ${file} …`);
}

function workerOptions(values: CliValues): WorkerOptions {
  const redis = values.redis;
  if (redis === undefined) throw new InvalidFieldError('--redis', 'sdnode worker needs --redis <url>, e.g. redis://127.0.0.1:6379/0');
  const modelComponents = componentFlags(values, { tokenizerAlone: true });
  if (values.model === undefined && modelComponents === undefined && values.models === undefined) {
    throw new InvalidFieldError('--models', 'sdnode worker needs --models <dir>, --model <file> or --diffusion-model <file>: '
      + 'the checkpoints it offers');
  }
  const int = integerOption(values);
  const engine = engineOptions(values);
  const stallTimeout = int('stall-timeout', 1, 3600);
  return {
    redis,
    modelPath: values.model,
    ...(modelComponents && { modelComponents }),
    modelsDir: values.models,
    maxLoaded: int('max-loaded', 1, 64),
    concurrency: int('concurrency', 1, 64),
    attempts: int('attempts', 1, 100),
    lockDurationMs: stallTimeout === undefined ? undefined : stallTimeout * 1000,
    safetyCheckerPath: values['safety-checker'],
    ...engine,
  };
}

function integerOption(values: CliValues): (name: keyof CliValues, min: number, max: number) => number | undefined {
  return (name, min, max) => {
    const text = values[name];
    return typeof text === 'string' ? parseInteger(`--${name}`, text, { min, max }) : undefined;
  };
}

function engineOptions(values: CliValues):
Pick<ServerOptions, 'threads' | 'backend' | 'prediction' | 'weightType' | 'loraDir' | 'embeddingsDir' | 'controlNetDir' | 'taesd' | 't5Tokenizer'
  | 'lowMemory'> {
  return {
    lowMemory: values['low-memory'],
    controlNetDir: values['controlnet-dir'],
    loraDir: values['lora-dir'],
    embeddingsDir: values['embeddings-dir'],
    t5Tokenizer: values['t5-tokenizer'],
    threads: integerOption(values)('threads', 1, 1024),
    backend: oneOf(values.backend, '--backend', backends),
    prediction: oneOf(values.prediction, '--prediction', predictions),
    weightType: oneOf(values['weight-type']?.toLowerCase(), '--weight-type', weightTypes),
    taesd: values.taesd,
  };
}

function serverOptions(values: CliValues): ServerOptions {
  const int = integerOption(values);
  const { threads, backend, prediction, weightType, loraDir, embeddingsDir, controlNetDir, taesd, t5Tokenizer, lowMemory } = engineOptions(values);
  const modelComponents = componentFlags(values, { tokenizerAlone: true });
  const redisOnly = (['workers', 'no-worker-timeout'] as const).find((name) => values[name] !== undefined);
  if (values.redis === undefined && redisOnly !== undefined) {
    throw new InvalidFieldError(`--${redisOnly}`, `--${redisOnly} applies to jobs in Redis; add --redis <url>`);
  }
  if (values.redis !== undefined && values['allow-pull']) {
    throw new InvalidFieldError('--allow-pull', '--allow-pull applies to models this process loads; with --redis the workers load them: '
      + 'pull them there (sdnode pull <ref>, or sdnode worker --model <ref> --pull)');
  }
  if (values.redis !== undefined && values['delete-incomplete']) {
    throw new InvalidFieldError('--delete-incomplete', '--delete-incomplete applies to jobs in --output, not to --redis');
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new InvalidFieldError(values.cert === undefined ? '--cert' : '--key', 'HTTPS needs both --cert and --key');
  }
  const maxUploadMb = values['max-upload-mb'];
  const apis = values.api?.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '');
  const unknownApi = apis?.find((name) => !isDialectName(name));
  if (unknownApi !== undefined || apis?.length === 0) {
    throw new InvalidFieldError('--api', `Expected a comma-separated list of ${dialectNames.join(', ')} for --api but received ${values.api}`);
  }
  return {
    modelPath: values.model,
    ...(modelComponents && { modelComponents }),
    t5Tokenizer,
    modelsDir: values.models,
    allowPull: values['allow-pull'],
    maxLoaded: int('max-loaded', 1, 64),
    apiKeys: collectApiKeys(values['api-key'] ?? [], process.env.SDNODE_API_KEYS),
    apiAuth: values['api-auth'] === undefined ? undefined : apiAuthPairs(values['api-auth']),
    apis: apis?.filter(isDialectName),
    apiPrefix: values['api-prefix'] === undefined ? undefined : apiPrefixOption(values['api-prefix']),
    presets: values.presets,
    urlTtlSeconds: int('url-ttl', 1, 365 * 24 * 3600),
    allowFetch: values['allow-fetch']?.split(',').map((host) => host.trim()).filter((host) => host !== ''),
    allowedHosts: values['allowed-hosts']?.split(',').map((host) => host.trim()).filter((host) => host !== ''),
    tasks: taskSettingsFromEnvironment(process.env),
    port: int('port', 0, 65535),
    host: values.host,
    concurrency: int('concurrency', 1, 64),
    outputDir: values.output,
    cert: values.cert,
    key: values.key,
    deleteIncomplete: values['delete-incomplete'],
    threads,
    backend,
    prediction,
    weightType,
    loraDir,
    embeddingsDir,
    upscalerDir: values['upscaler-dir'],
    controlNetDir,
    taesd,
    lowMemory,
    maxQueue: int('max-queue', 0, 1_000_000),
    safetyCheckerPath: values['safety-checker'],
    maxUploadMb: maxUploadMb === undefined ? undefined : parseDecimal('--max-upload-mb', maxUploadMb, { min: 0.001, max: 4096 }),
    redis: values.redis,
    workers: int('workers', 0, 64),
    retentionHours: values.retention === undefined ? undefined : parseDecimal('--retention', values.retention, { min: 0.001, max: 24 * 365 }),
    noWorkerTimeoutSeconds: int('no-worker-timeout', 1, 24 * 3600),
    attempts: int('attempts', 1, 100),
    stalledSeconds: int('stall-timeout', 1, 3600),
  };
}

function printWelcome(running: RunningServer, options: ServerOptions): void {
  const { resumed, deleted } = running.unfinished;
  const insecure = options.cert !== undefined ? '-k ' : '';
  console.log(`sdnode ${packageVersion()} listening on ${running.url} (API docs: ${running.url}/docs)`);
  console.log(`Jobs are kept in ${running.jobsLocation}`
    + (resumed > 0 ? ` (${resumed} unfinished resumed)` : '') + (deleted > 0 ? ` (${deleted} unfinished deleted)` : ''));
  const hasModel = options.modelPath !== undefined || options.modelComponents !== undefined || options.modelsDir !== undefined
    || options.allowPull === true;
  if (options.redis !== undefined && (options.workers === 0 || !hasModel)) {
    console.log('Models: those the workers offer (sdnode worker --redis <url> --models <dir>).');
  } else if (!hasModel) {
    console.log(`No model loaded: generation requests answer 503. Start with sdnode serve --model <checkpoint>, `
      + `or sdnode serve --model ${defaultCatalogueModel} --pull to download one.`);
    return;
  }
  for (const line of running.welcome) console.log(line);
  console.log(`Try:\n  curl ${insecure}-F prompt="a photo of a cat" ${running.url}/text-to-image`);
  console.log(`then poll the resultUrl it answers: curl ${insecure}${running.url}/text-to-image/<id>`);
  console.log('Press Ctrl+C to stop.');
}

// First signal: take no new jobs and let running images finish. Second: stop at once. Either
// way unfinished jobs resume at the next start.
function stopOnSignals(running: Pick<RunningServer, 'close'>, afterAbort: string): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.log(`${signal}: stopping now; ${afterAbort}`);
      void running.close({ abort: true });
      return;
    }
    stopping = true;
    console.log(`${signal}: finishing the current image, then exiting (Ctrl+C again to stop at once)`);
    running.close().then(() => process.exit(0), (error: unknown) => {
      console.error(`sdnode: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function buildAddon(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', 'build:native'], {
      cwd: packageRoot(),
      stdio: 'inherit',
      shell: process.platform === 'win32',
    });
    child.on('error', (error) => {
      console.error(`sdnode: could not run npm: ${error.message}`);
      resolve(1);
    });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

// The task API's own variables, as its users know them.
function taskSettingsFromEnvironment(env: NodeJS.ProcessEnv): ServerOptions['tasks'] {
  const flag = (name: string): boolean => ['1', 'true', 'yes'].includes((env[name] ?? '').trim().toLowerCase());
  return {
    ...(env.SECRET_KEY !== undefined && env.SECRET_KEY !== '' && { secretKey: env.SECRET_KEY }),
    ...(env.BASE_URL !== undefined && env.BASE_URL !== '' && { baseUrl: env.BASE_URL }),
    enablePublicAccess: flag('ENABLE_PUBLIC_ACCESS'),
    enableSignup: flag('ENABLE_SIGNUP'),
    printLinkWithToken: flag('PRINT_LINK_WITH_TOKEN'),
  };
}

function apiPrefixOption(text: string): string {
  try {
    return checkApiPrefix(text, '--api-prefix');
  } catch (error) {
    throw new InvalidFieldError('--api-prefix', error instanceof Error ? error.message : String(error));
  }
}

function apiAuthPairs(text: string): string[] {
  try {
    return parseApiAuth(text);
  } catch (error) {
    throw new InvalidFieldError('--api-auth', error instanceof Error ? error.message : String(error));
  }
}

