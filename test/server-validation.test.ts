// Bad input gets a JSON error that names the problem, and the server keeps serving.

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { FakeModel, getJson, pollTask, postForm, solidPng, startTestServer, type JsonResponse } from './server-helpers.js';

async function expectError(t: Test, response: Promise<JsonResponse>, status: number, code: string,
  message: RegExp): Promise<void> {
  const { status: actual, body } = await response;
  t.equal(actual, status, `status ${status}`);
  t.equal(body.error?.code, code, code);
  t.match(body.error?.message, message);
}

t.test('text-to-image without a prompt is a 400 that names prompt', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  await expectError(t, postForm(`${url}/text-to-image`, { steps: '4' }), 400, 'INVALID_PARAMETER', /prompt is required/);
  await expectError(t, postForm(`${url}/text-to-image`, { prompt: '   ' }), 400, 'INVALID_PARAMETER', /prompt is required/);
});

t.test('image-to-image without a prompt is a 400, inpaint without one is fine', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const image = { data: await solidPng(64, 64) };
  await expectError(t, postForm(`${url}/image-to-image`, {}, { image }), 400, 'INVALID_PARAMETER', /prompt/);
  const { status, body } = await postForm(`${url}/inpaint-image`, {}, { image, mask: { data: await solidPng(64, 64, 255) } });
  t.equal(status, 200);
  t.equal(body.status, 'QUEUED');
});

t.test('a number with trailing junk is a 400 that names the field', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const cases: [string, string][] = [['steps', '12abc'], ['iterations', '2.5'], ['seed', 'NaN'], ['width', '0x40'],
    ['cfg_scale', '7,5']];
  for (const [field, value] of cases) {
    await expectError(t, postForm(`${url}/text-to-image`, { prompt: 'cat', [field]: value }), 400, 'INVALID_PARAMETER',
      new RegExp(`for ${field} but received "${value.replace('.', '\\.')}"`));
  }
});

t.test('numbers out of range are 400s that state the range', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const cases: [string, string, RegExp][] = [
    ['iterations', '0', /between 1 and 16 for iterations/],
    ['iterations', '17', /between 1 and 16 for iterations/],
    ['steps', '0', /between 1 and 150 for steps/],
    ['seed', '-2', /for seed/],
    ['width', '4096', /between 64 and 2048 for width/],
    ['height', '100', /multiple of 8 for height but received 100/],
    ['cfg_scale', '31', /between 0 and 30 for cfg_scale/],
  ];
  for (const [field, value, message] of cases) {
    await expectError(t, postForm(`${url}/text-to-image`, { prompt: 'cat', [field]: value }), 400, 'INVALID_PARAMETER', message);
  }
  const image = { data: await solidPng(64, 64) };
  await expectError(t, postForm(`${url}/image-to-image`, { prompt: 'cat', strength: '1.5' }, { image }), 400,
    'INVALID_PARAMETER', /between 0 and 1 for strength/);
});

t.test('an unknown sampler or field is a 400 that lists what is accepted', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  await expectError(t, postForm(`${url}/text-to-image`, { prompt: 'cat', sampler: 'magic' }), 400, 'INVALID_PARAMETER',
    /Expected one of .*euler_a.* for sampler/);
  await expectError(t, postForm(`${url}/text-to-image`, { prompt: 'cat', negativePrompt: 'dog' }), 400,
    'INVALID_PARAMETER', /Unknown field negativePrompt .*negative_prompt/);
  await expectError(t, postForm(`${url}/text-to-image`, { prompt: 'cat', strength: '0.5' }), 400, 'INVALID_PARAMETER',
    /Unknown field strength for \/text-to-image/);
});

t.test('AUTOMATIC1111 sampler names are accepted, and a bad scheduler is a 400 naming scheduler', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const { status, body } = await postForm(`${url}/text-to-image`, { prompt: 'cat', sampler: 'DPM++ 2M Karras' });
  t.equal(status, 200);
  t.equal(body.status, 'QUEUED');
  await expectError(t, postForm(`${url}/text-to-image`, { prompt: 'cat', sampler: 'euler', scheduler: 'linear' }), 400,
    'INVALID_PARAMETER', /Expected one of discrete, karras, exponential, lcm, simple, sgm_uniform, flux, beta, smoothstep for scheduler/);
});

