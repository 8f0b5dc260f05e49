// Outages with --redis: Redis going away and coming back, and an API process restarted.

import path from 'node:path';

import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { startRedis, startSdnode, urlOf, waitFor } from './redis-helpers.js';
import { exitCode, getJson, outputTestdir, pollTask, postForm } from './server-helpers.js';

t.test('Redis away: requests answer 503, and once it is back every process carries on; an API restart loses nothing', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  const modelsDir = path.join(dir, 'models');
  await writeTinyCheckpoint(modelsDir, { name: 'tiny.safetensors' });
  const apiArgs = ['serve', '--redis', redis.url, '--workers', '0', '--port', '0'];
  const [apiProcess] = await Promise.all([
    startSdnode(t, apiArgs),
    startSdnode(t, ['worker', '--redis', redis.url, '--models', modelsDir]),
  ]);
  const api = urlOf(apiProcess);
  const form = { prompt: 'a harbour', steps: '2', width: '64', height: '64' };
  const before = await postForm(`${api}/text-to-image`, form);
  await pollTask(`${api}${before.body.resultUrl}`, (status) => status.status === 'COMPLETE');

  await redis.stop();
  const refused = await postForm(`${api}/text-to-image`, form);
  t.equal(refused.status, 503);
  t.match(refused.body.error, { code: 'QUEUE_UNAVAILABLE', message: /The job queue is unreachable \(Redis at redis:\/\/127\.0\.0\.1:\d+\/0: .*\); retry later/ });
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

  apiProcess.kill('SIGKILL');
  await exitCode(apiProcess);
  const restarted = urlOf(await startSdnode(t, apiArgs));
  for (const resultUrl of [before.body.resultUrl, after.body.resultUrl]) {
    t.match((await getJson(`${restarted}${resultUrl}`)).body, { status: 'COMPLETE', imageUrls: [`${resultUrl}/1.png`] });
    t.equal((await fetch(`${restarted}${resultUrl}/1.png`)).status, 200);
  }
});
