// Every sampler with every schedule, both random number generators, and prompts beyond one
// 77-token chunk, through the public library on a tiny checkpoint.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, samplers, schedulers, type GeneratedImage } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { cpu } from './fixtures/draw.js';

const model = await loadModel(await writeTinyCheckpoint(t.testdir()), cpu);
t.teardown(() => model.close());

const quick = { prompt: 'a photo of a cat', width: 64, height: 64, steps: 3, seed: 5 } as const;

async function pixels(images: Promise<GeneratedImage[]>): Promise<Buffer> {
  const [image] = await images;
  return sharp(image!.png).raw().toBuffer();
}

// lms, ipndm, ipndm_v, plms, ddim_trailing and tcd have their own file, samplers-multistep.test.ts.
const samplersHere = ['euler_a', 'euler', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'lcm', 'ddim', 'res_multistep'];

// The schedules of the UNet families; sgm_uniform and flux are the flow models' (FLUX.1, SD3).
const unetSchedules = ['discrete', 'karras', 'exponential', 'lcm', 'simple', 'beta', 'smoothstep'];

t.test('euler_a … res_multistep run with every schedule, deterministically', async (t) => {
  t.same(samplers().filter((s) => samplersHere.includes(s)), samplersHere);
  t.same(schedulers().filter((s) => unetSchedules.includes(s)), unetSchedules);
  await t.rejects(model.textToImage({ ...quick, scheduler: 'flux' }), { name: 'RangeError', message: /one of discrete, karras, exponential, lcm, simple, beta, smoothstep for this model/ },
    'a flow model\'s schedule is refused for SD, naming the ones it takes');
  const seen = new Map<string, string>();
  for (const sampler of samplersHere) {
    for (const scheduler of unetSchedules) {
      const a = await pixels(model.textToImage({ ...quick, sampler, scheduler }));
      const b = await pixels(model.textToImage({ ...quick, sampler, scheduler }));
      t.ok(a.equals(b), `${sampler} / ${scheduler} gives the same pixels twice`);
      seen.set(`${sampler}/${scheduler}`, a.toString('base64'));
    }
  }
  // Samplers differ from one another (on the same schedule) …
  const onDiscrete = samplersHere.map((s) => seen.get(`${s}/discrete`));
  t.ok(new Set(onDiscrete).size >= samplersHere.length - 1, 'samplers give different images');
  // … and schedules from one another (for the same sampler).
  const forEuler = unetSchedules.map((s) => seen.get(`euler/${s}`));
  t.equal(new Set(forEuler).size, unetSchedules.length, 'schedules give different images');
});

t.test('an unknown sampler or schedule is rejected with the known ones listed', async (t) => {
  await t.rejects(model.textToImage({ ...quick, sampler: 'unipc' }), { name: 'RangeError', message: /euler_a, euler, heun/ });
  await t.rejects(model.textToImage({ ...quick, scheduler: 'cosine' }), { name: 'RangeError', message: /discrete, karras, exponential/ });
});

t.test("rng 'cpu' (torch CPU generator) is deterministic and differs from the default 'gpu'", async (t) => {
  const cpuA = await pixels(model.textToImage({ ...quick, rng: 'cpu' }));
  const cpuB = await pixels(model.textToImage({ ...quick, rng: 'cpu' }));
  const gpu = await pixels(model.textToImage({ ...quick, rng: 'gpu' }));
  t.ok(cpuA.equals(cpuB));
  t.notOk(cpuA.equals(gpu));
});

t.test('a prompt longer than 75 tokens is conditioned on all of it, not truncated', async (t) => {
  const words = Array.from({ length: 90 }, (_, i) => `word${i}`).join(' ');
  const long = await pixels(model.textToImage({ ...quick, prompt: `${words} castle` }));
  const otherEnd = await pixels(model.textToImage({ ...quick, prompt: `${words} forest` }));
  t.notOk(long.equals(otherEnd), 'the words after the first chunk change the image');
});

t.test('emphasis and BREAK change the conditioning', async (t) => {
  const plain = await pixels(model.textToImage({ ...quick, prompt: 'a red car' }));
  const emphasised = await pixels(model.textToImage({ ...quick, prompt: 'a (red:1.5) car' }));
  const broken = await pixels(model.textToImage({ ...quick, prompt: 'a red BREAK car' }));
  t.notOk(plain.equals(emphasised));
  t.notOk(plain.equals(broken));
});
