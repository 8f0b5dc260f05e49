#!/usr/bin/env node
// npm's install step: use a matching prebuild when the package ships one, otherwise compile the
// addon (ggml + engine via CMake, then node-gyp). Also what `npx sdnode build` runs, with --force.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const force = process.argv.includes('--force');

function prebuildLoads() {
  try {
    const nodeGypBuild = require('node-gyp-build');
    const file = nodeGypBuild.resolve(root);
    require(file).systemInfo();
    console.log(`sdnode: using ${path.relative(root, file)}`);
    return true;
  } catch {
    return false;
  }
}

function nodeGypCommand() {
  // npm tells its scripts where its bundled node-gyp lives; fall back to our devDependency or PATH.
  if (process.env.npm_config_node_gyp) return [process.execPath, [process.env.npm_config_node_gyp]];
  try {
    return [process.execPath, [require.resolve('node-gyp/bin/node-gyp.js')]];
  } catch {
    return [process.platform === 'win32' ? 'node-gyp.cmd' : 'node-gyp', []];
  }
}

if (!force && prebuildLoads()) process.exit(0);
console.log('sdnode: compiling the native addon from source (ggml + engine; a few minutes on first build)');
const started = Date.now();
const [command, prefix] = nodeGypCommand();
const result = spawnSync(command, [...prefix, 'rebuild'], { cwd: root, stdio: 'inherit' });
if (result.error || result.status !== 0) {
  console.error(
    '\nsdnode: building the native addon failed. It needs cmake (3.18+), git and a C++17 compiler:\n' +
      '  Debian/Ubuntu: apt-get install cmake git g++ python3 make\n' +
      '  macOS:         xcode-select --install && brew install cmake\n' +
      'Then run: npx sdnode build',
  );
  process.exit(result.status || 1);
}
console.log(`sdnode: native addon built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
