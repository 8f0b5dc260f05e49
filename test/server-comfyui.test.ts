// ComfyUI's API (--api comfyui) end to end on a tiny checkpoint: a ComfyUI client from npm
// (@stable-canvas/comfyui-client) queues the default workflow and an image-to-image one; Open
// WebUI's sequence over plain HTTP and the websocket; caching, interrupt, queue deletion and
// validation in ComfyUI's error shape.
import path from 'node:path';

import { Client } from '@stable-canvas/comfyui-client';
import sharp from 'sharp';
import t, { type Test } from 'tap';
import WebSocket from 'ws';

import { readPngText } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeEsrgan } from './fixtures/esrgan.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { writeTinyLora } from './fixtures/lora.js';
import { FakeModel, startTestServer } from './server-helpers.js';

const dir = t.testdir();
const modelPath = await writeTinyCheckpoint(dir);
const ckpt = `${path.basename(modelPath, '.safetensors')}.safetensors`;
await writeTinyLora(path.join(dir, 'loras'), 'style');
await writeEsrgan(path.join(dir, 'upscalers'), { name: 'RealESRGAN_tiny_x4.safetensors' });
const server = await startTestServer(t, {
  modelPath, loraDir: path.join(dir, 'loras'), upscalerDir: path.join(dir, 'upscalers'), outputDir: path.join(dir, 'output'), apis: ['comfyui'],
});
const host = new URL(server.url).host;

type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

const graph6Text = 'beautiful scenery nature glass bottle landscape, , purple galaxy bottle,';

/** ComfyUI's default graph, at 64² and 2 steps. */
function defaultGraph(overrides: { seed?: number; steps?: number } = {}): Graph {
  return {
    3: {
      class_type: 'KSampler',
      inputs: {
        seed: overrides.seed ?? 156680208700286, steps: overrides.steps ?? 2, cfg: 8, sampler_name: 'euler', scheduler: 'normal', denoise: 1,
        model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0],
      },
    },
    4: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ckpt } },
    5: { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
    6: { class_type: 'CLIPTextEncode', inputs: { text: graph6Text, clip: ['4', 1] } },
    7: { class_type: 'CLIPTextEncode', inputs: { text: 'text, watermark', clip: ['4', 1] } },
    8: { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    9: { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] } },
  };
}

/** The npm client, its websocket connected. */
async function connectedClient(t: Test, clientId: string): Promise<Client> {
  const client = new Client({ api_host: host, clientId, WebSocket, fetch });
  client.connect();
  t.teardown(() => client.close());
  await new Promise((resolve) => client.events.once('connected', resolve));
  return client;
}

interface Message { type: string; data: Record<string, unknown> }

/** A /ws connection that records every message; `until` waits for one that matches. */
interface Socket { messages: Message[]; previews: Buffer[]; until(match: (m: Message) => boolean): Promise<Message> }

function openSocket(t: Test, clientId: string): Promise<Socket> {
  return openSocketAt(t, host, clientId);
}

