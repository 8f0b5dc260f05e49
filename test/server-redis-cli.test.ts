// A --redis server with a model is a whole server on its own, a worker's --safety-checker checks the
// jobs it takes, and the CLI checks the --redis flags.

import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTinySafetyChecker } from './fixtures/safety-checker.js';
import { main } from '../server/cli.js';
import { startRedis, startSdnode } from './redis-helpers.js';
import { getJson, outputTestdir, pollTask, postForm, startTestServer } from './server-helpers.js';

t.test('serve --redis --model FILE is a whole server on its own: it runs a worker too', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  const modelPath = await writeTinyCheckpoint(path.join(dir, 'models'), { name: 'solo.safetensors' });
  const { url: api } = await startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, modelPath });
  t.match((await getJson(`${api}/health`)).body, { ready: true, model: 'solo', loaded: ['solo'] });
  const { body } = await postForm(`${api}/text-to-image`, { prompt: 'a cat', iterations: '2', steps: '2', width: '64', height: '64' });
  const done = await pollTask(`${api}${body.resultUrl}`, (status) => status.status === 'COMPLETE');
  t.equal(done.at(-1)?.imageUrls?.length, 2);
});

t.test('sdnode worker --safety-checker checks the images of the jobs it takes for an API process without one', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  const modelsDir = path.join(dir, 'models');
  await writeTinyCheckpoint(modelsDir, { name: 'tiny.safetensors' });
  const checker = await writeTinySafetyChecker(dir, { thresholds: 'always' });
  const [{ url: api }, worker] = await Promise.all([
    startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0 }),
    startSdnode(t, ['worker', '--redis', redis.url, '--models', modelsDir, '--threads', '1', '--safety-checker', checker]),
  ]);
  t.match(worker.output(), /Loaded safety checker tiny-safety-checker-always-seed1\.safetensors \(17 concepts\)/);
  const response = await fetch(`${api}/txt2img`, {
    method: 'POST', body: new URLSearchParams({ prompt: 'a cat', num_inference_steps: '1', width: '64', height: '64', seed: '3' }),
  });
  const body = await response.json() as { status: string; images: { base64: string; nsfw: boolean | null }[]; warning?: string };
  t.equal(response.status, 200);
  t.same(body.images.map((image) => image.nsfw), [true], 'the worker\'s verdict reaches the API process');
  t.equal(body.warning, undefined);
  const pixels = await sharp(Buffer.from(body.images[0]?.base64 ?? '', 'base64')).removeAlpha().raw().toBuffer();
  t.ok(pixels.every((value) => value === 0), 'black');
});

t.test('the CLI says what --redis needs', async (t) => {
  const cases: [string[], RegExp][] = [
    [['worker', '--models', '.'], /sdnode worker needs --redis <url>/],
    [['worker', '--redis', 'redis://127.0.0.1:1/0'], /needs --models <dir>, --model <file> or --diffusion-model <file>/],
    [['serve', '--workers', '2'], /--workers applies to jobs in Redis; add --redis <url>/],
  ];
  const errors: string[] = [];
  const originalError = console.error;
  console.error = (line: string) => errors.push(line);
  try {
    for (const [args, message] of cases) {
      t.equal(await main(args), 2, args.join(' '));
      t.match(errors.pop(), message);
    }
  } finally {
    console.error = originalError;
  }
});
