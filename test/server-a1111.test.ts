// AUTOMATIC1111's /sdapi/v1 over real HTTP: requests become the right jobs, answers carry
// A1111's images / parameters / info, and errors are FastAPI's 422 `detail` lists.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { loadTinySafetyCheckers } from './fixtures/safety-checker.js';
import { FakeModel, getJson, outputTestdir, solidPng, startTestServer, waitFor } from './server-helpers.js';

interface A1111Answer {
  status: number;
  body: {
    images?: string[];
    parameters?: Record<string, unknown>;
    info?: string;
    detail?: string | { loc: (string | number)[]; msg: string; type: string }[];
    [key: string]: unknown;
  };
}

async function post(url: string, route: string, body: unknown, headers: Record<string, string> = {}): Promise<A1111Answer> {
  const response = await fetch(`${url}/sdapi/v1/${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() as A1111Answer['body'] };
}

function info(answer: A1111Answer): Record<string, unknown> {
  return JSON.parse(answer.body.info ?? '{}') as Record<string, unknown>;
}

async function base64Png(width: number, height: number, gray = 128): Promise<string> {
  return (await solidPng(width, height, gray)).toString('base64');
}

t.test('txt2img with batch_size 2 and n_iter 2 makes 4 images with consecutive seeds and their infotexts', async (t) => {
  const dir = outputTestdir(t);
  const modelPath = await writeTinyCheckpoint(dir);
  const { url } = await startTestServer(t, { modelPath, outputDir: path.join(dir, 'out') });
  const answer = await post(url, 'txt2img', { prompt: 'a barn', seed: 100, batch_size: 2, n_iter: 2, steps: 2, width: 64, height: 64 });
  t.equal(answer.status, 200);
  t.equal(answer.body.images?.length, 4);
  const details = info(answer);
  t.same(details.all_seeds, [100, 101, 102, 103]);
  t.match(details, { prompt: 'a barn', seed: 100, width: 64, height: 64, steps: 2, batch_size: 2, sd_model_name: /^tiny/, sd_model_hash: /^[0-9a-f]{10}$/ });
  const infotexts = details.infotexts as string[];
  for (const [i, image] of (answer.body.images ?? []).entries()) {
    const png = Buffer.from(image, 'base64');
    t.match(await sharp(png).metadata(), { format: 'png', width: 64, height: 64 });
    const chunk = (await import('../lib/index.js')).readPngText(png).parameters;
    t.equal(infotexts[i], chunk, `infotext ${i} is the PNG's parameters chunk`);
    t.match(chunk, new RegExp(`Seed: ${100 + i}`));
  }
  t.match(answer.body.parameters, { prompt: 'a barn', steps: 2, cfg_scale: 7, sampler_name: null, n_iter: 2, enable_hr: false });
});

t.test('A1111 defaults, sampler names, schedulers, clip skip and ignored fields', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const plain = await post(url, 'txt2img', { prompt: 'x', width: 64, height: 64 });
  t.match(model.calls[0], { steps: 50, sampler: 'euler_a', cfgScale: 7 });
  t.same(info(plain).sdnode_ignored, []);
  await post(url, 'txt2img', { prompt: 'x', steps: 2, sampler_name: 'DPM++ 2M Karras', width: 64, height: 64 });
  t.match(model.calls[1], { sampler: 'dpm++2m', scheduler: 'karras' });
  await post(url, 'txt2img', { prompt: 'x', steps: 2, sampler_name: 'Euler', scheduler: 'Exponential', width: 64, height: 64,
    override_settings: { CLIP_stop_at_last_layers: 2 } });
  t.match(model.calls[2], { sampler: 'euler', scheduler: 'exponential', clipSkip: 2 });
  // Forge's schedules, by label or name.
  await post(url, 'txt2img', { prompt: 'x', steps: 2, sampler_name: 'Euler', scheduler: 'Beta', width: 64, height: 64 });
  t.match(model.calls[3], { sampler: 'euler', scheduler: 'beta' });
  await post(url, 'txt2img', { prompt: 'x', steps: 2, sampler_name: 'Euler', scheduler: 'simple', width: 64, height: 64 });
  t.match(model.calls[4], { scheduler: 'simple' });
  const odd = await post(url, 'txt2img', { prompt: 'x', steps: 1, width: 64, height: 64, restore_faces: true, styles: ['s'],
    alwayson_scripts: { controlnet: {}, adetailer: { args: [] } }, s_churn: 0.5 });
  t.equal(odd.status, 200);
  t.same([...(info(odd).sdnode_ignored as string[])].sort(), ['alwayson_scripts.adetailer', 'restore_faces', 's_churn', 'styles']);
  const refiner = await post(url, 'txt2img', { prompt: 'x', refiner_checkpoint: 'sdxl-refiner', refiner_switch_at: 1.5 });
  t.equal(refiner.status, 422);
  t.match(refiner.body.detail, [{ loc: ['body', 'refiner_switch_at'], msg: /above 0 and at most 1/ }]);
});

