// The OpenAI Images API, driven by the official `openai` SDK against a server with a fake model:
// requests become the right jobs, answers and errors come in the shapes the SDK knows.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import t from 'tap';

import { insertPngText } from '../lib/index.js';
import { loadTinySafetyCheckers } from './fixtures/safety-checker.js';
import { FakeModel, getJson, jobFolders, outputTestdir, postForm, solidPng, startTestServer, waitFor } from './server-helpers.js';

function client(url: string, apiKey = 'unused'): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
}

async function png(b64: string | undefined): Promise<sharp.Metadata> {
  return sharp(Buffer.from(b64 ?? '', 'base64')).metadata();
}

t.test('generations answer b64_json images of the asked size, one per n', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const result = await client(url).images.generate({ prompt: 'a corgi', n: 2, size: '256x128', response_format: 'b64_json' });
  t.equal(result.data?.length, 2);
  for (const image of result.data ?? []) t.match(await png(image.b64_json), { format: 'png', width: 256, height: 128 });
  t.ok(result.created > 1_700_000_000, 'created is a Unix time');
  t.match(model.calls, [{ method: 'textToImage', prompt: 'a corgi', width: 256, height: 128 }, { method: 'textToImage' }]);
});

t.test('sizes over the preset\'s pixel budget are made smaller and scaled to the asked size', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const result = await client(url).images.generate({ model: 'dall-e-3', prompt: 'a lighthouse', size: '1792x1024' });
  t.match(await png(result.data?.[0]?.b64_json), { width: 1792, height: 1024 });
  const [call] = model.calls;
  // 512×512 pixels at 1.75:1 → 672×384 (multiples of 8, within the budget).
  t.same([call?.width, call?.height], [672, 384]);
  t.ok((call?.width ?? 0) * (call?.height ?? 0) <= 512 * 512);
  t.match(call, { sampler: 'dpm++2m', scheduler: 'karras', steps: 25 }, 'dall-e-3 preset settings');
});

t.test('quality and style pick the preset\'s variants', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  await client(url).images.generate({ model: 'dall-e-3', prompt: 'x', quality: 'hd', style: 'natural', size: '512x512' });
  t.match(model.calls[0], { steps: 40, cfgScale: 5 });
});

t.test('response_format url gives a link to this server that works without a key and expires', async (t) => {
  // Long enough for the first fetch on a busy machine; the test then waits for the link's own expiry.
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['secret'], urlTtlSeconds: 5 });
  const result = await client(url, 'secret').images.generate({
    prompt: 'a fox', response_format: 'url', output_format: 'jpeg', size: '64x64',
  } as OpenAI.ImageGenerateParamsNonStreaming);
  const link = result.data?.[0]?.url ?? '';
  t.match(link, new RegExp(`^${url}/v1/images/files/[A-Za-z0-9_-]{22}/1\\.jpeg\\?expires=\\d+&signature=[0-9a-f]{64}$`));
  const response = await fetch(link);
  t.equal(response.status, 200);
  t.equal(response.headers.get('content-type'), 'image/jpeg');
  t.match(await sharp(Buffer.from(await response.arrayBuffer())).metadata(), { format: 'jpeg', width: 64, height: 64 });
  // One hex digit changed, whatever it was.
  const forged = await getJson(link.replace(/.$/, (last) => (last === '0' ? '1' : '0')));
  t.equal(forged.status, 403);
  const expires = Number(new URL(link).searchParams.get('expires')) * 1000;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expires - Date.now()) + 1100));
  const expired = await fetch(link);
  t.equal(expired.status, 403);
  t.match(await expired.json(), { error: { message: /expired/, type: 'invalid_request_error' } });
});

t.test('streaming sends partial images from the previews, then the image', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const stream = await client(url).images.generate({ prompt: 'a river', stream: true, partial_images: 2, size: '64x64' });
  const events = [];
  for await (const event of stream) events.push(event);
  t.same(events.map((event) => event.type),
    ['image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed']);
  t.same(events.slice(0, 2).map((event) => 'partial_image_index' in event && event.partial_image_index), [0, 1]);
  for (const event of events) t.match(await png(event.b64_json), { format: 'png', width: 64, height: 64 });
  t.match(events[2], { size: '64x64', output_format: 'png' });
});

/** sdnode's additions to an images answer: nsfw per image, and why it is null. */
type Moderated = { data?: { b64_json?: string; url?: string; nsfw?: boolean | null }[]; warning?: string };

