// The SDXL refiner hand-off from every front door that picks a model: the M1 form, an OpenAI
// preset, the task API, AUTOMATIC1111's fields and `sdnode generate --refiner`. Each asks a tiny
// SDXL base to hand the second of two steps to a tiny SDXL refiner; the image differs from the
// base's alone, is the same image whichever door asked, and its parameters text names the refiner.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { readPngText } from '../lib/index.js';
import { main } from '../server/cli.js';
import { loadPresets } from '../server/models/presets.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { getJson, outputTestdir, pollTask, postForm, startTestServer, type ApiBody } from './server-helpers.js';

const dir = outputTestdir(t);
const modelsDir = path.join(dir, 'models');
const basePath = await writeTinyCheckpoint(modelsDir, { family: 'sdxl', name: 'base.safetensors' });
const refinerPath = await writeTinyCheckpoint(modelsDir, { family: 'sdxl-refiner', name: 'refiner.safetensors' });
await writeTinyCheckpoint(modelsDir, { family: 'sd1', name: 'sd1.safetensors' });
const presetsFile = path.join(dir, 'presets.json');
const sdxl = { override_settings: { sd_model_checkpoint: 'base' }, steps: 2, cfg_scale: 7 };
await writeFile(presetsFile, JSON.stringify({
  'sdxl-refined': { ...sdxl, refiner_checkpoint: 'refiner', refiner_switch_at: 0.5, hd: { refiner_checkpoint: 'None' } },
  'sdxl-lost-refiner': { ...sdxl, refiner_checkpoint: 'nowhere' },
}));
const { url } = await startTestServer(t, { modelsDir, presets: presetsFile, outputDir: path.join(dir, 'output') });

const request = { prompt: 'a lighthouse', seed: 7, steps: 2, width: 64, height: 64 };
const refinerText = /, Refiner: refiner, Refiner switch at: 0\.5/;
const pixels = (png: Buffer): Promise<Buffer> => sharp(png).removeAlpha().raw().toBuffer();

async function m1(fields: Record<string, string>): Promise<{ status: number; body: ApiBody; png?: Buffer }> {
  const queued = await postForm(`${url}/text-to-image`, {
    prompt: request.prompt, seed: '7', steps: '2', width: '64', height: '64', model: 'base', ...fields,
  });
  if (queued.status !== 200) return queued;
  const resultUrl = `${url}${queued.body.resultUrl ?? ''}`;
  const body = (await pollTask(resultUrl, (b) => b.status === 'COMPLETE' || b.status === 'FAILED')).at(-1) as ApiBody;
  if (body.status !== 'COMPLETE') return { status: 200, body };
  return { status: 200, body, png: Buffer.from(await (await fetch(`${resultUrl}/1.png`)).arrayBuffer()) };
}

const plain = (await m1({})).png as Buffer;
const refined = await m1({ refiner_checkpoint: 'refiner', refiner_switch_at: '0.5' });

async function sameHandOff(t: Test, png: Buffer | undefined): Promise<void> {
  t.ok(png, 'an image');
  if (!png) return;
  t.match(readPngText(png).parameters, refinerText, 'the parameters text names the refiner');
  t.ok((await pixels(png)).equals(await pixels(refined.png as Buffer)), 'the image the M1 hand-off made');
}

t.test('M1: refiner_checkpoint and refiner_switch_at hand the last steps to the refiner', async (t) => {
  t.equal(refined.body.status, 'COMPLETE');
  t.match(readPngText(refined.png as Buffer).parameters, refinerText);
  t.notOk((await pixels(refined.png as Buffer)).equals(await pixels(plain)), 'the refiner changed the image');
  const none = await m1({ refiner_checkpoint: 'none' });
  t.ok((await pixels(none.png as Buffer)).equals(await pixels(plain)), '"none" is no refiner');
});

