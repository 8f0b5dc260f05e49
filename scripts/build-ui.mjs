// Builds the web page (ui/) into dist/ui/: the TypeScript bundled into one ES module by esbuild
// (lib/samplers.ts and lib/parameters-text.ts come along, so the page knows exactly the names
// the library does), next to the HTML, CSS and icon. `npm install` runs it (prepare); the server
// serves dist/ui at /.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'ui');
const target = path.join(root, 'dist', 'ui');
const staticFiles = ['index.html', 'style.css', 'favicon.svg'];

await rm(target, { recursive: true, force: true });
await mkdir(target, { recursive: true });
await build({
  entryPoints: [path.join(source, 'main.ts')],
  outfile: path.join(target, 'app.js'),
  bundle: true,
  format: 'esm',
  // Current Chromium, Firefox and Safari, and a year or two back.
  target: ['chrome111', 'firefox113', 'safari16.4'],
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
});
await Promise.all(staticFiles.map((file) => copyFile(path.join(source, file), path.join(target, file))));
