// AUTOMATIC1111's extras routes over real HTTP with a tiny random ESRGAN in the upscaler folder:
// /sdapi/v1/upscalers lists it, extra-single-image and extra-batch-images upscale by a factor or to a
// size in A1111's answer shapes, and unknown upscalers or face restoration are 422s naming the field.

import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { writeEsrgan } from './fixtures/esrgan.js';
import { FakeModel, getJson, outputTestdir, startTestServer } from './server-helpers.js';

interface Answer {
  status: number;
  body: { image?: string; images?: string[]; html_info?: string; detail?: { loc: (string | number)[]; msg: string }[] };
}

async function post(url: string, route: string, body: unknown): Promise<Answer> {
  const response = await fetch(`${url}/sdapi/v1/${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() as Answer['body'] };
}

async function picture(width: number, height: number): Promise<string> {
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) % 251;
  return (await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer()).toString('base64');
}

async function size(base64: string | undefined): Promise<[number | undefined, number | undefined, string | undefined]> {
  const meta = await sharp(Buffer.from(base64 ?? '', 'base64')).metadata();
  return [meta.width, meta.height, meta.format];
}

const dir = outputTestdir(t);
const models = path.join(dir, 'models');
await writeEsrgan(path.join(models, 'ESRGAN'), { name: 'tiny-x4.safetensors' });
const fake = new FakeModel();
const { url } = await startTestServer(t, { model: fake, modelsDir: models, outputDir: path.join(dir, 'out') });

t.test('/sdapi/v1/upscalers lists the built-in upscalers and the folder\'s files', async (t) => {
  const list = (await getJson(`${url}/sdapi/v1/upscalers`)).body as unknown as { name: string; model_path: string | null; scale: number }[];
  t.same(list.map((entry) => entry.name), ['None', 'Lanczos', 'Nearest', 'tiny-x4']);
  t.match(list[3], { model_name: 'ESRGAN', model_path: 'tiny-x4.safetensors', model_url: null, scale: 4 });
  const checkpoints = (await getJson(`${url}/sdapi/v1/sd-models`)).body as unknown as { model_name: string }[];
  t.notOk(checkpoints.some((model) => model.model_name.includes('tiny-x4')), 'the upscaler is not offered as a checkpoint');
});

t.test('extra-single-image upscales by upscaling_resize with an ESRGAN model', async (t) => {
  const answer = await post(url, 'extra-single-image', { image: await picture(12, 10), upscaler_1: 'tiny-x4', upscaling_resize: 4 });
  t.equal(answer.status, 200, JSON.stringify(answer.body));
  t.same(await size(answer.body.image), [48, 40, 'png']);
  t.match(answer.body.html_info, /Postprocess upscale by: 4, Postprocess upscaler: tiny-x4/);
});

t.test('extra-single-image upscales to a size, cropping the centre, and blends a second upscaler', async (t) => {
  const answer = await post(url, 'extra-single-image', {
    image: `data:image/png;base64,${await picture(12, 10)}`, resize_mode: 1, upscaling_resize_w: 30, upscaling_resize_h: 30,
    upscaler_1: 'tiny-x4', upscaler_2: 'Lanczos', extras_upscaler_2_visibility: 0.5,
  });
  t.equal(answer.status, 200, JSON.stringify(answer.body));
  t.same(await size(answer.body.image), [30, 30, 'png']);
});

t.test('extra-batch-images upscales every image in order', async (t) => {
  const answer = await post(url, 'extra-batch-images', {
    imageList: [{ data: await picture(8, 8), name: 'a.png' }, { data: await picture(6, 10), name: 'b.png' }],
    upscaler_1: 'tiny-x4', upscaling_resize: 2,
  });
  t.equal(answer.status, 200, JSON.stringify(answer.body));
  t.equal(answer.body.images?.length, 2);
  t.same(await size(answer.body.images?.[0]), [16, 16, 'png']);
  t.same(await size(answer.body.images?.[1]), [12, 20, 'png']);
});

t.test('None leaves the image as it is', async (t) => {
  const image = await picture(9, 7);
  const answer = await post(url, 'extra-single-image', { image, upscaler_1: 'None', upscaling_resize: 3 });
  t.equal(answer.status, 200);
  t.same(await size(answer.body.image), [9, 7, 'png']);
});

t.test('an unknown upscaler or face restoration is a 422 naming the field', async (t) => {
  let answer = await post(url, 'extra-single-image', { image: await picture(8, 8), upscaler_1: 'RealESRGAN_x4plus' });
  t.equal(answer.status, 422);
  t.match(JSON.stringify(answer.body), /upscaler_1.*unknown upscaler \\"RealESRGAN_x4plus\\"; available: None, Lanczos, Nearest, tiny-x4/);
  answer = await post(url, 'extra-single-image', { image: await picture(8, 8), upscaler_1: 'Lanczos', gfpgan_visibility: 0.5 });
  t.equal(answer.status, 422);
  t.match(JSON.stringify(answer.body), /gfpgan_visibility/);
  answer = await post(url, 'extra-single-image', { image: 'not base64!', upscaler_1: 'Lanczos' });
  t.equal(answer.status, 422);
  t.match(JSON.stringify(answer.body), /image/);
});

t.test('txt2img\'s hr_upscaler takes an ESRGAN file by name; an unknown name is a 422 listing them', async (t) => {
  const answer = await post(url, 'txt2img', { prompt: 'a barn', steps: 2, width: 64, height: 64, enable_hr: true, hr_upscaler: 'tiny-x4' });
  t.equal(answer.status, 200, JSON.stringify(answer.body));
  t.equal(fake.calls.at(-1)?.hires?.upscaler, path.join(models, 'ESRGAN', 'tiny-x4.safetensors'));
  const unknown = await post(url, 'txt2img', { prompt: 'a barn', enable_hr: true, hr_upscaler: '4x-UltraSharp' });
  t.equal(unknown.status, 422);
  t.match(JSON.stringify(unknown.body), /hr_upscaler.*Lanczos, None, tiny-x4 for hr_upscaler but received 4x-UltraSharp/);
});
