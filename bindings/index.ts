// Loads the compiled addon: a matching prebuild under prebuilds/ first, then build/Release.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { NativeAddon } from './native.js';

export type * from './native.js';

const require = createRequire(import.meta.url);

/** The package root: the nearest folder above this file that holds sdnode's package.json. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'sdnode') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('sdnode: cannot find the package root (package.json named "sdnode")');
    dir = parent;
  }
}

/** Thrown when no usable .node file exists; says how to build one. */
export class AddonLoadError extends Error {
  readonly code = 'ERR_ADDON_LOAD';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AddonLoadError';
  }
}

function howToBuild(root: string): string {
  return (
    `sdnode has no native addon for ${process.platform}-${process.arch} (Node ${process.version}).\n` +
    `Build it from source (needs cmake, git and a C++17 compiler):\n` +
    `  npx sdnode build\n` +
    `or let npm run sdnode's install script (npm 11 asks first):\n` +
    `  npm install-scripts approve sdnode && npm rebuild sdnode\n` +
    `Package folder: ${root}`
  );
}

let cached: NativeAddon | undefined;

/** The addon, loaded once. Throws AddonLoadError (code ERR_ADDON_LOAD) with build instructions. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const root = packageRoot();
  let file: string;
  try {
    const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    file = nodeGypBuild.resolve(root);
  } catch (cause) {
    throw new AddonLoadError(howToBuild(root), { cause });
  }
  cached = loadAddonFile(file);
  return cached;
}

/** Loads one .node file; a corrupt or incompatible file is an AddonLoadError naming it. */
export function loadAddonFile(file: string): NativeAddon {
  let addon: NativeAddon;
  try {
    addon = require(file) as NativeAddon;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new AddonLoadError(
      `sdnode's native addon at ${file} could not be loaded (${reason}).\n` +
        `It may be corrupt or built for another platform; rebuild it with: npx sdnode build`,
      { cause },
    );
  }
  if (typeof addon.systemInfo !== 'function' || typeof addon.loadModel !== 'function') {
    throw new AddonLoadError(`${file} is not sdnode's addon (no systemInfo/loadModel exports); rebuild with: npx sdnode build`);
  }
  return addon;
}