t.test('hires fix, variation seeds, seed resize and tiling reach the library', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const answer = await post(url, 'txt2img', {
    prompt: 'x', steps: 2, width: 64, height: 64, batch_size: 2, seed: 3, subseed: 50, subseed_strength: 0.3,
    seed_resize_from_w: 128, seed_resize_from_h: 64, tiling: true,
    enable_hr: true, hr_scale: 2, hr_upscaler: 'latent (bicubic)', hr_second_pass_steps: 3, denoising_strength: 0.5, hr_prompt: 'detail',
  });
  t.equal(answer.status, 200);
  t.match(model.calls, [
    { subseed: 50, subseedStrength: 0.3, seedResizeFromWidth: 128, seedResizeFromHeight: 64, tiling: true,
      hires: { scale: 2, upscaler: 'Latent (bicubic)', steps: 3, denoisingStrength: 0.5, prompt: 'detail' } },
    { seed: 4, subseed: 51 },
  ]);
  t.same(info(answer).all_subseeds, [50, 51]);
  await post(url, 'txt2img', { prompt: 'x', steps: 1, width: 64, height: 64, enable_hr: true, hr_resize_x: 96, hr_upscaler: 'None' });
  t.match(model.calls[2]?.hires, { width: 96, upscaler: 'Lanczos' });
  t.notOk(model.calls[2]?.hires && 'scale' in model.calls[2].hires, 'sized by hr_resize_x, not scaled');
  const bad = await post(url, 'txt2img', { prompt: 'x', enable_hr: true, hr_upscaler: 'R-ESRGAN 4x+' });
  t.match(bad, { status: 422, body: { detail: [{ loc: ['body', 'hr_upscaler'], msg: /Latent.*Lanczos/ }] } });
});

t.test('info.nsfw flags each image with a safety checker, keeping its pixels; without one it is null with a warning', async (t) => {
  const fixtures = outputTestdir(t);
  const { always } = await loadTinySafetyCheckers(t, fixtures);
  const request = { prompt: 'a barn', seed: 60, batch_size: 2, steps: 1, width: 64, height: 64 };
  const flagged = await startTestServer(t, { model: new FakeModel(), safetyChecker: always, outputDir: path.join(fixtures, 'flagged') });
  const checked = await post(flagged.url, 'txt2img', request);
  t.equal(checked.status, 200);
  t.match(info(checked), { nsfw: [true, true], sdnode_warnings: [] });
  const pixels = await sharp(Buffer.from(checked.body.images?.[1] ?? '', 'base64')).removeAlpha().raw().toBuffer();
  t.ok(pixels.every((value) => value === 61), 'A1111 keeps a flagged image: only info says so');

  const { url } = await startTestServer(t, { model: new FakeModel(), outputDir: path.join(fixtures, 'unchecked') });
  const unchecked = await post(url, 'img2img', { ...request, batch_size: 1, init_images: [await base64Png(64, 64)] });
  t.equal(unchecked.status, 200);
  t.match(info(unchecked), {
    nsfw: [null],
    sdnode_warnings: [/^nsfw is null: No safety checker is loaded \(start the server with --safety-checker FILE\)/],
  });
});

