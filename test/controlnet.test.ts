// ControlNet through the library: units steer the UNet by their control image, weight and window;
// weight 0 gives the very image made without the unit; files for another family, files that are
// not ControlNets and unknown names are refused with messages that say what is wrong and what exists.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t from 'tap';

import { loadModel, type ControlNetUnit, type ImageOptions, type Model } from '../lib/index.js';
import type { NativeLoadOptions } from '../bindings/native.js';
import { loadAddon } from '../bindings/index.js';
import { controlImage, legacyShortHash, nativeControlUnits } from '../lib/controlnet.js';
import type { NormalizedControlNet } from '../lib/options.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTinyControlNet } from './fixtures/controlnet.js';
import { encodeGguf } from './fixtures/gguf.js';
import { readSafetensorsHeader } from './fixtures/safetensors.js';

const dir = t.testdir();
const controlNetDir = path.join(dir, 'controlnet');
const canny = await writeTinyControlNet(controlNetDir, { name: 'control_tiny_canny.safetensors' });
const other = await writeTinyControlNet(controlNetDir, { name: 'control_tiny_depth.safetensors', seed: 2 });
const unprefixed = await writeTinyControlNet(dir, { name: 'unprefixed.safetensors', unprefixed: true });
const diffusers = await writeTinyControlNet(dir, { name: 'diffusers.safetensors', diffusers: true });
const forSdxl = await writeTinyControlNet(dir, { name: 'for-sdxl.safetensors', family: 'sdxl' });
const damaged = await writeTinyControlNet(dir, { name: 'damaged.safetensors', omit: 'control_model.zero_convs.3.0.weight' });
const notControlNet = await writeTinyCheckpoint(dir, { name: 'a-checkpoint.safetensors' });
const garbage = path.join(dir, 'garbage.safetensors');
await writeFile(garbage, Buffer.from('not a safetensors file at all'));

const model: Model = await loadModel(await writeTinyCheckpoint(dir), { backend: 'cpu', threads: 1, controlNetDir });
t.teardown(() => model.close());

const quick = { prompt: 'a house', width: 64, height: 64, steps: 3, seed: 7 } as const;

// A control image whose left half is black and right half white, and its mirror.
async function halves(darkLeft = true): Promise<Buffer> {
  const rgb = Buffer.alloc(64 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) rgb.fill((x < 32) === darkLeft ? 0 : 255, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3);
  return sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
}
const control = await halves();

async function pixels(options: ImageOptions = {}, call: 'text' | 'image' = 'text'): Promise<Buffer> {
  const [image] = call === 'text'
    ? await model.textToImage({ ...quick, ...options })
    : await model.imageToImage({ ...quick, image: control, strength: 0.6, ...options });
  return sharp(image!.png).raw().toBuffer();
}

const unit = (extra: Partial<ControlNetUnit> = {}): ControlNetUnit => ({ model: canny, image: control, ...extra });
const normalizedUnit: NormalizedControlNet = {
  model: canny, image: control, weight: 1, guidanceStart: 0, guidanceEnd: 1, controlMode: 'balanced', resizeMode: 'crop-and-resize',
  preprocessor: 'none', cannyLow: 100, cannyHigh: 200,
};

t.test('a unit at weight 0 gives the image without ControlNet byte for byte; at weight 1 it changes it', async (t) => {
  const plain = await pixels();
  t.ok((await pixels({ controlNets: [unit({ weight: 0 })] })).equals(plain), 'weight 0: identical pixels');
  const steered = await pixels({ controlNets: [unit()] });
  t.notOk(steered.equals(plain), 'weight 1 changes the image');
  t.ok((await pixels({ controlNets: [unit()] })).equals(steered), 'the same unit gives the same image again');
  t.ok((await pixels()).equals(plain), 'the next call without a unit is the plain image again');
});

