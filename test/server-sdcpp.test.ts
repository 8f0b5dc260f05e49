// stable-diffusion.cpp's sd-server API (--api sdcpp): capabilities, img_gen jobs polled to their
// images (text-to-image on a tiny checkpoint, image-to-image), cancelling queued and running jobs,
// and errors in its { error: { code, message } } shape.
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { FakeModel, outputTestdir, solidPng, startTestServer, waitFor } from './server-helpers.js';

interface Job {
  id: string;
  status: string;
  started: number | null;
  result: { output_format: string; images: { index: number; b64_json: string }[] } | null;
  error: { code: string; message: string } | null;
}

async function call(url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

async function finishedJob(url: string, id: string): Promise<Job> {
  let job: Job | undefined;
  await waitFor(async () => {
    job = (await call(`${url}/sdcpp/v1/jobs/${id}`)).body as unknown as Job;
    return ['completed', 'failed', 'cancelled'].includes(job.status);
  }, 60_000);
  return job!;
}

t.test('img_gen queues a job that completes with base64 PNGs; init_image makes it image-to-image', async (t) => {
  const dir = outputTestdir(t);
  const modelPath = await writeTinyCheckpoint(dir);
  const { url } = await startTestServer(t, { modelPath, outputDir: path.join(dir, 'out'), apis: ['sdcpp'] });

  interface Capabilities {
    current_mode: string; supported_modes: string[]; model: { stem: string }; samplers: string[]; schedulers: string[];
    defaults: unknown; defaults_by_mode: { img_gen: unknown }; features_by_mode: { img_gen: { cancel_generating: boolean } };
  }
  const capabilities = (await call(`${url}/sdcpp/v1/capabilities`)).body as unknown as Capabilities;
  t.equal(capabilities.current_mode, 'img_gen');
  t.same(capabilities.supported_modes, ['img_gen']);
  t.equal(capabilities.model.stem, path.basename(modelPath, '.safetensors'));
  t.ok(capabilities.samplers.includes('euler_a') && capabilities.schedulers.includes('karras'));
  t.same(capabilities.defaults, capabilities.defaults_by_mode.img_gen);
  t.equal(capabilities.features_by_mode.img_gen.cancel_generating, true);

  const request = { prompt: 'a lighthouse', width: 64, height: 64, seed: 42, batch_count: 2, sample_params: { sample_steps: 2, sample_method: 'euler', guidance: { txt_cfg: 5 } } };
  const accepted = await call(`${url}/sdcpp/v1/img_gen`, request);
  t.equal(accepted.status, 202);
  t.match(accepted.body, { kind: 'img_gen', status: 'queued', poll_url: `/sdcpp/v1/jobs/${accepted.body.id as string}` });
  const job = await finishedJob(url, accepted.body.id as string);
  t.equal(job.status, 'completed');
  t.equal(job.error, null);
  t.same(job.result!.images.map((image) => image.index), [0, 1]);
  const png = Buffer.from(job.result!.images[0]!.b64_json, 'base64');
  t.same([(await sharp(png).metadata()).width, (await sharp(png).metadata()).height], [64, 64]);

  const init = await solidPng(64, 64, 200);
  const edited = await call(`${url}/sdcpp/v1/img_gen`, { ...request, batch_count: 1, init_image: `data:image/png;base64,${init.toString('base64')}`, strength: 0.5 });
  const result = await finishedJob(url, edited.body.id as string);
  t.equal(result.status, 'completed');
  t.equal(result.result!.images.length, 1);
});

t.test('cancel stops a running job and removes a queued one; a finished job is 409', async (t) => {
  const model = new FakeModel({ open: false });
  const { url } = await startTestServer(t, { model, apis: ['sdcpp'] });
  const running = (await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'a', sample_params: { sample_steps: 5 } })).body.id as string;
  const queued = (await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'b' })).body.id as string;
  await waitFor(async () => ((await call(`${url}/sdcpp/v1/jobs/${running}`)).body as unknown as Job).status === 'generating');
  const waiting = (await call(`${url}/sdcpp/v1/jobs/${queued}`)).body;
  t.match(waiting, { status: 'queued', queue_position: 0, started: null, result: null });

  const cancelQueued = await call(`${url}/sdcpp/v1/jobs/${queued}/cancel`, {});
  t.equal(cancelQueued.status, 200);
  t.match(cancelQueued.body, { status: 'cancelled', error: { code: 'cancelled' } });
  t.equal((await call(`${url}/sdcpp/v1/jobs/${running}/cancel`, {})).status, 200);
  t.match(await finishedJob(url, running), { status: 'cancelled', result: null, error: { code: 'cancelled' } });
  const again = await call(`${url}/sdcpp/v1/jobs/${running}/cancel`, {});
  t.equal(again.status, 409);
  t.equal((again.body.error as { code: string }).code, 'conflict');
});

