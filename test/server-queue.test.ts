// Tasks through the queue and onto disk, with a fake model whose steps the test releases.

import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { FakeModel, getJson, jobFolders, outputTestdir, pollTask, postForm, solidPng, startTestServer } from './server-helpers.js';

t.test('a task goes QUEUED, IN_PROGRESS with progress, then COMPLETE with its images', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const first = await postForm(`${url}/text-to-image`, { prompt: 'a cat', iterations: '2', steps: '4', seed: '42' });
  t.equal(first.status, 200);
  t.match(first.body, { status: 'QUEUED', resultUrl: /^\/text-to-image\/[A-Za-z0-9_-]{22}$/ });
  const second = await postForm(`${url}/text-to-image`, { prompt: 'a dog' });
  t.same((await getJson(`${url}${second.body.resultUrl}`)).body,
    { status: 'QUEUED', resultUrl: second.body.resultUrl });

  const firstUrl = `${url}${first.body.resultUrl}`;
  await pollTask(firstUrl, (body) => body.status === 'IN_PROGRESS');
  model.release();
  const afterOneStep = await pollTask(firstUrl, (body) => body.progress?.currentImageProgress === 0.25);
  t.same(afterOneStep.at(-1), {
    status: 'IN_PROGRESS',
    resultUrl: first.body.resultUrl,
    progress: { currentImageIndex: 0, currentImageProgress: 0.25, totalImages: 2 },
    imageUrls: [],
    previewUrl: `${first.body.resultUrl}/preview.png`,
  });
  t.same((await getJson(`${url}/health`)).body.queue, { waiting: 1, running: 1 });

  model.release({ open: true });
  const seen = await pollTask(firstUrl, (body) => body.status === 'COMPLETE');
  const done = seen.at(-1);
  t.same(done, {
    status: 'COMPLETE',
    resultUrl: first.body.resultUrl,
    imageUrls: [`${first.body.resultUrl}/1.png`, `${first.body.resultUrl}/2.png`],
  });
  t.same(model.calls.slice(0, 2).map((call) => [call.prompt, call.seed, call.count, call.steps]),
    [['a cat', 42, 1, 4], ['a cat', 43, 1, 4]]);
  for (const imageUrl of done?.imageUrls ?? []) {
    const response = await fetch(`${url}${imageUrl}`);
    t.equal(response.status, 200);
    t.equal(response.headers.get('content-type'), 'image/png');
    t.match(await sharp(Buffer.from(await response.arrayBuffer())).metadata(), { format: 'png', width: 64, height: 64 });
  }
  const missing = await getJson(`${url}${first.body.resultUrl}/3.png`);
  t.equal(missing.status, 404);
  t.equal(missing.body.error?.code, 'IMAGE_NOT_FOUND');
  await pollTask(`${url}${second.body.resultUrl}`, (body) => body.status === 'COMPLETE');
});

t.test('a full queue answers 503 with Retry-After and keeps nothing of the refused task', async (t) => {
  const model = new FakeModel({ open: false });
  const { url, outputDir } = await startTestServer(t, { model, maxQueue: 1 });
  t.equal((await postForm(`${url}/text-to-image`, { prompt: 'running' })).status, 200);
  t.equal((await postForm(`${url}/text-to-image`, { prompt: 'waiting' })).status, 200);
  const refused = await postForm(`${url}/text-to-image`, { prompt: 'refused' });
  t.equal(refused.status, 503);
  t.equal(refused.headers.get('retry-after'), '10');
  t.equal(refused.body.error?.code, 'QUEUE_FULL');
  t.same((await getJson(`${url}/health`)).body, { ready: true, model: 'fake-model', loaded: ['fake-model'], queue: { waiting: 1, running: 1 } });
  t.equal((await jobFolders(outputDir)).length, 2);
});

t.test('a generation the library rejects is FAILED with its code and message', async (t) => {
  const model = new FakeModel();
  model.failWith = new RangeError('Expected a width this model supports');
  const { url } = await startTestServer(t, { model });
  const { body } = await postForm(`${url}/text-to-image`, { prompt: 'cat' });
  const seen = await pollTask(`${url}${body.resultUrl}`, (status) => status.status === 'FAILED');
  t.same(seen.at(-1), {
    status: 'FAILED',
    resultUrl: body.resultUrl,
    error: { code: 'INVALID_PARAMETER', message: 'Expected a width this model supports' },
    imageUrls: [],
  });
});