t.test('the control image, the weight, the window and the control mode each change the image', async (t) => {
  const steered = await pixels({ controlNets: [unit()] });
  const variants: Record<string, Partial<ControlNetUnit>> = {
    'the mirrored control image': { image: await halves(false) },
    'weight 0.5': { weight: 0.5 },
    'the first half of the steps only': { guidanceEnd: 0.5 },
    'the second half of the steps only': { guidanceStart: 0.5 },
    "'prompt' mode": { controlMode: 'prompt' },
    "'control' mode": { controlMode: 'control' },
  };
  const seen = [steered];
  for (const [what, extra] of Object.entries(variants)) {
    const image = await pixels({ controlNets: [unit(extra)] });
    t.notOk(seen.some((earlier) => earlier.equals(image)), `${what} gives an image of its own`);
    seen.push(image);
  }
});

t.test('a window that ends before the first step is reached steers nothing', async (t) => {
  // Steps 0, 1, 2 of 3 sit at fractions 0, 1/3, 2/3: a window of [0.1, 0.2] holds none of them.
  t.ok((await pixels({ controlNets: [unit({ guidanceStart: 0.1, guidanceEnd: 0.2 })] })).equals(await pixels()));
});

t.test('units add up: two units differ from each alone, and a second unit at weight 0 changes nothing', async (t) => {
  const first = await pixels({ controlNets: [unit()] });
  const second = await pixels({ controlNets: [unit({ model: other })] });
  const both = await pixels({ controlNets: [unit(), unit({ model: other })] });
  t.notOk(both.equals(first));
  t.notOk(both.equals(second));
  t.ok((await pixels({ controlNets: [unit(), unit({ model: other, weight: 0 })] })).equals(first));
});

t.test('a unit names its model by file stem in controlNetDir, in any case and with an A1111 hash, or by path', async (t) => {
  const byPath = await pixels({ controlNets: [unit()] });
  t.ok((await pixels({ controlNets: [unit({ model: 'control_tiny_canny' })] })).equals(byPath));
  t.ok((await pixels({ controlNets: [unit({ model: `CONTROL_tiny_Canny [${await legacyShortHash(canny)}]` })] })).equals(byPath));
  t.ok((await pixels({ controlNets: [unit({ model: unprefixed })] })).equals(byPath),
    'a file saved without the control_model. prefix is the same network');
  t.ok((await pixels({ controlNets: [unit({ model: diffusers })] })).equals(byPath),
    "the same weights in diffusers' ControlNetModel names are the same network");
});

t.test('a .gguf ControlNet is the same network as its .safetensors', async (t) => {
  const file = await readFile(canny);
  const header = readSafetensorsHeader(file);
  const tensors = [...header.tensors].map(([name, entry]) => ({
    name, type: 'f16' as const, shape: entry.shape,
    data: file.subarray(header.dataStart + entry.data_offsets[0], header.dataStart + entry.data_offsets[1]),
  }));
  const gguf = path.join(dir, 'control.gguf');
  await writeFile(gguf, encodeGguf(tensors));
  t.ok((await pixels({ controlNets: [unit({ model: gguf })] })).equals(await pixels({ controlNets: [unit()] })));
});

t.test('the parameters text records each unit as the A1111 extension does', async (t) => {
  const [image] = await model.textToImage({ ...quick, controlNets: [unit({ model: 'control_tiny_canny', weight: 0.8, preprocessor: 'canny' })] });
  const hash = await legacyShortHash(canny);
  t.match(image!.parameters, `ControlNet 0: "Module: canny, Model: control_tiny_canny [${hash}], Weight: 0.8, Resize Mode: Crop and Resize, `
    + 'Threshold A: 100, Threshold B: 200, Guidance Start: 0, Guidance End: 1, Control Mode: Balanced"');
});