async function openSocketAt(t: Test, at: string, clientId: string): Promise<Socket> {
  const ws = new WebSocket(`ws://${at}/ws?clientId=${clientId}`);
  const messages: Message[] = [];
  const previews: Buffer[] = [];
  const waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  ws.on('message', (data, binary) => {
    if (binary) {
      previews.push(data as Buffer);
      return;
    }
    const message = JSON.parse(String(data)) as Message;
    messages.push(message);
    for (const waiter of [...waiters]) {
      if (waiter.match(message)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    }
  });
  t.teardown(() => ws.close());
  await new Promise((resolve) => ws.once('open', resolve));
  return {
    messages,
    previews,
    until: (match) => {
      const seen = messages.find(match);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

async function postJson(route: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> };
}

async function getJson(route: string): Promise<Record<string, unknown>> {
  return await (await fetch(`${server.url}${route}`)).json() as Record<string, unknown>;
}

const finished = (promptId: string) => (m: Message) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === promptId;

t.test('a ComfyUI client from npm runs the default workflow and fetches its image through /view', async (t) => {
  const client = await connectedClient(t, 'npm-client');
  const defs = await client.getNodeDefs() as Record<string, { input: { required: Record<string, unknown[]> } }>;
  t.same(defs.KSampler!.input.required.seed, ['INT', { default: 0, min: 0, max: 0xffffffffffffffff, control_after_generate: true }]);
  t.same(defs.CheckpointLoaderSimple!.input.required.ckpt_name, [[ckpt]]);
  const steps: number[] = [];
  const result = await client.enqueue(defaultGraph(), { progress: (p) => steps.push(p.value), disable_random_seed: true });
  t.same(steps, [1, 2], 'progress for every step');
  // The client keeps the binary preview frames it saw while the prompt ran, then the saved image's URL.
  const previews = result.images.filter((image) => image.type === 'buff');
  t.same(previews.map((preview) => preview.mime), ['image/png', 'image/png']);
  const urls = result.images.filter((image) => image.type === 'url').map((image) => image.data);
  t.equal(urls.length, 1);
  const png = Buffer.from(await (await fetch(urls[0]!)).arrayBuffer());
  const metadata = await sharp(png).metadata();
  t.same([metadata.format, metadata.width, metadata.height], ['png', 64, 64]);
  t.same(JSON.parse(readPngText(png).prompt!)['3'].inputs.seed, 156680208700286, 'the workflow is in the PNG as ComfyUI writes it');
});

t.test('the same seed gives the same image; an image-to-image workflow changes an uploaded image', async (t) => {
  const client = await connectedClient(t, 'npm-client-2');
  const fetchImage = async (url: string) => Buffer.from(await (await fetch(url)).arrayBuffer());
  const first = await client.enqueue(defaultGraph({ seed: 5 }), { disable_random_seed: true });
  const second = await client.enqueue(defaultGraph({ seed: 5 }), { disable_random_seed: true });
  const urlOf = (output: typeof first) => output.images.find((image) => image.type === 'url')!.data as string;
  const [a, b] = await Promise.all([fetchImage(urlOf(first)), fetchImage(urlOf(second))]);
  t.ok((await sharp(a).raw().toBuffer()).equals(await sharp(b).raw().toBuffer()), 'same pixels');

  const photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#c04020' } }).png().toBuffer();
  const form = new FormData();
  form.append('image', new Blob([Uint8Array.from(photo)], { type: 'image/png' }), 'photo.png');
  form.append('overwrite', 'true');
  const uploaded = await (await fetch(`${server.url}/upload/image`, { method: 'POST', body: form })).json();
  t.same(uploaded, { name: 'photo.png', subfolder: '', type: 'input' });
  const graph = defaultGraph({ seed: 9 });
  graph['10'] = { class_type: 'LoadImage', inputs: { image: 'photo.png' } };
  graph['11'] = { class_type: 'VAEEncode', inputs: { pixels: ['10', 0], vae: ['4', 2] } };
  graph['3']!.inputs = { ...graph['3']!.inputs, latent_image: ['11', 0], denoise: 0.5 };
  delete graph['5'];
  const result = await client.enqueue(graph, { disable_random_seed: true });
  const out = await fetchImage(urlOf(result));
  t.same([(await sharp(out).metadata()).width, (await sharp(out).metadata()).height], [64, 64]);
  t.notOk((await sharp(out).raw().toBuffer()).equals(await sharp(photo).raw().toBuffer()), 'the image changed');
  const input = await fetch(`${server.url}/view?filename=photo.png&type=input`);
  t.equal(input.status, 200, 'the upload is served back');
});

t.test('UpscaleModelLoader and ImageUpscaleWithModel enlarge an uploaded image by the upscaler\'s factor', async (t) => {
  const client = await connectedClient(t, 'upscale-client');
  const defs = await client.getNodeDefs() as Record<string, { input: { required: Record<string, unknown[]> } }>;
  t.same(defs.UpscaleModelLoader!.input.required.model_name, [['RealESRGAN_tiny_x4.safetensors']], 'the upscaler folder\'s files');
  const photo = await sharp({ create: { width: 24, height: 16, channels: 3, background: '#3060c0' } }).png().toBuffer();
  const form = new FormData();
  form.append('image', new Blob([Uint8Array.from(photo)], { type: 'image/png' }), 'small.png');
  form.append('overwrite', 'true');
  await fetch(`${server.url}/upload/image`, { method: 'POST', body: form });
  const graph = {
    '1': { class_type: 'LoadImage', inputs: { image: 'small.png' } },
    '2': { class_type: 'UpscaleModelLoader', inputs: { model_name: 'RealESRGAN_tiny_x4.safetensors' } },
    '3': { class_type: 'ImageUpscaleWithModel', inputs: { upscale_model: ['2', 0], image: ['1', 0] } },
    '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'up' } },
  };
  const result = await client.enqueue(graph, { disable_random_seed: true });
  const url = result.images.find((image) => image.type === 'url')!.data as string;
  const out = Buffer.from(await (await fetch(url)).arrayBuffer());
  const { width, height } = await sharp(out).metadata();
  t.same([width, height], [96, 64], '×4');
  const refused = await postJson('/prompt', { prompt: { ...graph, '2': { class_type: 'UpscaleModelLoader', inputs: { model_name: 'nope.pth' } } } });
  t.equal(refused.status, 400, 'a name not in the folder is refused before it queues');
});

t.test('LoraLoader applies a LoRA from the LoRA folder; strength 0 is the image without it', async (t) => {
  const client = await connectedClient(t, 'lora-client');
  const defs = await client.getNodeDefs() as Record<string, { input: { required: Record<string, unknown[]> } }>;
  t.same(defs.LoraLoader!.input.required.lora_name, [['style.safetensors']]);
  const run = async (strength: number | undefined) => {
    const graph = defaultGraph({ seed: 11 });
    if (strength !== undefined) {
      graph['10'] = { class_type: 'LoraLoader', inputs: { model: ['4', 0], clip: ['4', 1], lora_name: 'style.safetensors', strength_model: strength, strength_clip: strength } };
      graph['3']!.inputs.model = ['10', 0];
      graph['6']!.inputs.clip = ['10', 1];
      graph['7']!.inputs.clip = ['10', 1];
    }
    const result = await client.enqueue(graph, { disable_random_seed: true });
    const url = result.images.find((image) => image.type === 'url')!.data as string;
    return sharp(Buffer.from(await (await fetch(url)).arrayBuffer())).raw().toBuffer();
  };
  const [plain, zero, styled] = [await run(undefined), await run(0), await run(1)];
  t.ok(zero.equals(plain), 'strength 0 leaves the image as it was');
  t.notOk(styled.equals(plain), 'the LoRA changes the image');
});

t.test('a two-pass hires workflow: LatentUpscaleBy between two KSamplers makes the larger image', async (t) => {
  const client = await connectedClient(t, 'hires-client');
  const graph = defaultGraph({ seed: 21 });
  graph['10'] = { class_type: 'LatentUpscaleBy', inputs: { samples: ['3', 0], upscale_method: 'bicubic', scale_by: 2 } };
  graph['11'] = {
    class_type: 'KSampler',
    inputs: { ...graph['3']!.inputs, latent_image: ['10', 0], denoise: 0.5, sampler_name: 'dpmpp_2m', scheduler: 'karras' },
  };
  graph['8']!.inputs.samples = ['11', 0];
  const result = await client.enqueue(graph, { disable_random_seed: true });
  const url = result.images.find((image) => image.type === 'url')!.data as string;
  const metadata = await sharp(Buffer.from(await (await fetch(url)).arrayBuffer())).metadata();
  t.same([metadata.width, metadata.height], [128, 128]);
});

t.test('ConditioningCombine of a prompt with itself gives the prompt\'s image; with another, a different one', async (t) => {
  const client = await connectedClient(t, 'combine-client');
  const image = async (graph: Graph) => {
    const result = await client.enqueue(graph, { disable_random_seed: true });
    const url = result.images.find((entry) => entry.type === 'url')!.data as string;
    return sharp(Buffer.from(await (await fetch(url)).arrayBuffer())).raw().toBuffer();
  };
  const plain = await image(defaultGraph({ seed: 31 }));
  const combined = (other: string) => {
    const graph = defaultGraph({ seed: 31 });
    graph['12'] = { class_type: 'CLIPTextEncode', inputs: { text: other, clip: ['4', 1] } };
    graph['13'] = { class_type: 'ConditioningCombine', inputs: { conditioning_1: ['6', 0], conditioning_2: ['12', 0] } };
    graph['3']!.inputs.positive = ['13', 0];
    return graph;
  };
  t.ok((await image(combined(graph6Text))).equals(plain), 'combined with itself');
  t.notOk((await image(combined('a snowy mountain'))).equals(plain), 'combined with another prompt');
});

t.test('Open WebUI\'s sequence: /object_info, /prompt, /ws until executing null, /history, /view', async (t) => {
  const info = await getJson('/object_info');
  t.ok(info.KSamplerAdvanced && info.VAEEncodeForInpaint && info.SaveImage);
  const socket = await openSocket(t, 'open-webui');
  const queued = await postJson('/prompt', { prompt: defaultGraph({ seed: 77 }), client_id: 'open-webui' });
  t.equal(queued.status, 200);
  t.same(queued.body.node_errors, {});
  const promptId = queued.body.prompt_id as string;
  await socket.until(finished(promptId));
  const types = socket.messages.filter((m) => m.data.prompt_id === promptId).map((m) => m.type);
  t.same(types.slice(0, 2), ['execution_start', 'execution_cached']);
  t.same(types.slice(-2), ['execution_success', 'executing']);
  t.ok(types.includes('progress') && types.includes('executed'));
  const executing = socket.messages.filter((m) => m.type === 'executing' && m.data.prompt_id === promptId).map((m) => m.data.node);
  t.equal(executing.at(-1), null);
  t.ok(executing.includes('3') && executing.includes('9'));
  t.ok(socket.previews.length > 0 && socket.previews[0]!.readUInt32BE(0) === 1 && socket.previews[0]!.readUInt32BE(4) === 2, 'PNG preview frames');

  const history = await getJson(`/history/${promptId}`) as Record<string, { outputs: Record<string, { images: { filename: string; subfolder: string; type: string }[] }>; status: { status_str: string } }>;
  const entry = history[promptId]!;
  t.equal(entry.status.status_str, 'success');
  const [image] = entry.outputs['9']!.images;
  const view = await fetch(`${server.url}/view?${new URLSearchParams({ filename: image!.filename, subfolder: image!.subfolder, type: image!.type })}`);
  t.equal(view.headers.get('content-type'), 'image/png');
  t.equal((await sharp(Buffer.from(await view.arrayBuffer())).metadata()).width, 64);
  t.same(await getJson(`/api/history/${promptId}`), history, 'the /api/ path answers the same');
});

t.test('a prompt queued again runs only its output node: the rest is reported cached', async (t) => {
  const socket = await openSocket(t, 'cache');
  const graph = defaultGraph({ seed: 1234 });
  const first = (await postJson('/prompt', { prompt: graph, client_id: 'cache' })).body.prompt_id as string;
  await socket.until(finished(first));
  const second = (await postJson('/prompt', { prompt: graph, client_id: 'cache' })).body.prompt_id as string;
  await socket.until(finished(second));
  const cached = socket.messages.find((m) => m.type === 'execution_cached' && m.data.prompt_id === second)!;
  t.same([...(cached.data.nodes as string[])].sort(), ['3', '4', '5', '6', '7', '8']);
  const ran = socket.messages.filter((m) => m.type === 'executing' && m.data.prompt_id === second).map((m) => m.data.node);
  t.same(ran, ['9', null]);
});

t.test('interrupt stops the running prompt and /queue delete removes a pending one', async (t) => {
  const socket = await openSocket(t, 'stopper');
  const running = (await postJson('/prompt', { prompt: defaultGraph({ seed: 1, steps: 1000 }), client_id: 'stopper' })).body.prompt_id as string;
  const pending = (await postJson('/prompt', { prompt: defaultGraph({ seed: 2 }), client_id: 'stopper' })).body.prompt_id as string;
  await socket.until((m) => m.type === 'progress' && m.data.prompt_id === running);
  const queue = await getJson('/queue') as { queue_running: unknown[][]; queue_pending: unknown[][] };
  t.same(queue.queue_running.map((row) => row[1]), [running]);
  t.same(queue.queue_pending.map((row) => row[1]), [pending]);
  t.equal((await postJson('/queue', { delete: [pending] })).status, 200);
  t.same((await getJson('/queue') as { queue_pending: unknown[] }).queue_pending, []);
  t.equal((await postJson('/interrupt', {})).status, 200);
  const interrupted = await socket.until((m) => m.type === 'execution_interrupted' && m.data.prompt_id === running);
  t.equal(interrupted.data.node_id, '3');
  await socket.until(finished(running));
  const history = await getJson('/history');
  t.equal((history[running] as { status: { status_str: string } }).status.status_str, 'error');
  t.notOk(history[pending], 'the deleted prompt never ran');
});

t.test('graphs that do not validate are refused in ComfyUI\'s shape before they queue', async (t) => {
  const before = Object.keys(await getJson('/history')).length;
  const unknown = defaultGraph();
  unknown['9']!.class_type = 'NoSuchNode';
  let answer = await postJson('/prompt', { prompt: unknown });
  t.equal(answer.status, 400);
  t.match(answer.body.error, { type: 'invalid_prompt', message: 'Cannot execute because node NoSuchNode does not exist.', details: "Node ID '#9'" });

  const missing = defaultGraph();
  delete missing['3']!.inputs.steps;
  answer = await postJson('/prompt', { prompt: missing });
  t.equal(answer.status, 400);
  t.match(answer.body, {
    error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' },
    node_errors: { 3: { class_type: 'KSampler', dependent_outputs: ['9'], errors: [{ type: 'required_input_missing', details: 'steps', extra_info: { input_name: 'steps' } }] } },
  });

  const wrongType = defaultGraph();
  wrongType['3']!.inputs.positive = ['4', 1];
  answer = await postJson('/prompt', { prompt: wrongType });
  t.match(answer.body, { node_errors: { 3: { errors: [{ type: 'return_type_mismatch', details: 'positive, received_type(CLIP) mismatch input_type(CONDITIONING)' }] } } });

  const cycle = defaultGraph();
  cycle['8']!.inputs.samples = ['3', 0];
  cycle['3']!.inputs.latent_image = ['3', 0];
  answer = await postJson('/prompt', { prompt: cycle });
  t.equal(answer.status, 400);
  t.match(answer.body, { node_errors: { 3: { errors: [{ type: 'dependency_cycle' }] } } });

  const dangling = defaultGraph();
  dangling['8']!.inputs.vae = ['42', 2];
  answer = await postJson('/prompt', { prompt: dangling });
  t.match(answer.body, { node_errors: { 8: { errors: [{ type: 'bad_linked_input', details: 'vae' }] } } });

  const outOfRange = defaultGraph();
  outOfRange['3']!.inputs.steps = 0;
  answer = await postJson('/prompt', { prompt: outOfRange });
  t.match(answer.body, { node_errors: { 3: { errors: [{ type: 'value_smaller_than_min', message: 'Value 0 smaller than min of 1', details: 'steps' }] } } });

  const badChoice = defaultGraph();
  badChoice['3']!.inputs.sampler_name = 'nope';
  answer = await postJson('/prompt', { prompt: badChoice });
  t.match(answer.body, { node_errors: { 3: { errors: [{ type: 'value_not_in_list' }] } } });

  answer = await postJson('/prompt', { client_id: 'x' });
  t.same(answer, { status: 400, body: { error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} } });

  const noOutputs = defaultGraph();
  delete noOutputs['9'];
  answer = await postJson('/prompt', { prompt: noOutputs });
  t.match(answer.body, { error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs' } });

  t.same(await getJson('/queue'), { queue_running: [], queue_pending: [] });
  t.equal(Object.keys(await getJson('/history')).length, before, 'nothing was queued');
});

t.test('a node that fails while it runs ends the prompt with execution_error naming it', async (t) => {
  const socket = await openSocket(t, 'failing');
  const graph = defaultGraph();
  graph['5']!.inputs.batch_size = 65;
  const promptId = (await postJson('/prompt', { prompt: graph, client_id: 'failing' })).body.prompt_id as string;
  const failure = await socket.until((m) => m.type === 'execution_error' && m.data.prompt_id === promptId);
  t.match(failure.data, { node_id: '5', node_type: 'EmptyLatentImage', exception_message: /batch_size 65 is above 64/ });
  await socket.until(finished(promptId));
  const history = await getJson(`/history/${promptId}`) as Record<string, { status: { status_str: string; completed: boolean } }>;
  t.same(history[promptId]!.status.status_str, 'error');
});

t.test('the informational routes answer as ComfyUI\'s do', async (t) => {
  t.same(await getJson('/prompt'), { exec_info: { queue_remaining: 0 } });
  t.same(await getJson('/embeddings'), []);
  t.same(await getJson('/extensions'), []);
  t.same(await getJson('/models/checkpoints'), [ckpt]);
  t.same(Object.keys(await getJson('/object_info/KSampler')), ['KSampler']);
  const stats = await getJson('/system_stats') as { system: { os: string }; devices: { type: string }[] };
  t.equal(stats.system.os, process.platform);
  t.equal(stats.devices[0]?.type, 'cpu');
});

t.test('a FLUX.1 dev workflow: EmptySD3LatentImage, FluxGuidance and the flow sampler; UNETLoader, DualCLIPLoader and VAELoader name its parts', async (t) => {
  const { t5Tokenizer, ...files } = await writeTinyFlux(path.join(dir, 'flux-dev'), { variant: 'flux-dev' });
  const flux = await startTestServer(t, { modelComponents: { ...files, t5Tokenizer }, outputDir: path.join(dir, 'flux-output'), apis: ['comfyui'] });
  const [name] = await (await fetch(`${flux.url}/models/checkpoints`)).json() as string[];
  const socket = await openSocketAt(t, new URL(flux.url).host, 'flux');
  const base = (file: string) => path.basename(file);
  const partLoaders: Graph = {
    11: { class_type: 'UNETLoader', inputs: { unet_name: base(files.diffusionModel), weight_dtype: 'default' } },
    12: { class_type: 'DualCLIPLoader', inputs: { clip_name1: base(files.clipL), clip_name2: base(files.t5xxl), type: 'flux' } },
    13: { class_type: 'VAELoader', inputs: { vae_name: base(files.vae) } },
  };
  const run = async (guidance: number, parts = false) => {
    const graph: Graph = {
      1: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: name } },
      2: { class_type: 'CLIPTextEncode', inputs: { text: 'a red fox', clip: ['1', 1] } },
      3: { class_type: 'FluxGuidance', inputs: { conditioning: ['2', 0], guidance } },
      4: { class_type: 'EmptySD3LatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
      5: {
        class_type: 'KSampler',
        inputs: { model: ['1', 0], positive: ['3', 0], negative: ['2', 0], latent_image: ['4', 0], seed: 1, steps: 2, cfg: 1,
          sampler_name: 'euler', scheduler: 'simple', denoise: 1 },
      },
      6: { class_type: 'VAEDecode', inputs: { samples: ['5', 0], vae: ['1', 2] } },
      7: { class_type: 'SaveImage', inputs: { images: ['6', 0], filename_prefix: 'flux' } },
    };
    if (parts) {
      Object.assign(graph, partLoaders);
      delete graph['1'];
      graph['2']!.inputs.clip = ['12', 0];
      graph['5']!.inputs.model = ['11', 0];
      graph['6']!.inputs.vae = ['13', 0];
    }
    const response = await fetch(`${flux.url}/prompt`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: graph, client_id: 'flux' }) });
    const promptId = ((await response.json()) as { prompt_id: string }).prompt_id;
    const executed = await socket.until((m) => m.type === 'executed' && m.data.prompt_id === promptId);
    const [image] = (executed.data.output as { images: { filename: string; type: string }[] }).images;
    const png = Buffer.from(await (await fetch(`${flux.url}/view?filename=${image!.filename}&type=${image!.type}`)).arrayBuffer());
    return sharp(png).raw().toBuffer({ resolveWithObject: true });
  };
  const low = await run(1);
  t.same([low.info.width, low.info.height], [64, 64]);
  t.notOk((await run(8)).data.equals(low.data), 'the guidance reaches the transformer');
  t.ok((await run(1, true)).data.equals(low.data), 'the part loaders give the same model');
  const info = await (await fetch(`${flux.url}/object_info/DualCLIPLoader`)).json() as { DualCLIPLoader: { input: { required: { clip_name1: string[][] } } } };
  t.same(info.DualCLIPLoader.input.required.clip_name1, [[base(files.clipL), base(files.t5xxl)].sort()]);
});

t.test('with an API key, the routes and the websocket want it', async (t) => {
  const keyed = await startTestServer(t, { model: new FakeModel(), apiKeys: ['secret'], apis: ['comfyui'] });
  const at = new URL(keyed.url).host;
  const denied = await fetch(`${keyed.url}/prompt`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  t.equal(denied.status, 401);
  t.match(await denied.json(), { error: { type: 'unauthorized' }, node_errors: [] });
  const allowed = await fetch(`${keyed.url}/object_info/SaveImage`, { headers: { authorization: 'Bearer secret' } });
  t.equal(allowed.status, 200);
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://${at}/ws?clientId=x`);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => {});
  });
  t.equal(refused, 401);
  const socket = await new Promise<Message>((resolve) => {
    const ws = new WebSocket(`ws://${at}/ws?clientId=x&token=secret`);
    t.teardown(() => ws.close());
    ws.once('message', (data) => resolve(JSON.parse(String(data)) as Message));
  });
  t.match(socket, { type: 'status', data: { sid: 'x', status: { exec_info: { queue_remaining: 0 } } } });
});
