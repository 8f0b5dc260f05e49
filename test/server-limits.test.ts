// What one request may ask for, in every dialect: images per job, prompt size, LoRA tags, body
// size. Each is refused with the dialect's own 4xx before anything is queued.

import zlib from 'node:zlib';

import t from 'tap';

import { FakeModel, postForm, solidPng, startTestServer } from './server-helpers.js';

interface Answer {
  status: number;
  text: string;
}

async function send(url: string, body: string, type: string): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: response.status, text: await response.text() };
}

const postJson = (url: string, body: unknown) => send(url, JSON.stringify(body), 'application/json');

async function postMultipart(url: string, fields: Record<string, string>): Promise<Answer> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = await fetch(url, { method: 'POST', body: form });
  return { status: response.status, text: await response.text() };
}

t.test('A1111 batch_size × n_iter over 16 is a 422 naming n_iter, and nothing runs', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const answer = await postJson(`${url}/sdapi/v1/txt2img`, { prompt: 'x', batch_size: 16, n_iter: 16, steps: 1, width: 64, height: 64 });
  t.equal(answer.status, 422);
  t.match(JSON.parse(answer.text), { detail: [{ loc: ['body', 'n_iter'], msg: /at most 16 but received 16 × 16/ }] });
  t.equal(model.calls.length, 0);
});

t.test('a prompt over 8 KB, over 20 chunks or with more than 8 LoRAs is each dialect\'s 4xx', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const huge = 'a'.repeat(8193);
  const long = 'cat '.repeat(1501);
  const loras = Array.from({ length: 9 }, (_, i) => `<lora:l${i}>`).join(' ');
  for (const prompt of [huge, long, loras]) {
    const m1 = await postMultipart(`${url}/text-to-image`, { prompt });
    t.equal(m1.status, 400, 'M1');
    t.match(JSON.parse(m1.text), { error: { code: 'INVALID_PARAMETER', message: /at most/ } });
    const a1111 = await postJson(`${url}/sdapi/v1/txt2img`, { prompt, steps: 1, width: 64, height: 64 });
    t.equal(a1111.status, 422, 'A1111');
    t.match(JSON.parse(a1111.text), { detail: [{ loc: ['body', 'prompt'] }] });
    const openai = await postJson(`${url}/v1/images/generations`, { prompt, size: '256x256' });
    t.equal(openai.status, 400, 'OpenAI');
    t.match(JSON.parse(openai.text), { error: { param: 'prompt', type: 'invalid_request_error' } });
    const photoshop = await send(`${url}/txt2img`, new URLSearchParams({ prompt }).toString(), 'application/x-www-form-urlencoded');
    t.equal(photoshop.status, 400, 'Photoshop');
    t.match(JSON.parse(photoshop.text), { status: 'failure', message: /at most/ });
  }
  const negative = await postJson(`${url}/sdapi/v1/txt2img`, { prompt: 'x', negative_prompt: huge, steps: 1, width: 64, height: 64 });
  t.match(JSON.parse(negative.text), { detail: [{ loc: ['body', 'negativePrompt'], msg: /8192 bytes/ }] });
  t.equal(model.calls.length, 0);
});

t.test('bodies larger than the route\'s images need are refused before they are read', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), maxUploadMb: 1 });
  const padding = 'x'.repeat(300 * 1024);
  // A1111 txt2img carries up to three images (ControlNet units), img2img five (init image, mask, units).
  const fourImages = 'x'.repeat(4 * 1024 * 1024 * 4 / 3);
  const a1111 = await postJson(`${url}/sdapi/v1/txt2img`, { prompt: 'x', padding: fourImages });
  t.equal(a1111.status, 413, 'A1111 txt2img: three images of at most 1 MB (ControlNet units)');
  const photoshop = await send(`${url}/txt2img`, new URLSearchParams({ prompt: 'x', padding }).toString(), 'application/x-www-form-urlencoded');
  t.equal(photoshop.status, 413, 'Photoshop txt2img carries no image');
  const sixImages = 'A'.repeat(6 * 1024 * 1024 * 4 / 3);
  const img2img = await postJson(`${url}/sdapi/v1/img2img`, { prompt: 'x', init_images: [sixImages] });
  t.equal(img2img.status, 413, 'A1111 img2img: an image, a mask and three ControlNet images of at most 1 MB each');
  t.equal((await postJson(`${url}/v1/images/generations`, { prompt: 'x', padding })).status, 413, 'OpenAI');
  t.equal((await postJson(`${url}/generate`, { prompt: 'x', padding })).status, 413, '/generate');
});

/** A real 64×64 PNG whose header claims `width` × `height`: its pixels are never there to decode. */
async function claimingPng(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await solidPng(64, 64));
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29);
  return png;
}

t.test('an upload of more than 4096×4096 pixels is each dialect\'s 4xx before it is decoded', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const bomb = await claimingPng(16383, 16383);
  const m1 = await postForm(`${url}/image-to-image`, { prompt: 'x' }, { image: { data: bomb, type: 'image/png' } });
  t.equal(m1.status, 400);
  t.match(m1.body.error, { code: 'IMAGE_TOO_LARGE', message: /image is 16383×16383; images of at most 16777216 pixels/ });
  const a1111 = await postJson(`${url}/sdapi/v1/img2img`, { prompt: 'x', init_images: [bomb.toString('base64')] });
  t.equal(a1111.status, 422);
  t.match(JSON.parse(a1111.text), { detail: [{ loc: ['body', 'init_images'] }] });
  const photoshop = await postJson(`${url}/img2img`, { prompt: 'x', init_image: bomb.toString('base64') });
  t.equal(photoshop.status, 400);
  t.match(JSON.parse(photoshop.text), { status: 'failure', message: /16383×16383/ });
  const form = new FormData();
  form.append('image', new Blob([Uint8Array.from(bomb)], { type: 'image/png' }), 'bomb.png');
  const openai = await fetch(`${url}/v1/images/variations`, { method: 'POST', body: form });
  t.equal(openai.status, 400);
  t.match(await openai.json(), { error: { param: 'image', message: /16383×16383/ } });
  t.equal(model.calls.length, 0);
});

t.test('results scaled to an upload\'s size are at most 4096 on a side: larger is a 4xx', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const wide = await solidPng(4104, 64);
  const form = new FormData();
  form.append('image', new Blob([Uint8Array.from(wide)], { type: 'image/png' }), 'wide.png');
  const openai = await fetch(`${url}/v1/images/variations`, { method: 'POST', body: form });
  t.equal(openai.status, 400);
  t.match(await openai.json(), { error: { param: 'size', message: /at most 4096×4096 pixels for size but it would be 4104×64/ } });
  const photoshop = await postJson(`${url}/img2img`, { prompt: 'x', init_image: wide.toString('base64') });
  t.equal(photoshop.status, 400);
  t.match(JSON.parse(photoshop.text), { status: 'failure', message: /init_image but it would be 4104×64/ });
  t.equal(model.calls.length, 0);
});
