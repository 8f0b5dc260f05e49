// The Photoshop plug-in's API over real HTTP: /ping, /txt2img, /img2img and /masking with form and
// JSON bodies, its failure shape, nsfw with and without a safety checker, and a real inpainting run.

import { randomBytes } from 'node:crypto';

import sharp from 'sharp';
import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { loadTinySafetyCheckers } from './fixtures/safety-checker.js';
import { FakeModel, getJson, solidPng, startTestServer } from './server-helpers.js';

interface PhotoshopBody {
  status: string;
  message?: string;
  warning?: string;
  images?: { base64: string; seed: number; mimetype: string; nsfw: boolean | null }[];
}

interface Answer {
  status: number;
  body: PhotoshopBody;
}

async function answer(response: Response): Promise<Answer> {
  return { status: response.status, body: JSON.parse(await response.text()) as PhotoshopBody };
}

/** POSTs form fields, percent-encoded as URLSearchParams (and the plug-in) encode them. */
async function postForm(url: string, fields: Record<string, string | number>): Promise<Answer> {
  const body = new URLSearchParams(Object.entries(fields).map(([name, value]) => [name, String(value)]));
  return answer(await fetch(url, { method: 'POST', body }));
}

async function postJson(url: string, fields: Record<string, unknown>): Promise<Answer> {
  return answer(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields) }));
}

async function imageOf(base64: string): Promise<{ width?: number; height?: number; pixels: Buffer }> {
  const png = Buffer.from(base64, 'base64');
  const { width, height } = await sharp(png).metadata();
  return { width, height, pixels: await sharp(png).removeAlpha().raw().toBuffer() };
}

const quick = { prompt: 'a photo of a cat', num_inference_steps: 2 };
// Checkpoints live in the file's folder: a subtest's own folder is its server's output folder.
const fixtures = t.testdir();

t.test('GET /ping answers success; other methods there are refused in the plug-in\'s shape', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['k'] });
  const ping = await getJson(`${url}/ping`);
  t.same([ping.status, ping.body], [200, { status: 'success' }], 'open without a key');
  const post = await answer(await fetch(`${url}/ping`, { method: 'POST' }));
  t.equal(post.status, 405);
  t.same(post.body.status, 'failure');
  t.match(post.body.message, /use GET/);
});

t.test('/txt2img takes form fields and answers every image with its seed and nsfw', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const { status, body } = await postForm(`${url}/txt2img`, {
    ...quick, seed: 5, num_outputs: 2, width: 64, height: 96, guidance_scale: 6.5,
  });
  t.equal(status, 200);
  t.equal(body.status, 'success');
  t.same(body.images?.map(({ seed, mimetype, nsfw }) => ({ seed, mimetype, nsfw })), [
    { seed: 5, mimetype: 'image/png', nsfw: null }, { seed: 6, mimetype: 'image/png', nsfw: null },
  ]);
  t.match(body.warning, /nsfw is null: No safety checker is loaded \(start the server with --safety-checker FILE\)/);
  const image = await imageOf(body.images![0]!.base64);
  t.same([image.width, image.height], [64, 96]);
  t.match(model.calls, [
    { method: 'textToImage', prompt: 'a photo of a cat', steps: 2, cfgScale: 6.5, width: 64, height: 96, seed: 5 },
    { method: 'textToImage', seed: 6 },
  ]);
});

t.test('/txt2img takes the same fields as JSON, numbers as numbers', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const { status, body } = await postJson(`${url}/txt2img`, { ...quick, seed: 11, width: 64, height: 64, unknown_field: 'ignored' });
  t.equal(status, 200);
  t.same(body.images?.map((image) => image.seed), [11]);
  t.match(model.calls, [{ method: 'textToImage', seed: 11, width: 64, steps: 2 }]);
  const random = await postJson(`${url}/txt2img`, { ...quick, seed: -1, width: 64, height: 64 });
  const seed = random.body.images?.[0]?.seed;
  t.ok(Number.isInteger(seed) && seed! >= 0 && seed! < 2 ** 32, `a random seed is reported: ${seed}`);
});

t.test('/img2img answers at the size of init_image, scaling when a side is not a multiple of 8', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const init = (await solidPng(70, 64, 90)).toString('base64');
  const form = await postForm(`${url}/img2img`, { ...quick, seed: 3, init_image: init });
  t.equal(form.status, 200);
  const image = await imageOf(form.body.images![0]!.base64);
  t.same([image.width, image.height], [70, 64]);
  t.match(model.calls, [{ method: 'imageToImage', width: 64, height: 64, strength: 0.8, seed: 3 }]);

  const json = await postJson(`${url}/img2img`, { ...quick, init_image: `data:image/png;base64,${init}`, strength: 0.3 });
  t.equal(json.status, 200);
  t.match(model.calls[1], { method: 'imageToImage', strength: 0.3 });
});

