// POST /generate over real HTTP: the PNG answer, grids of several images with their seeds in
// X-Seeds, the JSON answer, seeds up to 2^53, FastAPI-shaped errors, and its OpenAPI entry.

import sharp from 'sharp';
import t from 'tap';

import { gridShape } from '../server/dialects/generate/mapping.js';
import { FakeModel, getJson, startTestServer } from './server-helpers.js';

function generate(url: string, body: unknown, accept?: string): Promise<Response> {
  return fetch(`${url}/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(accept !== undefined && { accept }) },
    body: JSON.stringify(body),
  });
}

const quick = { prompt: 'a photo of a cat', width: 64, height: 64, steps: 1 };

/** The grey of each tile of a grid of 64×64 images (the fake model paints each image seed % 256). */
async function tileGreys(png: Buffer, cols: number, rows: number): Promise<number[]> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const greys: number[] = [];
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) greys.push(data[((row * 64 + 32) * info.width + col * 64 + 32) * info.channels]!);
  }
  return greys;
}

t.test('answers the PNG by default, with its seed in X-Seeds', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const response = await generate(url, { ...quick, seed: 42, cfg_scale: 5 });
  t.equal(response.status, 200);
  t.equal(response.headers.get('content-type'), 'image/png');
  t.equal(response.headers.get('x-seeds'), '42');
  t.match(response.headers.get('vary'), /Accept/);
  const png = Buffer.from(await response.arrayBuffer());
  const { format, width, height } = await sharp(png).metadata();
  t.same([format, width, height], ['png', 64, 64]);
  t.match(model.calls, [{ method: 'textToImage', prompt: 'a photo of a cat', seed: 42, cfgScale: 5, steps: 1, width: 64 }]);
  t.equal((await generate(url, { ...quick, seed: 1 }, 'image/png')).status, 200, 'Accept: image/png');
  t.equal((await fetch(`${url}/generate/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(quick) })).status,
    200, 'a trailing slash');
});

t.test('several images come back as one grid, rows of round(√n), with every seed', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const three = await generate(url, { ...quick, seed: 7, number_of_images: 3 });
  t.equal(three.headers.get('x-seeds'), '7,8,9');
  const grid = Buffer.from(await three.arrayBuffer());
  t.same([(await sharp(grid).metadata()).width, (await sharp(grid).metadata()).height], [128, 128]);
  t.same(await tileGreys(grid, 2, 2), [7, 8, 9, 0], 'filled row by row; the empty place is black');
  const five = Buffer.from(await (await generate(url, { ...quick, seed: 20, number_of_images: 5 })).arrayBuffer());
  t.same(await tileGreys(five, 3, 2), [20, 21, 22, 23, 24, 0]);
  t.same([1, 2, 3, 4, 5, 6, 7, 9, 12, 16].map((n) => gridShape(n)), [
    { rows: 1, cols: 1 }, { rows: 1, cols: 2 }, { rows: 2, cols: 2 }, { rows: 2, cols: 2 }, { rows: 2, cols: 3 }, { rows: 2, cols: 3 },
    { rows: 3, cols: 3 }, { rows: 3, cols: 3 }, { rows: 3, cols: 4 }, { rows: 4, cols: 4 },
  ]);
});

t.test('Accept: application/json answers every image with its seed', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const response = await generate(url, { ...quick, seed: 100, number_of_images: 2 }, 'application/json');
  t.equal(response.status, 200);
  t.match(response.headers.get('content-type'), /application\/json/);
  const body = await response.json() as { images: { base64: string; seed: number }[] };
  t.same(body.images.map((image) => image.seed), [100, 101]);
  const { width, height } = await sharp(Buffer.from(body.images[1]!.base64, 'base64')).metadata();
  t.same([width, height], [64, 64]);
});

t.test('seeds up to 2^53 are taken modulo 2^32, and the seed used is reported', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  for (const [seed, used] of [[2 ** 53, 0], [2 ** 53 - 1, 2 ** 32 - 1], [2 ** 40 + 5, 5], [2 ** 32, 0], [123, 123]] as const) {
    const response = await generate(url, { ...quick, seed });
    t.equal(response.status, 200);
    t.equal(response.headers.get('x-seeds'), String(used), `${seed} → ${used}`);
    t.equal(model.calls.at(-1)?.seed, used);
  }
  const random = await generate(url, { ...quick, seed: -1 });
  const seed = Number(random.headers.get('x-seeds'));
  t.ok(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32, `a random seed is reported: ${seed}`);
});

t.test('mistakes answer FastAPI\'s shape, and the server keeps serving', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const cases: [string, Promise<Response>, number, unknown][] = [
    ['missing prompt', generate(url, { width: 64 }), 422, { detail: [{ loc: ['body', 'prompt'], msg: /prompt is required/ }] }],
    ['width not a multiple of 8', generate(url, { ...quick, width: 100 }), 422, { detail: [{ loc: ['body', 'width'] }] }],
    ['seed above 2^53', generate(url, { ...quick, seed: 2 ** 53 + 2 }), 422, { detail: [{ loc: ['body', 'seed'] }] }],
    ['fractional seed', generate(url, { ...quick, seed: 1.5 }), 422, { detail: [{ loc: ['body', 'seed'], msg: /integer/ }] }],
    ['too many images', generate(url, { ...quick, number_of_images: 17 }), 422, { detail: [{ loc: ['body', 'number_of_images'] }] }],
    ['JSON that does not parse', fetch(`${url}/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }),
      422, { detail: [{ msg: /not valid JSON/ }] }],
    ['an answer nobody can take', generate(url, quick, 'text/html'), 406, { detail: '/generate answers image/png or application/json' }],
    ['GET', fetch(`${url}/generate`), 405, { detail: /use POST/ }],
  ];
  for (const [name, pending, status, body] of cases) {
    const response = await pending;
    t.equal(response.status, status, `${name}: status`);
    t.match(await response.json(), body, name);
  }
  t.equal(model.calls.length, 0);
  t.equal((await generate(url, quick)).status, 200, 'a good request still works');
});

t.test('/docs documents both answers with their media types, and the request', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const document = (await getJson(`${url}/openapi.json`)).body as unknown as {
    paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> };
      responses: Record<string, { content?: Record<string, unknown> }> }>>;
  };
  const operation = document.paths['/generate']?.post;
  t.same(Object.keys(operation?.responses['200']?.content ?? {}), ['image/png', 'application/json']);
  const schema = operation?.requestBody.content['application/json']?.schema;
  t.same(schema?.required, ['prompt']);
  t.match(schema?.properties, { seed: { maximum: 2 ** 53 }, number_of_images: { maximum: 16 }, cfg_scale: { type: 'number' } });
});
