// `sdnode convert IN OUT.gguf --type q8_0`: a checkpoint rewritten as GGUF, its weights quantized
// the way --weight-type would on load, under stable-diffusion.cpp's names so that both load it.

import { convertModel, SdnodeError, weightTypes, type ConvertResult } from '../../lib/index.js';
import { InvalidFieldError, parseInteger } from '../parse.js';
import {
  eitherFlag, errorMessage, formatBytes, interruptedExitCode, onInterrupt, oneOf, parseCommand, usageError,
} from './common.js';
import { ProgressBar } from './progress-bar.js';

const optionSpec = {
  type: { type: 'string' },
  'weight-type': { type: 'string' },
  threads: { type: 'string', short: 't' },
  overwrite: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const help = 'sdnode convert --help';

export const convertUsage = `Usage: sdnode convert <model> <output.gguf> --type <type> [options]

Writes a checkpoint as a GGUF file that sdnode and stable-diffusion.cpp load. Its weights are
stored the way --weight-type would convert them on load (2-D matrices whose rows are whole blocks
are quantized; convolution kernels stay f16, biases and norms f32), so the file loads without
converting and smaller. Only the model's weights are written (no EMA copies).

      --type <type>   ${weightTypes.join(', ')} (auto: as stored). Required. Also --weight-type.
  -t, --threads <n>   CPU threads that quantize (default: physical cores).
      --overwrite     Replace <output.gguf> when it exists.
  -h, --help          Show this help.

The file is written under a temporary name and renamed at the end: Ctrl-C (exit code 130) or an
error leaves nothing behind.

Example:
  npx sdnode convert v1-5-pruned-emaonly.safetensors v1-5-q8_0.gguf --type q8_0`;

/** Runs `sdnode convert` with the arguments after the command; resolves to the exit code. */
export async function convertCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('convert', argv, optionSpec, convertUsage);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 2) {
    return usageError(positionals.length < 2 ? 'Expected <model> <output.gguf>' : `Unexpected argument ${positionals[2]}`, help);
  }
  const [input, output] = positionals as [string, string];
  let weightType;
  let threads;
  try {
    const type = eitherFlag(values, 'type', 'weight-type')?.toLowerCase();
    if (type === undefined) throw new InvalidFieldError('--type', `Missing --type: one of ${weightTypes.join(', ')}`);
    weightType = oneOf(type, '--type', weightTypes);
    threads = values.threads === undefined ? undefined : parseInteger('--threads', values.threads, { min: 1, max: 1024 });
    if (!output.toLowerCase().endsWith('.gguf')) {
      throw new InvalidFieldError('<output>', `Expected an output name ending in .gguf but received ${output} (convert writes GGUF)`);
    }
  } catch (error) {
    if (error instanceof InvalidFieldError) return usageError(error.message, help);
    throw error;
  }

  const controller = new AbortController();
  const bar = new ProgressBar(process.stdout);
  const removeHandlers = onInterrupt(() => {
    bar.print('Stopping (Ctrl-C again to stop at once) …');
    controller.abort();
  });
  const started = Date.now();
  let result: ConvertResult;
  try {
    result = await convertModel(input, output, {
      weightType, threads, overwrite: values.overwrite, signal: controller.signal,
      onProgress: ({ tensor, tensors }) => {
        const seconds = (Date.now() - started) / 1000;
        bar.draw({ label: 'tensors', done: tensor, total: tensors, etaSeconds: (seconds / tensor) * (tensors - tensor) });
      },
    });
  } catch (error) {
    bar.clear();
    if (controller.signal.aborted) {
      console.error(`sdnode: stopped by Ctrl-C; ${output} was not written`);
      return interruptedExitCode;
    }
    if (error instanceof SdnodeError && error.code === 'ERR_OUTPUT_EXISTS') {
      console.error(`sdnode: ${output} exists; pass --overwrite to replace it`);
      return 1;
    }
    console.error(`sdnode: ${errorMessage(error)}`);
    return 1;
  } finally {
    removeHandlers();
  }
  bar.clear();
  console.log(summary(output, result, (Date.now() - started) / 1000));
  return 0;
}

// "Wrote v1-5-q8_0.gguf: 1.68 GB, 1130 tensors (q8_0 254, f16 173, f32 703) in 19.6 s"
function summary(output: string, result: ConvertResult, seconds: number): string {
  const types = Object.entries(result.types).sort(([, a], [, b]) => b - a).map(([type, n]) => `${type} ${n}`).join(', ');
  const lines = [`Wrote ${output}: ${formatBytes(result.bytes)}, ${result.tensors} tensors (${types}) in ${seconds.toFixed(1)} s`];
  if (result.skipped.length > 0) {
    const examples = result.skipped.slice(0, 3).join(', ');
    lines.push(`Left out ${result.skipped.length} tensors that are not weights of the model (${examples}${result.skipped.length > 3 ? ', …' : ''})`);
  }
  return lines.join('\n');
}
