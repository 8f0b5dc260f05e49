// The task API over real HTTP and a real websocket: synchronous GETs answer the picture, tasks
// report their events in order, blobs belong to their users, tokens are checked.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import sharp from 'sharp';
import t from 'tap';
import WebSocket from 'ws';

import { loadTinySafetyCheckers } from './fixtures/safety-checker.js';
import { FakeModel, getJson, solidPng, startTestServer, waitFor } from './server-helpers.js';

interface Event { event_type: string; task_id: string; timestamp: string; step?: number; blob_url?: string; reason?: string;
  parameters_used?: Record<string, unknown>; warnings?: string[]; preview_blob_url?: string; nsfw?: (boolean | null)[] }

// Safety checker files live in the file's folder: a subtest's own folder is its server's output folder.
const fixtures = t.testdir();

async function pixelsOf(png: Buffer): Promise<Buffer> {
  return sharp(png).removeAlpha().raw().toBuffer();
}

async function postJson(url: string, body: unknown, token?: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

function openEvents(url: string, token?: string): Promise<{ events: Event[]; socket: WebSocket; next: (type: string) => Promise<Event> }> {
  const events: Event[] = [];
  const waiters: { type: string; resolve: (event: Event) => void }[] = [];
  const socket = new WebSocket(`${url.replace('http', 'ws')}/events${token ? `?token=${token}` : ''}`);
  socket.on('message', (data) => {
    const event = JSON.parse(String(data)) as Event;
    events.push(event);
    for (const waiter of waiters.filter((w) => w.type === event.event_type)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  });
  const next = (type: string) => new Promise<Event>((resolve) => {
    const seen = events.find((event) => event.event_type === type && !(event as { used?: boolean }).used);
    if (seen) {
      (seen as { used?: boolean }).used = true;
      resolve(seen);
    } else {
      waiters.push({ type, resolve });
    }
  });
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve({ events, socket, next }));
    socket.once('error', reject);
  });
}

t.test('GET /txt2img answers the PNG; query numbers are parsed and checked', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const response = await fetch(`${url}/txt2img?prompt=corgi&width=64&height=64&steps=2&seed=5&guidance=4&scheduler=ddim`);
  t.equal(response.status, 200);
  t.equal(response.headers.get('content-type'), 'image/png');
  t.equal(response.headers.get('x-seed'), '5');
  t.match(await sharp(Buffer.from(await response.arrayBuffer())).metadata(), { format: 'png', width: 64, height: 64 });
  t.match(model.calls[0], { prompt: 'corgi', steps: 2, seed: 5, cfgScale: 4, sampler: 'ddim' });
  const bad = await getJson(`${url}/txt2img?prompt=x&steps=abc`);
  t.equal(bad.status, 422);
  t.match(bad.body, { detail: [{ loc: ['body', 'steps'], msg: /Expected an integer for steps/ }] });
  const unknown = await getJson(`${url}/txt2img?prompt=x&colour=red`);
  t.match(unknown, { status: 422, body: { detail: [{ loc: ['body', 'colour'] }] } });
  const missing = await getJson(`${url}/txt2img?steps=2`);
  t.match(missing, { status: 422, body: { detail: [{ loc: ['body', 'prompt'], msg: 'Field required' }] } });
});

t.test('dropping a synchronous GET cancels its job and frees the queue', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const controller = new AbortController();
  const pending = fetch(`${url}/txt2img?prompt=gone&width=64&height=64`, { signal: controller.signal }).catch(() => 'aborted');
  await waitFor(() => model.calls.length === 1);
  controller.abort();
  t.equal(await pending, 'aborted');
  await waitFor(async () => (await getJson(`${url}/health`)).body.queue?.running === 0);
  t.equal(model.calls[0]?.signal?.aborted, true);
});

