// API keys: every route that generates, lists or returns images needs one, answered in each
// dialect's own error shape; /health, /docs and /openapi.json stay open.

import t from 'tap';

import { FakeModel, getJson, pollTask, postForm, startTestServer } from './server-helpers.js';

t.test('without a key, M1 and OpenAI routes answer 401 in their own shapes', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['alpha', 'beta'] });
  const m1 = await postForm(`${url}/text-to-image`, { prompt: 'cat' });
  t.equal(m1.status, 401);
  t.equal(m1.headers.get('www-authenticate'), 'Bearer');
  t.match(m1.body, { error: { code: 'UNAUTHORIZED', message: /Authorization: Bearer/ } });
  const status = await getJson(`${url}/text-to-image/AAAAAAAAAAAAAAAAAAAAAA`);
  t.equal(status.status, 401, 'status objects need a key');
  const openai = await getJson(`${url}/v1/models`, { headers: { authorization: 'Bearer gamma' } });
  t.equal(openai.status, 401);
  t.same(openai.body, { error: { message: 'The API key is not valid', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
  t.equal((await getJson(`${url}/health`)).status, 200, '/health is open');
});

t.test('each configured key works, on every route', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['alpha', 'beta'] });
  for (const key of ['alpha', 'beta']) {
    const headers = { authorization: `Bearer ${key}` };
    const form = new FormData();
    form.append('prompt', 'cat');
    form.append('steps', '1');
    const posted = await getJson(`${url}/text-to-image`, { method: 'POST', body: form, headers });
    t.equal(posted.status, 200, key);
    const resultUrl = posted.body.resultUrl ?? '';
    await pollTaskWithKey(`${url}${resultUrl}`, key);
    t.equal((await fetch(`${url}${resultUrl}/1.png`, { headers })).status, 200, 'images need the key too');
    t.equal((await fetch(`${url}${resultUrl}/1.png`)).status, 401);
    t.equal((await getJson(`${url}/v1/models`, { headers })).status, 200);
  }
});

t.test('no keys configured: everything is open', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const { body } = await postForm(`${url}/text-to-image`, { prompt: 'cat', steps: '1' });
  await pollTask(`${url}${body.resultUrl}`, (task) => task.status === 'COMPLETE');
  t.pass();
});

async function pollTaskWithKey(url: string, key: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { body } = await getJson(url, { headers: { authorization: `Bearer ${key}` } });
    if (body.status === 'COMPLETE') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${url} did not complete`);
}
