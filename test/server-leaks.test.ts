// What clients learn of the server: names, not its folders; key-protected images stay out of
// shared caches; /health says little to callers without a key.

import t from 'tap';

import { withoutPaths } from '../server/redact.js';
import { FakeModel, getJson, pollTask, postForm, startTestServer, waitFor } from './server-helpers.js';

t.test('a failed job\'s error names files, not the folders they are in', async (t) => {
  const model = new FakeModel();
  model.failWith = new Error('/srv/secret/models/fake.safetensors: cannot open (LoRA folder /srv/secret/loras)');
  const { url } = await startTestServer(t, { model });
  const { body } = await postForm(`${url}/text-to-image`, { prompt: 'x' });
  const failed = (await pollTask(`${url}${body.resultUrl}`, (status) => status.status === 'FAILED')).at(-1);
  t.match(failed?.error, { code: 'GENERATION_FAILED', message: 'fake.safetensors: cannot open (LoRA folder loras)' });
});

t.test('paths are cut to their last part wherever they stand; URLs and ratios stay', async (t) => {
  t.equal(withoutPaths('/a/b/c.gguf'), 'c.gguf');
  t.equal(withoutPaths('Cannot read LoRA file "/home/me/loras/x.safetensors": ENOENT'), 'Cannot read LoRA file "x.safetensors": ENOENT');
  t.equal(withoutPaths('in C:\\Users\\me\\models\\v1.safetensors, and (/tmp/a)'), 'in v1.safetensors, and (a)');
  t.equal(withoutPaths('see http://host/docs/a and width/height 1/2'), 'see http://host/docs/a and width/height 1/2');
});

t.test('images of a key-protected server are private to the browser cache', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['key'] });
  const headers = { authorization: 'Bearer key' };
  const form = new FormData();
  form.append('prompt', 'x');
  const created = await (await fetch(`${url}/text-to-image`, { method: 'POST', body: form, headers })).json() as { resultUrl: string };
  let imageUrl: string | undefined;
  await waitFor(async () => {
    const status = await getJson(`${url}${created.resultUrl}`, { headers });
    imageUrl = status.body.status === 'COMPLETE' ? status.body.imageUrls?.[0] : undefined;
    return imageUrl !== undefined;
  });
  const image = await fetch(`${url}${imageUrl}`, { headers });
  t.equal(image.status, 200);
  t.equal(image.headers.get('cache-control'), 'private, max-age=31536000, immutable');
});

t.test('/health without a key says only whether the server is ready', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['key'] });
  t.same((await getJson(`${url}/health`)).body, { ready: true });
  t.same((await getJson(`${url}/health`, { headers: { authorization: 'Bearer wrong' } })).body, { ready: true });
  t.match((await getJson(`${url}/health`, { headers: { authorization: 'Bearer key' } })).body,
    { ready: true, model: 'fake-model', queue: { waiting: 0, running: 0 } });
  const open = await startTestServer(t, { model: new FakeModel() });
  t.match((await getJson(`${open.url}/health`)).body, { ready: true, model: 'fake-model' }, 'a server without keys tells everyone');
});