t.test('vae_tiling takes true/false, 1/0 or a checkbox\'s "on", reaches the library, and rejects anything else', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  for (const value of ['true', '1', 'on', 'false', '0']) {
    const { body } = await postForm(`${url}/text-to-image`, { prompt: 'cat', steps: '1', vae_tiling: value });
    await pollTask(`${url}${String(body.resultUrl)}`, (status) => status.status === 'COMPLETE');
  }
  const { body } = await postForm(`${url}/text-to-image`, { prompt: 'cat', steps: '1' });
  await pollTask(`${url}${String(body.resultUrl)}`, (status) => status.status === 'COMPLETE');
  t.same(model.calls.map((call) => call.vaeTiling), [true, true, true, false, false, undefined]);
  await expectError(t, postForm(`${url}/text-to-image`, { prompt: 'cat', vae_tiling: 'maybe' }), 400, 'INVALID_PARAMETER',
    /Expected true or false \(or 1 \/ 0\) for vae_tiling but received maybe/);
});

t.test('a field given twice is a 400', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const form = new FormData();
  form.append('prompt', 'cat');
  form.append('prompt', 'dog');
  const response = await fetch(`${url}/text-to-image`, { method: 'POST', body: form });
  t.equal(response.status, 400);
  t.match(await response.json(), { error: { code: 'INVALID_PARAMETER', message: /prompt was given more than once/ } });
});

t.test('an upload that is not an image is a 400 before anything is queued', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  await expectError(t, postForm(`${url}/image-to-image`, { prompt: 'cat' }, { image: { data: Buffer.from('not a png') } }),
    400, 'INVALID_IMAGE', /^image is not a PNG, JPEG or WebP image/);
  await expectError(t, postForm(`${url}/inpaint-image`, {}, {
    image: { data: await solidPng(64, 64) },
    mask: { data: Buffer.alloc(0) },
  }), 400, 'INVALID_IMAGE', /^mask is not a PNG/);
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>');
  await expectError(t, postForm(`${url}/image-to-image`, { prompt: 'cat' }, { image: { data: svg, type: 'image/svg+xml' } }),
    400, 'INVALID_IMAGE', /^image is not a PNG/);
  const gif = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } }).gif().toBuffer();
  await expectError(t, postForm(`${url}/image-to-image`, { prompt: 'cat' }, { image: { data: gif, type: 'image/gif' } }),
    400, 'INVALID_IMAGE', /^image is not a PNG/);
  t.same((await getJson(`${url}/health`)).body.queue, { waiting: 0, running: 0 });
  t.equal(model.calls.length, 0);
});

t.test('a missing image or mask is a 400 that shows the curl syntax', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  await expectError(t, postForm(`${url}/image-to-image`, { prompt: 'cat' }), 400, 'MISSING_UPLOAD', /image=@/);
  await expectError(t, postForm(`${url}/inpaint-image`, { prompt: 'cat' }, { image: { data: await solidPng(64, 64) } }),
    400, 'MISSING_UPLOAD', /needs the mask file/);
  await expectError(t, postForm(`${url}/image-to-image`, { prompt: 'cat', image: 'photo.png' }), 400, 'INVALID_PARAMETER',
    /image must be a file upload, e.g. curl -F image=@photo.png/);
});

t.test('a file where none belongs is a 400', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const data = await solidPng(64, 64);
  await expectError(t, postForm(`${url}/text-to-image`, { prompt: 'cat' }, { image: { data } }), 400, 'UNEXPECTED_FILE',
    /\/text-to-image takes no files/);
  await expectError(t, postForm(`${url}/image-to-image`, { prompt: 'cat' }, { image: { data }, mask: { data } }), 400,
    'UNEXPECTED_FILE', /Unexpected file mask/);
});

t.test('an upload over the limit is a 413 and the server keeps serving', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), maxUploadMb: 0.05 });
  const big = await solidPng(1, 1);
  const padded = Buffer.concat([big, Buffer.alloc(60 * 1024)]);
  await expectError(t, postForm(`${url}/image-to-image`, { prompt: 'cat' }, { image: { data: padded } }), 413,
    'UPLOAD_TOO_LARGE', /image is larger than the upload limit of 0\.05 MB \(--max-upload-mb\)/);
  const { status } = await postForm(`${url}/image-to-image`, { prompt: 'cat' }, { image: { data: big } });
  t.equal(status, 200);
});

t.test('a body that is not multipart is a 400 that says how to send one', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  await expectError(t, getJson(`${url}/text-to-image`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'cat' }),
  }), 400, 'EXPECTED_MULTIPART', /multipart\/form-data/);
  await expectError(t, getJson(`${url}/text-to-image`, {
    method: 'POST',
    headers: { 'content-type': 'multipart/form-data; boundary=xyz' },
    body: '--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\ncat',
  }), 400, 'INVALID_FORM', /Could not read the multipart form/);
  t.equal((await getJson(`${url}/health`)).status, 200);
});
