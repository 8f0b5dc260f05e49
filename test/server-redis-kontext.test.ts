// FLUX.1 Kontext with --redis: the API process has none of the model files, so a worker's
// --kontext (or "kontext": true) reaches it in the worker's offer. Its image-to-image doors then
// read images as Kontext's reference images for that model, and keep image-to-image for a plain
// FLUX.1 dev model of the same worker.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { readPngText } from '../lib/index.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { startRedis, startSdnode } from './redis-helpers.js';
import { getJson, outputTestdir, startTestServer } from './server-helpers.js';

const width = 96;
const height = 64;

function solid(background: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background } }).png().toBuffer();
}

/** POST /v1/images/edits with `images` as image[], answering the first image (or the error body). */
async function edit(url: string, model: string, images: Buffer[]): Promise<{ status: number; png?: Buffer; body: Record<string, unknown> }> {
  const form = new FormData();
  for (const [name, value] of Object.entries({ model, prompt: 'make it red', seed: '3', response_format: 'b64_json' })) form.append(name, value);
  for (const [i, png] of images.entries()) form.append('image[]', new Blob([Uint8Array.from(png)], { type: 'image/png' }), `${i}.png`);
  const response = await fetch(`${url}/v1/images/edits`, { method: 'POST', body: form });
  const body = (await response.json()) as Record<string, unknown>;
  const [first] = (body.data ?? []) as { b64_json: string }[];
  return { status: response.status, body, ...(first && { png: Buffer.from(first.b64_json, 'base64') }) };
}

t.test('a worker\'s --kontext reaches the API process: its edits read the images as references', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  // The same FLUX.1 dev files twice, neither named Kontext: one marked by --kontext, one plain in --models.
  const marked = await writeTinyFlux(path.join(dir, 'marked'), { variant: 'flux-dev' });
  const plain = await writeTinyFlux(path.join(dir, 'plain'), { variant: 'flux-dev' });
  const modelsDir = path.join(dir, 'models');
  await mkdir(modelsDir);
  await writeFile(path.join(modelsDir, 'dev.json'), JSON.stringify(plain));
  const [{ url: api }, worker] = await Promise.all([
    startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0 }),
    startSdnode(t, ['worker', '--redis', redis.url, '--models', modelsDir, '--threads', '1', '--backend', 'cpu',
      '--diffusion-model', marked.diffusionModel, '--clip-l', marked.clipL, '--t5xxl', marked.t5xxl, '--vae', marked.vae,
      '--t5-tokenizer', marked.t5Tokenizer, '--kontext']),
  ]);
  t.match(worker.output(), /offering flux1-dev, dev/);

  const { data } = (await getJson(`${api}/v1/models`)).body as unknown as { data: { id: string; kontext?: boolean }[] };
  t.same(data.filter((model) => model.kontext).map((model) => model.id), ['flux1-dev'], 'GET /v1/models says which is Kontext');

  const [red, blue] = await Promise.all([solid({ r: 220, g: 30, b: 30 }), solid({ r: 20, g: 40, b: 230 })]);
  const kontext = await edit(api, 'flux1-dev', [red]);
  t.equal(kontext.status, 200, JSON.stringify(kontext.body.error));
  t.match(await sharp(kontext.png).metadata(), { width, height }, 'the image\'s size');
  t.notMatch(readPngText(kontext.png!).parameters, /Denoising strength/, 'nothing was noised from the image');
  const both = await edit(api, 'flux1-dev', [red, blue]);
  t.equal(both.status, 200, JSON.stringify(both.body.error));
  const raw = (png: Buffer) => sharp(png).removeAlpha().raw().toBuffer();
  t.notOk((await raw(both.png!)).equals(await raw(kontext.png!)), 'a second reference image is read too');

  const img2img = await edit(api, 'dev', [red]);
  t.equal(img2img.status, 200, JSON.stringify(img2img.body.error));
  t.match(readPngText(img2img.png!).parameters, /Denoising strength: 0\.75/, 'the plain model noises the image');
  const two = await edit(api, 'dev', [red, blue]);
  t.equal(two.status, 400);
  t.match(two.body, { error: { message: /one image per request.*Kontext/ } });
});