async function pixels(b64: string | undefined): Promise<Buffer> {
  return sharp(Buffer.from(b64 ?? '', 'base64')).removeAlpha().raw().toBuffer();
}

t.test('without a safety checker every image says nsfw null, and the answer says why', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const result = await client(url).images.generate({ prompt: 'a corgi', n: 2, size: '64x64', seed: 70 } as OpenAI.ImageGenerateParamsNonStreaming) as Moderated;
  t.same(result.data?.map((image) => image.nsfw), [null, null]);
  t.match(result.warning, /^nsfw is null: No safety checker is loaded \(start the server with --safety-checker FILE\)/);
  t.ok((await pixels(result.data?.[0]?.b64_json)).every((value) => value === 70), 'the image, untouched');
});

t.test('with a safety checker, moderation auto blacks out flagged images and low only flags them', async (t) => {
  const fixtures = outputTestdir(t);
  const { always, never } = await loadTinySafetyCheckers(t, fixtures);
  const flagged = await startTestServer(t, { model: new FakeModel(), safetyChecker: always, outputDir: path.join(fixtures, 'flagged') });
  const openai = client(flagged.url);
  const request = { prompt: 'a corgi', size: '64x64', seed: 80 } as OpenAI.ImageGenerateParamsNonStreaming;
  const auto = await openai.images.generate(request) as Moderated;
  t.same(auto.data?.map((image) => image.nsfw), [true], 'moderation auto is the default');
  t.equal(auto.warning, undefined);
  t.ok((await pixels(auto.data?.[0]?.b64_json)).every((value) => value === 0), 'black');
  const low = await openai.images.generate({ ...request, moderation: 'low' }) as Moderated;
  t.same(low.data?.map((image) => image.nsfw), [true]);
  t.ok((await pixels(low.data?.[0]?.b64_json)).every((value) => value === 80), 'low: flagged but kept');
  const linked = await openai.images.generate({ ...request, response_format: 'url' }) as Moderated;
  t.same(linked.data?.map((image) => image.nsfw), [true], 'url answers say it too');
  const fetched = Buffer.from(await (await fetch(linked.data?.[0]?.url ?? '')).arrayBuffer()).toString('base64');
  t.ok((await pixels(fetched)).every((value) => value === 0), 'and the link serves the black image');

  const stream = await openai.images.generate({ ...request, stream: true, partial_images: 2 });
  const events = [];
  for await (const event of stream) events.push(event);
  t.same(events.map((event) => event.type), ['image_generation.completed'], 'no unchecked partial images of a moderated request');
  t.match(events[0], { nsfw: true });
  t.ok((await pixels(events[0]?.b64_json)).every((value) => value === 0), 'the streamed image is black too');

  const clean = await startTestServer(t, { model: new FakeModel(), safetyChecker: never, outputDir: path.join(fixtures, 'clean') });
  const passed = await client(clean.url).images.generate(request) as Moderated;
  t.same(passed.data?.map((image) => image.nsfw), [false]);
  t.ok((await pixels(passed.data?.[0]?.b64_json)).every((value) => value === 80), 'a clean image is untouched');
});

t.test('edits: transparent mask pixels become an inpainting mask; no transparency is image-to-image', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const image = await solidPng(64, 64, 90);
  const mask = await leftHalfTransparent(64, 64);
  const edited = await client(url).images.edit({
    image: await toFile(image, 'photo.png', { type: 'image/png' }),
    mask: await toFile(mask, 'mask.png', { type: 'image/png' }),
    prompt: 'a window',
  });
  t.match(await png(edited.data?.[0]?.b64_json), { width: 64, height: 64 });
  t.match(model.calls[0], { method: 'inpaint', prompt: 'a window', strength: 1, maskBlur: 0 });
  const maskSent = model.calls[0]?.method === 'inpaint' ? (model.calls[0] as { mask?: Buffer }).mask : undefined;
  const { data } = await sharp(maskSent).greyscale().raw().toBuffer({ resolveWithObject: true });
  t.equal(data[0], 255, 'a transparent pixel repaints');
  t.equal(data[63], 0, 'an opaque pixel is kept');

  await client(url).images.edit({ image: await toFile(image, 'photo.png', { type: 'image/png' }), prompt: 'autumn' });
  t.match(model.calls[1], { method: 'imageToImage', prompt: 'autumn', strength: 0.75 });

  const holed = await sharp(mask).png().toBuffer();
  await client(url).images.edit({ image: await toFile(holed, 'holed.png', { type: 'image/png' }), prompt: 'fill it' });
  t.match(model.calls[2], { method: 'inpaint' }, 'the image\'s own transparent pixels mark the edit');
});

