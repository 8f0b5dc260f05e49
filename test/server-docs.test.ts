// /openapi.json is a valid OpenAPI 3.1 document covering every route; /docs is a page that works
// offline; --api mounts only the dialects asked for.

import { Validator } from '@seriousme/openapi-schema-validator';
import t from 'tap';

import { FakeModel, getJson, startTestServer } from './server-helpers.js';

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { tags: string[]; requestBody?: unknown; responses: Record<string, unknown> }>>;
}

t.test('/openapi.json validates as OpenAPI 3.1 and documents every dialect\'s routes', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const { status, body } = await getJson(`${url}/openapi.json`);
  t.equal(status, 200);
  const document = body as unknown as OpenApiDocument;
  t.equal(document.openapi, '3.1.0');
  const validator = new Validator();
  const result = await validator.validate(document as unknown as object);
  t.ok(result.valid, `valid: ${JSON.stringify(result.errors ?? []).slice(0, 2000)}`);
  for (const path of ['/text-to-image', '/image-to-image', '/inpaint-image', '/text-to-image/{id}', '/text-to-image/{id}/{file}',
    '/v1/images/generations', '/v1/images/edits', '/v1/images/variations', '/v1/models', '/v1/models/{id}',
    '/sdapi/v1/txt2img', '/sdapi/v1/img2img', '/sdapi/v1/progress', '/sdapi/v1/options', '/sdapi/v1/png-info',
    '/txt2img', '/task', '/task/{task_id}', '/blob', '/blob/{blob_id}', '/token', '/user', '/models']) {
    t.ok(document.paths[path], `documents ${path}`);
  }
  const m1Form = document.paths['/text-to-image']?.post?.requestBody as { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
  t.match(m1Form.content['multipart/form-data']?.schema.properties.steps, { type: 'integer', minimum: 1, maximum: 150 });
  const edit = document.paths['/v1/images/edits']?.post?.requestBody as { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> };
  t.match(edit.content['multipart/form-data']?.schema, { properties: { image: { type: 'string' } }, required: ['prompt', 'image'] });
  const switchAt = { type: 'number', exclusiveMinimum: 0, maximum: 1, description: /refiner takes over/ };
  t.match(m1Form.content['multipart/form-data']?.schema.properties, { refiner_checkpoint: { type: 'string' }, refiner_switch_at: switchAt });
  const task = document.paths['/task']?.post?.requestBody as { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
  t.match(task.content['application/json']?.schema.properties, { refiner_model: { type: 'string' }, refiner_switch_at: switchAt });
  const taskQuery = (document.paths['/txt2img']?.get as { parameters?: { name: string }[] } | undefined)?.parameters ?? [];
  t.ok(taskQuery.some((parameter) => parameter.name === 'refiner_model'), 'GET /txt2img documents refiner_model');
  const a1111 = document.paths['/sdapi/v1/txt2img']?.post?.requestBody as { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
  t.match(a1111.content['application/json']?.schema.properties, { refiner_checkpoint: { description: /takes over/ }, refiner_switch_at: { description: /above 0 and at most 1/ } });
});

t.test('every example call in the README is a documented route and method', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const document = (await getJson(`${url}/openapi.json`)).body as unknown as OpenApiDocument;
  const calls = [...readme.matchAll(/^curl [^\n]*$/gm)].map(([line]) => line);
  t.ok(calls.length >= 8, `found ${calls.length} curl calls`);
  for (const line of calls) {
    const rawPath = /http:\/\/127\.0\.0\.1:8888(\/[^\s"'?]*)/.exec(line)?.[1] ?? '';
    const path = rawPath.replace(/<id>/g, 'ID');
    const verb = (/-X (\w+)/.exec(line)?.[1] ?? (/ -F | -d |--data|--json/.test(line) ? 'POST' : 'GET')).toLowerCase();
    const documented = Object.keys(document.paths).find((p) => new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path));
    t.ok(documented !== undefined && document.paths[documented]?.[verb], `${verb.toUpperCase()} ${path}: ${line.slice(0, 70)}`);
  }
});

t.test('/docs serves Swagger UI from this server and loads nothing from elsewhere', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['k'] });
  const page = await fetch(`${url}/docs`);
  t.equal(page.status, 200, 'open without a key');
  t.match(page.headers.get('content-type'), /text\/html/);
  const html = await page.text();
  const references = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? '');
  t.ok(references.length >= 3);
  for (const reference of references) {
    t.match(reference, /^\/docs\//, `${reference} is on this server`);
    const asset = await fetch(`${url}${reference}`);
    t.equal(asset.status, 200, `${reference} is served`);
    if (reference.endsWith('init.js')) {
      const script = await asset.text();
      t.match(script, /url: '\/openapi\.json'/);
      t.match(script, /validatorUrl: null/, 'no call to the online validator');
    }
  }
  t.equal((await fetch(`${url}/docs/assets/../../package.json`)).status, 404);
  t.equal((await fetch(`${url}/openapi.json`)).status, 200, 'the document is open too');
});

t.test('--api mounts only the dialects asked for', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apis: ['openai'] });
  const m1 = await getJson(`${url}/text-to-image`, { method: 'POST' });
  t.equal(m1.status, 404);
  t.match(m1.body.error?.message, /APIs served here: openai/);
  const document = (await getJson(`${url}/openapi.json`)).body as unknown as OpenApiDocument;
  t.notOk(document.paths['/text-to-image'], 'M1 is not documented');
  t.ok(document.paths['/v1/images/generations']);
});
