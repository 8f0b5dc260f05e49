// TAESD, the tiny autoencoder: loaded with a model (`taesd`), it makes the previews and, with
// `vaeDecoder: 'taesd'`, the final images. Random weights in the released layouts (test/fixtures/taesd.ts).
import sharp from 'sharp';
import t from 'tap';

import { generate, loadModel, type Progress } from '../lib/index.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTaesd } from './fixtures/taesd.js';

const dir = t.testdir();
const checkpoint = await writeTinyCheckpoint(dir);
const taesd = await writeTaesd(dir);
const taesdOriginal = await writeTaesd(dir, { layout: 'original' });
const model = await loadModel(checkpoint, { backend: 'cpu', threads: 1, taesd });
const plainModel = await loadModel(checkpoint, { backend: 'cpu', threads: 1 });
t.teardown(async () => {
  await model.close();
  await plainModel.close();
});

const quick = { prompt: 'a lighthouse at dusk', width: 96, height: 64, steps: 3, seed: 7, sampler: 'euler' } as const;

async function rgbOf(png: Buffer): Promise<Buffer> {
  return sharp(png).raw().toBuffer();
}

t.test('a model loaded with a TAESD says so in its info', async (t) => {
  t.equal(model.info.taesd, true);
  t.equal(plainModel.info.taesd, false);
  const taesdBytes = model.info.weightBytes - plainModel.info.weightBytes;
  t.ok(taesdBytes > 2_000_000 && taesdBytes < 3_000_000, `weightBytes counts the TAESD decoder's 1.2M f16 weights (${taesdBytes})`);
});

t.test("vaeDecoder 'taesd' makes an image of the requested size, unlike the VAE's, the same every time", async (t) => {
  const [draft] = await model.textToImage({ ...quick, vaeDecoder: 'taesd' });
  const [again] = await model.textToImage({ ...quick, vaeDecoder: 'taesd' });
  const [full] = await model.textToImage(quick);
  const [plain] = await plainModel.textToImage(quick);
  const metadata = await sharp(draft!.png).metadata();
  t.same([draft!.width, draft!.height, metadata.width, metadata.height, metadata.channels], [96, 64, 96, 64, 3]);
  t.ok(draft!.png.equals(again!.png), 'deterministic');
  t.notOk((await rgbOf(draft!.png)).equals(await rgbOf(full!.png)), 'the TAESD image differs from the VAE image');
  t.ok(full!.png.equals(plain!.png), "'vae' (the default) is the VAE image, TAESD loaded or not");
  const pixels = await rgbOf(draft!.png);
  t.ok(new Set(pixels).size > 16, 'not a flat image');
});

t.test('both released layouts of the same weights decode alike', async (t) => {
  const other = await loadModel(checkpoint, { backend: 'cpu', threads: 1, taesd: taesdOriginal });
  t.teardown(() => other.close());
  const [diffusers] = await model.textToImage({ ...quick, vaeDecoder: 'taesd' });
  const [original] = await other.textToImage({ ...quick, vaeDecoder: 'taesd' });
  t.ok((await rgbOf(original!.png)).equals(await rgbOf(diffusers!.png)));
});

t.test('with a TAESD loaded, previews are its decode at the image size; the last is the draft image', async (t) => {
  const events: Progress[] = [];
  await model.textToImage({ ...quick, previews: true, onProgress: (p) => events.push(p) });
  t.equal(events.length, 3);
  for (const { preview } of events) {
    t.same([preview!.width, preview!.height], [96, 64]);
    const metadata = await sharp(preview!.png).metadata();
    t.same([metadata.width, metadata.height], [96, 64]);
  }
  // euler's last step lands on the denoiser's estimate, which is what the last preview shows.
  const [draft] = await model.textToImage({ ...quick, vaeDecoder: 'taesd' });
  t.ok((await rgbOf(events[2]!.preview!.png)).equals(await rgbOf(draft!.png)));

  const plainEvents: Progress[] = [];
  await plainModel.textToImage({ ...quick, previews: true, onProgress: (p) => plainEvents.push(p) });
  t.same([plainEvents[0]!.preview!.width, plainEvents[0]!.preview!.height], [12, 8], 'without one: a pixel per latent cell');
});

