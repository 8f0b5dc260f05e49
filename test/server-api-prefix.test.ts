// --api-prefix over real HTTP: every route answers under the prefix and nowhere else, and the URLs
// the server writes into its answers (M1 resultUrl and imageUrls, OpenAI links, task blobs, the
// docs and the OpenAPI paths, the web page's links) carry it.

import sharp from 'sharp';
import t from 'tap';
import WebSocket from 'ws';

import { startServer } from '../server/index.js';
import { FakeModel, getJson, outputTestdir, pollTask, postForm, startTestServer } from './server-helpers.js';

const prefix = '/sd';

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

t.test('the server URL ends with the prefix; A1111 txt2img answers there and not at the root', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiPrefix: prefix });
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/sd$/);
  const origin = new URL(url).origin;
  const made = await postJson(`${url}/sdapi/v1/txt2img`, { prompt: 'a fox', steps: 1, width: 64, height: 64, seed: 3 });
  t.equal(made.status, 200);
  const [image] = made.body.images as string[];
  t.match(await sharp(Buffer.from(image ?? '', 'base64')).metadata(), { format: 'png', width: 64, height: 64 });
  const root = await postJson(`${origin}/sdapi/v1/txt2img`, { prompt: 'a fox', steps: 1, width: 64, height: 64 });
  t.equal(root.status, 404);
  t.match(root.body, { error: { code: 'NOT_FOUND', message: /all under \/sd; see \/sd\/docs/ } });
  t.equal((await getJson(`${url}/health`)).status, 200);
  t.equal((await getJson(`${origin}/health`)).status, 404);
});

t.test('M1: text-to-image answers a prefixed resultUrl whose polling and image URLs work', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiPrefix: prefix });
  const origin = new URL(url).origin;
  const queued = await postForm(`${url}/text-to-image`, { prompt: 'a fox', steps: '2', iterations: '2' });
  t.equal(queued.status, 200);
  const resultUrl = queued.body.resultUrl ?? '';
  t.match(resultUrl, /^\/sd\/text-to-image\/[A-Za-z0-9_-]{22}$/);
  const seen = await pollTask(`${origin}${resultUrl}`, (body) => body.status === 'COMPLETE' || body.status === 'FAILED');
  const done = seen.at(-1);
  t.same(done, { status: 'COMPLETE', resultUrl, imageUrls: [`${resultUrl}/1.png`, `${resultUrl}/2.png`] });
  const png = await fetch(`${origin}${done?.imageUrls?.[1] ?? ''}`);
  t.equal(png.headers.get('content-type'), 'image/png');
  t.equal((await postForm(`${origin}/text-to-image`, { prompt: 'a fox' })).status, 404);
  t.equal((await getJson(`${origin}${resultUrl.slice(prefix.length)}`)).status, 404);
});

t.test('/docs and /openapi.json live under the prefix and list prefixed paths', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiPrefix: prefix });
  const origin = new URL(url).origin;
  const document = await getJson(`${url}/openapi.json`);
  t.equal(document.status, 200);
  const paths = Object.keys((document.body as { paths?: Record<string, unknown> }).paths ?? {});
  t.ok(paths.length > 20, `${paths.length} paths`);
  t.same(paths.filter((path) => !path.startsWith(`${prefix}/`)), [], 'every path starts with the prefix');
  for (const path of ['/sd/sdapi/v1/txt2img', '/sd/text-to-image', '/sd/text-to-image/{id}', '/sd/v1/images/generations', '/sd/task']) {
    t.ok(paths.includes(path), path);
  }
  const page = await (await fetch(`${url}/docs`)).text();
  t.match(page, /href="\/sd\/docs\/assets\/swagger-ui\.css"/);
  t.match(page, /src="\/sd\/docs\/init\.js"/);
  t.match(await (await fetch(`${url}/docs/init.js`)).text(), /url: '\/sd\/openapi\.json'/);
  t.equal((await fetch(`${url}/docs/assets/swagger-ui.css`)).status, 200);
  t.equal((await fetch(`${origin}/openapi.json`)).status, 404);
  t.equal((await fetch(`${origin}/docs`)).status, 404);
});

t.test('OpenAI url results and task blobs and events carry the prefix', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiPrefix: prefix });
  const generated = await postJson(`${url}/v1/images/generations`, { prompt: 'a fox', response_format: 'url', size: '64x64' });
  t.equal(generated.status, 200);
  const link = (generated.body.data as { url: string }[])[0]?.url ?? '';
  t.match(link, new RegExp(`^${url}/v1/images/files/[A-Za-z0-9_-]{22}/1\\.png\\?expires=\\d+&signature=[0-9a-f]{64}$`));
  t.equal((await fetch(link)).headers.get('content-type'), 'image/png');

  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/events`);
  t.teardown(() => socket.close());
  const finished = new Promise<Record<string, unknown>>((resolve) => {
    socket.on('message', (data: Buffer) => {
      const event = JSON.parse(data.toString()) as Record<string, unknown>;
      if (event.event_type === 'finished') resolve(event);
    });
  });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const task = await postJson(`${url}/task`, { task_type: 'txt2img', prompt: 'a fox', steps: 1, width: 64, height: 64 });
  const id = String(task.body.task_id);
  t.match(await finished, { task_id: id, blob_url: `${url}/blob/${id}-1` });
  const blob = await fetch(`${url}/blob/${id}-1`);
  t.equal(blob.headers.get('content-type'), 'image/png');
  const upload = new FormData();
  upload.append('file', new Blob([await blob.arrayBuffer()], { type: 'image/png' }), 'fox.png');
  const stored = await (await fetch(`${url}/blob`, { method: 'POST', body: upload })).json() as { blob_id: string; blob_url: string };
  t.equal(stored.blob_url, `${url}/blob/${stored.blob_id}`);
  const fromOwnUrl = await postJson(`${url}/task`, {
    task_type: 'img2img', prompt: 'a fox', steps: 1, width: 64, height: 64, initial_image: stored.blob_url,
  });
  t.equal(fromOwnUrl.status, 200, 'a blob URL of this server under the prefix is read from the store');
});

t.test('the web page is served under the prefix with prefixed links', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiPrefix: prefix });
  const page = await fetch(`${url}/`);
  t.equal(page.status, 200);
  const html = await page.text();
  t.match(html, /<meta name="sdnode-api-prefix" content="\/sd">/);
  t.match(html, /<script type="module" src="\/sd\/ui\/app\.js">/);
  t.match(html, /href="\/sd\/docs"/);
  t.notMatch(html, /(href|src)="\/(ui|docs)/);
  t.equal((await fetch(`${url}/ui/app.js`)).status, 200);
});

t.test('a bad prefix is a RangeError naming apiPrefix, before anything starts', async (t) => {
  for (const bad of ['sd', '/sd/', '/s d', '/sd//x', '/../x', '/a?b']) {
    await t.rejects(startServer({ model: new FakeModel(), port: 0, outputDir: outputTestdir(t), apiPrefix: bad, log: () => {} }),
      { name: 'RangeError', message: /for apiPrefix .*starting with \// }, JSON.stringify(bad));
  }
});
