// FLUX.1 through the dialects' own defaults and checks: fields a request leaves out take the
// model family's defaults (and the answers report them), sizes that are not multiples of 16 are
// each dialect's 4xx naming the field, and a missing T5 tokenizer is a client-visible setup error.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { readPngText } from '../lib/index.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { getJson, pollTask, postForm, startTestServer } from './server-helpers.js';

const dir = t.testdir();
const schnell = await writeTinyFlux(path.join(dir, 'schnell'));
const dev = await writeTinyFlux(path.join(dir, 'dev'), { variant: 'flux-dev' });

// A models folder with both, as folders of components under their download names.
const models = path.join(dir, 'models');
for (const [name, files] of [['schnell', schnell], ['dev', dev]] as const) {
  const folder = path.join(models, name);
  await mkdir(path.join(folder, 'tokenizer_2'), { recursive: true });
  const { t5Tokenizer, ...components } = files;
  await Promise.all(Object.values(components).map((file) => copyFile(file, path.join(folder, path.basename(file)))));
  await copyFile(t5Tokenizer, path.join(folder, 'tokenizer_2', 'tokenizer.json'));
}

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

t.test('A1111 requests without sampler, steps or cfg get the FLUX.1 family\'s and report them', async (t) => {
  const { url } = await startTestServer(t, { modelsDir: models });
  const txt2img = await postJson(`${url}/sdapi/v1/txt2img`, {
    prompt: 'a cat', width: 64, height: 64, seed: 1, override_settings: { sd_model_checkpoint: 'schnell' },
  });
  t.equal(txt2img.status, 200, JSON.stringify(txt2img.body.detail));
  t.match(txt2img.body.parameters, { sampler_name: 'Euler', steps: 4, cfg_scale: 1, width: 64, height: 64 });
  const info = JSON.parse(txt2img.body.info as string) as { sampler_name: string; steps: number; cfg_scale: number; infotexts: string[] };
  t.match(info, { sampler_name: 'Euler', steps: 4, cfg_scale: 1 });
  t.match(info.infotexts[0], /Steps: 4, Sampler: Euler, Schedule type: [^,]*, CFG scale: 1,/);

  // What the client gives stays; Forge's distilled_cfg_scale is FLUX.1 dev's guidance.
  const given = await postJson(`${url}/sdapi/v1/txt2img`, {
    prompt: 'a cat', width: 64, height: 64, seed: 1, steps: 2, distilled_cfg_scale: 5, override_settings: { sd_model_checkpoint: 'dev' },
  });
  t.equal(given.status, 200, JSON.stringify(given.body.detail));
  const devInfo = JSON.parse(given.body.info as string) as { steps: number; cfg_scale: number; infotexts: string[] };
  t.match(devInfo, { steps: 2, cfg_scale: 1 });
  t.match(devInfo.infotexts[0], /Distilled CFG Scale: 5/);
});

t.test('A1111 refuses a width that is not a multiple of 16 on a flow model with a 422 naming it', async (t) => {
  const { url } = await startTestServer(t, { modelsDir: models });
  const refused = await postJson(`${url}/sdapi/v1/txt2img`, {
    prompt: 'a cat', width: 72, height: 64, override_settings: { sd_model_checkpoint: 'schnell' },
  });
  t.equal(refused.status, 422);
  t.match(refused.body.detail, [{ loc: ['body', 'width'], msg: /multiple of 16/ }]);
  t.same(await getJson(`${url}/sdapi/v1/progress`).then((r) => (r.body as { state: { job_count: number } }).state.job_count), 0,
    'no job was made');
});

t.test('a task for FLUX.1 dev without guidance runs at cfg 1 and takes distilled_guidance as its guidance', async (t) => {
  const { url } = await startTestServer(t, { modelsDir: models });
  const queued = await postJson(`${url}/task`, {
    task_type: 'txt2img', model: 'dev', prompt: 'a fox', steps: 2, width: 64, height: 64, seed: 9, distilled_guidance: 5,
  });
  t.equal(queued.status, 200, JSON.stringify(queued.body));
  const [finished] = (await pollTask(`${url}/task/${String(queued.body.task_id)}`,
    (body) => ['finished', 'aborted'].includes(String((body as { event_type?: string }).event_type)))).slice(-1) as
    { event_type: string; blob_url: string; parameters_used: Record<string, unknown> }[];
  t.match(finished, { event_type: 'finished', parameters_used: { guidance: 1, distilled_guidance: 5, scheduler: 'euler', steps: 2 } });
  const png = Buffer.from(await (await fetch(finished!.blob_url)).arrayBuffer());
  t.match(readPngText(png).parameters, /CFG scale: 1, .*Distilled CFG Scale: 5/);

  const refused = await postJson(`${url}/task`, { task_type: 'txt2img', model: 'dev', prompt: 'a fox', width: 64, height: 72 });
  t.equal(refused.status, 422);
  t.match(refused.body.detail, [{ loc: ['body', 'height'], msg: /multiple of 16/ }]);
});

