// A models folder: every checkpoint served by name, at most --max-loaded resident, the least
// recently used unloaded first, listing loads nothing, unknown names answered with the list.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import OpenAI from 'openai';
import t, { type Test } from 'tap';

import { FakeModel, getJson, outputTestdir, pollTask, postForm, startTestServer } from './server-helpers.js';

/** A folder of empty checkpoint files (the fake loader never reads them) and a loader that records. */
async function modelsFolder(t: Test, names: string[]) {
  const dir = outputTestdir(t);
  const modelsDir = path.join(dir, 'models');
  for (const name of names) {
    await mkdir(path.dirname(path.join(modelsDir, name)), { recursive: true });
    await writeFile(path.join(modelsDir, name), '');
  }
  await writeFile(path.join(modelsDir, 'notes.txt'), 'not a checkpoint');
  const loaded: FakeModel[] = [];
  const events: string[] = [];
  const loadModel = async (checkpointPath: string): Promise<FakeModel> => {
    const model = new FakeModel({ path: checkpointPath });
    const close = model.close.bind(model);
    model.close = async () => {
      events.push(`close ${path.basename(checkpointPath)}`);
      await close();
    };
    events.push(`load ${path.basename(checkpointPath)}`);
    loaded.push(model);
    return model;
  };
  return { dir, modelsDir, loaded, events, loadModel };
}

async function generate(url: string, model: string): Promise<void> {
  const { status, body } = await postForm(`${url}/text-to-image`, { prompt: `by ${model}`, steps: '1', model });
  if (status !== 200) throw new Error(`POST answered ${status}: ${JSON.stringify(body)}`);
  await pollTask(`${url}${body.resultUrl}`, (task) => task.status === 'COMPLETE');
}

t.test('every checkpoint in the folder is listed by name without loading any', async (t) => {
  const folder = await modelsFolder(t, ['b.safetensors', 'a.gguf', 'anime/v3.safetensors']);
  const { url } = await startTestServer(t, { modelsDir: folder.modelsDir, loadModel: folder.loadModel, outputDir: path.join(folder.dir, 'out') });
  const ids = [];
  for await (const model of new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 }).models.list()) ids.push(model.id);
  t.same(ids, ['dall-e-2', 'dall-e-3', 'gpt-image-1', 'a', 'anime/v3', 'b']);
  t.same(folder.events, [], 'nothing loaded');
  t.match((await getJson(`${url}/health`)).body, { ready: true, model: 'a', loaded: [] });
});

t.test('with --max-loaded 1, a job naming another model unloads the least recently used', async (t) => {
  const folder = await modelsFolder(t, ['a.safetensors', 'b.safetensors', 'sub/c.safetensors']);
  const { url } = await startTestServer(t, { modelsDir: folder.modelsDir, loadModel: folder.loadModel, maxLoaded: 1, outputDir: path.join(folder.dir, 'out') });
  await generate(url, 'a');
  await generate(url, 'a');
  await generate(url, 'b');
  await generate(url, 'c');
  await generate(url, 'a.safetensors');
  t.same(folder.events, ['load a.safetensors', 'close a.safetensors', 'load b.safetensors', 'close b.safetensors',
    'load c.safetensors', 'close c.safetensors', 'load a.safetensors']);
  t.same(folder.loaded.map((model) => model.calls.map((call) => call.prompt)),
    [['by a', 'by a'], ['by b'], ['by c'], ['by a.safetensors']]);
  t.same((await getJson(`${url}/health`)).body.loaded, ['a']);
});

t.test('with --max-loaded 2 the two most recently used stay resident', async (t) => {
  const folder = await modelsFolder(t, ['a.safetensors', 'b.safetensors', 'c.safetensors']);
  const { url } = await startTestServer(t, { modelsDir: folder.modelsDir, loadModel: folder.loadModel, maxLoaded: 2, outputDir: path.join(folder.dir, 'out') });
  for (const name of ['a', 'b', 'a', 'c', 'a']) await generate(url, name);
  t.same(folder.events, ['load a.safetensors', 'load b.safetensors', 'close b.safetensors', 'load c.safetensors']);
  t.same([...((await getJson(`${url}/health`)).body.loaded ?? [])].sort(), ['a', 'c']);
});

t.test('jobs naming different models keep their FIFO order', async (t) => {
  const folder = await modelsFolder(t, ['a.safetensors', 'b.safetensors']);
  const { url } = await startTestServer(t, { modelsDir: folder.modelsDir, loadModel: folder.loadModel, maxLoaded: 1, outputDir: path.join(folder.dir, 'out') });
  const order = ['a', 'b', 'a', 'b'];
  const posted = [];
  for (const [i, name] of order.entries()) {
    posted.push((await postForm(`${url}/text-to-image`, { prompt: `${i}`, steps: '1', model: name })).body.resultUrl);
  }
  for (const resultUrl of posted) await pollTask(`${url}${resultUrl}`, (task) => task.status === 'COMPLETE');
  const prompts = folder.loaded.flatMap((model) => model.calls.map((call) => call.prompt));
  t.same(prompts, ['0', '1', '2', '3']);
});

t.test('--model picks the default among the folder\'s models; an unknown name lists the available ones', async (t) => {
  const folder = await modelsFolder(t, ['a.safetensors', 'b.safetensors']);
  const { url } = await startTestServer(t, {
    modelsDir: folder.modelsDir, modelPath: path.join(folder.modelsDir, 'b.safetensors'), loadModel: folder.loadModel,
    outputDir: path.join(folder.dir, 'out'),
  });
  t.same(folder.events, ['load b.safetensors'], '--model is loaded at start');
  t.match((await getJson(`${url}/health`)).body, { model: 'b', loaded: ['b'] });
  const unknown = await postForm(`${url}/text-to-image`, { prompt: 'x', model: 'zzz' });
  t.equal(unknown.status, 404);
  t.match(unknown.body.error, { code: 'MODEL_NOT_FOUND', message: 'Unknown model "zzz"; available: b, a' });
});

t.test('a model that fails to load fails its job by name and the server keeps serving', async (t) => {
  const folder = await modelsFolder(t, ['good.safetensors', 'broken.safetensors']);
  const loadModel = async (checkpointPath: string) => {
    if (checkpointPath.endsWith('broken.safetensors')) throw Object.assign(new Error('bad header in broken.safetensors'), { code: 'ERR_MODEL_FORMAT' });
    return folder.loadModel(checkpointPath);
  };
  const { url } = await startTestServer(t, { modelsDir: folder.modelsDir, loadModel, outputDir: path.join(folder.dir, 'out') });
  const { body } = await postForm(`${url}/text-to-image`, { prompt: 'x', model: 'broken' });
  const seen = await pollTask(`${url}${body.resultUrl}`, (task) => task.status === 'FAILED');
  t.match(seen.at(-1)?.error, { message: /broken\.safetensors/ });
  await generate(url, 'good');
  t.pass('the next job ran');
});

t.test('a server with only a preloaded model still serves it by name', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  await generate(url, 'fake-model');
  t.pass();
});