t.test('the canny preprocessor turns the image into its edges', async (t) => {
  // The halves image is its own edge map's opposite: canny of it is one white line on black.
  const edges = Buffer.alloc(64 * 64 * 3);
  for (let y = 0; y < 64; y++) edges.fill(255, (y * 64 + 31) * 3, (y * 64 + 32) * 3);
  const edgePng = await sharp(edges, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
  const detected = await pixels({ controlNets: [unit({ preprocessor: 'canny' })] });
  t.ok(detected.equals(await pixels({ controlNets: [unit({ image: edgePng })] })), 'the same as giving the edge map itself');
  t.notOk(detected.equals(await pixels({ controlNets: [unit()] })));
});

t.test('image-to-image and inpainting take units too', async (t) => {
  const plain = await pixels({}, 'image');
  t.notOk((await pixels({ controlNets: [unit()] }, 'image')).equals(plain));
  t.ok((await pixels({ controlNets: [unit({ weight: 0 })] }, 'image')).equals(plain));
  const mask = await halves(false);
  const [inpainted] = await model.inpaint({ ...quick, image: control, mask, maskBlur: 0, controlNets: [unit()] });
  const [plainInpaint] = await model.inpaint({ ...quick, image: control, mask, maskBlur: 0 });
  const [a, b] = await Promise.all([sharp(inpainted!.png).raw().toBuffer(), sharp(plainInpaint!.png).raw().toBuffer()]);
  t.notOk(a.equals(b));
  // Outside the mask (its black right half) the input, white there, stays as it was.
  for (let y = 0; y < 64; y += 9) t.equal(a[(y * 64 + 60) * 3], 255);
});

t.test('with the hires fix, units steer the second pass too, their images fitted to its size', async (t) => {
  const hires = { scale: 2, steps: 2, denoisingStrength: 0.6 } as const;
  const draw = async (on: Model, controlNets?: ControlNetUnit[]) => {
    const [image] = await on.textToImage({ ...quick, hires, ...(controlNets && { controlNets }) });
    t.equal(image!.width, 128);
    return sharp(image!.png).raw().toBuffer();
  };
  const plain = await draw(model);
  t.ok((await draw(model, [unit({ weight: 0 })])).equals(plain), 'weight 0: the plain hires image');
  t.notOk((await draw(model, [unit()])).equals(plain), 'a unit changes the hires image');
  // The library hands the engine each unit's image at the second pass's size as well …
  const [prepared] = await nativeControlUnits([normalizedUnit], undefined, 64, 64, { width: 128, height: 128 });
  t.ok(Buffer.from(prepared!.hiresImage!).equals(Buffer.from(await controlImage(normalizedUnit, 128, 128, 'unit'))));
  // … and the engine steers the second pass with it: the same request without it differs.
  const native = await loadAddon().loadModel(model.path, { backend: 'cpu', threads: 1, prediction: 'auto' } as NativeLoadOptions);
  t.teardown(() => native.close());
  const ids = { tokens: Int32Array.from({ length: 77 }, (_, i) => (i === 0 ? 49406 : 49407)), weights: new Float32Array(77).fill(1) };
  const request = {
    mode: 'txt2img', width: 64, height: 64, steps: 2, cfgScale: 7, sampler: 'euler_a', scheduler: 'discrete', seed: 1, rng: 'gpu',
    clipSkip: 0, count: 1, strength: 1, prompt: ids, negative: ids,
    hires: { width: 128, height: 128, upscaleWidth: 128, upscaleHeight: 128, upscaler: 'latent-bilinear', steps: 2, denoisingStrength: 0.6 },
  };
  const [both] = await native.generate({ ...request, controlNets: [prepared!] }, () => {});
  const [firstOnly] = await native.generate({ ...request, controlNets: [{ ...prepared!, hiresImage: undefined }] }, () => {});
  t.notOk(Buffer.from(both!.data).equals(Buffer.from(firstOnly!.data)));
});

t.test('the stage API: a unit on the positive and the negative conditioning gives textToImage\'s pixels with that unit', async (t) => {
  const settings = { seed: 42, steps: 3, cfgScale: 7, sampler: 'euler_a' } as const;
  const [expected] = await model.textToImage({ ...settings, prompt: 'a house', width: 64, height: 64, controlNets: [unit()] });
  const [positive, negative] = await Promise.all([model.encodePrompt('a house'), model.encodePrompt('')]);
  const controlImage = { width: 64, height: 64, data: await sharp(control).raw().toBuffer() };
  const controlNets = [{ model: canny, image: controlImage }];
  const sampleWith = async (p: typeof positive, n: typeof negative) => {
    const latent = await model.sample({ ...settings, latent: model.emptyLatent({ width: 64, height: 64 }), positive: p, negative: n });
    return Buffer.from((await model.decode(latent))[0]!.data);
  };
  const both = await sampleWith({ ...positive, controlNets }, { ...negative, controlNets });
  t.ok(both.equals(await sharp(expected!.png).raw().toBuffer()), 'same pixels as textToImage with the unit');
  const positiveOnly = await sampleWith({ ...positive, controlNets }, negative);
  t.notOk(positiveOnly.equals(both), 'on the positive alone (ComfyUI\'s ControlNetApply) the negative pass is unsteered');
  t.ok((await sampleWith({ ...positive, controlNets: [{ ...controlNets[0]!, strength: 0 }] }, negative)).equals(await sampleWith(positive, negative)),
    'strength 0 is the image without it');
  t.throws(() => model.sample({ ...settings, latent: model.emptyLatent({ width: 64, height: 64 }), positive: { ...positive, controlNets: [{ model: canny }] }, negative } as never),
    { name: 'TypeError', message: /positive\.controlNets\[0\]\.image/ });
});

t.test('an inpainting checkpoint takes a ControlNet of its family: the network reads the latent, not the mask channels', async (t) => {
  const inpaintModel = await loadModel(await writeTinyCheckpoint(dir, { inpaint: true }), { backend: 'cpu', threads: 1 });
  t.teardown(() => inpaintModel.close());
  const mask = await halves(false);
  const draw = async (controlNets?: ControlNetUnit[]) => {
    const [image] = await inpaintModel.inpaint({ ...quick, image: control, mask, maskBlur: 0, ...(controlNets && { controlNets }) });
    return sharp(image!.png).raw().toBuffer();
  };
  const plain = await draw();
  t.ok((await draw([unit({ weight: 0 })])).equals(plain));
  t.notOk((await draw([unit()])).equals(plain));
});

t.test('SD 2.x and SDXL models take ControlNets of their family, with the same properties', async (t) => {
  for (const family of ['sd2', 'sdxl'] as const) {
    const familyModel = await loadModel(await writeTinyCheckpoint(dir, { family }), { backend: 'cpu', threads: 1 });
    t.teardown(() => familyModel.close());
    const net = family === 'sdxl' ? forSdxl : await writeTinyControlNet(dir, { name: `for-${family}.safetensors`, family });
    const inDiffusersLayout = await writeTinyControlNet(dir, { name: `for-${family}-diffusers.safetensors`, family, diffusers: true });
    const draw = async (controlNets?: ControlNetUnit[]) => {
      const [image] = await familyModel.textToImage({ ...quick, ...(controlNets && { controlNets }) });
      return sharp(image!.png).raw().toBuffer();
    };
    const plain = await draw();
    t.ok((await draw([unit({ model: net, weight: 0 })])).equals(plain), `${family}: weight 0 is the plain image`);
    const steered = await draw([unit({ model: net })]);
    t.notOk(steered.equals(plain), `${family}: weight 1 changes it`);
    t.ok((await draw([unit({ model: inDiffusersLayout })])).equals(steered), `${family}: the diffusers layout is the same network`);
  }
});

t.test('a ControlNet of another family is refused, naming both families', async (t) => {
  await t.rejects(model.textToImage({ ...quick, controlNets: [unit({ model: forSdxl })] }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /for-sdxl\.safetensors is a ControlNet for SDXL but the model is SD 1\.x/,
  });
});

t.test('files that are not ControlNets, or broken ones, are clear errors and the model keeps working', async (t) => {
  await t.rejects(model.textToImage({ ...quick, controlNets: [unit({ model: notControlNet })] }), {
    code: 'ERR_MODEL_UNSUPPORTED', message: /a-checkpoint\.safetensors is a Stable Diffusion checkpoint, not a ControlNet/,
  });
  await t.rejects(model.textToImage({ ...quick, controlNets: [unit({ model: damaged })] }), {
    code: 'ERR_MODEL_FORMAT', message: /zero_convs\.3\.0\.weight/,
  });
  await t.rejects(model.textToImage({ ...quick, controlNets: [unit({ model: garbage })] }), { code: 'ERR_MODEL_FORMAT' });
  t.ok((await pixels({ controlNets: [unit()] })).equals(await pixels({ controlNets: [unit()] })), 'a good unit still works');
});

t.test('an unknown name is a RangeError listing the ControlNets the folder has', async (t) => {
  await t.rejects(model.textToImage({ ...quick, controlNets: [unit({ model: 'control_v11p_sd15_openpose' })] }), {
    name: 'RangeError',
    message: /Unknown ControlNet "control_v11p_sd15_openpose" for controlNets\[0\]\.model: .*available: control_tiny_canny, control_tiny_depth/,
  });
  const bare = await loadModel(await writeTinyCheckpoint(dir), { backend: 'cpu', threads: 1 });
  t.teardown(() => bare.close());
  await t.rejects(bare.textToImage({ ...quick, controlNets: [unit({ model: 'control_tiny_canny' })] }), {
    name: 'RangeError', message: /no ControlNet folder is set; give controlNetDir/,
  });
  t.ok((await bare.textToImage({ ...quick, controlNetDir, controlNets: [unit({ model: 'control_tiny_canny' })] })).length === 1,
    "a call's own controlNetDir");
});

t.test('bad unit options are refused naming the field and what is allowed', async (t) => {
  const cases: Array<[Partial<ControlNetUnit> | Record<string, unknown>, RegExp]> = [
    [{ weight: 3 }, /number between 0 and 2 for controlNets\[0\]\.weight but received 3/],
    [{ guidanceStart: 0.8, guidanceEnd: 0.2 }, /controlNets\[0\]\.guidanceStart \(0\.8\) must not be after controlNets\[0\]\.guidanceEnd \(0\.2\)/],
    [{ controlMode: 'strict' }, /one of balanced, prompt, control for controlNets\[0\]\.controlMode/],
    [{ resizeMode: 'stretch' }, /one of just-resize, crop-and-resize, resize-and-fill for controlNets\[0\]\.resizeMode/],
    [{ preprocessor: 'openpose' }, /one of none, canny for controlNets\[0\]\.preprocessor/],
    [{ cannyLow: 50 }, /controlNets\[0\]\.cannyLow applies to preprocessor 'canny' only/],
    [{ preprocessor: 'canny', cannyHigh: 300 }, /integer between 1 and 255 for controlNets\[0\]\.cannyHigh/],
    [{ strength: 1 }, /Unknown option "strength" for controlNets\[0\]; known options: model, image, weight/],
    [{ model: '' }, /non-empty string for controlNets\[0\]\.model/],
  ];
  for (const [extra, message] of cases) {
    await t.rejects(model.textToImage({ ...quick, controlNets: [{ ...unit(), ...extra } as ControlNetUnit] }), { message }, JSON.stringify(extra));
  }
  await t.rejects(model.textToImage({ ...quick, controlNets: [unit({ image: Buffer.from('no image') })] }),
    { name: 'TypeError', message: /PNG, JPEG or WebP image for controlNets\[0\]\.image/ });
  await t.rejects(model.textToImage({ ...quick, controlNets: Array.from({ length: 9 }, () => unit()) }),
    { message: /array of at most 8 .* for controlNets/ });
});
