// The multistep samplers (lms, ipndm, ipndm_v, plms) and DDIM "trailing" / TCD through the public
// library on a tiny checkpoint: every one runs on every schedule, deterministically; their names,
// AUTOMATIC1111 names and aliases resolve; at many steps they land where euler does. How fast
// their error shrinks is tested on ODEs with known solutions in samplers-order.test.ts.
import sharp from 'sharp';
import t from 'tap';

import { loadModel, resolveSampler, samplers, schedulers, type GeneratedImage } from '../lib/index.js';
import { normalizeImageOptions } from '../lib/options.js';
import { formatParameters } from '../lib/png-metadata.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';

const model = await loadModel(await writeTinyCheckpoint(t.testdir()), { backend: 'cpu' });
t.teardown(() => model.close());

const newSamplers = ['lms', 'ipndm', 'ipndm_v', 'plms', 'ddim_trailing', 'tcd'];
const quick = { prompt: 'a wooden boat on a lake', width: 64, height: 64, steps: 5, seed: 13 } as const;

async function pixels(images: Promise<GeneratedImage[]>): Promise<Buffer> {
  const [image] = await images;
  return sharp(image!.png).raw().toBuffer();
}

function meanAbsoluteDifference(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

t.test('the library lists the new samplers and the simple schedule', async (t) => {
  t.same(samplers().slice(-7, -1), newSamplers);
  t.ok(schedulers().includes('simple'));
});

t.test('every new sampler runs with every schedule, deterministically', async (t) => {
  const seen = new Map<string, Buffer>();
  for (const sampler of newSamplers) {
    for (const scheduler of ['discrete', 'karras', 'exponential']) {
      const a = await pixels(model.textToImage({ ...quick, sampler, scheduler }));
      const b = await pixels(model.textToImage({ ...quick, sampler, scheduler }));
      t.ok(a.equals(b), `${sampler} / ${scheduler} gives the same pixels twice`);
      seen.set(`${sampler}/${scheduler}`, a);
    }
  }
  const onKarras = ['lms', 'ipndm', 'ipndm_v', 'plms'].map((s) => seen.get(`${s}/karras`)!.toString('base64'));
  t.equal(new Set(onKarras).size, 4, 'lms, ipndm, ipndm_v and plms differ from one another');
  const lmsBySchedule = ['discrete', 'karras', 'exponential'].map((s) => seen.get(`lms/${s}`)!.toString('base64'));
  t.equal(new Set(lmsBySchedule).size, 3, 'schedules give lms different images');
  // With eta 0 (the reference engine's default) a trailing-DDIM or TCD step is the Euler step.
  const euler = await pixels(model.textToImage({ ...quick, sampler: 'euler', scheduler: 'karras' }));
  t.ok(seen.get('ddim_trailing/karras')!.equals(euler), 'ddim_trailing on a schedule is euler on it');
  t.ok(seen.get('tcd/karras')!.equals(euler), 'tcd on a schedule is euler on it');
});

t.test('ddim_trailing and tcd default to the schedules the reference engine gives them', async (t) => {
  t.same(resolveSampler('ddim_trailing'), { sampler: 'ddim_trailing', scheduler: 'simple' });
  t.same(resolveSampler('tcd'), { sampler: 'tcd', scheduler: 'lcm' });
  const trailing = await pixels(model.textToImage({ ...quick, sampler: 'ddim_trailing' }));
  const onSimple = await pixels(model.textToImage({ ...quick, sampler: 'euler', scheduler: 'simple' }));
  t.ok(trailing.equals(onSimple));
  const tcd = await pixels(model.textToImage({ ...quick, sampler: 'tcd' }));
  const onLcm = await pixels(model.textToImage({ ...quick, sampler: 'euler', scheduler: 'lcm' }));
  t.ok(tcd.equals(onLcm));
});

t.test('lms and ipndm_v step over the levels the lcm schedule repeats beyond 50 steps', async (t) => {
  // Their weights divide by differences of sigmas; a repeated level must not make them NaN.
  const repeated = { ...quick, steps: 52, scheduler: 'lcm' };
  const euler = await pixels(model.textToImage({ ...repeated, sampler: 'euler' }));
  for (const sampler of ['lms', 'ipndm_v']) {
    const gap = meanAbsoluteDifference(euler, await pixels(model.textToImage({ ...repeated, sampler })));
    t.ok(gap < 2, `${sampler} is within ${gap.toFixed(2)} grey levels of euler`);
  }
});

t.test('engine names, AUTOMATIC1111 names and aliases resolve', async (t) => {
  const cases: [string, string, string][] = [
    ['lms', 'lms', 'discrete'],
    ['LMS', 'lms', 'discrete'],
    ['LMS Karras', 'lms', 'karras'],
    ['k-lms', 'lms', 'discrete'],
    ['K_LMS', 'lms', 'discrete'],
    ['PLMS', 'plms', 'discrete'],
    ['iPNDM', 'ipndm', 'discrete'],
    ['ipndm_v', 'ipndm_v', 'discrete'],
    ['DDIM Trailing', 'ddim_trailing', 'simple'],
    ['TCD', 'tcd', 'lcm'],
    ['ddim', 'ddim', 'discrete'],
  ];
  for (const [name, sampler, scheduler] of cases) t.same(resolveSampler(name), { sampler, scheduler }, name);
  t.same(resolveSampler('k-lms', 'exponential'), { sampler: 'lms', scheduler: 'exponential' });
});

t.test('an unknown sampler is rejected with the known names and aliases listed', async (t) => {
  t.throws(() => resolveSampler('unipc'), {
    name: 'RangeError',
    message: /lms, ipndm, ipndm_v, plms, ddim_trailing, tcd, res_multistep .*LMS.*PLMS.*TCD.*k-lms.* for sampler/,
  });
  await t.rejects(model.textToImage({ ...quick, sampler: 'k-plms' }), { name: 'RangeError', message: /k-lms/ });
});

t.test('the parameters text names the sampler as AUTOMATIC1111 does', async (t) => {
  const [image] = await model.textToImage({ ...quick, sampler: 'k-lms', scheduler: 'karras' });
  t.match(image!.parameters, /Sampler: LMS, Schedule type: Karras,/);
  const parameters = (sampler: string) => formatParameters(
    normalizeImageOptions({ prompt: 'boat', sampler }, 'txt2img', { family: 'sd1', prediction: 'eps' }, 'test'), 1, 'm');
  t.match(parameters('plms'), /Sampler: PLMS, CFG scale/);
  t.match(parameters('ddim_trailing'), /Sampler: DDIM Trailing, Schedule type: Simple,/);
  t.match(parameters('TCD'), /Sampler: TCD, Schedule type: LCM,/);
});

t.test('at many steps lms and plms land where euler does', async (t) => {
  // ODE samplers all converge to the same solution; at 64 steps euler's own error leaves them a
  // fraction of a grey level apart, while another seed moves pixels by tens of levels.
  const many = { ...quick, steps: 64, scheduler: 'karras' };
  const euler = await pixels(model.textToImage({ ...many, sampler: 'euler' }));
  const otherSeed = await pixels(model.textToImage({ ...quick, sampler: 'euler', scheduler: 'karras', seed: 14 }));
  const seedGap = meanAbsoluteDifference(euler, otherSeed);
  for (const sampler of ['lms', 'plms']) {
    const gap = meanAbsoluteDifference(euler, await pixels(model.textToImage({ ...many, sampler })));
    t.comment(`${sampler}: mean |difference| to euler ${gap.toFixed(3)} (another seed: ${seedGap.toFixed(1)})`);
    t.ok(gap < 1, `${sampler} is within a grey level of euler on average`);
  }
});
