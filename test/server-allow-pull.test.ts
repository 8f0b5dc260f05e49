// --allow-pull: a request may name a model reference that is not downloaded yet; its job downloads
// it into the models folder (from a hub on the loopback interface, test/fixtures/fake-hub.ts) and
// generates with it. Without the flag such a name is an unknown model and nothing is downloaded.
import { readdir } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { tinyCheckpointBytes } from './fixtures/checkpoint.js';
import { startFakeHub } from './fixtures/fake-hub.js';
import { getJson, outputTestdir, pollTask, postForm, startTestServer } from './server-helpers.js';

const hub = await startFakeHub();
t.teardown(() => hub.close());
const savedEndpoint = process.env.SDNODE_HF_ENDPOINT;
process.env.SDNODE_HF_ENDPOINT = hub.endpoint;
t.teardown(() => {
  if (savedEndpoint === undefined) delete process.env.SDNODE_HF_ENDPOINT;
  else process.env.SDNODE_HF_ENDPOINT = savedEndpoint;
});
hub.files.set('stabilityai/sd-turbo/main/sd_turbo.safetensors', { bytes: tinyCheckpointBytes({ family: 'sd2' }) });

const form = (model: string): Record<string, string> => ({ prompt: 'a cat', width: '64', height: '64', model });

t.test('without --allow-pull a reference that is not downloaded is an unknown model, and nothing is downloaded', async (t) => {
  const modelsDir = path.join(outputTestdir(t), 'models');
  const { url } = await startTestServer(t, { modelsDir });
  const { status, body } = await postForm(`${url}/text-to-image`, form('sd-turbo'));
  t.equal(status, 404, 'M1 answers an unknown model as not found');
  t.match(JSON.stringify(body), /Unknown model \\"sd-turbo\\"/);
  t.same(await readdir(modelsDir).catch(() => []), []);
});

t.test('with --allow-pull the job downloads the model, loads it with its card and generates', async (t) => {
  const modelsDir = path.join(outputTestdir(t), 'models');
  const { url } = await startTestServer(t, { modelsDir, allowPull: true });
  const { status, body } = await postForm(`${url}/text-to-image`, form('sd-turbo'));
  t.equal(status, 200, JSON.stringify(body));
  const seen = await pollTask(`${url}${body.resultUrl}`, (task) => task.status === 'COMPLETE' || task.status === 'FAILED');
  const last = seen.at(-1)!;
  t.equal(last.status, 'COMPLETE', JSON.stringify(last));
  t.same((await readdir(modelsDir)).sort(), ['sd-turbo.safetensors', 'sd-turbo.safetensors.source.json']);
  t.match((await getJson(`${url}/health`)).body, { loaded: ['sd-turbo'] });
  const { body: listed } = await getJson(`${url}/v1/models`);
  t.ok((listed as { data: { id: string }[] }).data.some((model) => model.id === 'sd-turbo'), 'listed by its name once pulled');
});

t.test('with --allow-pull a reference the hub does not have fails its job with the hub\'s answer, and the server goes on', async (t) => {
  const modelsDir = path.join(outputTestdir(t), 'models');
  const { url } = await startTestServer(t, { modelsDir, allowPull: true });
  const { status, body } = await postForm(`${url}/text-to-image`, form('hf:nobody/nothing/missing.safetensors'));
  t.equal(status, 200, JSON.stringify(body));
  const failed = (await pollTask(`${url}${body.resultUrl}`, (task) => task.status === 'COMPLETE' || task.status === 'FAILED')).at(-1)!;
  t.equal(failed.status, 'FAILED');
  t.match(JSON.stringify(failed), /not found \(404\)/);
  t.same((await readdir(modelsDir).catch(() => [])).filter((name) => name.startsWith('missing')), [], 'no file left that looks like the model');
  const again = await postForm(`${url}/text-to-image`, form('sd-turbo'));
  const done = (await pollTask(`${url}${again.body.resultUrl}`, (task) => task.status === 'COMPLETE' || task.status === 'FAILED')).at(-1)!;
  t.equal(done.status, 'COMPLETE', JSON.stringify(done));
});
