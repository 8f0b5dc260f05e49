// FLUX.1 Kontext through the dialects: for a model named or marked Kontext, the image-to-image
// doors (OpenAI edits, A1111 img2img, the task API's img2img, M1's /image-to-image, Photoshop's
// /img2img) read their images as reference images beside the prompt: the image changes the
// result, which has the image's size; several images are several references (at most 4). A FLUX.1
// dev model that is not Kontext keeps image-to-image.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { readPngText } from '../lib/index.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { getJson, pollTask, startTestServer, type ApiBody } from './server-helpers.js';

const dir = t.testdir();
const dev = await writeTinyFlux(path.join(dir, 'parts'), { variant: 'flux-dev' });

// One set of FLUX.1 dev files three times: Kontext by its name, Kontext by "kontext": true, and plain dev.
const models = path.join(dir, 'models');
await mkdir(models);
await writeFile(path.join(models, 'flux1-kontext-dev.json'), JSON.stringify(dev));
await writeFile(path.join(models, 'edit.json'), JSON.stringify({ ...dev, kontext: true }));
await writeFile(path.join(models, 'dev.json'), JSON.stringify(dev));

const width = 96;
const height = 64;
const red = await solid(width, height, { r: 220, g: 30, b: 30 });
const blue = await solid(width, height, { r: 20, g: 40, b: 230 });

function solid(w: number, h: number, background: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background } }).png().toBuffer();
}

async function pixels(png: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function samePixels(a: Buffer, b: Buffer): Promise<boolean> {
  return (await pixels(a)).data.equals((await pixels(b)).data);
}

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** POST /v1/images/edits with `images` under `field`, answering the first image (or the error body). */
async function edit(url: string, fields: Record<string, string>, images: Buffer[], field = 'image'):
  Promise<{ status: number; png?: Buffer; body: Record<string, unknown> }> {
  const form = new FormData();
  for (const [name, value] of Object.entries({ response_format: 'b64_json', ...fields })) form.append(name, value);
  images.forEach((png, i) => form.append(field, new Blob([Uint8Array.from(png)], { type: 'image/png' }), `${i}.png`));
  const response = await fetch(`${url}/v1/images/edits`, { method: 'POST', body: form });
  const body = (await response.json()) as Record<string, unknown>;
  const [first] = (body.data ?? []) as { b64_json: string }[];
  return { status: response.status, body, ...(first && { png: Buffer.from(first.b64_json, 'base64') }) };
}

t.test('OpenAI edits on a Kontext model: the image is read beside the prompt and the result has its size', async (t) => {
  const { url } = await startTestServer(t, { modelsDir: models });
  const fields = { model: 'flux1-kontext-dev', prompt: 'make it red', seed: '3' };
  const withRed = await edit(url, fields, [red]);
  t.equal(withRed.status, 200, JSON.stringify(withRed.body.error));
  t.match(await pixels(withRed.png!), { width, height }, 'the image\'s size');
  const parameters = readPngText(withRed.png!).parameters ?? '';
  t.match(parameters, /Distilled CFG Scale: 3\.5/, 'FLUX.1 dev\'s guidance as Forge writes it');
  t.notMatch(parameters, /Denoising strength/, 'nothing was noised from the image');

  const generated = await postJson(`${url}/v1/images/generations`, { ...fields, seed: 3, size: `${width}x${height}` });
  t.equal(generated.status, 200, JSON.stringify(generated.body.error));
  const plain = Buffer.from((generated.body.data as { b64_json: string }[])[0]!.b64_json, 'base64');
  t.notOk(await samePixels(withRed.png!, plain), 'the same request without the image makes another picture');

  const withBlue = await edit(url, fields, [blue]);
  t.notOk(await samePixels(withRed.png!, withBlue.png!), 'what the image shows matters');

  const both = await edit(url, fields, [red, blue], 'image[]');
  t.equal(both.status, 200, JSON.stringify(both.body.error));
  t.notOk(await samePixels(withRed.png!, both.png!), 'a second image[] is read too');

  const five = await edit(url, fields, [red, blue, red, blue, red], 'image[]');
  t.equal(five.status, 400);
  t.match(five.body, { error: { type: 'invalid_request_error', param: 'image[]', message: /up to 4/ } });
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const [field, png] of [['image', red], ['image', blue], ['image', red], ['image[]', blue], ['image[]', red]] as const) {
    form.append(field, new Blob([Uint8Array.from(png)], { type: 'image/png' }), 'x.png');
  }
  const tooMany = await fetch(`${url}/v1/images/edits`, { method: 'POST', body: form });
  t.equal(tooMany.status, 400);
  t.match(await tooMany.json(), { error: { param: 'image', message: /at most 4 images for image/ } });

  const masked = new FormData();
  for (const [name, value] of Object.entries(fields)) masked.append(name, value);
  masked.append('image', new Blob([Uint8Array.from(red)], { type: 'image/png' }), 'x.png');
  masked.append('mask', new Blob([Uint8Array.from(red)], { type: 'image/png' }), 'mask.png');
  const withMask = await fetch(`${url}/v1/images/edits`, { method: 'POST', body: masked });
  t.equal(withMask.status, 400);
  t.match(await withMask.json(), { error: { param: 'mask', message: /Kontext/ } });
});

