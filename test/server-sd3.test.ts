// SD3 and SD3.5 given as component files, through the server and the CLI: the component options
// (--diffusion-model, --clip-l, --clip-g, --t5xxl, --vae, --t5-tokenizer), a models folder holding
// an SD3 folder (T5's tokenizer in tokenizer_3/, as in SD3's repository) and an SD3.5 JSON file,
// generations in the M1 and AUTOMATIC1111 dialects, the listings, `sdnode generate` and
// `sdnode info`, and the errors for a missing CLIP-G.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { readPngText } from '../lib/index.js';
import { main } from '../server/cli.js';
import { startServer } from '../server/index.js';
import { writeTinySd3, type TinySd3Files } from './fixtures/sd3.js';
import { getJson, pollTask, postForm, startTestServer } from './server-helpers.js';

const dir = t.testdir();
const sd3 = await writeTinySd3(path.join(dir, 'sd3'));
const sd35 = await writeTinySd3(path.join(dir, 'sd35'), { variant: 'sd3.5' });
const components = ({ t5Tokenizer: _, ...files }: TinySd3Files) => files;

async function pngSize(png: Buffer): Promise<[string | undefined, number | undefined, number | undefined]> {
  const { format, width, height } = await sharp(png).metadata();
  return [format, width, height];
}

// An M1 text-to-image job, polled to its end: its PNG.
async function m1Image(url: string, fields: Record<string, string>): Promise<Buffer> {
  const queued = await postForm(`${url}/text-to-image`, { width: '64', height: '64', steps: '2', ...fields });
  const [done] = (await pollTask(`${url}${queued.body.resultUrl!}`, (body) => body.status === 'COMPLETE' || body.status === 'FAILED')).slice(-1);
  if (done?.status !== 'COMPLETE') throw new Error(`M1 job ended ${JSON.stringify(done)}`);
  return Buffer.from(await (await fetch(`${url}${done.imageUrls![0]!}`)).arrayBuffer());
}

async function openaiIds(url: string): Promise<string[]> {
  const { data } = (await getJson(`${url}/v1/models`)).body as unknown as { data: { id: string }[] };
  return data.map((model) => model.id).filter((id) => !id.startsWith('dall-e') && !id.startsWith('gpt-image'));
}

t.test('started with the component options, an M1 request gets an SD3 PNG with the card\'s cfg', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: { ...components(sd3), t5Tokenizer: sd3.t5Tokenizer } });
  const png = await m1Image(url, { prompt: 'a cat', seed: '1' });
  t.same(await pngSize(png), ['png', 64, 64]);
  t.match(readPngText(png).parameters, /^a cat\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, .*Model: sd3_medium/);
  t.same(await openaiIds(url), ['sd3_medium'], 'named after the diffusion model\'s file');
});

t.test('a models folder shows an SD3 folder and an SD3.5 JSON file by name, and both generate', async (t) => {
  const models = path.join(dir, 'models');
  // The files under their download names, T5's tokenizer in tokenizer_3/ as in SD3's repository.
  const folder = path.join(models, 'sd3-folder');
  await mkdir(path.join(folder, 'tokenizer_3'), { recursive: true });
  await Promise.all(Object.values(components(sd3)).map((file) => copyFile(file, path.join(folder, path.basename(file)))));
  await copyFile(sd3.t5Tokenizer, path.join(folder, 'tokenizer_3', 'tokenizer.json'));
  const relative = (file: string) => path.relative(models, file);
  await writeFile(path.join(models, 'my-sd35.json'), JSON.stringify({
    diffusionModel: relative(sd35.diffusionModel), clipL: relative(sd35.clipL), clipG: relative(sd35.clipG),
    t5xxl: relative(sd35.t5xxl), vae: relative(sd35.vae), t5Tokenizer: relative(sd35.t5Tokenizer),
  }));
  const { url } = await startTestServer(t, { modelsDir: models });

  t.same((await openaiIds(url)).sort(), ['my-sd35', 'sd3-folder'], 'the component files are not offered as checkpoints of their own');
  const a1111 = (await getJson(`${url}/sdapi/v1/sd-models`)).body as unknown as { model_name: string }[];
  t.same(a1111.map((model) => model.model_name).sort(), ['my-sd35', 'sd3-folder']);

  // A prompt needs T5's tokenizer: the folder's tokenizer_3/tokenizer.json was found.
  t.same(await pngSize(await m1Image(url, { prompt: 'a cat', model: 'sd3-folder' })), ['png', 64, 64]);

  const response = await fetch(`${url}/sdapi/v1/txt2img`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      // A1111's default sampler is "Euler a", which flow models do not take.
      prompt: 'a cat', negative_prompt: 'a dog', width: 64, height: 64, steps: 2, cfg_scale: 4.5, seed: 3, sampler_name: 'Euler',
      override_settings: { sd_model_checkpoint: 'my-sd35' },
    }),
  });
  const body = (await response.json()) as { images: string[]; info: string; detail?: unknown };
  t.equal(response.status, 200, JSON.stringify(body.detail));
  t.same(await pngSize(Buffer.from(body.images[0]!, 'base64')), ['png', 64, 64]);
  t.match(JSON.parse(body.info) as object, { sd_model_name: 'my-sd35', cfg_scale: 4.5 });
});