t.test('bad input is a 422 with a detail list naming the field, and the server keeps serving', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const cases: [string, unknown, string, RegExp][] = [
    ['txt2img', { prompt: 'x', steps: 0 }, 'steps', /steps/],
    ['txt2img', { prompt: 'x', width: -64 }, 'width', /width/],
    ['txt2img', { prompt: 'x', width: 100 }, 'width', /multiple of 8 for width/],
    ['txt2img', { prompt: 'x', sampler_name: 'Magic' }, 'sampler_name', /for sampler_name/],
    ['txt2img', { prompt: 'x', scheduler: 'Polyexponential' }, 'scheduler', /Automatic, Uniform, Karras, Exponential, SGM Uniform, Simple, Beta/],
    ['img2img', { prompt: 'x', init_images: ['***'] }, 'init_images', /not base64 image data/],
    ['img2img', { prompt: 'x', init_images: [Buffer.from('not an image').toString('base64')] }, 'init_images', /not a PNG, JPEG or WebP/],
    ['img2img', { prompt: 'x', init_images: [] }, 'init_images', /init_images/],
  ];
  for (const [route, body, field, message] of cases) {
    const answer = await post(url, route, body);
    t.equal(answer.status, 422, `${route} ${field}`);
    t.match(answer.body.detail, [{ loc: ['body', field], msg: message, type: 'value_error' }], `${route} ${field}`);
  }
  const broken = await fetch(`${url}/sdapi/v1/txt2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
  t.equal(broken.status, 422);
  t.equal(model.calls.length, 0, 'nothing ran');
  t.equal((await post(url, 'txt2img', { prompt: 'fine', steps: 1, width: 64, height: 64 })).status, 200);
});

t.test('img2img: data-URL images, resize modes, masks, fill and inpaint-only-masked', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model });
  const image = `data:image/png;base64,${await base64Png(128, 64, 200)}`;
  const plain = await post(url, 'img2img', { prompt: 'x', init_images: [image], steps: 1, width: 64, height: 64, denoising_strength: 0.4 });
  t.equal(plain.status, 200);
  t.match(model.calls[0], { method: 'imageToImage', strength: 0.4, width: 64, height: 64 });
  t.equal(plain.body.parameters?.init_images, null, 'init images are not echoed back');

  // A mask whose white square sits in the top-left corner.
  const maskRaw = Buffer.alloc(64 * 64);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) maskRaw[y * 64 + x] = 255;
  const mask = (await sharp(maskRaw, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer()).toString('base64');
  const photo = await base64Png(64, 64, 200);
  const whole = await post(url, 'img2img', { prompt: 'x', init_images: [photo], mask, steps: 1, width: 64, height: 64,
    inpaint_full_res: false, inpainting_fill: 1, mask_blur: 0, seed: 7 });
  t.equal(whole.status, 200);
  t.match(model.calls[1], { method: 'inpaint', maskBlur: 0 });
  const onlyMasked = await post(url, 'img2img', { prompt: 'x', init_images: [photo], mask, steps: 1, width: 64, height: 64,
    inpaint_full_res: true, inpaint_full_res_padding: 4, inpainting_fill: 1, mask_blur: 0, seed: 7 });
  const pixels = await sharp(Buffer.from(onlyMasked.body.images?.[0] ?? '', 'base64')).greyscale().raw().toBuffer();
  t.equal(pixels[63 * 64 + 63], 200, 'far from the mask the original is kept');
  t.equal(pixels[0], 7, 'inside the mask the model\'s pixels are pasted');
  const fill = await post(url, 'img2img', { prompt: 'x', init_images: [photo], mask, steps: 1, width: 64, height: 64, inpainting_fill: 0 });
  t.equal(fill.status, 200);
  t.notOk('maskedStart' in model.calls[1]!, 'inpainting_fill 1 starts from the original latent');
  for (const [fillValue, maskedStart] of [[2, 'noise'], [3, 'zeros']] as const) {
    const answer = await post(url, 'img2img', { prompt: 'x', init_images: [photo], mask, steps: 1, width: 64, height: 64, inpainting_fill: fillValue });
    t.equal(answer.status, 200, `inpainting_fill ${fillValue}`);
    t.match(model.calls.at(-1), { method: 'inpaint', maskedStart }, `inpainting_fill ${fillValue} asks for ${maskedStart}`);
  }
});

t.test('inpainting_fill 2 (latent noise) and 3 (latent nothing) repaint the mask differently and keep the rest', async (t) => {
  const dir = outputTestdir(t);
  const { url } = await startTestServer(t, { modelPath: await writeTinyCheckpoint(dir), outputDir: path.join(dir, 'out') });
  const size = 64;
  const photoRaw = Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => (i * 37) % 256));
  const photo = (await sharp(photoRaw, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer()).toString('base64');
  const maskRaw = Buffer.alloc(size * size);
  for (let i = 0; i < maskRaw.length; i++) maskRaw[i] = i % size < size / 2 ? 255 : 0;
  const mask = (await sharp(maskRaw, { raw: { width: size, height: size, channels: 1 } }).png().toBuffer()).toString('base64');
  const inpaint = async (fillValue: number): Promise<Buffer> => {
    const answer = await post(url, 'img2img', {
      prompt: 'a stone tower', init_images: [photo], mask, inpainting_fill: fillValue, mask_blur: 0, steps: 3, width: size,
      height: size, seed: 11, denoising_strength: 0.8,
    });
    t.equal(answer.status, 200, `inpainting_fill ${fillValue}`);
    const png = Buffer.from(answer.body.images?.[0] ?? '', 'base64');
    if (fillValue >= 2) {
      t.match(info(answer).infotexts, [new RegExp(`Masked content: ${fillValue === 2 ? 'latent noise' : 'latent nothing'}`)]);
    }
    return sharp(png).raw().toBuffer();
  };
  const original = await inpaint(1);
  for (const fillValue of [2, 3]) {
    const out = await inpaint(fillValue);
    let keptDiffering = 0;
    let maskedDiffering = 0;
    for (let i = 0; i < out.length; i++) {
      if (Math.floor(i / 3) % size < size / 2) maskedDiffering += out[i] !== original[i] ? 1 : 0;
      else keptDiffering += out[i] !== photoRaw[i] ? 1 : 0;
    }
    t.equal(keptDiffering, 0, `inpainting_fill ${fillValue}: every unmasked byte is the input's`);
    t.ok(maskedDiffering > (size * size * 3) / 8, `inpainting_fill ${fillValue}: the masked half differs from fill 1 (${maskedDiffering} bytes)`);
  }
});

