// `sdnode upscale -i in.png --upscale-model RealESRGAN_x4plus.safetensors [-o out.png] [--scale n]`:
// one image enlarged with an ESRGAN-family model, tile by tile.

import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { loadUpscaler, type UpscaledImage, type Upscaler } from '../../lib/index.js';
import { InvalidFieldError, parseDecimal, parseInteger } from '../parse.js';
import { errorMessage, interruptedExitCode, oneOf, onInterrupt, parseCommand, usageError } from './common.js';
import { ProgressBar } from './progress-bar.js';

const optionSpec = {
  input: { type: 'string', short: 'i' },
  'upscale-model': { type: 'string' },
  output: { type: 'string', short: 'o' },
  scale: { type: 'string' },
  tile: { type: 'string' },
  threads: { type: 'string', short: 't' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const help = 'sdnode upscale --help';

export const upscaleUsage = `Usage: sdnode upscale -i <image> --upscale-model <file> [options]

Enlarges an image with an ESRGAN-family upscaler: RRDBNet (ESRGAN_4x, RealESRGAN_x4plus,
RealESRGAN_x4plus_anime_6B, RealESRGAN_x2plus) or SRVGGNetCompact (realesr-general-x4v3), as
.safetensors or .gguf. The network sees tiles of the image that overlap and are blended, so memory
stays the same for any image size.

  -i, --input <image>          PNG, JPEG or WebP image. Required.
      --upscale-model <file>   The upscaler. Required.
  -o, --output <file.png>      Where to write the PNG (default: <input>-x<scale>.png beside it).
      --scale <n>              Output size as a factor of the input's, 0.25-16 (default: the model's).
                               Above the model's the model runs again on its output; the result is
                               resized to the exact size with Lanczos.
      --tile <px>              Input tile side, 32-2048 (default 128).
  -t, --threads <n>            CPU threads (default: physical cores).
      --backend <name>         auto, cpu, metal or cuda (default auto).
  -h, --help                   Show this help.

Example:
  npx sdnode upscale -i photo.png --upscale-model RealESRGAN_x4plus.safetensors -o photo-x4.png`;

/** Runs `sdnode upscale` with the arguments after the command; resolves to the exit code. */
export async function upscaleCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('upscale', argv, optionSpec, upscaleUsage);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length > 0) return usageError(`Unexpected argument ${positionals[0]}`, help);
  let scale: number | undefined;
  let tile: number | undefined;
  let threads: number | undefined;
  let backend: 'auto' | 'cpu' | 'metal' | 'cuda' | undefined;
  try {
    if (values.input === undefined) throw new InvalidFieldError('--input', 'Missing --input <image>');
    if (values['upscale-model'] === undefined) throw new InvalidFieldError('--upscale-model', 'Missing --upscale-model <file>');
    scale = values.scale === undefined ? undefined : parseDecimal('--scale', values.scale, { min: 0.25, max: 16 });
    tile = values.tile === undefined ? undefined : parseInteger('--tile', values.tile, { min: 32, max: 2048 });
    threads = values.threads === undefined ? undefined : parseInteger('--threads', values.threads, { min: 1, max: 1024 });
    backend = values.backend === undefined ? undefined : oneOf(values.backend, '--backend', ['auto', 'cpu', 'metal', 'cuda'] as const);
  } catch (error) {
    if (error instanceof InvalidFieldError) return usageError(error.message, help);
    throw error;
  }
  const input = values.input;
  const controller = new AbortController();
  const bar = new ProgressBar(process.stdout);
  const removeHandlers = onInterrupt(() => {
    bar.print('Stopping (Ctrl-C again to stop at once) …');
    controller.abort();
  });
  const started = Date.now();
  let upscaler: Upscaler | undefined;
  let result: UpscaledImage;
  let output: string;
  try {
    upscaler = await loadUpscaler(values['upscale-model'], { threads, backend });
    output = values.output ?? defaultOutput(input, scale ?? upscaler.info.scale);
    result = await upscaler.upscale(input, {
      scale, tile, signal: controller.signal,
      onProgress: ({ tile: done, tiles, pass, passes }) => {
        bar.draw({ label: passes > 1 ? `tiles (pass ${pass}/${passes})` : 'tiles', done, total: tiles });
      },
    });
    await writeFile(output, result.png);
  } catch (error) {
    bar.clear();
    if (controller.signal.aborted) {
      console.error('sdnode: stopped by Ctrl-C; nothing was written');
      return interruptedExitCode;
    }
    console.error(`sdnode: ${errorMessage(error)}`);
    return 1;
  } finally {
    removeHandlers();
    await upscaler?.close();
  }
  bar.clear();
  console.log(`Wrote ${output}: ${result.width}x${result.height} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

// photo.png -> photo-x4.png beside it
function defaultOutput(input: string, scale: number): string {
  const parsed = path.parse(input);
  return path.join(parsed.dir, `${parsed.name}-x${scale}.png`);
}
