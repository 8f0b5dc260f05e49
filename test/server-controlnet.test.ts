// ControlNet through AUTOMATIC1111's API, as the ControlNet extension's clients use it (webuiapi's
// ControlNetUnit): the models folder's ControlNet/ is listed by /controlnet/model_list as
// "name [hash]" and offers no checkpoints; alwayson_scripts.controlnet.args units steer txt2img and
// img2img; the extension's other routes answer in its shapes; unknown names and modules are 422s
// that list what exists.
import path from 'node:path';

import { Client } from '@stable-canvas/comfyui-client';
import sharp from 'sharp';
import t from 'tap';
import WebSocket from 'ws';

import { readPngText } from '../lib/index.js';
import { legacyShortHash } from '../lib/controlnet.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTinyControlNet } from './fixtures/controlnet.js';
import { getJson, outputTestdir, startTestServer } from './server-helpers.js';

interface Answer {
  status: number;
  body: { images?: string[]; info?: string; detail?: unknown; [key: string]: unknown };
}

const dir = outputTestdir(t);
const models = path.join(dir, 'models');
await writeTinyCheckpoint(models, { name: 'tiny.safetensors' });
const canny = await writeTinyControlNet(path.join(models, 'ControlNet'), { name: 'control_tiny_canny.safetensors' });
await writeTinyControlNet(path.join(models, 'ControlNet'), { name: 'control_tiny_depth.safetensors', seed: 2 });
const cannyTitle = `control_tiny_canny [${await legacyShortHash(canny)}]`;
const { url } = await startTestServer(t, { modelsDir: models, outputDir: path.join(dir, 'out') });

async function post(route: string, body: unknown): Promise<Answer> {
  const response = await fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() as Answer['body'] };
}

