// A server started without --model: it answers, says how to fix it, and refuses generation.

import http from 'node:http';

import t from 'tap';

import { getJson, postForm, startTestServer } from './server-helpers.js';

t.test('health says the server is not ready and how to load a model', async (t) => {
  const { url } = await startTestServer(t);
  const { status, body } = await getJson(`${url}/health`);
  t.equal(status, 200);
  t.equal(body.ready, false);
  t.equal(body.model, null);
  t.match(body.hint, /sdnode serve --model/);
  t.same(body.queue, { waiting: 0, running: 0 });
});

t.test('each generation endpoint answers 503 MODEL_NOT_LOADED with a hint', async (t) => {
  const { url } = await startTestServer(t);
  for (const kind of ['text-to-image', 'image-to-image', 'inpaint-image']) {
    const { status, body } = await postForm(`${url}/${kind}`, { prompt: 'a photo of a cat' });
    t.equal(status, 503, kind);
    t.equal(body.error?.code, 'MODEL_NOT_LOADED', kind);
    t.match(body.error?.message, /start .*with sdnode serve --model <path/, kind);
  }
});

t.test('an unknown route is a JSON 404', async (t) => {
  const { url } = await startTestServer(t);
  for (const path of ['/nope', '/text-to-image/abc/def/ghi', '/ui/nothing.js']) {
    const { status, body, headers } = await getJson(`${url}${path}`);
    t.equal(status, 404, path);
    t.match(headers.get('content-type'), /application\/json/, path);
    t.equal(body.error?.code, 'NOT_FOUND', path);
  }
});

t.test('a wrong method is a 405 that lists the allowed ones', async (t) => {
  const { url } = await startTestServer(t);
  const cases: [string, string, string][] = [
    ['GET', '/text-to-image', 'POST'],
    ['PUT', '/inpaint-image', 'POST'],
    ['POST', '/health', 'GET'],
    ['PUT', '/text-to-image/AAAAAAAAAAAAAAAAAAAAAA', 'GET, DELETE'],
    ['POST', '/image-to-image/AAAAAAAAAAAAAAAAAAAAAA/1.png', 'GET'],
  ];
  for (const [method, path, allow] of cases) {
    const { status, body, headers } = await getJson(`${url}${path}`, { method });
    t.equal(status, 405, `${method} ${path}`);
    t.equal(headers.get('allow'), allow, `${method} ${path}`);
    t.equal(body.error?.code, 'METHOD_NOT_ALLOWED', `${method} ${path}`);
  }
});

t.test('an unknown or malformed task id is a 404, never a path into the disk', async (t) => {
  const { url } = await startTestServer(t);
  const ids = ['AAAAAAAAAAAAAAAAAAAAAA', 'abc', '..', '..%2F..%2Fetc%2Fpasswd', '%2E%2E', 'task.json'];
  for (const id of ids) {
    for (const path of [`/text-to-image/${id}`, `/text-to-image/${id}/1.png`]) {
      // node:http sends the path as written; fetch would resolve the dot segments first.
      const { status, body } = await rawGet(url, path);
      t.equal(status, 404, path);
      t.match(body, /"code": "TASK_NOT_FOUND"/, path);
    }
  }
});

function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    http.get({ hostname, port, path }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

t.test('a malformed percent-escape in the path is a JSON 400', async (t) => {
  const { url } = await startTestServer(t);
  const { status, body } = await getJson(`${url}/text-to-image/%E0%A4%A`);
  t.equal(status, 400);
  t.equal(body.error?.code, 'BAD_REQUEST');
});
