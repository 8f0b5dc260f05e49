// A --redis server with a model is a whole server on its own, and the CLI checks the --redis flags.

import path from 'node:path';

import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { main } from '../server/cli.js';
import { startRedis } from './redis-helpers.js';
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

t.test('the CLI says what --redis needs', async (t) => {
  const cases: [string[], RegExp][] = [
    [['worker', '--models', '.'], /sdnode worker needs --redis <url>/],
    [['worker', '--redis', 'redis://127.0.0.1:1/0'], /needs --models <dir> or --model <file>/],
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