// A 64×64 picture, black on the left and white on the right: its Canny map is one vertical line.
const halves = (await sharp(Buffer.from(Array.from({ length: 64 * 64 * 3 }, (_, i) => ((i / 3) % 64 < 32 ? 0 : 255))),
  { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer()).toString('base64');
const base = { prompt: 'a barn', steps: 2, width: 64, height: 64, seed: 9 };

/** webuiapi's ControlNetUnit.to_dict(), with its defaults. */
function webuiapiUnit(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    image: halves, mask: null, module: 'none', model: cannyTitle, weight: 1, resize_mode: 'Resize and Fill', low_vram: false,
    processor_res: 512, threshold_a: 64, threshold_b: 64, guidance_start: 0, guidance_end: 1, control_mode: 0, pixel_perfect: false,
    hr_option: 'Both', enabled: true, ...extra,
  };
}

const withUnits = (units: unknown[]) => ({ ...base, alwayson_scripts: { controlnet: { args: units } } });

async function pixels(answer: Answer): Promise<Buffer> {
  return sharp(Buffer.from(answer.body.images![0]!, 'base64')).raw().toBuffer();
}

t.test('/controlnet/model_list lists the folder as "name [hash]"; its files are no checkpoints', async (t) => {
  const list = await getJson(`${url}/controlnet/model_list`);
  t.equal(list.status, 200);
  t.same(list.body, { model_list: [cannyTitle, `control_tiny_depth [${await legacyShortHash(path.join(models, 'ControlNet', 'control_tiny_depth.safetensors'))}]`] });
  const checkpoints = (await getJson(`${url}/sdapi/v1/sd-models`)).body as unknown as { model_name: string }[];
  t.same(checkpoints.map((entry) => entry.model_name), ['tiny']);
});

t.test('the extension\'s other routes answer in its shapes', async (t) => {
  t.same((await getJson(`${url}/controlnet/version`)).body, { version: 2 });
  const modules = (await getJson(`${url}/controlnet/module_list`)).body as { module_list: string[]; module_detail: Record<string, unknown> };
  t.same(modules.module_list, ['none', 'canny']);
  t.match(modules.module_detail.canny, { sliders: [{ name: 'Canny Low Threshold', value: 100 }, { name: 'Canny High Threshold', value: 200 }] });
  const types = (await getJson(`${url}/controlnet/control_types`)).body as { control_types: Record<string, { model_list: string[] }> };
  t.same(types.control_types.Canny!.model_list, ['None', cannyTitle]);
  t.same((await getJson(`${url}/controlnet/settings`)).body, { control_net_unit_count: 8, control_net_max_models_num: 8 });
});

t.test('/controlnet/detect runs canny: the halves picture becomes one white line', async (t) => {
  const answer = await post('/controlnet/detect', { controlnet_module: 'canny', controlnet_input_images: [halves] });
  t.equal(answer.status, 200, JSON.stringify(answer.body));
  const map = await sharp(Buffer.from((answer.body.images as string[])[0]!, 'base64')).greyscale().raw().toBuffer();
  const lit = [...map.keys()].filter((i) => map[i] === 255);
  t.equal(lit.length, 64);
  t.ok(lit.every((i) => i % 64 === 31), 'every edge pixel is in column 31');
  const unknown = await post('/controlnet/detect', { controlnet_module: 'openpose', controlnet_input_images: [halves] });
  t.equal(unknown.status, 422);
  t.match(JSON.stringify(unknown.body.detail), /Expected one of none, canny for controlnet_module but received openpose/);
});

t.test('a webuiapi ControlNetUnit steers txt2img; weight 0 or enabled false is the plain image', async (t) => {
  const plain = await post('/sdapi/v1/txt2img', base);
  t.equal(plain.status, 200);
  const steered = await post('/sdapi/v1/txt2img', withUnits([webuiapiUnit()]));
  t.equal(steered.status, 200, JSON.stringify(steered.body.detail));
  t.notOk((await pixels(steered)).equals(await pixels(plain)));
  const parameters = readPngText(Buffer.from(steered.body.images![0]!, 'base64')).parameters!;
  t.match(parameters, `ControlNet 0: "Module: none, Model: ${cannyTitle}, Weight: 1, Resize Mode: Resize and Fill, `);
  t.notMatch(JSON.parse(steered.body.info!).sdnode_warnings ?? '', /alwayson_scripts/);
  t.notOk((JSON.parse(steered.body.info!).sdnode_ignored as string[]).some((field) => field.startsWith('alwayson_scripts')),
    'a webuiapi unit\'s fields are all taken');
  const lowResOnly = await post('/sdapi/v1/txt2img', withUnits([webuiapiUnit({ hr_option: 'Low res only', mask: halves })]));
  t.same((JSON.parse(lowResOnly.body.info!).sdnode_ignored as string[]).filter((field) => field.startsWith('alwayson_scripts')),
    ['alwayson_scripts.controlnet.args[0].mask', 'alwayson_scripts.controlnet.args[0].hr_option'], 'what is not acted on is reported');
  for (const unit of [webuiapiUnit({ weight: 0 }), webuiapiUnit({ enabled: false }), webuiapiUnit({ model: 'None' })]) {
    const answer = await post('/sdapi/v1/txt2img', withUnits([unit]));
    t.equal(answer.status, 200);
    t.ok((await pixels(answer)).equals(await pixels(plain)), JSON.stringify({ ...unit, image: '…' }));
  }
});

t.test('the extension\'s field spellings: names without the hash, input_image, resize and control modes as numbers or names', async (t) => {
  const reference = await pixels(await post('/sdapi/v1/txt2img', withUnits([webuiapiUnit({ control_mode: 'My prompt is more important', resize_mode: 1 })])));
  const spelled = await post('/sdapi/v1/txt2img', withUnits([{
    input_image: `data:image/png;base64,${halves}`, model: 'control_tiny_canny', control_mode: 1, resize_mode: 'Crop and Resize',
  }]));
  t.equal(spelled.status, 200, JSON.stringify(spelled.body.detail));
  t.ok((await pixels(spelled)).equals(reference));
  const cannyUnit = await post('/sdapi/v1/txt2img', withUnits([webuiapiUnit({ module: 'canny', threshold_a: 100, threshold_b: 200 })]));
  t.equal(cannyUnit.status, 200);
  t.match(readPngText(Buffer.from(cannyUnit.body.images![0]!, 'base64')).parameters, /Module: canny, .*Threshold A: 100, Threshold B: 200/);
});

t.test('img2img: a unit without an image takes the init image', async (t) => {
  const img2img = (units: unknown[]) => post('/sdapi/v1/img2img', {
    ...base, init_images: [halves], denoising_strength: 0.6, alwayson_scripts: { controlnet: { args: units } },
  });
  const implicit = await img2img([{ model: cannyTitle }]);
  t.equal(implicit.status, 200, JSON.stringify(implicit.body.detail));
  const explicit = await img2img([{ model: cannyTitle, image: halves }]);
  t.ok((await pixels(implicit)).equals(await pixels(explicit)));
  const plain = await img2img([]);
  t.notOk((await pixels(implicit)).equals(await pixels(plain)));
});

t.test('unknown models and modules, and bad fields, are 422s naming the field and what exists', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ model: 'control_v11p_sd15_openpose [cab727d4]' },
      /Expected one of control_tiny_canny \[[0-9a-f]{8}\], control_tiny_depth \[[0-9a-f]{8}\] for alwayson_scripts.controlnet.args\[0\].model/],
    [{ module: 'openpose_full' }, /Expected one of none, canny for alwayson_scripts.controlnet.args\[0\].module but received openpose_full/],
    [{ resize_mode: 'Stretch' }, /alwayson_scripts.controlnet.args\[0\].resize_mode/],
    [{ control_mode: 5 }, /control_mode/],
    [{ weight: 3 }, /weight/],
    [{ guidance_start: 0.9, guidance_end: 0.1 }, /guidance_start \(0.9\) must not be after guidance_end \(0.1\)/],
    [{ image: null }, /alwayson_scripts.controlnet.args\[0\].image is required/],
    [{ image: 'not base64!' }, /alwayson_scripts.controlnet.args\[0\].image is not base64 image data/],
  ];
  for (const [extra, message] of cases) {
    const answer = await post('/sdapi/v1/txt2img', withUnits([webuiapiUnit(extra)]));
    t.equal(answer.status, 422, JSON.stringify(extra));
    t.match(JSON.stringify(answer.body.detail), message, JSON.stringify(extra));
  }
});