t.test('works with image-to-image, inpainting, seamless tiling and generate()', async (t) => {
  const [start] = await plainModel.textToImage({ ...quick, width: 64 });
  const [img2img] = await model.imageToImage({ ...quick, width: 64, image: start!.png, strength: 0.5, vaeDecoder: 'taesd' });
  t.same([img2img!.width, img2img!.height], [64, 64]);
  const mask = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } })
    .composite([{ input: { create: { width: 32, height: 64, channels: 3, background: '#fff' } }, left: 32, top: 0 }]).png().toBuffer();
  const [inpainted] = await model.inpaint({ ...quick, width: 64, image: start!.png, mask, maskBlur: 0, vaeDecoder: 'taesd' });
  const kept = await rgbOf(start!.png);
  const result = await rgbOf(inpainted!.png);
  t.ok(result.subarray(0, 3 * 16).equals(kept.subarray(0, 3 * 16)), 'the kept side stays the input');
  const [tiled] = await model.textToImage({ ...quick, tiling: true, vaeDecoder: 'taesd' });
  t.same([tiled!.width, tiled!.height], [96, 64]);
  const [viaGenerate] = await generate({ ...quick, model: checkpoint, backend: 'cpu', threads: 1, taesd, vaeDecoder: 'taesd' });
  const [direct] = await model.textToImage({ ...quick, vaeDecoder: 'taesd' });
  t.ok(viaGenerate!.png.equals(direct!.png));
});

t.test('rejects bad values of vaeDecoder and taesd', async (t) => {
  await t.rejects(plainModel.textToImage({ ...quick, vaeDecoder: 'taesd' }),
    { name: 'RangeError', message: /vaeDecoder is 'taesd' but the model was loaded without a TAESD/ });
  await t.rejects(model.textToImage({ ...quick, vaeDecoder: 'tiny' as 'taesd' }),
    { name: 'RangeError', message: /vaeDecoder/ });
  await t.rejects(loadModel(checkpoint, { threads: 1, taesd: '' }), { name: 'TypeError', message: /taesd/ });
  await t.rejects(loadModel(checkpoint, { threads: 1, taesd: 5 as unknown as string }), { name: 'TypeError', message: /taesd/ });
});

t.test('a bad TAESD file fails the load with an error naming the file or the tensor', async (t) => {
  const missing = await writeTaesd(dir, { name: 'missing.safetensors', omit: 'decoder.layers.7.conv.2.weight' });
  await t.rejects(loadModel(checkpoint, { threads: 1, taesd: missing }),
    { code: 'ERR_MODEL_FORMAT', message: /decoder\.layers\.7\.conv\.2\.weight/ });
  const noBias = await writeTaesd(dir, { name: 'no-bias.safetensors', layout: 'original', omit: '1.bias' });
  await t.rejects(loadModel(checkpoint, { threads: 1, taesd: noBias }), { code: 'ERR_MODEL_FORMAT', message: /'1\.bias'/ });
  await t.rejects(loadModel(checkpoint, { threads: 1, taesd: checkpoint }),
    { code: 'ERR_MODEL_FORMAT', message: /not a TAESD decoder/ });
  await t.rejects(loadModel(checkpoint, { threads: 1, taesd: `${dir}/nothing.safetensors` }), { code: 'ERR_MODEL_IO' });
  const wide = await writeTaesd(dir, { name: 'sd3.safetensors', latentChannels: 16, channels: 8 });
  await t.rejects(loadModel(checkpoint, { threads: 1, taesd: wide }),
    { code: 'ERR_MODEL_UNSUPPORTED', message: /16-channel latents/ });
});