t.test('progress shows the sampling step rising with a preview; interrupt answers with the finished images', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  t.match((await getJson(`${url}/sdapi/v1/progress`)).body, { progress: 0, state: { job_count: 0 } });
  const pending = post(url, 'txt2img', { prompt: 'x', steps: 4, batch_size: 3, width: 64, height: 64 });
  const progress = async () => (await getJson(`${url}/sdapi/v1/progress`)).body as unknown as {
    progress: number; current_image: string | null; state: { sampling_step: number; sampling_steps: number; job_no: number; job_count: number };
  };
  await waitFor(() => model.calls.length === 1);
  model.release();
  await waitFor(async () => (await progress()).state.sampling_step === 1);
  model.release();
  await waitFor(async () => (await progress()).state.sampling_step === 2);
  const midway = await progress();
  t.match(midway.state, { sampling_step: 2, sampling_steps: 4, job_no: 0, job_count: 3 });
  t.ok(midway.progress > 0 && midway.progress < 1, `progress ${midway.progress}`);
  t.match(await sharp(Buffer.from(midway.current_image ?? '', 'base64')).metadata(), { format: 'png' }, 'a decodable preview');
  t.equal(((await getJson(`${url}/sdapi/v1/progress?skip_current_image=true`)).body as { current_image: unknown }).current_image, null);
  model.release();
  await waitFor(async () => (await progress()).state.sampling_step === 3);
  model.release();
  await waitFor(async () => (await progress()).state.job_no === 1);
  t.equal((await post(url, 'interrupt', {})).status, 200);
  const answer = await pending;
  t.equal(answer.status, 200);
  t.equal(answer.body.images?.length, 1, 'the image finished before the interrupt');
});

t.test('skip drops the image being made and goes on with the next', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model });
  const pending = post(url, 'txt2img', { prompt: 'x', steps: 2, batch_size: 2, width: 64, height: 64, seed: 10 });
  await waitFor(() => model.calls.length === 1);
  t.equal((await post(url, 'skip', {})).status, 200);
  model.release({ open: true });
  const answer = await pending;
  t.equal(answer.body.images?.length, 1);
  t.same(model.calls.map((call) => call.seed), [10, 11]);
});