t.test('every dialect refuses a size that is not a multiple of 16 on a flow model in its own shape', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: schnell });
  const m1 = await postForm(`${url}/text-to-image`, { prompt: 'a cat', width: '72', height: '64' });
  t.equal(m1.status, 400);
  t.match(m1.body, { error: { code: 'INVALID_PARAMETER', message: /multiple of 16 for width/ } });

  const openai = await postJson(`${url}/v1/images/generations`, { model: 'flux1-schnell', prompt: 'a cat', size: '72x64' });
  t.equal(openai.status, 400);
  t.match(openai.body, { error: { type: 'invalid_request_error', param: 'size', message: /multiple of 16/ } });

  const generate = await postJson(`${url}/generate`, { prompt: 'a cat', width: 64, height: 72 });
  t.equal(generate.status, 422);
  t.match(generate.body.detail, [{ loc: ['body', 'height'], msg: /multiple of 16/ }]);

  const photoshop = await fetch(`${url}/txt2img`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ prompt: 'a cat', width: '72', height: '64' }),
  });
  t.equal(photoshop.status, 400);
  t.match(await photoshop.json(), { status: 'failure', message: /multiple of 16 for width/ });
});

t.test('a prompt without a T5 tokenizer is a 4xx setup error in every dialect, saying which file to get', async (t) => {
  const { t5Tokenizer: _unused, ...withoutTokenizer } = schnell;
  const { url } = await startTestServer(t, { modelComponents: withoutTokenizer });
  const openai = await postJson(`${url}/v1/images/generations`, { model: 'flux1-schnell', prompt: 'a cat', size: '64x64' });
  t.equal(openai.status, 400, 'not retried by client SDKs, as a 5xx would be');
  t.match(openai.body, { error: { type: 'invalid_request_error', code: 'err_tokenizer_missing', param: 'prompt', message: /--t5-tokenizer/ } });

  const a1111 = await postJson(`${url}/sdapi/v1/txt2img`, { prompt: 'a cat', width: 64, height: 64 });
  t.equal(a1111.status, 422);
  t.match(a1111.body.detail, [{ loc: ['body', 'prompt'], msg: /spiece\.model or tokenizer\.json/ }]);

  const generate = await postJson(`${url}/generate`, { prompt: 'a cat', width: 64, height: 64 });
  t.equal(generate.status, 422);
  t.match(generate.body.detail, [{ loc: ['body', 'prompt'], msg: /--t5-tokenizer/ }]);
});

t.test('OpenAI presets and Photoshop requests without a cfg scale get the FLUX.1 family\'s', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: schnell });
  // dall-e-2's preset is "Euler a" at cfg 7, a UNet choice; FLUX.1 runs euler at cfg 1 with the preset's 20 steps.
  const openai = await postJson(`${url}/v1/images/generations`, { model: 'dall-e-2', prompt: 'a cat', size: '64x64', response_format: 'b64_json' });
  t.equal(openai.status, 200, JSON.stringify(openai.body.error));
  const [image] = openai.body.data as { b64_json: string }[];
  t.match(readPngText(Buffer.from(image!.b64_json, 'base64')).parameters, /Steps: 20, Sampler: Euler, .*CFG scale: 1,/);

  const photoshop = await fetch(`${url}/txt2img`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ prompt: 'a cat', width: '64', height: '64', num_inference_steps: '2' }),
  });
  t.equal(photoshop.status, 200);
  const { images } = (await photoshop.json()) as { images: { base64: string }[] };
  t.match(readPngText(Buffer.from(images[0]!.base64, 'base64')).parameters, /Steps: 2, Sampler: Euler, .*CFG scale: 1,/);
});

t.test('GET /v1/models says which flow family each component model is, with its defaults', async (t) => {
  const { url } = await startTestServer(t, { modelsDir: models });
  const { data } = (await getJson(`${url}/v1/models`)).body as unknown as { data: { id: string; family?: string; defaults?: object }[] };
  t.match(data.find((model) => model.id === 'dev'), { family: 'flux-dev', defaults: { steps: 20, cfgScale: 1, size: 1024, guidance: 3.5 } });
  t.match(data.find((model) => model.id === 'schnell'), { family: 'flux-schnell', defaults: { steps: 4, cfgScale: 1, sampler: 'euler' } });
  t.notOk(data.find((model) => model.id === 'dall-e-2')?.family, 'presets have none');
});
