import t from 'tap';

import { normalizeImageOptions, normalizeLoadOptions, type GenerateMode } from '../lib/options.js';

const sd1 = { family: 'sd1', prediction: 'eps' };
const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

const check = (options: unknown, mode: GenerateMode = 'txt2img', caller = 'textToImage') =>
  normalizeImageOptions(options, mode, sd1, caller);

t.test('rejects each wrong option with a message that names it, what is allowed and what it got', async (t) => {
  const cases: Array<[string, unknown, GenerateMode, typeof TypeError | typeof RangeError, string]> = [
    ['steps 0', { steps: 0 }, 'txt2img', RangeError,
      'Expected integer between 1 and 150 for steps but received 0 of type number'],
    ['steps 151', { steps: 151 }, 'txt2img', RangeError,
      'Expected integer between 1 and 150 for steps but received 151 of type number'],
    ['fractional steps', { steps: 2.5 }, 'txt2img', TypeError,
      'Expected integer between 1 and 150 for steps but received 2.5 of type number'],
    ['steps as text', { steps: '20' }, 'txt2img', TypeError,
      'Expected integer between 1 and 150 for steps but received "20" of type string'],
    ['NaN steps', { steps: Number.NaN }, 'txt2img', TypeError,
      'Expected integer between 1 and 150 for steps but received NaN of type number'],
    ['width not a multiple of 8', { width: 500 }, 'txt2img', RangeError,
      'Expected multiple of 8 between 64 and 2048 for width but received 500 of type number'],
    ['width too small', { width: 56 }, 'txt2img', RangeError,
      'Expected multiple of 8 between 64 and 2048 for width but received 56 of type number'],
    ['height too large', { height: 2056 }, 'txt2img', RangeError,
      'Expected multiple of 8 between 64 and 2048 for height but received 2056 of type number'],
    ['infinite height', { height: Number.POSITIVE_INFINITY }, 'txt2img', RangeError,
      'Expected multiple of 8 between 64 and 2048 for height but received Infinity of type number'],
    ['cfgScale above 30', { cfgScale: 30.5 }, 'txt2img', RangeError,
      'Expected number between 0 and 30 for cfgScale but received 30.5 of type number'],
    ['negative cfgScale', { cfgScale: -1 }, 'txt2img', RangeError,
      'Expected number between 0 and 30 for cfgScale but received -1 of type number'],
    ['negative seed', { seed: -1 }, 'txt2img', RangeError,
      'Expected integer between 0 and 4294967295 for seed but received -1 of type number'],
    ['seed of 2^32', { seed: 2 ** 32 }, 'txt2img', RangeError,
      'Expected integer between 0 and 4294967295 for seed but received 4294967296 of type number'],
    ['seed as a bigint', { seed: 42n }, 'txt2img', TypeError,
      'Expected integer between 0 and 4294967295 for seed but received 42 of type bigint'],
    ['count 17', { count: 17 }, 'txt2img', RangeError,
      'Expected integer between 1 and 16 for count but received 17 of type number'],
    ['count 0', { count: 0 }, 'txt2img', RangeError,
      'Expected integer between 1 and 16 for count but received 0 of type number'],
    ['clipSkip 13', { clipSkip: 13 }, 'txt2img', RangeError,
      'Expected integer between 0 and 12 for clipSkip but received 13 of type number'],
    ['vaeTiling "yes"', { vaeTiling: 'yes' }, 'txt2img', TypeError,
      'Expected boolean for vaeTiling but received "yes" of type string'],
    ['strength 1.5', { image: png, strength: 1.5 }, 'img2img', RangeError,
      'Expected number between 0 and 1 for strength but received 1.5 of type number'],
    ['maskBlur 65', { image: png, mask: png, maskBlur: 65 }, 'inpaint', RangeError,
      'Expected integer between 0 and 64 for maskBlur but received 65 of type number'],
    ['rng "cuda"', { rng: 'cuda' }, 'txt2img', RangeError,
      'Expected one of gpu, cpu for rng but received "cuda" of type string'],
    ['prompt as a number', { prompt: 5 }, 'txt2img', TypeError,
      'Expected string for prompt but received 5 of type number'],
    ['negativePrompt as an array', { negativePrompt: ['a'] }, 'txt2img', TypeError,
      'Expected string for negativePrompt but received array of length 1 of type object'],
    ['image as a number', { image: 1 }, 'img2img', TypeError,
      'Expected Buffer, Uint8Array or file path of a PNG, JPEG or WebP image for image but received 1 of type number'],
    ['missing image', {}, 'img2img', TypeError,
      'Expected Buffer, Uint8Array or file path of a PNG, JPEG or WebP image for image but received undefined of type undefined'],
    ['mask as an empty path', { image: png, mask: '' }, 'inpaint', TypeError,
      'Expected Buffer, Uint8Array or file path of a PNG, JPEG or WebP image for mask but received "" of type string'],
    ['signal that is not an AbortSignal', { signal: { aborted: false } }, 'txt2img', TypeError,
      'Expected AbortSignal for signal but received object of type object'],
    ['onProgress that is not a function', { onProgress: 'log' }, 'txt2img', TypeError,
      'Expected function for onProgress but received "log" of type string'],
    ['scheduler "linear"', { scheduler: 'linear' }, 'txt2img', RangeError,
      'Expected one of discrete, karras, exponential, lcm, simple, sgm_uniform, flux, beta, smoothstep for scheduler but received "linear" of type string'],
  ];
  for (const [what, options, mode, kind, message] of cases) {
    t.throws(() => check(options, mode), new kind(message), what);
  }
});

