// GET /openapi.json (the document generated from the declared routes) and GET /docs (Swagger UI
// from the swagger-ui-dist package, served from this server: no CDN, works offline). Both stay
// open when API keys are set; the page's "Authorize" button takes a key.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';

import express, { Router } from 'express';

import type { ApiRegistry } from './api.js';

const require = createRequire(import.meta.url);
const swaggerUiDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));

// Only the files the page loads are served.
const swaggerUiFiles = ['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'favicon-32x32.png'];

const docsPage = (prefix: string): string => `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>sdnode API</title>
  <link rel="stylesheet" href="${prefix}/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="${prefix}/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${prefix}/docs/assets/swagger-ui-bundle.js"></script>
  <script src="${prefix}/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="${prefix}/docs/init.js"></script>
</body>
</html>
`;

// validatorUrl null: the default would send the document to validator.swagger.io.
const initScript = (prefix: string): string => `window.ui = SwaggerUIBundle({
  url: '${prefix}/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: 'StandaloneLayout',
});
`;

/** `info.prefix`: the server's --api-prefix ('' for none), which the document's paths and the page's links carry. */
export function docsRoutes(api: ApiRegistry, info: { version: string; prefix: string; dialects: { name: string; description: string }[] }): Router {
  const router = Router();
  // Serialized and hashed once: a few hundred KB that res.json would stringify, and Express hash
  // for its ETag, on the event loop for every request.
  let document: { body: Buffer; etag: string } | undefined;
  router.get('/openapi.json', (req, res) => {
    if (!document) {
      const body = Buffer.from(JSON.stringify(api.document({
        title: 'sdnode',
        version: info.version,
        description: 'Local Stable Diffusion image generation. Every API dialect below feeds one job queue.',
      }, info.dialects, info.prefix), null, req.app.get('json spaces') as number | undefined));
      // The weak ETag Express would make (the etag package's form), so clients see no change.
      document = { body, etag: `W/"${body.length.toString(16)}-${createHash('sha1').update(body).digest('base64').slice(0, 27)}"` };
    }
    res.type('json').set('ETag', document.etag).send(document.body);
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(docsPage(info.prefix));
  });
  router.get('/docs/init.js', (_req, res) => {
    res.type('js').send(initScript(info.prefix));
  });
  const assets = express.static(swaggerUiDir, { index: false, fallthrough: false, maxAge: '1d' });
  router.use('/docs/assets', (req, res, next) => {
    if (!swaggerUiFiles.includes(req.path.slice(1))) {
      res.status(404).json({ error: { code: 'NOT_FOUND', message: `No file ${req.path} in the docs` } });
      return;
    }
    assets(req, res, next);
  });
  return router;
}