t.test('POST /task streams pending, started, progress and finished on the websocket; GET /task agrees', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const { events, socket, next } = await openEvents(url);
  t.teardown(() => socket.close());
  const { body } = await postJson(`${url}/task`, { task_type: 'txt2img', prompt: 'a fox', steps: 3, width: 64, height: 64, seed: 9 });
  const id = String(body.task_id);
  const finished = await next('finished');
  const types = events.filter((event) => event.task_id === id).map((event) => event.event_type);
  t.same(types, ['pending', 'started', 'progress', 'progress', 'progress', 'finished']);
  t.same(events.filter((event) => event.event_type === 'progress').map((event) => event.step), [1, 2, 3]);
  t.match(events.find((event) => event.event_type === 'progress'), { preview_blob_url: new RegExp(`/blob/${id}-preview$`) });
  t.match(finished, { task_id: id, blob_url: new RegExp(`^${url}/blob/${id}-1$`), parameters_used: { prompt: 'a fox', seed: 9, steps: 3, safety_filter: false } });
  t.match(finished.warnings, [/no safety checker is loaded/i], 'the filter is said not to have run');
  t.match((await getJson(`${url}/task/${id}`)).body, { event_type: 'finished', task_id: id });
  const image = await fetch(finished.blob_url ?? '');
  t.equal(image.headers.get('content-type'), 'image/png');
});

t.test('without a safety checker, safety_filter says the image was not checked: nsfw null and a warning', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const response = await fetch(`${url}/txt2img?prompt=corgi&width=64&height=64&steps=1&seed=30`);
  t.equal(response.status, 200);
  t.equal(response.headers.get('x-nsfw'), 'null');
  t.match(response.headers.get('x-warning'), /nsfw is null: No safety checker is loaded \(start the server with --safety-checker FILE\)/);
  t.ok((await pixelsOf(Buffer.from(await response.arrayBuffer()))).every((value) => value === 30), 'the picture, untouched');

  const { socket, next } = await openEvents(url);
  t.teardown(() => socket.close());
  await postJson(`${url}/task`, { task_type: 'txt2img', prompt: 'a fox', steps: 1, width: 64, height: 64, seed: 31 });
  const finished = await next('finished');
  t.same(finished.nsfw, [null], 'never a pretend false');
  t.equal(finished.parameters_used?.safety_filter, false);
  t.match(finished.warnings, [/^nsfw is null: No safety checker is loaded/]);

  const unfiltered = await fetch(`${url}/txt2img?prompt=corgi&width=64&height=64&steps=1&safety_filter=false`);
  t.equal(unfiltered.headers.get('x-nsfw'), null, 'safety_filter=false asks for no check: nothing to report');
});

t.test('with a safety checker, safety_filter blacks out a flagged image and reports nsfw; false leaves it alone', async (t) => {
  const { always, never } = await loadTinySafetyCheckers(t, fixtures);
  const flagged = await startTestServer(t, { model: new FakeModel(), safetyChecker: always });
  const response = await fetch(`${flagged.url}/txt2img?prompt=corgi&width=64&height=64&steps=1&seed=40`);
  t.equal(response.status, 200);
  t.equal(response.headers.get('x-nsfw'), 'true');
  t.equal(response.headers.get('x-warning'), null);
  t.ok((await pixelsOf(Buffer.from(await response.arrayBuffer()))).every((value) => value === 0), 'black');

  const { events, socket, next } = await openEvents(flagged.url);
  t.teardown(() => socket.close());
  const { body } = await postJson(`${flagged.url}/task`, { task_type: 'txt2img', prompt: 'a fox', steps: 2, width: 64, height: 64, seed: 41 });
  const finished = await next('finished');
  t.same(finished.nsfw, [true]);
  t.equal(finished.parameters_used?.safety_filter, true, 'the filter ran');
  t.same(finished.warnings, []);
  t.ok((await pixelsOf(Buffer.from(await (await fetch(finished.blob_url ?? '')).arrayBuffer()))).every((value) => value === 0),
    'the result blob is black');
  const progress = events.filter((event) => event.task_id === body.task_id && event.event_type === 'progress');
  t.equal(progress.length, 2);
  t.ok(progress.every((event) => event.preview_blob_url === undefined), 'no unchecked previews of a filtered task');

  const kept = await fetch(`${flagged.url}/txt2img?prompt=corgi&width=64&height=64&steps=1&seed=42&safety_filter=false`);
  t.equal(kept.headers.get('x-nsfw'), null);
  t.ok((await pixelsOf(Buffer.from(await kept.arrayBuffer()))).every((value) => value === 42), 'safety_filter=false: not checked, kept');

  const clean = await startTestServer(t, { model: new FakeModel(), safetyChecker: never });
  const passed = await fetch(`${clean.url}/txt2img?prompt=corgi&width=64&height=64&steps=1&seed=43`);
  t.equal(passed.headers.get('x-nsfw'), 'false');
  t.ok((await pixelsOf(Buffer.from(await passed.arrayBuffer()))).every((value) => value === 43), 'a clean image is untouched');
});