t.test('A1111 img2img on a model marked "kontext": true reads init_images as references at the first one\'s size', async (t) => {
  const { url } = await startTestServer(t, { modelsDir: models });
  const request = { prompt: 'make it red', seed: 5, steps: 2, override_settings: { sd_model_checkpoint: 'edit' } };
  const answer = await postJson(`${url}/sdapi/v1/img2img`, { ...request, init_images: [red.toString('base64')], denoising_strength: 0.4 });
  t.equal(answer.status, 200, JSON.stringify(answer.body.detail));
  const png = Buffer.from((answer.body.images as string[])[0]!, 'base64');
  t.match(await pixels(png), { width, height });
  t.match(answer.body.parameters, { width, height });
  const info = JSON.parse(answer.body.info as string) as { denoising_strength: unknown; sdnode_ignored: string[] };
  t.equal(info.denoising_strength, null);
  t.ok(info.sdnode_ignored.includes('denoising_strength'), 'a Kontext edit noises nothing, and says so');

  const plain = await postJson(`${url}/sdapi/v1/txt2img`, { ...request, width, height });
  t.equal(plain.status, 200, JSON.stringify(plain.body.detail));
  t.notOk(await samePixels(png, Buffer.from((plain.body.images as string[])[0]!, 'base64')), 'the image changes the result');

  const five = await postJson(`${url}/sdapi/v1/img2img`, { ...request, init_images: Array.from({ length: 5 }, () => red.toString('base64')) });
  t.equal(five.status, 422);
  t.match(five.body.detail, [{ loc: ['body', 'init_images'], msg: /at most 4/ }]);
  const masked = await postJson(`${url}/sdapi/v1/img2img`, { ...request, init_images: [red.toString('base64')], mask: red.toString('base64') });
  t.equal(masked.status, 422);
  t.match(masked.body.detail, [{ loc: ['body', 'mask'], msg: /Kontext/ }]);
});

t.test('a FLUX.1 dev model not marked Kontext keeps image-to-image: the strength decides how much changes', async (t) => {
  const { url } = await startTestServer(t, { modelsDir: models });
  const request = {
    prompt: 'make it red', seed: 5, steps: 2, width: 64, height: 64, init_images: [red.toString('base64')],
    override_settings: { sd_model_checkpoint: 'dev' },
  };
  const light = await postJson(`${url}/sdapi/v1/img2img`, { ...request, denoising_strength: 0.3 });
  t.equal(light.status, 200, JSON.stringify(light.body.detail));
  const heavy = await postJson(`${url}/sdapi/v1/img2img`, { ...request, denoising_strength: 0.9 });
  const [lightPng, heavyPng] = [light, heavy].map((answer) => Buffer.from((answer.body.images as string[])[0]!, 'base64'));
  t.notOk(await samePixels(lightPng!, heavyPng!));
  t.match(readPngText(lightPng!).parameters, /Denoising strength: 0\.3/);
  t.equal((JSON.parse(light.body.info as string) as { denoising_strength: number }).denoising_strength, 0.3);

  const two = await edit(url, { model: 'dev', prompt: 'make it red' }, [red, blue]);
  t.equal(two.status, 400);
  t.match(two.body, { error: { param: 'image', message: /one image per request.*Kontext/ } });

  const { data } = (await getJson(`${url}/v1/models`)).body as unknown as { data: { id: string; kontext?: boolean }[] };
  t.same(data.filter((model) => model.kontext).map((model) => model.id).sort(), ['edit', 'flux1-kontext-dev'],
    'GET /v1/models says which models are Kontext');
});