t.test('the job folder holds job.json, uploads under names the server chose, and the PNGs', async (t) => {
  const { url, outputDir } = await startTestServer(t, { model: new FakeModel() });
  const jpeg = await sharp(await solidPng(64, 64)).jpeg().toBuffer();
  const { body } = await postForm(`${url}/image-to-image`, { prompt: 'cat', strength: '0.5', seed: '7' }, {
    image: { data: jpeg, type: 'image/jpeg', filename: '../../evil.png' },
  });
  await pollTask(`${url}${body.resultUrl}`, (status) => status.status === 'COMPLETE');
  const id = path.basename(body.resultUrl ?? '');
  t.same((await jobFolders(outputDir)).sort(), [id]);
  t.same((await readdir(path.join(outputDir, id))).sort(), ['1.png', 'image.jpg', 'job.json']);
  const task = JSON.parse(await readFile(path.join(outputDir, id, 'job.json'), 'utf8')) as unknown;
  t.match(task, {
    id,
    mode: 'img2img',
    dialect: 'm1',
    model: 'fake-model',
    parameters: { prompt: 'cat', strength: 0.5, seed: 7, count: 1 },
    uploads: { image: 'image.jpg' },
    state: 'COMPLETE',
    error: null,
  });
  t.same(await readFile(path.join(outputDir, id, 'image.jpg')), jpeg);
});

t.test('stopping refuses new tasks, finishes the running image, and the next start resumes', async (t) => {
  const outputDir = outputTestdir(t);
  const model = new FakeModel({ open: false });
  const first = await startTestServer(t, { model, outputDir });
  const { body } = await postForm(`${first.url}/text-to-image`, { prompt: 'cat', iterations: '3', seed: '100' });
  const resultUrl = body.resultUrl ?? '';
  await pollTask(`${first.url}${resultUrl}`, (status) => status.status === 'IN_PROGRESS');

  const closed = first.close();
  const refused = await postForm(`${first.url}/text-to-image`, { prompt: 'late' });
  t.equal(refused.status, 503);
  t.equal(refused.body.error?.code, 'SHUTTING_DOWN');
  t.equal((await getJson(`${first.url}/health`)).body.ready, false);
  model.release({ open: true });
  await closed;
  const taskDir = path.join(outputDir, path.basename(resultUrl));
  t.same((await readdir(taskDir)).filter((name) => name.endsWith('.png')), ['1.png']);
  t.match(JSON.parse(await readFile(path.join(taskDir, 'job.json'), 'utf8')), { state: 'IN_PROGRESS' });

  const resumedModel = new FakeModel();
  const second = await startTestServer(t, { model: resumedModel, outputDir });
  const seen = await pollTask(`${second.url}${resultUrl}`, (status) => status.status === 'COMPLETE');
  t.same(seen.at(-1)?.imageUrls, [1, 2, 3].map((n) => `${resultUrl}/${n}.png`));
  t.same(resumedModel.calls.map((call) => call.seed), [101, 102]);
});

t.test('--delete-incomplete deletes unfinished tasks and keeps finished ones', async (t) => {
  const outputDir = outputTestdir(t);
  const model = new FakeModel();
  const first = await startTestServer(t, { model, outputDir });
  const finished = (await postForm(`${first.url}/text-to-image`, { prompt: 'done' })).body.resultUrl ?? '';
  await pollTask(`${first.url}${finished}`, (status) => status.status === 'COMPLETE');
  await first.close();

  const blocked = new FakeModel({ open: false });
  const second = await startTestServer(t, { model: blocked, outputDir });
  const unfinished = (await postForm(`${second.url}/text-to-image`, { prompt: 'never', iterations: '2' })).body.resultUrl ?? '';
  await second.close({ abort: true });

  const third = await startTestServer(t, { model: new FakeModel(), outputDir, deleteIncomplete: true });
  t.equal((await getJson(`${third.url}${unfinished}`)).status, 404);
  t.equal((await getJson(`${third.url}${finished}`)).body.status, 'COMPLETE');
  t.same(await jobFolders(outputDir), [path.basename(finished)]);
});