t.test('bad uploads are 400s naming the field, and the server keeps serving', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), maxUploadMb: 0.05 });
  const api = client(url);
  const image = await toFile(await solidPng(64, 64), 'photo.png', { type: 'image/png' });
  await t.rejects(api.images.edit({ image, mask: await toFile(await leftHalfTransparent(32, 32), 'm.png', { type: 'image/png' }), prompt: 'x' }),
    { constructor: OpenAI.BadRequestError, error: { param: 'mask', message: /same size as image \(64x64\), but is 32x32/ } });
  await t.rejects(api.images.edit({ image, mask: await toFile(await solidPng(64, 64), 'm.png', { type: 'image/png' }), prompt: 'x' }),
    { constructor: OpenAI.BadRequestError, error: { param: 'mask', message: /alpha channel/ } });
  await t.rejects(api.images.edit({ image: await toFile(Buffer.from('hello'), 'a.png', { type: 'image/png' }), prompt: 'x' }),
    { constructor: OpenAI.BadRequestError, error: { param: 'image', message: /not a PNG, JPEG or WebP/ } });
  await t.rejects(api.images.createVariation({ image: await toFile(Buffer.alloc(60 * 1024, 1), 'big.png', { type: 'image/png' }) }),
    { status: 413, error: { param: 'image', message: /upload limit of 0\.05 MB/ } });
  await t.rejects(api.images.edit({ image, prompt: 'x', n: 0 }), { constructor: OpenAI.BadRequestError, error: { param: 'n' } });
  const result = await api.images.edit({ image, prompt: 'still serving' });
  t.equal(result.data?.length, 1);
});

t.test('variations reuse the prompt in the image\'s parameters chunk', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const made = insertPngText(await solidPng(64, 64), 'parameters',
    'a red barn\nat dawn\nNegative prompt: fog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64, Model: x');
  const result = await client(url).images.createVariation({ image: await toFile(made, 'barn.png', { type: 'image/png' }), n: 2, response_format: 'b64_json' });
  t.equal(result.data?.length, 2);
  t.match(model.calls[0], { method: 'imageToImage', prompt: 'a red barn\nat dawn', strength: 0.75, width: 64, height: 64 });
  await client(url).images.createVariation({ image: await toFile(await solidPng(64, 64), 'plain.png', { type: 'image/png' }) });
  t.notOk(model.calls[2]?.prompt, 'no chunk, no prompt');
});

t.test('models list the presets and the checkpoints, and name one', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const ids = [];
  for await (const model of client(url).models.list()) ids.push(model.id);
  t.same(ids, ['dall-e-2', 'dall-e-3', 'gpt-image-1', 'fake-model']);
  t.match(await client(url).models.retrieve('dall-e-3'), { id: 'dall-e-3', object: 'model', owned_by: 'sdnode' });
  await t.rejects(client(url).models.retrieve('midjourney'), { constructor: OpenAI.NotFoundError, status: 404 });
});

t.test('errors arrive as the SDK\'s typed errors', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model, apiKeys: ['right'], maxQueue: 0 });
  const good = client(url, 'right');
  await t.rejects(good.images.generate({ prompt: 'x', size: '1024x1024x' as '1024x1024' }),
    { constructor: OpenAI.BadRequestError, status: 400, error: { param: 'size', type: 'invalid_request_error' } });
  await t.rejects(good.images.generate({ prompt: 'x', n: 11 }), { constructor: OpenAI.BadRequestError, error: { param: 'n' } });
  await t.rejects(good.images.generate({ prompt: 'x', background: 'transparent' }), { constructor: OpenAI.BadRequestError, error: { param: 'background' } });
  await t.rejects(client(url, 'wrong').images.generate({ prompt: 'x' }),
    { constructor: OpenAI.AuthenticationError, status: 401, error: { code: 'invalid_api_key' } });
  await t.rejects(good.images.generate({ prompt: 'x', model: 'midjourney' }),
    { constructor: OpenAI.NotFoundError, error: { code: 'model_not_found', message: /dall-e-3.*fake-model/ } });
  const running = good.images.generate({ prompt: 'occupies the worker', size: '64x64' });
  // The second request must arrive once the first holds the only worker.
  await waitFor(async () => (await getJson(`${url}/health`, { headers: { authorization: 'Bearer right' } })).body.queue?.running === 1);
  await t.rejects(good.images.generate({ prompt: 'no room' }), { constructor: OpenAI.RateLimitError, status: 429 });
  model.release({ open: true });
  t.equal((await running).data?.length, 1);
  const broken = await getJson(`${url}/v1/images/generations`, {
    method: 'POST', headers: { authorization: 'Bearer right', 'content-type': 'application/json' }, body: '{not json',
  });
  t.match(broken, { status: 400, body: { error: { code: 'invalid_json', message: /not valid JSON/ } } });
  const missing = await getJson(`${url}/v1/images/nothing`, { headers: { authorization: 'Bearer right' } });
  t.match(missing, { status: 404, body: { error: { type: 'invalid_request_error' } } });
});