t.test('lists the known samplers when the sampler is unknown', async (t) => {
  t.throws(() => check({ sampler: 'unipc' }), {
    name: 'RangeError',
    message: 'Expected one of euler_a, euler, heun, dpm2, dpm++2s_a, dpm++2m, lcm, ddim, lms, ipndm, ipndm_v, plms, '
      + 'ddim_trailing, tcd, res_multistep or their AUTOMATIC1111 names (Euler a, Euler, Heun, DPM2, DPM++ 2S a, DPM++ 2M, LCM, DDIM, '
      + 'LMS, iPNDM, iPNDM_v, PLMS, DDIM Trailing, TCD, RES Multistep, with an optional " Karras" or " Exponential") or k-lms, k_lms '
      + 'for sampler but received "unipc" of type string',
  });
});

t.test('rejects an option it does not know, naming the key and the call', async (t) => {
  t.throws(() => check({ prompt: 'a cat', stpes: 20 }), {
    name: 'TypeError',
    message: /^Unknown option "stpes" for textToImage; known options: prompt, negativePrompt, width, /,
  });
  t.throws(() => check({ strength: 0.5 }), { name: 'TypeError', message: /^Unknown option "strength" for textToImage/ },
    'strength belongs to image-to-image only');
  t.throws(() => check({ image: png, mask: png }, 'img2img', 'imageToImage'),
    { message: /^Unknown option "mask" for imageToImage/ });
  t.doesNotThrow(() => check({ prompt: 'a cat', steps: undefined, typo: undefined }), 'undefined counts as omitted');
  t.throws(() => check(null), new TypeError('Expected object for the options of textToImage but received null of type object'));
});

t.test('accepts AUTOMATIC1111 sampler names in any case, and a schedule suffix sets the scheduler', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['Euler a', 'euler_a', 'discrete'],
    ['euler A', 'euler_a', 'discrete'],
    ['Euler', 'euler', 'discrete'],
    ['Heun', 'heun', 'discrete'],
    ['DPM2', 'dpm2', 'discrete'],
    ['DPM++ 2S a', 'dpm++2s_a', 'discrete'],
    ['DPM++ 2M', 'dpm++2m', 'discrete'],
    ['LCM', 'lcm', 'lcm'],
    ['DDIM', 'ddim', 'discrete'],
    ['DPM++ 2M Karras', 'dpm++2m', 'karras'],
    ['dpm++ 2m karras', 'dpm++2m', 'karras'],
    ['Euler a Exponential', 'euler_a', 'exponential'],
    ['dpm++2m', 'dpm++2m', 'discrete'],
    ['DPM++2S_A', 'dpm++2s_a', 'discrete'],
  ];
  for (const [name, sampler, scheduler] of cases) {
    const { settings } = check({ sampler: name });
    t.same([settings.sampler, settings.scheduler], [sampler, scheduler], name);
  }
  t.equal(check({ scheduler: 'Karras' }).settings.scheduler, 'karras');
  t.equal(check({ sampler: 'DPM++ 2M Karras', scheduler: 'karras' }).settings.scheduler, 'karras');
  t.throws(() => check({ sampler: 'DPM++ 2M Karras', scheduler: 'exponential' }), {
    name: 'RangeError',
    message: 'sampler "DPM++ 2M Karras" implies scheduler karras but scheduler is "exponential"; give one of them',
  });
});

