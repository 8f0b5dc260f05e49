// The server with Z-Image given as component files: by the component options (the CLI's
// --diffusion-model, --llm, --vae) and as a models-folder folder of its download names; OpenAI and
// A1111 requests make Z-Image pictures with the family's defaults, and ComfyUI's Z-Image workflow
// (UNETLoader, CLIPLoader of type lumina2, VAELoader) runs.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { readPngText } from '../lib/index.js';
import { writeTinyZImage } from './fixtures/z-image.js';
import { getJson, pollTask, startTestServer } from './server-helpers.js';

const dir = t.testdir();
const files = await writeTinyZImage(path.join(dir, 'z'));

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

t.test('started with the component options, an OpenAI request gets a Z-Image PNG made with Turbo\'s defaults', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: files });
  const ids = ((await getJson(`${url}/v1/models`)).body as unknown as { data: { id: string }[] }).data.map((model) => model.id);
  t.ok(ids.includes('z_image_turbo'), 'named after the diffusion model\'s file');
  const openai = await postJson(`${url}/v1/images/generations`, { model: 'z_image_turbo', prompt: 'a cat', size: '64x64', response_format: 'b64_json' });
  t.equal(openai.status, 200, JSON.stringify(openai.body.error));
  const png = Buffer.from((openai.body.data as { b64_json: string }[])[0]!.b64_json, 'base64');
  const { format, width, height } = await sharp(png).metadata();
  t.same([format, width, height], ['png', 64, 64]);
  t.match(readPngText(png).parameters, /^a cat\nSteps: 8, Sampler: Euler, CFG scale: 1,/);
  const refused = await postJson(`${url}/v1/images/generations`, { model: 'z_image_turbo', prompt: 'a cat', size: '72x64' });
  t.equal(refused.status, 400);
  t.match(refused.body, { error: { type: 'invalid_request_error', param: 'size', message: /multiple of 16/ } });
});

t.test('a folder of Z-Image\'s download names is one model; A1111 requests without steps or cfg get the family\'s', async (t) => {
  const models = path.join(dir, 'models');
  const folder = path.join(models, 'z-image-turbo');
  await mkdir(folder, { recursive: true });
  await Promise.all(Object.values(files).map((file) => copyFile(file, path.join(folder, path.basename(file)))));
  const { url } = await startTestServer(t, { modelsDir: models });
  const listed = (await getJson(`${url}/sdapi/v1/sd-models`)).body as unknown as { model_name: string }[];
  t.same(listed.map((model) => model.model_name), ['z-image-turbo'], 'the component files are not checkpoints of their own');
  const txt2img = await postJson(`${url}/sdapi/v1/txt2img`, {
    prompt: 'a cat', width: 64, height: 64, seed: 2, sampler_name: 'Euler', override_settings: { sd_model_checkpoint: 'z-image-turbo' },
  });
  t.equal(txt2img.status, 200, JSON.stringify(txt2img.body.detail));
  t.match(JSON.parse(txt2img.body.info as string) as object, { steps: 8, cfg_scale: 1, sd_model_name: 'z-image-turbo' });
});

t.test('ComfyUI: UNETLoader, CLIPLoader (type lumina2) and VAELoader name Z-Image\'s parts; the workflow makes its picture', async (t) => {
  const { url } = await startTestServer(t, { modelComponents: files, apis: ['comfyui'] });
  const base = (file: string) => path.basename(file);
  const info = await (await fetch(`${url}/object_info/CLIPLoader`)).json() as { CLIPLoader: { input: { required: { clip_name: string[][]; type: string[][] } } } };
  t.same(info.CLIPLoader.input.required.clip_name, [[base(files.llm)]]);
  t.ok(info.CLIPLoader.input.required.type[0]!.includes('lumina2'));
  const draw = async (shift?: number): Promise<Buffer> => {
    const graph: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {
      11: { class_type: 'UNETLoader', inputs: { unet_name: base(files.diffusionModel), weight_dtype: 'default' } },
      12: { class_type: 'CLIPLoader', inputs: { clip_name: base(files.llm), type: 'lumina2' } },
      13: { class_type: 'VAELoader', inputs: { vae_name: base(files.vae) } },
      2: { class_type: 'CLIPTextEncode', inputs: { text: 'a red fox', clip: ['12', 0] } },
      4: { class_type: 'EmptySD3LatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
      5: {
        class_type: 'KSampler',
        inputs: { model: ['11', 0], positive: ['2', 0], negative: ['2', 0], latent_image: ['4', 0], seed: 1, steps: 2, cfg: 1,
          sampler_name: 'euler', scheduler: 'simple', denoise: 1 },
      },
      6: { class_type: 'VAEDecode', inputs: { samples: ['5', 0], vae: ['13', 0] } },
      7: { class_type: 'SaveImage', inputs: { images: ['6', 0], filename_prefix: 'z' } },
    };
    if (shift !== undefined) {
      graph['14'] = { class_type: 'ModelSamplingAuraFlow', inputs: { model: ['11', 0], shift } };
      graph['5']!.inputs.model = ['14', 0];
    }
    const queued = await postJson(`${url}/prompt`, { prompt: graph, client_id: 'z' });
    t.equal(queued.status, 200, JSON.stringify(queued.body));
    const promptId = String(queued.body.prompt_id);
    const [entry] = (await pollTask(`${url}/history/${promptId}`, (body) => promptId in body)).slice(-1) as
      Record<string, { outputs: Record<string, { images: { filename: string; type: string }[] }> }>[];
    const [image] = entry![promptId]!.outputs['7']!.images;
    const png = Buffer.from(await (await fetch(`${url}/view?filename=${image!.filename}&type=${image!.type}`)).arrayBuffer());
    const { data, info: size } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    t.same([size.width, size.height], [64, 64]);
    return data;
  };
  const plain = await draw();
  t.ok((await draw(3)).equals(plain), 'ModelSamplingAuraFlow at shift 3: Z-Image\'s own shift');
  t.notOk((await draw(1)).equals(plain), 'another shift changes the picture');
});