t.test('/masking takes init_image and mask_image, in form or JSON bodies', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const fields = {
    ...quick, num_outputs: 3, init_image: (await solidPng(64, 64, 90)).toString('base64'), mask_image: (await solidPng(64, 64, 255)).toString('base64'),
  };
  const form = await postForm(`${url}/masking`, fields);
  t.equal(form.status, 200);
  t.equal(form.body.images?.length, 3);
  const json = await postJson(`${url}/masking`, { ...fields, num_outputs: 1, strength: 0.5 });
  t.equal(json.status, 200);
  t.match(model.calls.map(({ method, strength }) => ({ method, strength })), [
    { method: 'inpaint', strength: 1 }, { method: 'inpaint', strength: 1 }, { method: 'inpaint', strength: 1 },
    { method: 'inpaint', strength: 0.5 },
  ]);
  t.ok(model.calls.every((call) => (call as { mask?: unknown }).mask !== undefined), 'the mask reaches the library');
});

t.test('base64 sent without percent-encoding (a + read as a space) is still read', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  let init = '';
  for (let grey = 0; !init.includes('+'); grey++) init = (await solidPng(64, 64, grey)).toString('base64');
  const response = await fetch(`${url}/img2img`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `prompt=cat&num_inference_steps=1&init_image=${init}`,
  });
  t.equal(response.status, 200);
});

