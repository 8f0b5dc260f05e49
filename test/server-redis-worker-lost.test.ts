// Workers with --redis: one killed mid-job (another finishes the job, every image once), and a
// cancel that must reach the worker running the job.

import path from 'node:path';

import t from 'tap';

import { readPngText } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { startRedis, startSdnode } from './redis-helpers.js';
import { exitCode, getJson, outputTestdir, pollTask, postForm, startTestServer } from './server-helpers.js';

t.test('a worker killed mid-job: another worker finishes the job with every image once; cancel reaches the worker', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  const modelsDir = path.join(dir, 'models');
  await writeTinyCheckpoint(modelsDir, { name: 'tiny.safetensors' });
  const workerArgs = ['worker', '--redis', redis.url, '--models', modelsDir, '--stall-timeout', '6', '--threads', '1'];
  const [{ url: api }, ...workers] = await Promise.all([
    startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0 }),
    startSdnode(t, workerArgs),
    startSdnode(t, workerArgs),
  ]);

  const totalImages = 8;
  const { body } = await postForm(`${api}/text-to-image`,
    { prompt: 'a lighthouse', iterations: String(totalImages), steps: '8', seed: '500', width: '64', height: '64' });
  const resultUrl = body.resultUrl ?? '';
  const jobTag = `[${path.basename(resultUrl).slice(0, 8)}]`;
  await pollTask(`${api}${resultUrl}`, (status) => (status.imageUrls?.length ?? 0) >= 1, 120_000);
  const victim = workers.find((worker) => worker.output().includes(jobTag));
  const survivor = workers.find((worker) => worker !== victim);
  if (!victim || !survivor) throw new Error('No worker says it runs the job');
  victim.kill('SIGKILL');
  await exitCode(victim);

  const statuses = await pollTask(`${api}${resultUrl}`, (status) => status.status === 'COMPLETE', 120_000);
  t.same(statuses.at(-1)?.imageUrls, Array.from({ length: totalImages }, (_, i) => `${resultUrl}/${i + 1}.png`));
  t.match(survivor.output(), new RegExp(`\\${jobTag} txt2img "a lighthouse": 8 images, seed 500, resuming at image [2-8]`));
  const seeds: string[] = [];
  for (let n = 1; n <= totalImages; n++) {
    const png = Buffer.from(await (await fetch(`${api}${resultUrl}/${n}.png`)).arrayBuffer());
    seeds.push(/Seed: (\d+)/.exec(readPngText(png).parameters ?? '')?.[1] ?? '?');
  }
  t.same(seeds, ['500', '501', '502', '503', '504', '505', '506', '507'], 'each seed once, in order: nothing made twice or lost');
  t.equal((await fetch(`${api}${resultUrl}/9.png`)).status, 404);

  // The survivor runs the next job; DELETE on the API process stops it there.
  const long = await postForm(`${api}/text-to-image`, { prompt: 'a long one', iterations: '16', steps: '8', width: '64', height: '64' });
  await pollTask(`${api}${long.body.resultUrl}`, (status) => status.status === 'IN_PROGRESS');
  const cancelled = await getJson(`${api}${long.body.resultUrl}`, { method: 'DELETE' });
  t.match(cancelled.body, { status: 'FAILED', error: { code: 'CANCELLED' } });
  t.ok((cancelled.body.imageUrls?.length ?? 0) < 16, 'stopped before the end');
  t.match(survivor.output(), /failed: CANCELLED: The job was cancelled/);
  t.match((await getJson(`${api}/health`)).body.queue, { waiting: 0, running: 0 });
});
