// Several processes on one Redis (--redis): API servers without model files, worker processes
// that offer their checkpoints, and jobs from any dialect that any API server can follow.

import path from 'node:path';

import OpenAI from 'openai';
import sharp from 'sharp';
import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { startRedis, startSdnode } from './redis-helpers.js';
import { getJson, outputTestdir, pollTask, postForm, startTestServer, waitFor, type ApiBody } from './server-helpers.js';

t.test('an API process and two workers share jobs: M1 and OpenAI jobs complete, and a second API process follows them', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  const modelsDir = path.join(dir, 'models');
  await writeTinyCheckpoint(modelsDir, { name: 'tiny.safetensors' });
  // Two API servers (in this process: they share nothing but Redis) and two worker processes.
  const [first, second, workerA, workerB] = await Promise.all([
    startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0 }),
    startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0 }),
    startSdnode(t, ['worker', '--redis', redis.url, '--models', modelsDir, '--threads', '1']),
    startSdnode(t, ['worker', '--redis', redis.url, '--models', modelsDir, '--threads', '1']),
  ]);
  const api = first.url;
  const other = second.url;
  t.match(workerA.output(), /offering tiny, 1 at once/);

  t.match((await getJson(`${api}/health`)).body, { ready: true, model: 'tiny', queue: { waiting: 0, running: 0 } });
  const models = await (await fetch(`${other}/v1/models`)).json() as { data: { id: string }[] };
  t.ok(models.data.some((model) => model.id === 'tiny'), '/v1/models lists what the workers offer');
  // The worker hashes its file after its first offer, then offers the hash.
  let sdModels: { model_name: string; sha256: string | null }[] = [];
  await waitFor(async () => {
    sdModels = await (await fetch(`${other}/sdapi/v1/sd-models`)).json() as typeof sdModels;
    return sdModels.some((model) => typeof model.sha256 === 'string');
  }, 60_000);
  t.match(sdModels, [{ model_name: 'tiny', sha256: /^[0-9a-f]{64}$/ }], 'A1111 lists it with the hash the worker computed');

  // Two jobs at once: each worker takes one.
  const form = { prompt: 'a lighthouse', iterations: '3', steps: '6', width: '64', height: '64' };
  const queued = await Promise.all([postForm(`${api}/text-to-image`, { ...form, seed: '1' }), postForm(`${api}/text-to-image`, { ...form, seed: '2' })]);
  const seen: ApiBody[][] = await Promise.all(queued.map(({ body }) =>
    pollTask(`${other}${body.resultUrl}`, (status) => status.status === 'COMPLETE')));
  t.ok(seen.every((statuses) => statuses.some((status) => status.status === 'IN_PROGRESS' && status.progress !== undefined)),
    'the second API process shows the progress of jobs it did not take');
  for (const [i, { body }] of queued.entries()) {
    t.same(seen[i]?.at(-1)?.imageUrls, [1, 2, 3].map((n) => `${body.resultUrl}/${n}.png`));
    const response = await fetch(`${other}${body.resultUrl}/3.png`);
    t.equal(response.status, 200);
    t.match(await sharp(Buffer.from(await response.arrayBuffer())).metadata(), { format: 'png', width: 64, height: 64 });
  }
  t.ok([workerA, workerB].every((worker) => /txt2img "a lighthouse"/.test(worker.output())), 'both workers took a job');

  // OpenAI, synchronous, streamed through the second API process: partial images arrive as events.
  const client = new OpenAI({ baseURL: `${other}/v1`, apiKey: 'unused', maxRetries: 0 });
  const stream = await client.images.generate({
    prompt: 'a harbour', model: 'tiny', size: '64x64', stream: true, partial_images: 2,
  } as unknown as OpenAI.ImageGenerateParamsStreaming);
  const events: string[] = [];
  let final = '';
  for await (const event of stream) {
    events.push(event.type);
    if (event.type === 'image_generation.completed') final = event.b64_json;
  }
  t.ok(events.includes('image_generation.partial_image'), 'partial images come from the worker through Redis');
  t.equal(events.at(-1), 'image_generation.completed');
  t.match(await sharp(Buffer.from(final, 'base64')).metadata(), { format: 'png', width: 64, height: 64 });
});

t.test('a request for a model no worker offers: named in a 404, or FAILED with NO_WORKER after --no-worker-timeout; --max-queue', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  const modelsDir = path.join(dir, 'models');
  await writeTinyCheckpoint(modelsDir, { name: 'tiny.safetensors' });
  const [{ url: api }] = await Promise.all([
    startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0, modelPath: 'ghost', noWorkerTimeoutSeconds: 1, maxQueue: 1 }),
    startSdnode(t, ['worker', '--redis', redis.url, '--models', modelsDir, '--threads', '1']),
  ]);

  const unknown = await postForm(`${api}/text-to-image`, { prompt: 'a cat', model: 'nope', steps: '1', width: '64', height: '64' });
  t.equal(unknown.status, 404);
  t.match(unknown.body.error, { code: 'MODEL_NOT_FOUND', message: /Unknown model "nope"; available: tiny/ });

  const health = (await getJson(`${api}/health`)).body;
  t.match(health, { ready: false, model: null, hint: /No worker offers the default model ghost/ });

  const { body } = await postForm(`${api}/text-to-image`, { prompt: 'a cat', steps: '1', width: '64', height: '64' });
  const full = await postForm(`${api}/text-to-image`, { prompt: 'a cat', steps: '1', width: '64', height: '64' });
  t.match(full, { status: 503, body: { error: { code: 'QUEUE_FULL', message: /The queue is full \(1 jobs waiting\)/ } } },
    '--max-queue counts the jobs waiting in Redis');
  const statuses = await pollTask(`${api}${body.resultUrl}`, (status) => status.status === 'FAILED', 20_000);
  t.match(statuses.at(-1)?.error, {
    code: 'NO_WORKER',
    message: /^No worker offers model "ghost" \(waited 1 s, --no-worker-timeout\); workers offer: tiny$/,
  });

  const ok = await postForm(`${api}/text-to-image`, { prompt: 'a cat', model: 'tiny', steps: '1', width: '64', height: '64' });
  const done = await pollTask(`${api}${ok.body.resultUrl}`, (status) => status.status === 'COMPLETE');
  t.equal(done.at(-1)?.imageUrls?.length, 1, 'a model a worker offers still works');
});

t.test('--max-queue holds against requests that arrive together: as many accepted as it allows, the rest 503 QUEUE_FULL', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  // No worker offers the model, so no job leaves the queue while the requests arrive.
  const { url: api } = await startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0, modelPath: 'ghost', maxQueue: 3 });
  const answers = await Promise.all(Array.from({ length: 12 }, () =>
    postForm(`${api}/text-to-image`, { prompt: 'a cat', steps: '1', width: '64', height: '64' })));
  t.same(answers.map((answer) => answer.status).sort((a, b) => a - b), [200, 200, 200, ...Array<number>(9).fill(503)]);
  t.ok(answers.filter((answer) => answer.status === 503).every((answer) => answer.body.error?.code === 'QUEUE_FULL'), 'each refusal says QUEUE_FULL');
  t.match((await getJson(`${api}/health`)).body, { queue: { waiting: 3, running: 0 } });
});