t.test('mistakes answer the failure shape with a 4xx status, and the server keeps serving', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model, maxUploadMb: 0.01 });
  const init = (await solidPng(64, 64, 90)).toString('base64');
  const cases: [string, Promise<Answer>, number, RegExp][] = [
    ['missing prompt', postForm(`${url}/txt2img`, { seed: 1 }), 400, /prompt is required/],
    ['missing init_image', postForm(`${url}/img2img`, quick), 400, /init_image is required/],
    ['missing mask_image', postJson(`${url}/masking`, { ...quick, init_image: init }), 400, /mask_image is required/],
    ['not base64', postForm(`${url}/img2img`, { ...quick, init_image: '!!not base64!!' }), 422, /init_image is not base64/],
    ['base64 of text', postForm(`${url}/img2img`, { ...quick, init_image: Buffer.from('hello, world').toString('base64') }), 400,
      /init_image is not a PNG, JPEG or WebP image/],
    ['mask of another size', postJson(`${url}/masking`, { ...quick, init_image: init, mask_image: (await solidPng(32, 32)).toString('base64') }),
      400, /mask_image must have the size of init_image \(64x64\) but is 32x32/],
    ['width not a multiple of 8', postForm(`${url}/txt2img`, { ...quick, width: 100 }), 400, /multiple of 8 for width/],
    ['num_outputs 0', postForm(`${url}/txt2img`, { ...quick, num_outputs: 0 }), 400, /num_outputs/],
    ['seed as words', postForm(`${url}/txt2img`, { ...quick, seed: 'seven' }), 400, /seed/],
    ['a nested JSON value', postJson(`${url}/txt2img`, { ...quick, width: [64] }), 400, /width must be text or a number/],
    ['JSON that does not parse', answer(await fetch(`${url}/txt2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":' })),
      400, /not valid JSON/],
    ['a multipart body', answer(await fetch(`${url}/txt2img`, { method: 'POST', body: new FormData() })), 415, /form fields/],
  ];
  const noisy = await sharp(randomBytes(64 * 64 * 3), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
  cases.push(['an image over --max-upload-mb', postForm(`${url}/img2img`, { ...quick, init_image: noisy.toString('base64') }), 413,
    /larger than the upload limit of 0.01 MB/]);
  for (const [name, pending, status, message] of cases) {
    const { status: got, body } = await pending;
    t.equal(got, status, `${name}: status`);
    t.same(Object.keys(body).sort(), ['message', 'status'], `${name}: shape`);
    t.equal(body.status, 'failure');
    t.match(body.message, message, name);
  }
  t.equal(model.calls.length, 0, 'nothing was generated');
  t.equal((await getJson(`${url}/ping`)).status, 200);
  t.equal((await postForm(`${url}/txt2img`, { ...quick, width: 64, height: 64 })).status, 200, 'a good request still works');
});

t.test('other methods on the generation paths are left to the rest of the server', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const get = await getJson(`${url}/txt2img`);
  t.equal(get.status, 422, 'GET /txt2img is the task API\'s');
  t.match(get.body, { detail: [{ loc: ['body', 'prompt'] }] }, 'in FastAPI\'s shape, naming the missing prompt');
  const put = await getJson(`${url}/txt2img`, { method: 'PUT' });
  t.equal(put.status, 404, 'not a 405 in the plug-in\'s shape');
  t.match(put.body, { error: { code: 'NOT_FOUND' } }, 'the server\'s own 404');

  const { url: photoshopOnly } = await startTestServer(t, { model: new FakeModel(), apis: ['photoshop'] });
  const alone = await getJson(`${photoshopOnly}/txt2img`);
  t.equal(alone.status, 404, 'without the task API, GET /txt2img is the server\'s 404');
  t.match(alone.body, { error: { code: 'NOT_FOUND' } });
});

t.test('under --api-prefix the plug-in\'s routes live below the prefix', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiPrefix: '/sd' });
  t.match(url, /\/sd$/, 'the server\'s URL ends with the prefix');
  t.same((await getJson(`${url}/ping`)).body, { status: 'success' });
  const made = await postForm(`${url}/txt2img`, { ...quick, width: 64, height: 64 });
  t.equal(made.status, 200);
  t.equal(made.body.images?.length, 1);
  t.equal((await getJson(`${url.replace(/\/sd$/, '')}/ping`)).status, 404, 'nothing at the root');
});

t.test('with API keys the generation routes need one, and say so in the plug-in\'s shape', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['secret'] });
  const refused = await postForm(`${url}/txt2img`, quick);
  t.equal(refused.status, 401);
  t.same(refused.body, { status: 'failure', message: 'This server needs an API key: send Authorization: Bearer <key>' });
  const allowed = await fetch(`${url}/txt2img`, {
    method: 'POST', headers: { authorization: 'Bearer secret' }, body: new URLSearchParams({ ...quick, num_inference_steps: '1' }),
  });
  t.equal(allowed.status, 200);
});

t.test('with a safety checker nsfw is its verdict, and a flagged image comes back black', async (t) => {
  const { always, never } = await loadTinySafetyCheckers(t, fixtures);
  const flagged = await startTestServer(t, { model: new FakeModel(), safetyChecker: always });
  const { status, body } = await postForm(`${flagged.url}/txt2img`, { ...quick, seed: 200, num_outputs: 2, width: 64, height: 64 });
  t.equal(status, 200);
  t.same(body.images?.map((image) => image.nsfw), [true, true]);
  t.equal(body.warning, undefined);
  t.ok((await imageOf(body.images![0]!.base64)).pixels.every((value) => value === 0), 'black');

  const clean = await startTestServer(t, { model: new FakeModel(), safetyChecker: never });
  const passed = await postForm(`${clean.url}/txt2img`, { ...quick, seed: 200, width: 64, height: 64 });
  t.same(passed.body.images?.map((image) => image.nsfw), [false]);
  t.ok((await imageOf(passed.body.images![0]!.base64)).pixels.every((value) => value === 200), 'the fake model\'s grey, untouched');
});

t.test('a 3-image /masking call on a real inpainting model keeps the unmasked pixels', async (t) => {
  const modelPath = await writeTinyCheckpoint(fixtures, { inpaint: true });
  const { url } = await startTestServer(t, { modelPath });
  const size = 64;
  const pattern = Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256));
  const init = await sharp(pattern, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
  const maskBytes = Buffer.from(Array.from({ length: size * size }, (_, i) => (i % size >= size / 2 ? 255 : 0)));
  const mask = await sharp(maskBytes, { raw: { width: size, height: size, channels: 1 } }).png().toBuffer();
  const { status, body } = await postForm(`${url}/masking`, {
    prompt: 'a red door', seed: 9, num_outputs: 3, num_inference_steps: 2, init_image: init.toString('base64'), mask_image: mask.toString('base64'),
  });
  t.equal(status, 200, body.message ?? '');
  t.same(body.images?.map((image) => [image.seed, image.nsfw]), [[9, null], [10, null], [11, null]]);
  const outputs = await Promise.all(body.images!.map((image) => imageOf(image.base64)));
  // The mask's edge is blurred (sigma 4): pixels 16 or more columns left of it are never touched.
  for (const [n, { pixels, width, height }] of outputs.entries()) {
    t.same([width, height], [size, size]);
    let kept = 0;
    let changed = 0;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const same = [0, 1, 2].every((c) => pixels[(y * size + x) * 3 + c] === pattern[(y * size + x) * 3 + c]);
        if (x < size / 2 - 16 && same) kept++;
        if (x >= size / 2 && !same) changed++;
      }
    }
    t.equal(kept, size * (size / 2 - 16), `image ${n + 1}: every unmasked pixel kept`);
    t.ok(changed > size * 8, `image ${n + 1}: the masked half is repainted (${changed} pixels)`);
  }
  t.notOk(outputs[0]!.pixels.equals(outputs[1]!.pixels), 'each image has its own seed');
});
