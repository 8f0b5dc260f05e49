// sdnode serve --redis on its own, and the CLI's checks of the --redis flags.

import path from 'node:path';

import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { startRedis, startSdnode, urlOf } from './redis-helpers.js';
import { exitCode, getJson, outputTestdir, pollTask, postForm, spawnCli } from './server-helpers.js';

t.test('serve --redis --model FILE is a whole server on its own: it runs a worker too', async (t) => {
  const dir = outputTestdir(t);
  const redis = await startRedis(t, dir);
  const modelPath = await writeTinyCheckpoint(path.join(dir, 'models'), { name: 'solo.safetensors' });
  const server = await startSdnode(t, ['serve', '--redis', redis.url, '--model', modelPath, '--port', '0']);
  const api = urlOf(server);
  t.match((await getJson(`${api}/health`)).body, { ready: true, model: 'solo', loaded: ['solo'] });
  const { body } = await postForm(`${api}/text-to-image`, { prompt: 'a cat', iterations: '2', steps: '2', width: '64', height: '64' });
  const done = await pollTask(`${api}${body.resultUrl}`, (status) => status.status === 'COMPLETE');
  t.equal(done.at(-1)?.imageUrls?.length, 2);
});

t.test('the CLI says what --redis needs', async (t) => {
  const cases: [string[], RegExp][] = [
    [['worker', '--models', '.'], /sdnode worker needs --redis <url>/],
    [['worker', '--redis', 'redis://127.0.0.1:1/0'], /needs --models <dir> or --model <file>/],
    [['serve', '--workers', '2'], /--workers applies to jobs in Redis; add --redis <url>/],
  ];
  await Promise.all(cases.map(async ([args, message]) => {
    const child = spawnCli(args);
    t.equal(await exitCode(child), 2, args.join(' '));
    t.match(child.output(), message);
  }));
});
