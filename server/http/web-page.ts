// GET / : the web page for people (built from ui/ into dist/ui/ by `npm install`), its script and
// styles under /ui/. Open even when API keys are set: the page holds no images; it asks for the
// key and sends it with every API call, as any other client does. Under --api-prefix the page's
// links are rewritten to carry the prefix, and a meta tag tells its script the prefix.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import express, { Router } from 'express';

import { packageRoot } from '../version.js';
import { ApiError } from './errors.js';

// The page talks to this server only, and shows images from object URLs.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
  + "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** `prefix`: the server's --api-prefix ('' for none). */
export function webPageRoutes(prefix: string): Router {
  const dir = path.join(packageRoot(), 'dist', 'ui');
  const page = path.join(dir, 'index.html');
  const router = Router();
  router.get('/', async (_req, res) => {
    if (!existsSync(page)) {
      throw new ApiError(404, 'NOT_FOUND', 'The web page is not built: run npm run build:ui in the sdnode folder. '
        + `The APIs work without it; see ${prefix}/docs`);
    }
    res.set({ 'Content-Security-Policy': contentSecurityPolicy, 'Cache-Control': 'no-cache' });
    if (prefix === '') {
      // With a root, only the path below it is checked for dot-folders (npx installs under ~/.npm).
      res.sendFile('index.html', { root: dir });
      return;
    }
    res.type('html').send(underPrefix(await readFile(page, 'utf8'), prefix));
  });
  router.use('/ui', express.static(dir, { index: false, fallthrough: false, maxAge: 0 }));
  return router;
}

// The page's own links are absolute ("/ui/app.js", "/docs").
function underPrefix(html: string, prefix: string): string {
  return html
    .replace(/(href|src)="\//g, `$1="${prefix}/`)
    .replace('<meta charset="utf-8">', `<meta charset="utf-8">\n  <meta name="sdnode-api-prefix" content="${prefix}">`);
}