t.test('M1: bad refiner fields are 400s (404 for an unknown name) that name the field', async (t) => {
  for (const value of ['0', '1.5', 'soon']) {
    const bad = await m1({ refiner_checkpoint: 'refiner', refiner_switch_at: value });
    t.match(bad, { status: 400, body: { error: { code: 'INVALID_PARAMETER', message: /refiner_switch_at/ } } }, value);
  }
  t.match((await m1({ refiner_switch_at: '0.5' })).body.error?.message, /refiner_switch_at needs refiner_checkpoint/);
  const unknown = await m1({ refiner_checkpoint: 'nowhere' });
  t.match(unknown, { status: 404, body: { error: { code: 'MODEL_NOT_FOUND', message: /"nowhere" for refiner_checkpoint; available: .*refiner/ } } });
  const itself = await m1({ refiner_checkpoint: 'base' });
  t.match(itself, { status: 400, body: { error: { message: /refiner_checkpoint names base, the model that generates/ } } });
});

t.test('a refiner of another family fails the job, saying which checkpoint and what a refiner must be', async (t) => {
  const sd1 = await m1({ refiner_checkpoint: 'sd1' });
  t.match(sd1.body, {
    status: 'FAILED',
    error: { code: 'INVALID_PARAMETER', message: 'The refiner checkpoint sd1 is an SD 1.x model; a refiner must be an SDXL refiner or another SDXL checkpoint' },
  });
});