t.test('half-written leftovers of a crash are removed at start, finished tasks kept', async (t) => {
  const outputDir = outputTestdir(t);
  const first = await startTestServer(t, { model: new FakeModel(), outputDir });
  const resultUrl = (await postForm(`${first.url}/text-to-image`, { prompt: 'kept' })).body.resultUrl ?? '';
  await pollTask(`${first.url}${resultUrl}`, (status) => status.status === 'COMPLETE');
  await first.close();
  const id = path.basename(resultUrl);
  await mkdir(path.join(outputDir, '.new-AAAAAAAAAAAAAAAAAAAAAA'));
  await writeFile(path.join(outputDir, id, '.2.png.0123456789ab.tmp'), 'partial');

  const second = await startTestServer(t, { model: new FakeModel(), outputDir });
  t.same(await jobFolders(outputDir), [id]);
  t.same((await readdir(path.join(outputDir, id))).sort(), ['1.png', 'job.json']);
  t.equal((await getJson(`${second.url}${resultUrl}`)).body.status, 'COMPLETE');
});

t.test('a running task has a previewUrl serving a small PNG of the image being made', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const { body } = await postForm(`${url}/text-to-image`, { prompt: 'cat', steps: '4', width: '128', height: '64' });
  const resultUrl = `${url}${body.resultUrl}`;
  await pollTask(resultUrl, (status) => status.status === 'IN_PROGRESS');
  t.equal((await getJson(`${resultUrl}/preview.png`)).status, 404, 'no preview before the first step');
  model.release();
  const [withPreview] = (await pollTask(resultUrl, (status) => status.previewUrl !== undefined)).slice(-1);
  t.equal(withPreview?.previewUrl, `${body.resultUrl}/preview.png`);
  const preview = await fetch(`${url}${withPreview?.previewUrl}`);
  t.equal(preview.status, 200);
  t.equal(preview.headers.get('cache-control'), 'no-store');
  t.match(await sharp(Buffer.from(await preview.arrayBuffer())).metadata(), { format: 'png', width: 16, height: 8 });
  model.release({ open: true });
  const [done] = (await pollTask(resultUrl, (status) => status.status === 'COMPLETE')).slice(-1);
  t.notOk(done?.previewUrl, 'no preview once complete');
  t.equal((await getJson(`${resultUrl}/preview.png`)).status, 404);
});

t.test('DELETE cancels a waiting or running task: FAILED with code CANCELLED, the queue moves on', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const running = (await postForm(`${url}/text-to-image`, { prompt: 'running' })).body.resultUrl ?? '';
  const waiting = (await postForm(`${url}/text-to-image`, { prompt: 'waiting' })).body.resultUrl ?? '';
  const last = (await postForm(`${url}/text-to-image`, { prompt: 'last' })).body.resultUrl ?? '';
  await pollTask(`${url}${running}`, (status) => status.status === 'IN_PROGRESS');
  for (const resultUrl of [waiting, running]) {
    const cancelled = await getJson(`${url}${resultUrl}`, { method: 'DELETE' });
    t.equal(cancelled.status, 200);
    t.match(cancelled.body, { status: 'FAILED', error: { code: 'CANCELLED' } });
  }
  model.release({ open: true });
  await pollTask(`${url}${last}`, (status) => status.status === 'COMPLETE');
  t.same(model.calls.map((call) => call.prompt), ['running', 'last'], 'the cancelled waiting task never ran');
  t.equal(model.calls[0]?.signal?.aborted, true);
  t.equal((await getJson(`${url}/text-to-image/AAAAAAAAAAAAAAAAAAAAAA`, { method: 'DELETE' })).status, 404);
});

t.test('the fake model counts releases: one given before a step waits still lets that step go on', async (t) => {
  const model = new FakeModel({ open: false });
  model.release();
  model.release();
  const images = await model.textToImage({ prompt: 'early', steps: 2 });
  t.equal(images.length, 1);
});
