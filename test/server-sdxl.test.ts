// An SDXL checkpoint behind the server: one small request through the M1 dialect and one through
// AUTOMATIC1111's, on a tiny random SDXL checkpoint.
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { readPngText } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { outputTestdir, pollTask, postForm, startTestServer, type ApiBody } from './server-helpers.js';

const dir = outputTestdir(t);
const modelPath = await writeTinyCheckpoint(dir, { family: 'sdxl' });
const { url } = await startTestServer(t, { modelPath, outputDir: path.join(dir, 'output') });

t.test('curl -F prompt=… /text-to-image draws with an SDXL model', async (t) => {
  const queued = await postForm(`${url}/text-to-image`, { prompt: 'a lighthouse', steps: '2', seed: '7', width: '64', height: '64' });
  t.equal(queued.status, 200);
  const resultUrl = queued.body.resultUrl ?? '';
  const seen = await pollTask(`${url}${resultUrl}`, (body) => body.status === 'COMPLETE' || body.status === 'FAILED');
  const last = seen.at(-1) as ApiBody;
  t.same(last, { status: 'COMPLETE', resultUrl, imageUrls: [`${resultUrl}/1.png`] });
  const png = Buffer.from(await (await fetch(`${url}${resultUrl}/1.png`)).arrayBuffer());
  t.match(await sharp(png).metadata(), { format: 'png', width: 64, height: 64 });
});

t.test('POST /sdapi/v1/txt2img draws with an SDXL model and reports its parameters', async (t) => {
  const response = await fetch(`${url}/sdapi/v1/txt2img`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a lighthouse', negative_prompt: 'fog', steps: 2, seed: 7, width: 64, height: 64, cfg_scale: 6 }),
  });
  t.equal(response.status, 200);
  const body = await response.json() as { images: string[]; info: string };
  t.equal(body.images.length, 1);
  const png = Buffer.from(body.images[0]!, 'base64');
  t.match(await sharp(png).metadata(), { format: 'png', width: 64, height: 64 });
  t.match(readPngText(png).parameters, /^a lighthouse\nNegative prompt: fog\nSteps: 2, .*CFG scale: 6, Seed: 7, Size: 64x64/);
});

t.test('AUTOMATIC1111\'s refiner_checkpoint hands the steps from refiner_switch_at on to a checkpoint of the models folder', async (t) => {
  const modelsDir = path.join(dir, 'models');
  await writeTinyCheckpoint(modelsDir, { family: 'sdxl', name: 'base.safetensors' });
  await writeTinyCheckpoint(modelsDir, { family: 'sdxl-refiner', name: 'refiner.safetensors' });
  const server = await startTestServer(t, { modelsDir, outputDir: path.join(dir, 'output-refiner') });
  const draw = async (fields: Record<string, unknown>): Promise<{ status: number; png?: Buffer; body: unknown }> => {
    const response = await fetch(`${server.url}/sdapi/v1/txt2img`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a lighthouse', steps: 4, seed: 7, width: 64, height: 64,
        override_settings: { sd_model_checkpoint: 'base' }, ...fields }),
    });
    const body = await response.json() as { images?: string[] };
    return { status: response.status, body, ...(body.images && { png: Buffer.from(body.images[0]!, 'base64') }) };
  };
  const plain = await draw({});
  const refined = await draw({ refiner_checkpoint: 'refiner', refiner_switch_at: 0.5 });
  t.equal(refined.status, 200);
  t.match(readPngText(refined.png!).parameters, /, Refiner: refiner, Refiner switch at: 0\.5/);
  const pixels = (png: Buffer) => sharp(png).raw().toBuffer();
  t.notOk((await pixels(plain.png!)).equals(await pixels(refined.png!)), 'the refiner changed the image');
  const late = await draw({ refiner_checkpoint: 'refiner.safetensors', refiner_switch_at: 1 });
  t.ok((await pixels(plain.png!)).equals(await pixels(late.png!)), 'switch at 1: the refiner runs no step');
  const unknown = await draw({ refiner_checkpoint: 'nowhere' });
  t.not(unknown.status, 200);
  t.match(JSON.stringify(unknown.body), /nowhere/);
  const zero = await draw({ refiner_checkpoint: 'refiner', refiner_switch_at: 0 });
  t.equal(zero.status, 422);
  t.match(zero.body, { detail: [{ loc: ['body', 'refiner_switch_at'] }] });
});