t.test('a ControlNet file of another family fails the request with the engine\'s message', async (t) => {
  await writeTinyControlNet(path.join(models, 'ControlNet'), { name: 'control_xl.safetensors', family: 'sdxl' });
  const answer = await post('/sdapi/v1/txt2img', withUnits([webuiapiUnit({ model: 'control_xl' })]));
  t.not(answer.status, 200);
  t.match(JSON.stringify(answer.body.detail), /control_xl\.safetensors is a ControlNet for SDXL but the model is SD 1\.x/);
});

t.test('ComfyUI: ControlNetLoader lists the folder; ControlNetApplyAdvanced steers the KSampler; strength 0 changes nothing', async (t) => {
  const info = (await getJson(`${url}/object_info/ControlNetLoader`)).body as Record<string, { input: { required: Record<string, unknown[]> } }>;
  const [names] = info.ControlNetLoader!.input.required.control_net_name as [string[]];
  t.same(names.filter((name) => name.startsWith('control_tiny')), ['control_tiny_canny.safetensors', 'control_tiny_depth.safetensors']);
  const form = new FormData();
  form.append('image', new Blob([Buffer.from(halves, 'base64')], { type: 'image/png' }), 'halves.png');
  t.equal((await fetch(`${url}/upload/image`, { method: 'POST', body: form })).status, 200);
  const client = new Client({ api_host: new URL(url).host, clientId: 'controlnet-test', WebSocket, fetch });
  client.connect();
  t.teardown(() => client.close());
  await new Promise((resolve) => client.events.once('connected', resolve));
  const graph = (strength: number | undefined, node = 'ControlNetApplyAdvanced') => ({
    1: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'tiny.safetensors' } },
    2: { class_type: 'CLIPTextEncode', inputs: { text: 'a barn', clip: ['1', 1] } },
    3: { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['1', 1] } },
    4: { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
    5: { class_type: 'LoadImage', inputs: { image: 'halves.png' } },
    6: { class_type: 'ControlNetLoader', inputs: { control_net_name: 'control_tiny_canny.safetensors' } },
    ...(strength !== undefined && {
      7: node === 'ControlNetApplyAdvanced'
        ? { class_type: node, inputs: { positive: ['2', 0], negative: ['3', 0], control_net: ['6', 0], image: ['5', 0], strength, start_percent: 0, end_percent: 1 } }
        : { class_type: node, inputs: { conditioning: ['2', 0], control_net: ['6', 0], image: ['5', 0], strength } },
    }),
    8: {
      class_type: 'KSampler',
      inputs: {
        seed: 3, steps: 2, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['1', 0], latent_image: ['4', 0],
        positive: strength === undefined ? ['2', 0] : ['7', 0], negative: strength === undefined || node !== 'ControlNetApplyAdvanced' ? ['3', 0] : ['7', 1],
      },
    },
    9: { class_type: 'VAEDecode', inputs: { samples: ['8', 0], vae: ['1', 2] } },
    10: { class_type: 'SaveImage', inputs: { filename_prefix: 'cn', images: ['9', 0] } },
  });
  const run = async (strength: number | undefined, node?: string) => {
    const result = await client.enqueue(graph(strength, node), { disable_random_seed: true });
    const image = result.images.find((entry) => entry.type === 'url')!.data as string;
    return sharp(Buffer.from(await (await fetch(image)).arrayBuffer())).raw().toBuffer();
  };
  const plain = await run(undefined);
  const advanced = await run(1);
  t.notOk(advanced.equals(plain));
  t.ok((await run(0)).equals(plain), 'strength 0');
  const positiveOnly = await run(1, 'ControlNetApply');
  t.notOk(positiveOnly.equals(plain));
  t.notOk(positiveOnly.equals(advanced), 'ControlNetApply steers the positive pass alone');
});
