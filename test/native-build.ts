// Where the last native build from source left its static libraries (engine and ggml), for the
// tests that link a C++ harness against them (test/native/*.cpp).
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

export const engineLibraryName = process.platform === 'win32' ? 'sdengine.lib' : 'libsdengine.a';

/** The library folder of the newest native build; none where the addon came from a prebuild. */
export function nativeLibraryFolder(): string | undefined {
  const builds = path.join(root, '.native-build');
  if (!existsSync(builds)) return undefined;
  const age = (folder: string) => statSync(path.join(folder, engineLibraryName)).mtimeMs;
  return readdirSync(builds)
    .filter((name) => name.startsWith('cmake-'))
    .map((name) => path.join(builds, name, 'lib'))
    .filter((folder) => existsSync(path.join(folder, engineLibraryName)))
    .sort((a, b) => age(b) - age(a))[0];
}

/** `-I` arguments for every folder of the engine's sources (they include each other by name alone). */
export function engineIncludeArgs(): string[] {
  const engine = path.join(root, 'native', 'engine');
  const folders = readdirSync(engine, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => path.join(engine, entry.name));
  return [engine, ...folders].flatMap((folder) => ['-I', folder]);
}