t.test('fills in the defaults of the common tools, with the size by model family', async (t) => {
  const { settings, prompt, negativePrompt, maskBlur } = normalizeImageOptions({ seed: 1, subseed: 3 }, 'txt2img', sd1, 'textToImage');
  t.same(settings, {
    mode: 'txt2img', width: 512, height: 512, steps: 20, cfgScale: 7, sampler: 'euler_a', scheduler: 'discrete',
    seed: 1, subseed: 3, subseedStrength: 0, seedResizeWidth: 0, seedResizeHeight: 0, rng: 'gpu', clipSkip: 0, count: 1,
    strength: 1, vaeTiling: false, tiling: false, vaeDecoder: 'vae', previewEvery: 0, maskedStart: 'original',
    originalWidth: 0, originalHeight: 0, cropTop: 0, cropLeft: 0, targetWidth: 0, targetHeight: 0,
    aestheticScore: 6, negativeAestheticScore: 2.5, guidance: 3.5, flowShift: 0,
    slgScale: 0, slgStart: 0.01, slgEnd: 0.2,
  });
  t.same([prompt, negativePrompt, maskBlur], ['', '', 0]);

  const sizeOf = (family: string, prediction: string) => {
    const { width, height } = normalizeImageOptions({}, 'txt2img', { family, prediction }, 'textToImage').settings;
    return `${width}x${height}`;
  };
  t.equal(sizeOf('sd1', 'eps'), '512x512', 'SD 1.x');
  t.equal(sizeOf('sd2', 'eps'), '512x512', 'SD 2.x base (eps)');
  t.equal(sizeOf('sd2', 'v'), '768x768', 'SD 2.x v-prediction');
  t.equal(sizeOf('sdxl', 'eps'), '1024x1024', 'SDXL');

  t.equal(check({ image: png }, 'img2img').settings.strength, 0.75, 'img2img strength');
  const inpaint = check({ image: png, mask: png }, 'inpaint');
  t.same([inpaint.settings.mode, inpaint.settings.strength, inpaint.maskBlur, inpaint.settings.maskedStart], ['inpaint', 0.75, 4, 'original']);
});

t.test('keeps the values it is given', async (t) => {
  const signal = new AbortController().signal;
  const onProgress = () => undefined;
  const normalized = check({
    prompt: 'a cat', negativePrompt: 'blurry', width: 640, height: 64, steps: 150, cfgScale: 0, sampler: 'heun',
    scheduler: 'exponential', seed: 2 ** 32 - 1, subseed: 0, subseedStrength: 1, seedResizeFromWidth: 2048,
    seedResizeFromHeight: 64, count: 16, rng: 'cpu', clipSkip: 2, vaeTiling: true, vaeDecoder: 'taesd', previewEvery: 5, signal,
    onProgress,
  });
  t.same(normalized.settings, {
    mode: 'txt2img', width: 640, height: 64, steps: 150, cfgScale: 0, sampler: 'heun', scheduler: 'exponential',
    seed: 2 ** 32 - 1, subseed: 0, subseedStrength: 1, seedResizeWidth: 2048, seedResizeHeight: 64, rng: 'cpu',
    clipSkip: 2, count: 16, strength: 1, vaeTiling: true, tiling: false, vaeDecoder: 'taesd', previewEvery: 5, maskedStart: 'original',
    originalWidth: 0, originalHeight: 0, cropTop: 0, cropLeft: 0, targetWidth: 0, targetHeight: 0,
    aestheticScore: 6, negativeAestheticScore: 2.5, guidance: 3.5, flowShift: 0,
    slgScale: 0, slgStart: 0.01, slgEnd: 0.2,
  });
  t.equal(normalized.prompt, 'a cat');
  t.equal(normalized.negativePrompt, 'blurry');
  t.equal(normalized.signal, signal);
  t.equal(normalized.onProgress, onProgress);
});

t.test('picks a random seed and subseed between 0 and 2^32-1 when none is given', async (t) => {
  for (const key of ['seed', 'subseed'] as const) {
    const seeds = Array.from({ length: 20 }, () => check({}).settings[key]);
    t.ok(new Set(seeds).size > 1, `${key}s differ`);
    t.same(seeds.filter((seed) => !(Number.isInteger(seed) && seed >= 0 && seed <= 2 ** 32 - 1)), [], 'all in range');
  }
});

t.test('checks load options and defaults them to auto', async (t) => {
  t.same(normalizeLoadOptions(undefined, 'loadModel'), { backend: 'auto', prediction: 'auto', weightType: 'auto' });
  t.same(normalizeLoadOptions({ backend: 'cpu', threads: 4, prediction: 'v' }, 'loadModel'),
    { backend: 'cpu', threads: 4, prediction: 'v', weightType: 'auto' });
  t.throws(() => normalizeLoadOptions({ backend: 'vulkan' }, 'loadModel'),
    new RangeError('Expected one of auto, cpu, metal, cuda for backend but received "vulkan" of type string'));
  t.throws(() => normalizeLoadOptions({ threads: 0 }, 'loadModel'),
    new RangeError('Expected integer between 1 and 1024 for threads but received 0 of type number'));
  t.throws(() => normalizeLoadOptions({ prediction: 'x0' }, 'loadModel'),
    new RangeError('Expected one of auto, eps, v for prediction but received "x0" of type string'));
  t.throws(() => normalizeLoadOptions({ gpu: true }, 'loadModel'),
    { name: 'TypeError', message: 'Unknown option "gpu" for loadModel; known options: backend, threads, prediction, weightType, taesd' });
});