async function openai(model: string, quality?: string) {
  const response = await fetch(`${url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: request.prompt, seed: 7, size: '64x64', response_format: 'b64_json', ...(quality && { quality }) }),
  });
  const body = await response.json() as { data?: { b64_json: string }[]; error?: Record<string, unknown> };
  const b64 = body.data?.[0]?.b64_json;
  return { status: response.status, body, png: b64 === undefined ? undefined : Buffer.from(b64, 'base64') };
}

t.test('OpenAI: a preset\'s refiner_checkpoint and refiner_switch_at apply to its requests; a variant can turn it off', async (t) => {
  const preset = await openai('sdxl-refined');
  t.equal(preset.status, 200);
  await sameHandOff(t, preset.png);
  const hd = await openai('sdxl-refined', 'hd');
  t.ok((await pixels(hd.png as Buffer)).equals(await pixels(plain)), 'refiner_checkpoint "None" in the hd variant');
  const lost = await openai('sdxl-lost-refiner');
  t.match(lost, { status: 404, body: { error: { code: 'model_not_found', param: 'model', message: /"nowhere" for refiner_checkpoint of preset sdxl-lost-refiner/ } } });
});

t.test('OpenAI presets: refiner fields are checked when the presets load', async (t) => {
  await t.rejects(loadPresets({ p: { refiner_checkpoint: 'refiner', refiner_switch_at: 0 } }),
    new TypeError('Preset p.refiner_switch_at must be a number above 0 and at most 1, but is 0'));
  await t.rejects(loadPresets({ p: { hd: { refiner_checkpoint: 5 } } }), /Preset p\.hd\.refiner_checkpoint must be text/);
  const { table, warnings } = await loadPresets({ p: { refiner_switch_at: 0.6, hd: { refiner_checkpoint: 'refiner' } }, q: { refiner_switch_at: 0.6 } });
  t.match(table.p, { refinerSwitchAt: 0.6, variants: { hd: { refinerCheckpoint: 'refiner' } } });
  t.same(warnings.filter((line) => line.includes('refiner')), ['q.refiner_switch_at is ignored: the preset names no refiner_checkpoint']);
});

t.test('task API: refiner_model and refiner_switch_at, in the query as in a task', async (t) => {
  const query = (extra: string) => `${url}/txt2img?prompt=a%20lighthouse&model=base&seed=7&steps=2&guidance=7&width=64&height=64${extra}`;
  const response = await fetch(query('&refiner_model=refiner&refiner_switch_at=0.5'));
  t.equal(response.status, 200);
  await sameHandOff(t, Buffer.from(await response.arrayBuffer()));
  const bad = await getJson(query('&refiner_model=refiner&refiner_switch_at=0'));
  t.match(bad, { status: 422, body: { detail: [{ loc: ['body', 'refiner_switch_at'], msg: /above 0 and at most 1/ }] } });
  const alone = await getJson(query('&refiner_switch_at=0.5'));
  t.match(alone, { status: 422, body: { detail: [{ loc: ['body', 'refiner_switch_at'], msg: /needs refiner_model/ }] } });
  const unknown = await getJson(query('&refiner_model=nowhere'));
  t.match(unknown, { status: 404, body: { detail: /"nowhere" for refiner_model/ } });
  const started = await fetch(`${url}/task`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task_type: 'txt2img', ...request, model: 'base', guidance: 7, refiner_model: 'refiner.safetensors', refiner_switch_at: 0.5 }),
  });
  const { task_id: id } = await started.json() as { task_id: string };
  const finished = (await pollTask(`${url}/task/${id}`, (event) => (event as { event_type?: string }).event_type === 'finished')).at(-1);
  t.match(finished, { parameters_used: { refiner_model: 'refiner', refiner_switch_at: 0.5 } }, 'the name as resolved');
  const blob = await fetch((finished as { blob_url: string }).blob_url);
  await sameHandOff(t, Buffer.from(await blob.arrayBuffer()));
});

t.test('AUTOMATIC1111: the same fields, and an unknown refiner_checkpoint named in the 404', async (t) => {
  const txt2img = async (fields: Record<string, unknown>) => {
    const response = await fetch(`${url}/sdapi/v1/txt2img`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...request, override_settings: { sd_model_checkpoint: 'base' }, ...fields }),
    });
    return { status: response.status, body: await response.json() as { images?: string[]; detail?: unknown } };
  };
  const refinedA1111 = await txt2img({ refiner_checkpoint: 'refiner', refiner_switch_at: 0.5 });
  await sameHandOff(t, refinedA1111.body.images && Buffer.from(refinedA1111.body.images[0] as string, 'base64'));
  t.match(await txt2img({ refiner_checkpoint: 'nowhere' }), { status: 404, body: { detail: /"nowhere" for refiner_checkpoint/ } });
  t.equal((await txt2img({ refiner_checkpoint: null, refiner_switch_at: 0 })).status, 200, 'a switch-at without a refiner is left alone, as A1111 does');
});

async function cli(t: Test, args: string[]): Promise<{ code: number; output: string }> {
  const errors = t.capture(console, 'error');
  const logs = t.capture(console, 'log');
  const code = await main(['generate', '-m', basePath, '-p', request.prompt, '-s', '7', '--steps', '2', '-W', '64', '-H', '64',
    '-t', '1', '--backend', 'cpu', ...args]);
  return { code, output: [...errors(), ...logs()].map((call) => call.args.join(' ')).join('\n') };
}

t.test('sdnode generate --refiner FILE --refiner-switch-at N loads the refiner and hands off to it', async (t) => {
  const out = path.join(t.testdir(), 'refined.png');
  const { code, output } = await cli(t, ['--refiner', refinerPath, '--refiner-switch-at', '0.5', '-o', out]);
  t.equal(code, 0, output);
  await sameHandOff(t, await readFile(out));
});

t.test('sdnode generate: refiner flag mistakes exit 2 naming the flag', async (t) => {
  const out = path.join(t.testdir(), 'never.png');
  const zero = await cli(t, ['--refiner', refinerPath, '--refiner-switch-at', '0', '-o', out]);
  t.match(zero, { code: 2, output: /Expected a number above 0 and at most 1 for --refiner-switch-at but received 0/ });
  const alone = await cli(t, ['--refiner-switch-at', '0.5', '-o', out]);
  t.match(alone, { code: 2, output: /--refiner-switch-at needs the refiner: --refiner <file>/ });
  const missing = await cli(t, ['--refiner', path.join(modelsDir, 'missing.safetensors'), '-o', out]);
  t.match(missing, { code: 2, output: /Cannot read --refiner .*missing\.safetensors: ENOENT/ });
  const sd1 = await cli(t, ['--refiner', path.join(modelsDir, 'sd1.safetensors'), '-o', out]);
  t.match(sd1, { code: 2, output: /--refiner must be an SDXL or SDXL refiner model other than the one generating, but received a SD 1\.x model/ });
});
