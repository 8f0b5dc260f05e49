// `sdnode serve --taesd FILE`: every model loads with the TAESD, so live previews are its full-size
// decode; a TAESD that cannot be loaded stops the start like a bad checkpoint.
import sharp from 'sharp';
import t from 'tap';

import { startServer } from '../server/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTaesd } from './fixtures/taesd.js';
import { outputTestdir, pollTask, postForm, startTestServer } from './server-helpers.js';

const dir = t.testdir();
const modelPath = await writeTinyCheckpoint(dir);
const taesd = await writeTaesd(dir);

t.test('with --taesd the preview of a running task is an image of its full size', async (t) => {
  const { url } = await startTestServer(t, { modelPath, taesd });
  const { body } = await postForm(`${url}/text-to-image`, { prompt: 'cat', steps: '150', width: '128', height: '64', seed: '1' });
  const resultUrl = `${url}${body.resultUrl}`;
  const [withPreview] = (await pollTask(resultUrl, (status) => status.previewUrl !== undefined)).slice(-1);
  const preview = await fetch(`${url}${withPreview?.previewUrl}`);
  t.equal(preview.status, 200);
  t.match(await sharp(Buffer.from(await preview.arrayBuffer())).metadata(), { format: 'png', width: 128, height: 64 });
  t.ok((await fetch(resultUrl, { method: 'DELETE' })).ok, 'the long task is cancelled');
});

t.test('a TAESD file that cannot be loaded stops the start', async (t) => {
  const missing = await writeTaesd(dir, { name: 'broken.safetensors', omit: 'decoder.layers.18.bias' });
  await t.rejects(startServer({ modelPath, taesd: missing, port: 0, threads: 1, backend: 'cpu', outputDir: outputTestdir(t), log: () => {} }),
    { code: 'ERR_MODEL_FORMAT', message: /decoder\.layers\.18\.bias/ });
});
