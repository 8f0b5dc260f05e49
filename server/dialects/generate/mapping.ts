// /generate ↔ jobs: its fields to JobParameters (seeds reduced to the generator's range), and
// several images into one grid, laid out as AUTOMATIC1111 lays out its grids.

import sharp from 'sharp';

import { insertPngText, readPngText } from '../../../lib/index.js';
import type { JobParameters } from '../../jobs/job.js';
import { reducedSeed, withoutUndefined } from '../../jobs/parameters.js';
import type { GenerateRequest } from './schemas.js';

export function generateParameters(body: GenerateRequest): JobParameters {
  return withoutUndefined({
    prompt: body.prompt,
    count: body.number_of_images ?? 1,
    seed: reducedSeed(body.seed),
    width: body.width,
    height: body.height,
    cfgScale: body.cfg_scale,
    guidance: body.guidance,
    steps: body.steps,
  });
}

/** AUTOMATIC1111's default grid: round(√n) rows, as many columns as needed, filled row by row. */
export function gridShape(count: number): { rows: number; cols: number } {
  const rows = Math.min(count, Math.max(1, Math.round(Math.sqrt(count))));
  return { rows, cols: Math.ceil(count / rows) };
}

/** One PNG of the images (all of one size) on black, with the first image's parameters as A1111 grids carry them. */
export async function imageGrid(images: readonly Buffer[]): Promise<Buffer> {
  const [first] = images;
  if (!first) throw new Error('A grid needs at least one image');
  const { width = 0, height = 0 } = await sharp(first).metadata();
  const { rows, cols } = gridShape(images.length);
  const grid = await sharp({ create: { width: cols * width, height: rows * height, channels: 3, background: '#000000' } })
    .composite(images.map((input, i) => ({ input, left: (i % cols) * width, top: Math.floor(i / cols) * height })))
    .png()
    .toBuffer();
  const { parameters } = readPngText(first);
  return parameters === undefined ? grid : insertPngText(grid, 'parameters', parameters);
}