t.test('bad requests are 400 naming the field, unknown jobs 404', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apis: ['sdcpp'] });
  const missing = await call(`${url}/sdcpp/v1/img_gen`, { width: 64 });
  t.equal(missing.status, 400);
  t.match(missing.body, { error: { code: 'invalid_parameter', message: /prompt is required/ } });
  const sampler = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', sample_params: { sample_method: 'nope' } });
  t.equal(sampler.status, 400);
  t.match(sampler.body, { error: { message: /sample_params\.sample_method/ } });
  const size = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', width: 100 });
  t.match(size, { status: 400, body: { error: { message: /width/ } } });
  const empty = await call(`${url}/sdcpp/v1/img_gen`, {});
  t.equal(empty.status, 400);
  const unknown = await call(`${url}/sdcpp/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA`);
  t.match(unknown, { status: 404, body: { error: { code: 'not_found' } } });
});

t.test('cache_mode and cache_option reach the library as its cache option; bad ones are 400 naming the field', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model, apis: ['sdcpp'] });
  const capabilities = (await call(`${url}/sdcpp/v1/capabilities`)).body as { features: { cache: boolean }; defaults: { cache_mode: string } };
  t.match(capabilities, { features: { cache: true }, defaults: { cache_mode: 'disabled' } }, 'capabilities say the server caches steps');
  const accepted = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', width: 64, height: 64, cache_mode: 'ucache', cache_option: 'threshold=1.5,start=0.2,reset=0' });
  t.equal(accepted.status, 202, JSON.stringify(accepted.body));
  t.equal((await finishedJob(url, accepted.body.id as string)).status, 'completed');
  t.match(model.calls.at(-1), { cache: { mode: 'ucache', threshold: 1.5, start: 0.2, reset: false } });
  const disabled = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', width: 64, height: 64, cache_mode: 'disabled' });
  await finishedJob(url, disabled.body.id as string);
  t.notOk('cache' in model.calls.at(-1)!, 'sd-server\'s "disabled" is no cache');
  const mode = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', cache_mode: 'teacache' });
  t.match(mode, { status: 400, body: { error: { message: /Expected none, easycache or ucache for cache_mode but received teacache/ } } });
  const option = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', cache_mode: 'ucache', cache_option: 'skip=3' });
  t.match(option, { status: 400, body: { error: { message: /Unknown cache_option "skip"; known: threshold, start, end, decay, relative, reset/ } } });
  const huge = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', cache_mode: 'ucache', cache_option: 'threshold=1,'.repeat(200) });
  t.match(huge, { status: 400, body: { error: { message: /cache_option/ } } });
  const typed = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', cache_mode: { nested: ['ucache'] } });
  t.match(typed, { status: 400, body: { error: { message: /cache_mode/ } } });
  const alone = await call(`${url}/sdcpp/v1/img_gen`, { prompt: 'x', cache_option: 'threshold=1' });
  t.match(alone, { status: 400, body: { error: { message: /cache_option sets step caching's settings: give cache_mode/ } } });
});