t.test('options switch the default checkpoint; override_settings switch it for one request; sd-models lists hashes', async (t) => {
  const dir = outputTestdir(t);
  const modelsDir = path.join(dir, 'models');
  await mkdir(modelsDir, { recursive: true });
  await writeFile(path.join(modelsDir, 'a.safetensors'), 'a');
  await writeFile(path.join(modelsDir, 'b.safetensors'), 'b');
  const loaded: FakeModel[] = [];
  const loadModel = async (checkpointPath: string) => {
    const model = new FakeModel({ path: checkpointPath });
    loaded.push(model);
    return model;
  };
  const { url } = await startTestServer(t, { modelsDir, loadModel, maxLoaded: 2, outputDir: path.join(dir, 'out') });
  const models = (await getJson(`${url}/sdapi/v1/sd-models`)).body as unknown as { title: string; model_name: string; hash: string; sha256: string }[];
  t.same(models.map((model) => model.model_name), ['a', 'b']);
  t.match(models[0], { title: /^a\.safetensors \[[0-9a-f]{10}\]$/, sha256: /^[0-9a-f]{64}$/ });
  t.match((await getJson(`${url}/sdapi/v1/options`)).body, { sd_model_checkpoint: /^a\.safetensors/, CLIP_stop_at_last_layers: 1 });
  t.equal((await post(url, 'options', { sd_model_checkpoint: models[1]?.title })).status, 200);
  t.match((await getJson(`${url}/sdapi/v1/options`)).body, { sd_model_checkpoint: /^b\.safetensors/ });
  await post(url, 'txt2img', { prompt: 'default', steps: 1, width: 64, height: 64 });
  const override = await post(url, 'txt2img', { prompt: 'override', steps: 1, width: 64, height: 64,
    override_settings: { sd_model_checkpoint: 'a' } });
  t.equal(info(override).sd_model_name, 'a');
  t.same(loaded.map((model) => [path.basename(model.path), model.calls.map((call) => call.prompt)]),
    [['b.safetensors', ['default']], ['a.safetensors', ['override']]]);
  const unknown = await post(url, 'options', { sd_model_checkpoint: 'zzz' });
  t.equal(unknown.status, 404);
});

t.test('the listing routes answer A1111\'s shapes', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const samplers = (await getJson(`${url}/sdapi/v1/samplers`)).body as unknown as { name: string; aliases: string[] }[];
  t.ok(samplers.some((sampler) => sampler.name === 'DPM++ 2M' && sampler.aliases.includes('dpm++2m')));
  t.same(((await getJson(`${url}/sdapi/v1/schedulers`)).body as unknown as { name: string }[]).map((s) => s.name), ['automatic', 'uniform', 'karras', 'exponential', 'sgm_uniform', 'simple', 'beta']);
  t.match((await getJson(`${url}/sdapi/v1/latent-upscale-modes`)).body, [{ name: 'Latent' }]);
  t.match((await getJson(`${url}/sdapi/v1/upscalers`)).body, [{ name: 'None' }, { name: 'Lanczos' }, { name: 'Nearest' }]);
  for (const route of ['sd-vae', 'loras', 'prompt-styles', 'face-restorers']) t.same((await getJson(`${url}/sdapi/v1/${route}`)).body, [], route);
  t.same((await getJson(`${url}/sdapi/v1/embeddings`)).body, { loaded: {}, skipped: {} });
  t.match((await getJson(`${url}/sdapi/v1/memory`)).body, { ram: { total: Number }, cuda: {} });
  t.equal((await post(url, 'refresh-checkpoints', {})).status, 200);
  t.equal((await getJson(`${url}/sdapi/v1/nothing`)).status, 404);
});

t.test('png-info reads the parameters chunk back', async (t) => {
  const { insertPngText } = await import('../lib/index.js');
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const png = insertPngText(await solidPng(8, 8), 'parameters', 'a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 8x8, Model: m');
  const answer = await post(url, 'png-info', { image: `data:image/png;base64,${png.toString('base64')}` });
  t.equal(answer.status, 200);
  t.match(answer.body, {
    info: /^a cat\nNegative prompt: dog\nSteps: 20/,
    parameters: { Prompt: 'a cat', 'Negative prompt': 'dog', Steps: '20', Sampler: 'Euler a', Seed: '42', Size: '8x8' },
  });
});

t.test('--api-auth asks for basic auth on /sdapi; bearer keys work there too', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiAuth: ['alice:wonder'], apiKeys: ['key'] });
  const denied = await getJson(`${url}/sdapi/v1/samplers`);
  t.equal(denied.status, 401);
  t.equal(denied.headers.get('www-authenticate'), 'Basic');
  t.match(denied.body, { detail: 'Incorrect username or password' });
  const basic = `Basic ${Buffer.from('alice:wonder').toString('base64')}`;
  t.equal((await getJson(`${url}/sdapi/v1/samplers`, { headers: { authorization: basic } })).status, 200);
  t.equal((await getJson(`${url}/sdapi/v1/samplers`, { headers: { authorization: `Basic ${Buffer.from('alice:x').toString('base64')}` } })).status, 401);
  t.equal((await getJson(`${url}/sdapi/v1/samplers`, { headers: { authorization: 'Bearer key' } })).status, 200);
});
