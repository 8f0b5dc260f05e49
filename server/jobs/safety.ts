// The safety check of a job's images (JobParameters.safetyCheck), run by the worker on each
// finished image, and its verdict. The verdict travels inside the stored PNG, as a text chunk,
// so that it is kept wherever the job's images are (files, Redis) and read back by any process.

import sharp from 'sharp';

import { insertPngText, readPngText, type SafetyResult } from '../../lib/index.js';

/** What a safety check does with a flagged image: keep it ('report') or make it black ('filter'). */
export type SafetyCheckMode = 'report' | 'filter';

/** The part of the library's SafetyChecker the worker uses. */
export interface ImageSafetyChecker {
  check(image: Buffer): Promise<SafetyResult[]>;
}

/**
 * The verdict on one image of a job that asked for a check. `nsfw` is null when the worker that
 * made the image had no safety checker (`--safety-checker`): not checked, never a pretend false.
 */
export type ImageSafety =
  | ({ nsfw: boolean; filtered: boolean } & Omit<SafetyResult, 'nsfw'>)
  | { nsfw: null; reason: string };

/** PNG text keyword of the verdict. */
export const safetyKeyword = 'sdnode-safety';

const notChecked: ImageSafety = {
  nsfw: null,
  reason: 'No safety checker is loaded (start the server with --safety-checker FILE); the image was not checked',
};

/** Checks a finished PNG; returns the PNG to store (black when flagged and filtered) with the verdict inside. */
export async function screenImage(png: Buffer, mode: SafetyCheckMode, checker: ImageSafetyChecker | undefined): Promise<Buffer> {
  if (!checker) return insertPngText(png, safetyKeyword, JSON.stringify(notChecked));
  const [result] = await checker.check(png);
  if (!result) throw new Error('The safety checker returned no verdict');
  const filtered = result.nsfw && mode === 'filter';
  const verdict: ImageSafety = { ...result, filtered };
  const { parameters } = readPngText(png);
  let stored = png;
  if (filtered) {
    // As the reference pipeline: a black image of the same size (its parameters kept).
    const { width, height } = await sharp(png).metadata();
    const black = await sharp({ create: { width: width ?? 0, height: height ?? 0, channels: 3, background: '#000000' } }).png().toBuffer();
    stored = parameters === undefined ? black : insertPngText(black, 'parameters', parameters);
  }
  return insertPngText(stored, safetyKeyword, JSON.stringify(verdict));
}

/** What a dialect answers about a job's images: `nsfw` per image (null: not checked) and, when any was not checked, why. */
export interface SafetyVerdicts {
  nsfw: (boolean | null)[];
  warning?: string;
}

/** The verdicts of the images of a job that asked for a check (JobParameters.safetyCheck). */
export function safetyVerdicts(pngs: readonly Buffer[]): SafetyVerdicts {
  const verdicts = pngs.map((png) => imageSafety(png) ?? notChecked);
  const unchecked = verdicts.find((verdict) => verdict.nsfw === null);
  return {
    nsfw: verdicts.map((verdict) => verdict.nsfw),
    ...(unchecked?.nsfw === null && { warning: `nsfw is null: ${unchecked.reason}` }),
  };
}

/** The verdict stored in a job's PNG; undefined when the job asked for no check. */
export function imageSafety(png: Buffer): ImageSafety | undefined {
  const text = readPngText(png)[safetyKeyword];
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as ImageSafety;
    return parsed.nsfw === null || typeof parsed.nsfw === 'boolean' ? parsed : undefined;
  } catch {
    return undefined;
  }
}