t.test('an SD3 set without CLIP-G stops the start with an error naming --clip-g', async (t) => {
  const { clipG: _, ...noClipG } = components(sd3);
  await t.rejects(startServer({ port: 0, log: () => {}, threads: 1, backend: 'cpu', outputDir: t.testdir(), modelComponents: noClipG }),
    { message: /--clip-g/ });
});

// The CLI: one thread on the CPU, as the library tests run.
const cliFlags = (files: TinySd3Files): string[] => [
  '--diffusion-model', files.diffusionModel, '--clip-l', files.clipL, '--clip-g', files.clipG, '--t5xxl', files.t5xxl, '--vae', files.vae,
  '--backend', 'cpu', '-t', '1',
];

async function run(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const errors = t.capture(console, 'error');
  const logs = t.capture(console, 'log');
  const code = await main(args);
  return { code, output: [...errors(), ...logs()].map((call) => call.args.join(' ')).join('\n') };
}

t.test('sdnode generate with --clip-g writes an SD3.5 PNG', async (t) => {
  const out = path.join(t.testdir(), 'sd35.png');
  const { code, output } = await run(t, ['generate', ...cliFlags(sd35), '--t5-tokenizer', sd35.t5Tokenizer,
    '-W', '64', '-H', '64', '--steps', '2', '-p', 'a cat', '-s', '3', '-o', out]);
  t.equal(code, 0, output);
  t.same(await pngSize(await readFile(out)), ['png', 64, 64]);
  t.match(readPngText(await readFile(out)).parameters, /^a cat\nSteps: 2, Sampler: Euler, CFG scale: 4\.5, Seed: 3/);
});

t.test('sdnode generate without --clip-g fails naming it', async (t) => {
  const flags = cliFlags(sd3);
  flags.splice(flags.indexOf('--clip-g'), 2);
  const { code, output } = await run(t, ['generate', ...flags, '-W', '64', '-H', '64', '--steps', '1', '-o', path.join(t.testdir(), 'x.png')]);
  t.equal(code, 1);
  t.match(output, /CLIP-G text encoder .*--clip-g/);
});

t.test('sdnode info prints the SD family, its three text encoders and each component file', async (t) => {
  const { code, output } = await run(t, ['info', ...cliFlags(sd35)]);
  t.equal(code, 0, output);
  t.match(output, /family\s+SD3\.5\n/);
  t.match(output, /prediction\s+flow/);
  t.match(output, /text encoders\s+CLIP-L, OpenCLIP bigG, T5-XXL/);
  t.match(output, `CLIP-G           ${sd35.clipG}`);
  t.match(output, /unused\s+none: every weight is used/);
  const json = await run(t, ['info', ...cliFlags(sd3), '--json']);
  t.equal(json.code, 0, json.output);
  t.match(JSON.parse(json.output) as object, { family: 'sd3', textEncoders: ['clipL', 'clipG', 't5xxl'], components: { clipG: sd3.clipG } });
});
