// ControlNet units on the library side: the files a folder offers (named as AUTOMATIC1111's
// ControlNet extension names them), a unit's model resolved to its file, and its control image
// fitted to the generation's size and preprocessed, as the engine takes it.
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';

import type { NativeControlUnit } from '../bindings/native.js';
import { canny } from './canny.js';
import { SdnodeError } from './errors.js';
import { filesUnder } from './folder-files.js';
import { decodeImageResized } from './images.js';
import type { NormalizedControlNet } from './options.js';

/** A ControlNet file in a folder, as the A1111 extension's `/controlnet/model_list` lists it. */
export interface ControlNetFileInfo {
  /** File name without extension: what a unit's `model` selects. */
  name: string;
  /** AUTOMATIC1111's legacy short hash of the file (8 hex digits); the extension lists `name [hash]`. */
  hash: string;
  /** Absolute path. */
  path: string;
}

/** File extensions a ControlNet may have. */
export const controlNetExtensions = ['.safetensors', '.gguf'] as const;

/** The ControlNet files under `dir` (and its subfolders), sorted by name; [] when the folder does not exist. */
export async function listControlNets(dir: string): Promise<ControlNetFileInfo[]> {
  const found = await Promise.all((await filesUnder(dir, controlNetExtensions)).map(async (file) => (
    { name: path.basename(file, path.extname(file)), hash: await legacyShortHash(file), path: file })));
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.path < b.path ? -1 : 1));
}

const shortHashes = new Map<string, Promise<string>>();

/**
 * AUTOMATIC1111's legacy model hash, which its ControlNet extension shows after each model's name:
 * the first 8 hex digits of the SHA-256 of the 64 KiB at offset 1 MiB (of fewer bytes for a smaller
 * file). Kept per file version (path, size, mtime).
 */
export async function legacyShortHash(file: string): Promise<string> {
  const { size, mtimeMs } = await stat(file);
  const key = `${file}\n${size}\n${mtimeMs}`;
  let hash = shortHashes.get(key);
  if (!hash) {
    hash = (async () => {
      const handle = await open(file, 'r');
      try {
        const chunk = Buffer.alloc(0x10000);
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, 0x100000);
        return createHash('sha256').update(chunk.subarray(0, bytesRead)).digest('hex').slice(0, 8);
      } finally {
        await handle.close();
      }
    })();
    shortHashes.set(key, hash);
    hash.catch(() => shortHashes.delete(key));
  }
  return hash;
}

/** "control_v11p_sd15_canny [d14c016b]" -> "control_v11p_sd15_canny": the extension's display name. */
function withoutHash(name: string): string {
  return name.replace(/\s*\[[0-9a-f]{8,}\]$/i, '');
}

/**
 * The file a unit's `model` names: a path to an existing file is that file, anything else a name
 * (file stem, any case, an A1111 " [hash]" allowed) in `dir`. Unknown names are a RangeError
 * naming the folder and the names it has.
 */
export async function resolveControlNet(model: string, dir: string | undefined, field: string): Promise<string> {
  if (/\.(safetensors|gguf)$/i.test(model) || model.includes('/') || model.includes(path.sep)) {
    try {
      if ((await stat(model)).isFile()) return path.resolve(model);
    } catch {
      // Not a file: perhaps a name that happens to look like one.
    }
  }
  if (dir === undefined) {
    throw new RangeError(`${field} names ControlNet "${model}", which is not a file, and no ControlNet folder is set; give `
      + 'controlNetDir (loadModel or generate option; --controlnet-dir for the server and the CLI) or a file path');
  }
  const available = await listControlNets(dir);
  const wanted = withoutHash(model).toLowerCase();
  const found = available.find((entry) => entry.name.toLowerCase() === wanted);
  if (!found) {
    const names = available.map((entry) => entry.name);
    throw new RangeError(`Unknown ControlNet "${model}" for ${field}: no ${controlNetExtensions.join(' or ')} file of that name in `
      + `${path.resolve(dir)}; available: ${names.length > 0 ? names.join(', ') : '(none)'}`);
  }
  return found.path;
}

/** The control image of a unit as the network reads it: fitted to width × height, then preprocessed. */
export async function controlImage(unit: NormalizedControlNet, width: number, height: number, field: string): Promise<Uint8Array> {
  const rgb = await decodeImageResized(unit.image, `${field}.image`, width, height, unit.resizeMode);
  if (unit.preprocessor === 'none') return rgb;
  const edges = canny(rgb, width, height, 3, { low: unit.cannyLow, high: unit.cannyHigh });
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < edges.length; i++) out.fill(edges[i], i * 3, i * 3 + 3);
  return out;
}

/**
 * Every unit resolved and its image prepared, as the engine takes them; with `hires` (the hires
 * fix's final size) also at that size, so the units steer its second pass too.
 */
export async function nativeControlUnits(
  units: NormalizedControlNet[], dir: string | undefined, width: number, height: number, hires?: { width: number; height: number },
): Promise<NativeControlUnit[]> {
  return Promise.all(units.map(async (unit, i) => {
    const field = `controlNets[${i}]`;
    const [file, image, hiresImage] = await Promise.all([
      resolveControlNet(unit.model, dir, `${field}.model`),
      controlImage(unit, width, height, field),
      hires && controlImage(unit, hires.width, hires.height, field),
    ]);
    return {
      path: file, image, ...(hiresImage && { hiresImage }), strength: unit.weight, guidanceStart: unit.guidanceStart,
      guidanceEnd: unit.guidanceEnd, mode: unit.controlMode,
    };
  }));
}

/** The parameters text's "ControlNet N" fields, as the A1111 extension writes them. */
export async function controlNetParameters(units: NormalizedControlNet[], files: string[]): Promise<Array<[string, string]>> {
  const modelNames = await Promise.all(files.map(async (file) => {
    try {
      return `${path.basename(file, path.extname(file))} [${await legacyShortHash(file)}]`;
    } catch (error) {
      throw new SdnodeError('ERR_MODEL_IO', `Cannot read ControlNet file ${file}: ${(error as Error).message}`, { cause: error });
    }
  }));
  const resizeNames = { 'just-resize': 'Just Resize', 'crop-and-resize': 'Crop and Resize', 'resize-and-fill': 'Resize and Fill' };
  const modeNames = { balanced: 'Balanced', prompt: 'My prompt is more important', control: 'ControlNet is more important' };
  return units.map((unit, i): [string, string] => {
    const fields = [
      `Module: ${unit.preprocessor}`, `Model: ${modelNames[i]}`, `Weight: ${unit.weight}`, `Resize Mode: ${resizeNames[unit.resizeMode]}`,
      ...(unit.preprocessor === 'canny' ? [`Threshold A: ${unit.cannyLow}`, `Threshold B: ${unit.cannyHigh}`] : []),
      `Guidance Start: ${unit.guidanceStart}`, `Guidance End: ${unit.guidanceEnd}`, `Control Mode: ${modeNames[unit.controlMode]}`,
    ];
    return [`ControlNet ${i}`, fields.join(', ')];
  });
}