t.test('a synchronous request cancelled by its client frees the queue', async (t) => {
  const model = new FakeModel({ open: false });
  const { url, outputDir } = await startTestServer(t, { model });
  const controller = new AbortController();
  const pending = client(url).images.generate({ prompt: 'abandoned', size: '64x64' }, { signal: controller.signal });
  await waitFor(async () => (await getJson(`${url}/health`)).body.queue?.running === 1);
  controller.abort();
  await t.rejects(pending);
  await waitFor(async () => (await getJson(`${url}/health`)).body.queue?.running === 0);
  t.equal(model.calls[0]?.signal?.aborted, true, 'the running image was aborted');
  await waitFor(async () => (await jobFolderCount(outputDir)) === 0);
  model.release({ open: true });
  const next = await client(url).images.generate({ prompt: 'next', size: '64x64' });
  t.equal(next.data?.length, 1, 'the next request runs');
});

t.test('M1 and OpenAI jobs share one FIFO queue', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const first = await postForm(`${url}/text-to-image`, { prompt: 'm1 first', steps: '1' });
  t.equal(first.status, 200);
  const second = client(url).images.generate({ prompt: 'openai second', size: '64x64' });
  await waitFor(async () => (await getJson(`${url}/health`)).body.queue?.waiting === 1);
  await postForm(`${url}/text-to-image`, { prompt: 'm1 third', steps: '1' });
  model.release({ open: true });
  await second;
  await waitFor(async () => model.calls.length === 3);
  t.same(model.calls.map((call) => call.prompt), ['m1 first', 'openai second', 'm1 third']);
});

t.test('presets come from a file with AUTOMATIC1111 field names; unused fields are reported', async (t) => {
  const dir = outputTestdir(t);
  const file = path.join(dir, 'presets.json');
  await mkdir(dir, { recursive: true });
  await writeFile(file, JSON.stringify({
    'my-style': {
      sampler_name: 'DPM++ 2M Karras', steps: 3, cfg_scale: 4.5, negative_prompt: 'ugly',
      restore_faces: true, hd: { steps: 6 },
    },
  }));
  const model = new FakeModel();
  const lines: string[] = [];
  const { url } = await startTestServer(t, { model, presets: file, outputDir: path.join(dir, 'output'), log: (line) => lines.push(line) });
  t.match(lines.join('\n'), /my-style\.restore_faces is not supported yet and is ignored/);
  await client(url).images.generate({ model: 'my-style', prompt: 'a hut', size: '64x64' });
  await client(url).images.generate({ model: 'my-style', prompt: 'a hut', size: '64x64', quality: 'hd' });
  t.match(model.calls, [
    { sampler: 'dpm++2m', scheduler: 'karras', steps: 3, cfgScale: 4.5, negativePrompt: 'ugly' },
    { steps: 6 },
  ]);
  t.ok((await client(url).models.retrieve('my-style')).id === 'my-style');
});

/** An RGBA PNG whose left half is fully transparent and right half opaque black. */
function leftHalfTransparent(width: number, height: number): Promise<Buffer> {
  const rgba = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = width / 2; x < width; x++) rgba[(y * width + x) * 4 + 3] = 255;
  }
  return sharp(rgba, { raw: { width, height, channels: 4 } }).png().toBuffer();
}


async function jobFolderCount(outputDir: string): Promise<number> {
  return (await jobFolders(outputDir)).length;
}
