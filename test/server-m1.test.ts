// The three documented curl flows, end to end on a tiny random checkpoint: POST a form, poll the
// resultUrl through QUEUED / IN_PROGRESS to COMPLETE, fetch the PNGs.

import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { getJson, outputTestdir, pollTask, postForm, solidPng, startTestServer, type ApiBody, type FileField }
  from './server-helpers.js';

async function serverWithTinyModel(t: Test, options: { inpaint?: boolean } = {}): Promise<string> {
  const dir = outputTestdir(t);
  const modelPath = await writeTinyCheckpoint(dir, { inpaint: options.inpaint ?? false });
  const { url } = await startTestServer(t, { modelPath, outputDir: path.join(dir, 'output') });
  return url;
}

/** Runs one POST → poll → fetch flow and checks every step of it. */
async function runFlow(t: Test, url: string, kind: string, fields: Record<string, string>,
  files: Record<string, FileField> = {}, options: { expectProgress?: boolean } = {}): Promise<Buffer[]> {
  const queued = await postForm(`${url}/${kind}`, fields, files);
  t.equal(queued.status, 200);
  t.match(queued.body, { status: 'QUEUED', resultUrl: new RegExp(`^/${kind}/[A-Za-z0-9_-]{22}$`) });
  const resultUrl = queued.body.resultUrl ?? '';
  const totalImages = Number(fields.iterations ?? '1');

  const seen = await pollTask(`${url}${resultUrl}`, (body) => body.status === 'COMPLETE' || body.status === 'FAILED');
  const last = seen.at(-1) as ApiBody;
  t.same(last, {
    status: 'COMPLETE',
    resultUrl,
    imageUrls: Array.from({ length: totalImages }, (_, i) => `${resultUrl}/${i + 1}.png`),
  });
  const running = seen.filter((body) => body.status === 'IN_PROGRESS');
  if (options.expectProgress ?? true) t.ok(running.length > 0, 'reported IN_PROGRESS on the way');
  for (const body of running) {
    t.match(body, { resultUrl, progress: { totalImages }, imageUrls: Array });
    const { currentImageIndex, currentImageProgress } = body.progress ?? { currentImageIndex: -1, currentImageProgress: -1 };
    t.ok(currentImageIndex >= 0 && currentImageIndex < totalImages, 'currentImageIndex in range');
    t.ok(currentImageProgress >= 0 && currentImageProgress <= 1, 'currentImageProgress in 0–1');
    const listed = body.imageUrls?.length;
    t.ok(listed === currentImageIndex || (listed === totalImages && currentImageProgress === 1),
      'images listed as they finish');
  }

  const pngs: Buffer[] = [];
  for (const imageUrl of last.imageUrls ?? []) {
    const response = await fetch(`${url}${imageUrl}`);
    t.equal(response.status, 200);
    t.equal(response.headers.get('content-type'), 'image/png');
    const png = Buffer.from(await response.arrayBuffer());
    t.match(await sharp(png).metadata(), { format: 'png' });
    pngs.push(png);
  }
  return pngs;
}

t.test('curl -F prompt=… /text-to-image makes the images and serves them as PNG', async (t) => {
  const url = await serverWithTinyModel(t);
  t.match((await getJson(`${url}/health`)).body, { ready: true, model: /^tiny/, queue: { waiting: 0, running: 0 } });
  const pngs = await runFlow(t, url, 'text-to-image',
    { prompt: 'a photo of a cat', iterations: '3', steps: '4', seed: '42', width: '64', height: '64' });
  for (const png of pngs) t.match(await sharp(png).metadata(), { width: 64, height: 64 });
  t.not(pngs[0]?.equals(pngs[1] ?? Buffer.alloc(0)), true, 'seeds 42 and 43 give different images');
});

t.test('the largest seed with iterations 2: the second image has seed 0, as the library counts', async (t) => {
  const url = await serverWithTinyModel(t);
  const fields = { prompt: 'a castle', steps: '2', width: '64', height: '64' };
  const [, wrapped] = await runFlow(t, url, 'text-to-image', { ...fields, seed: '4294967295', iterations: '2' }, {}, { expectProgress: false });
  const [zero] = await runFlow(t, url, 'text-to-image', { ...fields, seed: '0' }, {}, { expectProgress: false });
  t.ok(wrapped && zero && wrapped.equals(zero));
});

t.test('the same seed gives the same image', async (t) => {
  const url = await serverWithTinyModel(t);
  const fields = { prompt: 'a castle', steps: '3', seed: '7', width: '64', height: '64' };
  const [first] = await runFlow(t, url, 'text-to-image', fields, {}, { expectProgress: false });
  const [second] = await runFlow(t, url, 'text-to-image', fields, {}, { expectProgress: false });
  t.ok(first && second && first.equals(second));
});

t.test('curl -F prompt=… -F image=@photo.png /image-to-image makes an image from the upload', async (t) => {
  const url = await serverWithTinyModel(t);
  const [png] = await runFlow(t, url, 'image-to-image',
    { prompt: 'a painting', steps: '4', seed: '1', strength: '0.6', iterations: '2', width: '64', height: '64' },
    { image: { data: await solidPng(64, 64), type: 'image/png', filename: 'photo.png' } });
  t.match(await sharp(png).metadata(), { width: 64, height: 64 });
});

t.test('curl -F image=@photo.png -F mask=@mask.png /inpaint-image repaints without a prompt', async (t) => {
  const url = await serverWithTinyModel(t, { inpaint: true });
  const [png] = await runFlow(t, url, 'inpaint-image', { steps: '4', seed: '3', iterations: '2', width: '64', height: '64' }, {
    image: { data: await solidPng(64, 64), type: 'image/png', filename: 'photo.png' },
    mask: { data: await solidPng(64, 64, 255), type: 'image/png', filename: 'mask.png' },
  });
  t.match(await sharp(png).metadata(), { width: 64, height: 64 });
});

t.test('masked_start picks what the masked area starts from (A1111\'s "masked content"); a bad value is a 400 naming it', async (t) => {
  const url = await serverWithTinyModel(t);
  const files = {
    image: { data: await solidPng(64, 64), type: 'image/png', filename: 'photo.png' },
    mask: { data: await solidPng(64, 64, 255), type: 'image/png', filename: 'mask.png' },
  };
  const fields = { prompt: 'a tower', steps: '3', seed: '5', strength: '0.9', width: '64', height: '64' };
  const pixels = async (png: Buffer | undefined) => sharp(png).raw().toBuffer();
  const [original] = await runFlow(t, url, 'inpaint-image', fields, files, { expectProgress: false });
  const [zeros] = await runFlow(t, url, 'inpaint-image', { ...fields, masked_start: 'zeros' }, files, { expectProgress: false });
  const [noise] = await runFlow(t, url, 'inpaint-image', { ...fields, masked_start: 'noise' }, files, { expectProgress: false });
  t.notSame(await pixels(zeros), await pixels(original), 'zeros differs from the image as the start');
  t.notSame(await pixels(noise), await pixels(zeros), 'noise differs from zeros');
  const bad = await postForm(`${url}/inpaint-image`, { ...fields, masked_start: 'fill' }, files);
  t.equal(bad.status, 400);
  t.match(JSON.stringify(bad.body), /masked_start must be one of original, noise, zeros, got \\?"fill\\?"/);
});
