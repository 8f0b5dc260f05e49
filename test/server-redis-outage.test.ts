// Outages with --redis: Redis going away and coming back, and an API server replaced.

import path from 'node:path';

import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { startRedis, startSdnode, waitFor } from './redis-helpers.js';
import { getJson, outputTestdir, pollTask, postForm, startTestServer } from './server-helpers.js';

t.test('Redis away: requests answer 503, and once it is back every process carries on; a new API server loses nothing', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  const modelsDir = path.join(dir, 'models');
  await writeTinyCheckpoint(modelsDir, { name: 'tiny.safetensors' });
  const [apiServer] = await Promise.all([
    startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0 }),
    startSdnode(t, ['worker', '--redis', redis.url, '--models', modelsDir, '--threads', '1']),
  ]);
  const api = apiServer.url;
  const form = { prompt: 'a harbour', steps: '2', width: '64', height: '64' };
  const before = await postForm(`${api}/text-to-image`, form);
  await pollTask(`${api}${before.body.resultUrl}`, (status) => status.status === 'COMPLETE');

  await redis.stop();
  const refused = await postForm(`${api}/text-to-image`, form);
  t.equal(refused.status, 503);
  t.match(refused.body.error, { code: 'QUEUE_UNAVAILABLE', message: 'The job queue is unreachable; retry later' });
  t.notMatch(refused.body.error?.message, /127\.0\.0\.1|redis:/, 'clients are not told where Redis is');
  t.ok(refused.headers.get('retry-after'), 'with Retry-After');
  t.equal((await getJson(`${api}${before.body.resultUrl}`)).status, 503, 'status polls too');

  await redis.start();
  let after = refused;
  await waitFor(async () => {
    after = await postForm(`${api}/text-to-image`, form);
    return after.status === 200;
  }, 20_000, 'the API process to reconnect');
  const done = await pollTask(`${api}${after.body.resultUrl}`, (status) => status.status === 'COMPLETE', 30_000);
  t.equal(done.at(-1)?.imageUrls?.length, 1, 'the worker reconnected and took the job');

  // The API holds nothing of its own: a new one (in the middle of nothing) answers for the old.
  await apiServer.close({ abort: true });
  const { url: restarted } = await startTestServer(t, { outputDir: path.join(dir, 'output'), redis: redis.url, workers: 0 });
  for (const resultUrl of [before.body.resultUrl, after.body.resultUrl]) {
    t.match((await getJson(`${restarted}${resultUrl}`)).body, { status: 'COMPLETE', imageUrls: [`${resultUrl}/1.png`] });
    t.equal((await fetch(`${restarted}${resultUrl}/1.png`)).status, 200);
  }
});