t.test('DELETE /task cancels a queued task and a running one, each with an aborted event', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const { next, socket } = await openEvents(url);
  t.teardown(() => socket.close());
  const running = String((await postJson(`${url}/task`, { task_type: 'txt2img', prompt: 'running', width: 64, height: 64 })).body.task_id);
  const queued = String((await postJson(`${url}/task`, { task_type: 'txt2img', prompt: 'queued', width: 64, height: 64 })).body.task_id);
  await next('started');
  for (const id of [queued, running]) {
    const response = await fetch(`${url}/task/${id}`, { method: 'DELETE' });
    t.equal(response.status, 200);
    t.match(await response.json(), { event_type: 'aborted', task_id: id, reason: /cancel/ });
  }
  const aborted = [await next('aborted'), await next('aborted')];
  t.same(aborted.map((event) => event.task_id).sort(), [queued, running].sort());
  t.same(model.calls.map((call) => call.prompt), ['running'], 'the queued task never ran');
});

t.test('blobs: upload, use as initial_image, and another user cannot see them', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model, tasks: { secretKey: 'k'.repeat(32), enableSignup: true } });
  const alice = String((await postJson(`${url}/user`, { username: 'alice', password: 'correct horse' })).body.access_token);
  const bob = String((await postJson(`${url}/user`, { username: 'bob', password: 'battery staple' })).body.access_token);
  const form = new FormData();
  form.append('file', new Blob([Uint8Array.from(await solidPng(64, 64, 30))], { type: 'image/png' }), 'a.png');
  const uploaded = await fetch(`${url}/blob`, { method: 'POST', body: form, headers: { authorization: `Bearer ${alice}` } });
  const { blob_id: blobId, blob_url: blobUrl } = await uploaded.json() as { blob_id: string; blob_url: string };
  t.match(blobUrl, new RegExp(`^${url}/blob/${blobId}$`));
  t.equal((await fetch(blobUrl, { headers: { authorization: `Bearer ${alice}` } })).status, 200);
  t.equal((await fetch(blobUrl, { headers: { authorization: `Bearer ${bob}` } })).status, 404, 'another user\'s blob is not found');
  const raw = await fetch(`${url}/blob?token=${bob}`, { method: 'POST', body: Uint8Array.from(await solidPng(8, 8)) });
  t.equal(raw.status, 200, 'a raw body works too');
  const task = await postJson(`${url}/task`, { task_type: 'img2img', prompt: 'x', initial_image: blobUrl, width: 64, height: 64 }, alice);
  t.equal(task.status, 200);
  await waitFor(() => model.calls.length === 1);
  t.match(model.calls[0], { method: 'imageToImage', strength: 0.8 });
  const stolen = await postJson(`${url}/task`, { task_type: 'img2img', prompt: 'x', initial_image: blobId }, bob);
  t.match(stolen, { status: 422, body: { detail: [{ loc: ['body', 'initial_image'] }] } });
  const notImage = await fetch(`${url}/blob?token=${bob}`, { method: 'POST', body: 'hello' });
  t.equal(notImage.status, 422);
});

