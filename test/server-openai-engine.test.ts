// The OpenAI Images API on real (tiny, random) checkpoints: the images decode, edits keep every
// opaque pixel, and a models folder switches checkpoints by name.

import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import t from 'tap';

import { readPngText } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { outputTestdir, startTestServer } from './server-helpers.js';

function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

async function decoded(b64: string | undefined): Promise<Buffer> {
  return Buffer.from(b64 ?? '', 'base64');
}

t.test('a generation is a PNG of the asked size with its parameters', async (t) => {
  const dir = outputTestdir(t);
  const modelPath = await writeTinyCheckpoint(dir);
  const { url } = await startTestServer(t, { modelPath, outputDir: path.join(dir, 'out') });
  const result = await client(url).images.generate({ prompt: 'a lighthouse', size: '64x64', seed: 5, model: 'gpt-image-1', quality: 'low' } as OpenAI.ImageGenerateParamsNonStreaming);
  const png = await decoded(result.data?.[0]?.b64_json);
  t.match(await sharp(png).metadata(), { format: 'png', width: 64, height: 64 });
  t.match(readPngText(png).parameters, /^a lighthouse\nSteps: 12, Sampler: DPM\+\+ 2M, Schedule type: Karras, CFG scale: 6, Seed: 5, Size: 64x64/);
});

t.test('an edit repaints the transparent half and keeps every opaque pixel', async (t) => {
  const dir = outputTestdir(t);
  const modelPath = await writeTinyCheckpoint(dir, { inpaint: true });
  const { url } = await startTestServer(t, { modelPath, outputDir: path.join(dir, 'out') });
  const width = 64;
  const height = 64;
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) % 251;
  const photo = await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
  const rgba = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = width / 2; x < width; x++) rgba[(y * width + x) * 4 + 3] = 255;
  const mask = await sharp(rgba, { raw: { width, height, channels: 4 } }).png().toBuffer();
  const result = await client(url).images.edit({
    image: await toFile(photo, 'photo.png', { type: 'image/png' }),
    mask: await toFile(mask, 'mask.png', { type: 'image/png' }),
    prompt: 'a window',
    size: '64x64',
  });
  const edited = await sharp(await decoded(result.data?.[0]?.b64_json)).removeAlpha().raw().toBuffer();
  let keptSame = true;
  let changed = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * width + x) * 3 + c;
        if (x >= width / 2 && edited[i] !== rgb[i]) keptSame = false;
        if (x < width / 2 && edited[i] !== rgb[i]) changed++;
      }
    }
  }
  t.ok(keptSame, 'every opaque pixel comes back unchanged');
  t.ok(changed > width * height, `the transparent half was repainted (${changed} values changed)`);
});

t.test('a models folder with two checkpoints and --max-loaded 1 switches between them by name', async (t) => {
  const dir = outputTestdir(t);
  const modelsDir = path.join(dir, 'models');
  await mkdir(path.join(modelsDir, 'more'), { recursive: true });
  await copyFile(await writeTinyCheckpoint(dir, { seed: 1 }), path.join(modelsDir, 'first.safetensors'));
  await copyFile(await writeTinyCheckpoint(dir, { seed: 2 }), path.join(modelsDir, 'more', 'second.safetensors'));
  const lines: string[] = [];
  const { url } = await startTestServer(t, { modelsDir, maxLoaded: 1, outputDir: path.join(dir, 'out'), log: (line) => lines.push(line) });
  const make = async (model: string) => {
    const result = await client(url).images.generate({ model, prompt: 'a hill', size: '64x64', seed: 9 } as OpenAI.ImageGenerateParamsNonStreaming);
    return sharp(await decoded(result.data?.[0]?.b64_json)).raw().toBuffer();
  };
  const first = await make('first');
  const second = await make('more/second');
  const firstAgain = await make('first');
  t.notOk(first.equals(second), 'different checkpoints, different pictures');
  t.ok(first.equals(firstAgain), 'the same checkpoint, reloaded, gives the same picture');
  t.same(lines.filter((line) => /^(Loading|Unloading) model/.test(line)).map((line) => line.split(' (')[0]),
    ['Loading model first', 'Unloading model first', 'Loading model more/second', 'Unloading model more/second', 'Loading model first']);
});
