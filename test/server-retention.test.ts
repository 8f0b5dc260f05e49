// Finished things do not pile up: jobs and their images, uploaded blobs and the task API's events
// in memory go after --retention; unfinished jobs stay.

import { readdir } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { TaskEventHub } from '../server/dialects/tasks/events.js';
import type { JobRecord } from '../server/jobs/job.js';
import type { JobService } from '../server/jobs/service.js';
import { FakeModel, getJson, jobFolders, postForm, solidPng, startTestServer, waitFor } from './server-helpers.js';

const oneSecond = 1 / 3600;

t.test('finished jobs and uploaded blobs are deleted after --retention; a running job stays', async (t) => {
  const model = new FakeModel({ open: false });
  const { url, outputDir } = await startTestServer(t, { model, retentionHours: oneSecond, concurrency: 1 });
  const blob = await fetch(`${url}/blob`, { method: 'POST', body: Uint8Array.from(await solidPng(8, 8)) });
  t.equal(blob.status, 200);
  // The first job's one step may go; the second waits at its first step for good. A finished job
  // may be gone before a poll sees it finished, so only the end state is awaited.
  model.release();
  const done = await postForm(`${url}/text-to-image`, { prompt: 'done', steps: '1' });
  const running = await postForm(`${url}/text-to-image`, { prompt: 'running', steps: '2' });
  const runningId = String(running.body.resultUrl?.split('/').at(-1));

  await waitFor(async () => (await jobFolders(outputDir)).filter((name) => name !== 'blobs').length === 1
    && (await readdir(path.join(outputDir, 'blobs'))).length === 0, 20_000);
  t.same((await jobFolders(outputDir)).filter((name) => name !== 'blobs'), [runningId], 'only the running job is left');
  t.equal((await getJson(`${url}${done.body.resultUrl}`)).status, 404);
  t.equal((await getJson(`${url}${running.body.resultUrl}`)).body.status, 'IN_PROGRESS');
  t.same(model.calls.map((call) => call.prompt), ['done', 'running']);
});

t.test('the task event hub forgets tasks that ended before the cutoff, and only those', async (t) => {
  const jobs = { subscribe: () => () => {}, find: async () => undefined } as unknown as JobService;
  const hub = new TaskEventHub(jobs, 'tasks', '');
  t.teardown(() => hub.close());
  const info = { owner: 'all', baseUrl: '', parametersUsed: {}, warnings: [] };
  for (const id of ['ended', 'waiting']) hub.pending({ id } as JobRecord, info);
  hub.aborted('ended', 'cancelled');
  t.equal(hub.remembered, 2);
  hub.forgetEndedBefore(Date.now() + 1);
  t.equal(hub.remembered, 1, 'the waiting task is kept');
});