t.test('URLs of other hosts and file: URLs are refused unless --allow-fetch names the host', async (t) => {
  const picture = await solidPng(64, 64);
  const other = http.createServer((_req, res) => res.end(picture));
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  t.teardown(() => other.close());
  const host = `127.0.0.1:${(other.address() as AddressInfo).port}`;
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  for (const reference of [`http://${host}/cat.png`, 'file:///etc/passwd']) {
    const refused = await postJson(`${url}/task`, { task_type: 'img2img', prompt: 'x', initial_image: reference });
    t.match(refused, { status: 422, body: { detail: [{ loc: ['body', 'initial_image'], msg: /does not fetch/ }] } }, reference);
  }
  const allowed = await startTestServer(t, { model, allowFetch: [host] });
  const fetched = await postJson(`${allowed.url}/task`, { task_type: 'img2img', prompt: 'x', initial_image: `http://${host}/cat.png`, width: 64, height: 64 });
  t.equal(fetched.status, 200);
});

t.test('tokens: sign-up and login, expired or forged tokens, public access on and off', async (t) => {
  const secretKey = 's'.repeat(32);
  const { url } = await startTestServer(t, { model: new FakeModel(), tasks: { secretKey, enableSignup: true } });
  t.equal((await getJson(`${url}/models`)).status, 401, 'a token is needed');
  t.equal((await postJson(`${url}/user`, { username: 'carol', password: 'short' })).status, 422);
  const signup = await postJson(`${url}/user`, { username: 'carol', password: 'long enough' });
  t.equal((await postJson(`${url}/user`, { username: 'carol', password: 'long enough' })).status, 409);
  const login = await fetch(`${url}/token`, { method: 'POST', body: new URLSearchParams({ username: 'carol', password: 'long enough' }) });
  const { access_token: token } = await login.json() as { access_token: string };
  t.ok(signup.body.access_token && token);
  t.match((await getJson(`${url}/models`, { headers: { authorization: `Bearer ${token}` } })).body, [{ id: 'fake-model', name: 'fake-model' }]);
  t.equal((await getJson(`${url}/models?token=${token}`)).status, 200, '?token= works');
  const wrong = await fetch(`${url}/token`, { method: 'POST', body: new URLSearchParams({ username: 'carol', password: 'nope' }) });
  t.equal(wrong.status, 401);
  const forged = `${token.slice(0, -4)}AAAA`;
  t.equal((await getJson(`${url}/models?token=${forged}`)).status, 401);
  const { SignJWT } = await import('jose');
  const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('carol').setExpirationTime(Math.floor(Date.now() / 1000) - 10)
    .sign(new TextEncoder().encode(secretKey));
  t.equal((await getJson(`${url}/models?token=${expired}`)).status, 401);
  t.equal((await postJson(`${url}/token/all`, {})).status, 401, 'no public token without public access');

  const open = await startTestServer(t, { model: new FakeModel(), tasks: { secretKey, enablePublicAccess: true } });
  t.equal((await getJson(`${open.url}/models`)).status, 200, 'public access lets requests without a token through');
  t.ok((await postJson(`${open.url}/token/all`, {})).body.access_token);
  t.equal((await postJson(`${open.url}/user`, { username: 'dave', password: 'long enough' })).status, 403, 'sign-up is off');
});

t.test('img2img and inpaint without width and height make the initial image\'s size, rounded down to 8', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const blob = async (png: Buffer) => ((await (await fetch(`${url}/blob`, { method: 'POST', body: Uint8Array.from(png) })).json()) as { blob_id: string }).blob_id;
  const image = await blob(await solidPng(100, 68));
  const mask = await blob(await solidPng(100, 68, 255));
  t.equal((await postJson(`${url}/task`, { task_type: 'img2img', prompt: 'x', initial_image: image })).status, 200);
  t.equal((await postJson(`${url}/task`, { task_type: 'inpaint', prompt: 'x', initial_image: image, mask })).status, 200);
  t.equal((await postJson(`${url}/task`, { task_type: 'img2img', prompt: 'x', initial_image: image, width: 64 })).status, 200);
  await waitFor(() => model.calls.length === 3);
  t.same(model.calls.map((call) => [call.method, call.width, call.height]),
    [['imageToImage', 96, 64], ['inpaint', 96, 64], ['imageToImage', 64, 64]]);
});
