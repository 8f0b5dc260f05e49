// AUTOMATIC1111's generation parameters text, and the PNG text chunk that carries it: written right
// after IHDR, so that tools which read only the first chunks (web UIs' "PNG info") find it.
import { inflateSync } from 'node:zlib';

import type { MaskedStart } from './option-types.js';
import { invalid, type NormalizedImageOptions } from './options.js';
import { encodeChunk, PNG_SIGNATURE } from './png.js';
import { samplerDisplayNames, schedulerDisplayNames, type SamplerName, type SchedulerName } from './samplers.js';

/**
 * The A1111 `parameters` text of one image: the prompt, a "Negative prompt:" line when there is
 * one, then "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model: v1-5", with
 * the fields A1111 adds where they apply, in its order: "Schedule type" for non-default schedules,
 * "Variation seed" and "Variation seed strength", "Seed resize from", "Denoising strength" (image-
 * to-image, inpainting and the hires fix), "Clip skip", "Tiling", the hires fix's "Hires prompt",
 * "Hires negative prompt", "Hires upscale" or "Hires resize", "Hires steps", "Hires upscaler",
 * "Mask blur", "Masked content", "Lora hashes" (`name: hash12` per LoRA, see lora.ts) and "TI hashes"
 * (the same per textual-inversion embedding the prompts named, see embeddings.ts). Size is
 * the first pass's, as in A1111. Values holding a comma, colon or newline are quoted as A1111
 * quotes them.
 */
export function formatParameters(
  request: NormalizedImageOptions, image: { seed: number; subseed: number }, modelName: string, loraHashes?: string,
  refinerName?: string, family?: string, tiHashes?: string, extraFields: Array<[string, string]> = [],
): string {
  const s = request.settings;
  const { hires } = request;
  const fields: Array<[string, string | number]> = [
    ['Steps', s.steps],
    ['Sampler', samplerDisplayNames[s.sampler as SamplerName]],
  ];
  if (s.scheduler !== 'discrete') {
    fields.push(['Schedule type', schedulerDisplayNames[s.scheduler as Exclude<SchedulerName, 'discrete'>]]);
  }
  fields.push(['CFG scale', s.cfgScale]);
  // Forge's name for FLUX.1 dev's distilled guidance, and its "Shift" of the flow schedule.
  if (family === 'flux-dev') fields.push(['Distilled CFG Scale', s.guidance]);
  if (s.flowShift > 0) fields.push(['Shift', s.flowShift]);
  fields.push(['Seed', image.seed], ['Size', `${s.width}x${s.height}`], ['Model', modelName]);
  if (s.subseedStrength > 0) fields.push(['Variation seed', image.subseed], ['Variation seed strength', s.subseedStrength]);
  if (s.seedResizeWidth > 0) fields.push(['Seed resize from', `${s.seedResizeWidth}x${s.seedResizeHeight}`]);
  if (s.mode !== 'txt2img') fields.push(['Denoising strength', s.strength]);
  if (hires) fields.push(['Denoising strength', hires.denoisingStrength]);
  if (s.clipSkip > 1) fields.push(['Clip skip', s.clipSkip]);
  if (s.tiling) fields.push(['Tiling', 'True']);
  if (hires) {
    if (hires.prompt !== undefined && hires.prompt !== request.prompt) fields.push(['Hires prompt', hires.prompt]);
    if (hires.negativePrompt !== undefined && hires.negativePrompt !== request.negativePrompt) {
      fields.push(['Hires negative prompt', hires.negativePrompt]);
    }
    const { sizedBy } = hires;
    if ('scale' in sizedBy) fields.push(['Hires upscale', sizedBy.scale]);
    else fields.push(['Hires resize', `${sizedBy.width}x${sizedBy.height}`]);
    if (hires.steps > 0) fields.push(['Hires steps', hires.steps]);
    fields.push(['Hires upscaler', hires.upscaler]);
  }
  if (s.mode === 'inpaint') fields.push(['Mask blur', request.maskBlur]);
  if (s.maskedStart !== 'original') fields.push(['Masked content', maskedContentNames[s.maskedStart as Exclude<MaskedStart, 'original'>]]);
  if (loraHashes !== undefined) fields.push(['Lora hashes', loraHashes]);
  if (tiHashes !== undefined) fields.push(['TI hashes', tiHashes]);
  if (request.refiner && refinerName !== undefined) {
    fields.push(['Refiner', refinerName], ['Refiner switch at', request.refiner.switchAt]);
  }
  fields.push(...extraFields);

  const lines = [request.prompt];
  if (request.negativePrompt) lines.push(`Negative prompt: ${request.negativePrompt}`);
  lines.push(fields.map(([name, value]) => `${name}: ${quote(value)}`).join(', '));
  return lines.join('\n');
}

// A1111's names of its inpainting_fill choices that write a field.
const maskedContentNames: Readonly<Record<Exclude<MaskedStart, 'original'>, string>> = { noise: 'latent noise', zeros: 'latent nothing' };

// A1111's infotext quote(): JSON string syntax for a value the field list could not otherwise hold.
function quote(value: string | number): string {
  const text = String(value);
  return /[,:\n]/.test(text) ? JSON.stringify(text) : text;
}