t.test('the task API\'s img2img on a Kontext model reads initial_image as a reference at its size', async (t) => {
  const { url } = await startTestServer(t, { modelsDir: models });
  const blobForm = new FormData();
  blobForm.append('file', new Blob([Uint8Array.from(red)], { type: 'image/png' }), 'red.png');
  const blob = (await (await fetch(`${url}/blob`, { method: 'POST', body: blobForm })).json()) as { blob_id: string };
  const task = { model: 'flux1-kontext-dev', prompt: 'make it red', steps: 2, seed: 8 };
  const finished = async (body: Record<string, unknown>) => {
    const queued = await postJson(`${url}/task`, body);
    t.equal(queued.status, 200, JSON.stringify(queued.body));
    const events = await pollTask(`${url}/task/${String(queued.body.task_id)}`,
      (event) => ['finished', 'aborted'].includes(String((event as { event_type?: string }).event_type)));
    const last = events.at(-1) as ApiBody & { event_type: string; blob_url: string; parameters_used: Record<string, unknown> };
    t.equal(last.event_type, 'finished', JSON.stringify(last));
    return { event: last, png: Buffer.from(await (await fetch(last.blob_url)).arrayBuffer()) };
  };
  const edited = await finished({ ...task, task_type: 'img2img', initial_image: blob.blob_id });
  t.match(edited.event.parameters_used, { width, height, strength: undefined });
  t.match(await pixels(edited.png), { width, height });
  const plain = await finished({ ...task, task_type: 'txt2img', width, height });
  t.notOk(await samePixels(edited.png, plain.png), 'the image changes the result');
});

t.test('M1\'s /image-to-image and Photoshop\'s /img2img on a server started with a Kontext model', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: { ...dev, kontext: true } });
  const form = (image: Buffer | undefined) => {
    const body = new FormData();
    for (const [name, value] of Object.entries({ prompt: 'make it red', steps: '2', seed: '4' })) body.append(name, value);
    if (image) body.append('image', new Blob([Uint8Array.from(image)], { type: 'image/png' }), 'red.png');
    else for (const [name, value] of Object.entries({ width: String(width), height: String(height) })) body.append(name, value);
    return body;
  };
  const m1 = async (kind: string, image?: Buffer): Promise<Buffer> => {
    const queued = (await (await fetch(`${url}/${kind}`, { method: 'POST', body: form(image) })).json()) as ApiBody;
    const [done] = (await pollTask(`${url}${queued.resultUrl!}`, (body) => body.status === 'COMPLETE' || body.status === 'FAILED')).slice(-1);
    t.equal(done?.status, 'COMPLETE', JSON.stringify(done));
    return Buffer.from(await (await fetch(`${url}${done!.imageUrls![0]!}`)).arrayBuffer());
  };
  const edited = await m1('image-to-image', red);
  t.match(await pixels(edited), { width, height });
  t.notOk(await samePixels(edited, await m1('text-to-image')), 'the image changes the result');

  // The plug-in pastes the result over its selection: an odd size comes back as it went.
  const odd = await solid(100, 70, { r: 220, g: 30, b: 30 });
  const photoshop = await fetch(`${url}/img2img`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ prompt: 'make it red', num_inference_steps: '2', seed: '4', init_image: odd.toString('base64') }),
  });
  t.equal(photoshop.status, 200);
  const { images } = (await photoshop.json()) as { images: { base64: string }[] };
  const result = Buffer.from(images[0]!.base64, 'base64');
  t.match(await pixels(result), { width: 100, height: 70 });
  t.notMatch(readPngText(result).parameters, /Denoising strength/);
});
