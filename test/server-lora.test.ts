// LoRA through the server: the models folder's loras/ is the LoRA folder (and offers no checkpoints),
// /sdapi/v1/loras lists it, and a prompt's <lora:…> tag works through any dialect's job.
import path from 'node:path';

import t from 'tap';

import { readPngText } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTinyLora } from './fixtures/lora.js';
import { getJson, outputTestdir, startTestServer } from './server-helpers.js';

t.test('with --models, loras/ is listed by /sdapi/v1/loras, its files are no checkpoints, and tags apply', async (t) => {
  const dir = outputTestdir(t);
  const models = path.join(dir, 'models');
  await writeTinyCheckpoint(models, { name: 'tiny.safetensors' });
  const loras = path.join(models, 'loras');
  await writeTinyLora(loras, 'style', { metadata: { ss_output_name: 'my-style', ss_network_dim: '4' } });
  const { url } = await startTestServer(t, { modelsDir: models, outputDir: path.join(dir, 'out') });

  const listed = await getJson(`${url}/sdapi/v1/loras`);
  t.equal(listed.status, 200);
  t.same(listed.body, [{
    name: 'style', alias: 'my-style', path: 'style.safetensors',
    metadata: { ss_output_name: 'my-style', ss_network_dim: '4' },
  }]);
  const checkpoints = (await getJson(`${url}/sdapi/v1/sd-models`)).body as unknown as { model_name: string }[];
  t.same(checkpoints.map((entry) => entry.model_name), ['tiny']);

  const txt2img = async (prompt: string) => {
    const response = await fetch(`${url}/sdapi/v1/txt2img`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, steps: 2, width: 64, height: 64, seed: 9 }),
    });
    return { status: response.status, body: await response.json() as { images?: string[]; detail?: unknown } };
  };
  const withLora = await txt2img('a barn <lora:style:0.9>');
  t.equal(withLora.status, 200);
  const parameters = readPngText(Buffer.from(withLora.body.images![0]!, 'base64')).parameters!;
  t.match(parameters, /^a barn <lora:style:0\.9>\n/);
  t.match(parameters, /, Lora hashes: "style: [0-9a-f]{12}"/);
  const plain = await txt2img('a barn ');
  t.not(plain.body.images![0], withLora.body.images![0]);

  const unknown = await txt2img('a barn <lora:missing:1>');
  t.not(unknown.status, 200);
  t.match(JSON.stringify(unknown.body.detail), /Unknown LoRA \\"missing\\".*available: style/);
});

t.test('without --models or --lora-dir, /sdapi/v1/loras is an empty list', async (t) => {
  const dir = outputTestdir(t);
  const { url } = await startTestServer(t, { modelPath: await writeTinyCheckpoint(dir), outputDir: path.join(dir, 'out') });
  t.same((await getJson(`${url}/sdapi/v1/loras`)).body, []);
});
