// The server with FLUX.1 given as component files: by the component options (the CLI's
// --diffusion-model, --clip-l, --t5xxl, --vae, --t5-tokenizer), and in a models folder as a JSON
// file or a folder of components; generations in several dialects, listings, and the errors for a
// missing component and a missing T5 tokenizer.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { startServer } from '../server/index.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { getJson, pollTask, postForm, startTestServer } from './server-helpers.js';

const dir = t.testdir();
const schnell = await writeTinyFlux(path.join(dir, 'schnell'));
const { t5Tokenizer, ...files } = schnell;

async function pngSize(png: Buffer): Promise<[string | undefined, number | undefined, number | undefined]> {
  const { format, width, height } = await sharp(png).metadata();
  return [format, width, height];
}

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function m1Image(url: string, fields: Record<string, string>): Promise<Buffer> {
  const queued = await postForm(`${url}/text-to-image`, { width: '64', height: '64', steps: '2', ...fields });
  const [done] = (await pollTask(`${url}${queued.body.resultUrl!}`, (body) => body.status === 'COMPLETE' || body.status === 'FAILED')).slice(-1);
  if (done?.status !== 'COMPLETE') throw new Error(`M1 job ended ${JSON.stringify(done)}`);
  return Buffer.from(await (await fetch(`${url}${done.imageUrls![0]!}`)).arrayBuffer());
}

t.test('started with the component options, M1 and OpenAI requests get FLUX.1 PNGs', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: { ...files, t5Tokenizer } });
  t.same(await pngSize(await m1Image(url, { prompt: 'a cat', seed: '1' })), ['png', 64, 64]);

  const openai = await postJson(`${url}/v1/images/generations`, {
    model: 'flux1-schnell', prompt: 'a cat', size: '64x64', response_format: 'b64_json',
  });
  t.equal(openai.status, 200);
  const [image] = openai.body.data as { b64_json: string }[];
  t.same(await pngSize(Buffer.from(image!.b64_json, 'base64')), ['png', 64, 64]);

  const ids = ((await getJson(`${url}/v1/models`)).body as unknown as { data: { id: string }[] }).data.map((model) => model.id);
  t.ok(ids.includes('flux1-schnell'), 'named after the diffusion model\'s file');
});

t.test('with lowMemory (--low-memory) a component model draws the same image', async (t) => {
  const usual = await startTestServer(t, { modelComponents: { ...files, t5Tokenizer } });
  const low = await startTestServer(t, { modelComponents: { ...files, t5Tokenizer }, lowMemory: true });
  const [a, b] = [await m1Image(usual.url, { prompt: 'a cat', seed: '5' }), await m1Image(low.url, { prompt: 'a cat', seed: '5' })];
  const pixels = async (png: Buffer) => sharp(png).raw().toBuffer();
  t.ok((await pixels(a)).equals(await pixels(b)));
  t.ok((await pixels(await m1Image(low.url, { prompt: 'a dog', seed: '5' }))).equals(await pixels(await m1Image(usual.url, { prompt: 'a dog', seed: '5' }))),
    'a second prompt too (the transformer read again after encoding)');
});

