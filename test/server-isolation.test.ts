// Each API sees and acts on its own jobs only: A1111's progress, interrupt and skip leave other
// APIs' jobs alone, and M1's job URLs find M1 jobs only.

import t from 'tap';

import { FakeModel, getJson, pollTask, postForm, startTestServer, waitFor } from './server-helpers.js';

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

t.test('A1111 progress, interrupt and skip do not see or touch another API\'s running job', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const m1 = await postForm(`${url}/text-to-image`, { prompt: 'a secret prompt', steps: '2' });
  const resultUrl = `${url}${m1.body.resultUrl}`;
  await waitFor(() => model.calls.length === 1);
  model.release();
  await pollTask(resultUrl, (body) => body.progress?.currentImageProgress === 0.5);

  const progress = await getJson(`${url}/sdapi/v1/progress`);
  t.match(progress.body, { progress: 0, current_image: null, state: { job: '', job_count: 0, sampling_step: 0 } });
  t.equal((await postJson(`${url}/sdapi/v1/interrupt`, {})).status, 200);
  t.equal((await postJson(`${url}/sdapi/v1/skip`, {})).status, 200);
  t.equal(model.calls[0]?.signal?.aborted, false, 'the M1 job was not interrupted');
  model.release({ open: true });
  const done = (await pollTask(resultUrl, (body) => body.status === 'COMPLETE')).at(-1);
  t.equal(done?.imageUrls?.length, 1, 'nor was its image skipped');
});

t.test('M1 job URLs do not find, show or cancel a job of another API', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const task = await postJson(`${url}/task`, { task_type: 'txt2img', prompt: 'someone else\'s', steps: 2, width: 64, height: 64 });
  t.equal(task.status, 200);
  const id = String(task.body.task_id);
  await waitFor(() => model.calls.length === 1);
  model.release();
  for (const path of [`/text-to-image/${id}`, `/text-to-image/${id}/preview.png`, `/text-to-image/${id}/1.png`]) {
    const answer = await getJson(`${url}${path}`);
    t.equal(answer.status, 404, `GET ${path}`);
    t.equal(answer.body.error?.code, 'TASK_NOT_FOUND');
  }
  t.equal((await getJson(`${url}/text-to-image/${id}`, { method: 'DELETE' })).status, 404);
  model.release({ open: true });
  await waitFor(async () => ((await getJson(`${url}/task/${id}`)).body as { event_type?: string }).event_type === 'finished');
  t.equal(model.calls[0]?.signal?.aborted, false);
});