/**
 * Returns a copy of `png` with a text chunk right after IHDR: tEXt when `text` is Latin-1, else
 * iTXt with UTF-8 (as Pillow, and so AUTOMATIC1111, writes it).
 */
export function insertPngText(png: Buffer, keyword: string, text: string): Buffer {
  const ihdr = chunkAt(png, PNG_SIGNATURE.length, 'png');
  if (ihdr.type !== 'IHDR') throw invalid(TypeError, 'png', 'PNG data', png);
  const ihdrEnd = PNG_SIGNATURE.length + 12 + ihdr.length;
  // eslint-disable-next-line no-control-regex
  const latin1 = /^[\u0000-\u00ff]*$/.test(text);
  const data = latin1
    ? Buffer.concat([Buffer.from(`${keyword}\0`, 'latin1'), Buffer.from(text, 'latin1')])
    // keyword, compression flag 0, method 0, empty language tag, empty translated keyword, text
    : Buffer.concat([Buffer.from(`${keyword}\0\0\0\0\0`, 'latin1'), Buffer.from(text, 'utf8')]);
  return Buffer.concat([png.subarray(0, ihdrEnd), encodeChunk(latin1 ? 'tEXt' : 'iTXt', data), png.subarray(ihdrEnd)]);
}

/** Largest text one chunk may hold (after inflating); larger chunks are skipped. */
export const MAX_PNG_TEXT_BYTES = 1024 * 1024;
/** Most text read from one PNG, all chunks together; chunks past it are skipped. */
export const MAX_PNG_TEXT_TOTAL_BYTES = 4 * 1024 * 1024;

/**
 * Every tEXt, zTXt and iTXt entry of a PNG, keyword → text (the first of each keyword). A chunk
 * whose text is over MAX_PNG_TEXT_BYTES, or would take the total over MAX_PNG_TEXT_TOTAL_BYTES,
 * is skipped, and so is compressed text that does not inflate: a small upload cannot make this
 * inflate gigabytes.
 */
export function readPngText(png: Buffer | Uint8Array): Record<string, string> {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  // A map, so that any keyword ("__proto__" too) becomes an own property of the result.
  const entries = new Map<string, string>();
  let budget = MAX_PNG_TEXT_TOTAL_BYTES;
  for (let offset = PNG_SIGNATURE.length; offset < buf.length;) {
    const chunk = chunkAt(buf, offset, 'png');
    const entry = decodeTextChunk(chunk.type, chunk.data, Math.min(budget, MAX_PNG_TEXT_BYTES));
    if (entry && !entries.has(entry[0])) {
      entries.set(entry[0], entry[1]);
      budget -= entry[1].length;
    }
    if (chunk.type === 'IEND') break;
    offset += 12 + chunk.length;
  }
  return Object.fromEntries(entries);
}

interface Chunk { type: string; length: number; data: Buffer }

function chunkAt(buf: Buffer, offset: number, name: string): Chunk {
  if (offset === PNG_SIGNATURE.length && !buf.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw invalid(TypeError, name, 'PNG data', buf);
  }
  if (offset + 12 > buf.length) throw new TypeError(`Truncated PNG: chunk header at byte ${offset} is past the end`);
  const length = buf.readUInt32BE(offset);
  if (offset + 12 + length > buf.length) {
    throw new TypeError(`Truncated PNG: chunk at byte ${offset} claims ${length} bytes, past the end`);
  }
  return {
    type: buf.toString('latin1', offset + 4, offset + 8),
    length,
    data: buf.subarray(offset + 8, offset + 8 + length),
  };
}

function decodeTextChunk(type: string, data: Buffer, maxBytes: number): [string, string] | undefined {
  const keywordEnd = data.indexOf(0);
  if (keywordEnd < 0) return undefined;
  const keyword = data.toString('latin1', 0, keywordEnd);
  const rest = data.subarray(keywordEnd + 1);
  let text: Buffer | undefined;
  let encoding: BufferEncoding = 'latin1';
  switch (type) {
    case 'tEXt':
      text = rest;
      break;
    case 'zTXt':
      text = inflated(rest.subarray(1), maxBytes);
      break;
    case 'iTXt': {
      const compressed = rest[0] === 1;
      const languageEnd = rest.indexOf(0, 2);
      const translatedEnd = languageEnd < 0 ? -1 : rest.indexOf(0, languageEnd + 1);
      if (translatedEnd < 0) return undefined;
      const body = rest.subarray(translatedEnd + 1);
      text = compressed ? inflated(body, maxBytes) : body;
      encoding = 'utf8';
      break;
    }
    default:
      return undefined;
  }
  if (text === undefined || text.length > maxBytes) return undefined;
  return [keyword, text.toString(encoding)];
}

/** The inflated data, or undefined when it is longer than `maxBytes` or not valid zlib data. */
function inflated(data: Buffer, maxBytes: number): Buffer | undefined {
  try {
    return inflateSync(data, { maxOutputLength: Math.max(1, maxBytes) });
  } catch {
    return undefined;
  }
}