t.test('a models folder shows JSON and folder models by name in the listings, and they generate', async (t) => {
  const models = path.join(dir, 'models');
  // A folder of components under their download names, its tokenizer in tokenizer_2/ as in the FLUX.1 repo.
  const folder = path.join(models, 'flux-folder');
  await mkdir(path.join(folder, 'tokenizer_2'), { recursive: true });
  await Promise.all(Object.values(files).map((file) => copyFile(file, path.join(folder, path.basename(file)))));
  await copyFile(t5Tokenizer, path.join(folder, 'tokenizer_2', 'tokenizer.json'));
  // A JSON file naming components elsewhere, relative to itself.
  const dev = await writeTinyFlux(path.join(models, 'parts'), { variant: 'flux-dev' });
  const relative = (file: string) => path.relative(models, file);
  await writeFile(path.join(models, 'my-flux.json'), JSON.stringify({
    diffusionModel: relative(dev.diffusionModel), clipL: relative(dev.clipL), t5xxl: relative(dev.t5xxl), vae: relative(dev.vae),
    t5Tokenizer: relative(dev.t5Tokenizer),
  }));
  const { url } = await startTestServer(t, { modelsDir: models });

  const openaiIds = ((await getJson(`${url}/v1/models`)).body as unknown as { data: { id: string }[] }).data.map((model) => model.id);
  t.same(openaiIds.filter((id) => !id.startsWith('dall-e') && !id.startsWith('gpt-image')).sort(), ['flux-folder', 'my-flux'],
    'the component files are not offered as checkpoints of their own');
  const a1111 = (await getJson(`${url}/sdapi/v1/sd-models`)).body as unknown as { model_name: string; filename: string }[];
  t.same(a1111.map((model) => model.model_name).sort(), ['flux-folder', 'my-flux']);
  t.match(a1111.find((model) => model.model_name === 'my-flux')?.filename, /my-flux|flux1-dev/);

  const txt2img = await postJson(`${url}/sdapi/v1/txt2img`, {
    // A1111's default sampler is "Euler a", which flow models do not take: Forge's clients name Euler for Flux.
    prompt: 'a cat', width: 64, height: 64, steps: 2, cfg_scale: 1, distilled_cfg_scale: 5, seed: 3, sampler_name: 'Euler',
    override_settings: { sd_model_checkpoint: 'my-flux' },
  });
  t.equal(txt2img.status, 200, JSON.stringify(txt2img.body.detail));
  t.same(await pngSize(Buffer.from((txt2img.body.images as string[])[0]!, 'base64')), ['png', 64, 64]);
  t.match(JSON.parse(txt2img.body.info as string) as object, { sd_model_name: 'my-flux' });

  t.same(await pngSize(await m1Image(url, { prompt: 'a cat', model: 'flux-folder', guidance: '4' })), ['png', 64, 64]);
});

t.test('a missing component stops the start with an error naming its flag', async (t) => {
  const { diffusionModel, clipL, vae } = files;
  await t.rejects(startServer({
    port: 0, log: () => {}, threads: 1, backend: 'cpu', outputDir: t.testdir(), modelComponents: { diffusionModel, clipL, vae },
  }),
    { message: /--t5xxl/ });
});

t.test('a prompt without a T5 tokenizer fails in each dialect\'s shape, saying which file to get', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: files });
  const queued = await postForm(`${url}/text-to-image`, { prompt: 'a cat', width: '64', height: '64', steps: '1' });
  const [failed] = (await pollTask(`${url}${queued.body.resultUrl!}`, (body) => body.status === 'FAILED' || body.status === 'COMPLETE')).slice(-1);
  t.match(failed, { status: 'FAILED', error: { code: 'ERR_TOKENIZER_MISSING', message: String } });
  t.match(failed?.error?.message, /spiece\.model or tokenizer\.json/);
  t.match(failed?.error?.message, /--t5-tokenizer/);

  const openai = await postJson(`${url}/v1/images/generations`, { model: 'flux1-schnell', prompt: 'a cat', size: '64x64' });
  t.ok(openai.status >= 400, `status ${openai.status}`);
  t.match(openai.body, { error: { message: /--t5-tokenizer/, type: String } });

  // An empty prompt needs no tokenizer; at cfg 1 a negative prompt is not used, so it needs none either.
  const a1111 = await postJson(`${url}/sdapi/v1/txt2img`, {
    prompt: '', negative_prompt: 'blurry', cfg_scale: 1, sampler_name: 'Euler', width: 64, height: 64, steps: 1,
  });
  t.equal(a1111.status, 200, JSON.stringify(a1111.body.detail));
  t.same(await pngSize(Buffer.from((a1111.body.images as string[])[0]!, 'base64')), ['png', 64, 64]);
});

t.test('the tokenizer of the component options is the one --t5-tokenizer gives', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: files, t5Tokenizer });
  t.same(await pngSize(await m1Image(url, { prompt: 'a cat' })), ['png', 64, 64]);
});
