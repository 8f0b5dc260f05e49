// The web page at / in a real browser (Debian's chromium through playwright-core): a prompt
// becomes an image in the gallery with its settings, a painted mask goes out with an inpainting
// request, a waiting job is cancelled, the fields follow a FLUX.1 model's family (a Kontext model's
// image to image edits by instruction), and the page
// works behind an API key and under --api-prefix. Screenshots of the page are saved under
// .tap/web-page/ to look at.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import sharp from 'sharp';
import t, { type Test } from 'tap';

import { samplers } from '../lib/index.js';
import { flowSamplerNames } from '../lib/samplers.js';
import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { writeTinyFlux } from './fixtures/flux.js';
import { FakeModel, getJson, jobFolders, outputTestdir, startTestServer } from './server-helpers.js';

const chromiumPath = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));
const screenshotDir = path.join(root, '.tap', 'web-page');

if (!existsSync(chromiumPath)) {
  t.fail(`The web page tests drive Chromium, which is not at ${chromiumPath}. Install it with `
    + '`apt-get install -y chromium` (Debian/Ubuntu; .ci/run does this when it is missing)');
} else {
  // The page is built from ui/ here, so the test sees the sources as they are now.
  await promisify(execFile)(process.execPath, [path.join(root, 'scripts', 'build-ui.mjs')]);
  await mkdir(screenshotDir, { recursive: true });
  // Playwright gives every launch a fresh temporary --user-data-dir of its own.
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  webPageTests(browser);
}

function webPageTests(browser: Browser): void {
  t.test('GET / serves the page and its assets, open even with an API key', async (t) => {
    const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['secret'] });
    const page = await fetch(`${url}/`);
    t.equal(page.status, 200);
    t.match(page.headers.get('content-type'), /^text\/html/);
    t.match(page.headers.get('content-security-policy'), /script-src 'self'/);
    t.match(await page.text(), /<script type="module" src="\/ui\/app.js">/);
    for (const [file, type] of [['app.js', /javascript/], ['style.css', /^text\/css/], ['favicon.svg', /^image\/svg/]] as const) {
      const asset = await fetch(`${url}/ui/${file}`);
      t.equal(asset.status, 200, file);
      t.match(asset.headers.get('content-type'), type, file);
    }
    t.equal((await fetch(`${url}/ui/nothing.js`)).status, 404);
  });

  t.test('a prompt becomes images in the gallery; "use these settings" fills the form from the PNG', async (t) => {
    const dir = outputTestdir(t);
    const modelPath = await writeTinyCheckpoint(dir);
    const { url } = await startTestServer(t, { modelPath, outputDir: path.join(dir, 'output') });
    const { page, problems } = await openPage(t, browser, url);
    await waitForText(page.locator('#server-status'), /Model: tiny.* 0 running/);

    const prompt = page.getByLabel('Prompt', { exact: true });
    await prompt.fill('a red lighthouse on a cliff');
    await page.getByLabel('Negative prompt', { exact: true }).fill('blurry');
    await fillFields(page, { Width: '64', Height: '64', Steps: '3', 'CFG scale': '5', Seed: '42', Images: '2' });
    await page.getByLabel('Sampler', { exact: true }).selectOption('dpm++2m');
    await page.getByLabel('Schedule', { exact: true }).selectOption('karras');
    t.same(await optionValues(page.getByLabel('Sampler', { exact: true })), samplers(), 'every sampler the library has');
    t.match(await page.getByLabel('Model', { exact: true }).innerText(), /Server default \(tiny.*\)/);
    await page.getByRole('button', { name: 'Generate' }).click();

    const tiles = page.getByRole('button', { name: /^Image \d of "a red lighthouse on a cliff"/ });
    await tiles.nth(1).locator('img').waitFor();
    t.equal(await tiles.count(), 2);
    t.match(await tiles.first().locator('img').getAttribute('src'), /^blob:/, 'shown from an object URL');
    await waitForText(page.locator('#job-list'), /Done.*2 images/is);
    await page.screenshot({ path: path.join(screenshotDir, 'gallery.png'), fullPage: true });

    await prompt.fill('something else');
    await page.getByLabel('Seed', { exact: true }).fill('7');
    await tiles.nth(1).click();
    const details = page.getByRole('dialog', { name: 'Image settings' });
    await details.waitFor();
    t.match(await details.innerText(), /a red lighthouse on a cliff[\s\S]*Negative: blurry/);
    const fields = await details.locator('dl').innerText();
    for (const field of [/Steps\s+3/, /Sampler\s+DPM\+\+ 2M/, /Schedule type\s+Karras/, /CFG scale\s+5/, /Seed\s+43/, /Size\s+64x64/]) {
      t.match(fields, field);
    }
    await page.screenshot({ path: path.join(screenshotDir, 'image-details.png') });
    await details.getByRole('button', { name: 'Use these settings' }).click();
    await details.waitFor({ state: 'hidden' });
    t.equal(await prompt.inputValue(), 'a red lighthouse on a cliff');
    t.equal(await page.getByLabel('Negative prompt', { exact: true }).inputValue(), 'blurry');
    t.equal(await page.getByLabel('Seed', { exact: true }).inputValue(), '43', 'the seed of the image chosen');
    t.equal(await page.getByLabel('Sampler', { exact: true }).inputValue(), 'dpm++2m');
    t.equal(await page.getByLabel('Schedule', { exact: true }).inputValue(), 'karras');
    t.equal(await page.getByLabel('Steps', { exact: true }).inputValue(), '3');

    await tiles.first().click();
    await details.getByRole('button', { name: 'Use as input image' }).click();
    t.ok(await page.getByLabel('Image to image', { exact: true }).isChecked(), 'switches to image to image');
    await waitForText(page.locator('#image-info'), /^64 × 64 px/);
    t.match(await page.getByAltText('The input image').getAttribute('src'), /^blob:/);
    t.same(problems, [], 'no script errors');
  });

  t.test('painting a mask over the uploaded image and inpainting sends that mask', async (t) => {
    const dir = outputTestdir(t);
    const modelPath = await writeTinyCheckpoint(dir);
    const outputDir = path.join(dir, 'output');
    const { url } = await startTestServer(t, { modelPath, outputDir });
    const { page, problems } = await openPage(t, browser, url);

    await page.getByLabel('Inpaint', { exact: true }).check();
    await page.getByLabel('Image file (PNG, JPEG or WebP)', { exact: true })
      .setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: await gradientPng(128, 96) });
    const canvas = page.getByLabel(/^Inpainting mask/);
    await canvas.waitFor();
    await page.getByRole('button', { name: 'Use the image\'s size' }).click();
    t.equal(await page.getByLabel('Width', { exact: true }).inputValue(), '128');
    t.equal(await page.getByLabel('Height', { exact: true }).inputValue(), '96');

    // A horizontal stroke across the middle of the image, from 30% to 70% of its width.
    await page.getByLabel('Brush', { exact: true }).fill('30');
    const box = await canvas.boundingBox();
    if (!box) throw new Error('The mask canvas is not visible');
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();

    await page.getByLabel('Prompt', { exact: true }).fill('a stone tower');
    await fillFields(page, { Steps: '2', Seed: '5', Strength: '0.9', 'Mask blur': '0' });
    await page.screenshot({ path: path.join(screenshotDir, 'inpaint.png'), fullPage: true });
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: /^Image 1 of "a stone tower"/ }).locator('img').waitFor();

    const [id] = await jobFolders(outputDir);
    const job = JSON.parse(await readFile(path.join(outputDir, id as string, 'job.json'), 'utf8')) as { mode: string };
    t.equal(job.mode, 'inpaint');
    const { data, info } = await sharp(path.join(outputDir, id as string, 'mask.png')).greyscale().raw().toBuffer({ resolveWithObject: true });
    t.match(info, { width: 128, height: 96 }, 'the mask has the image\'s size');
    const at = (x: number, y: number): number => data[Math.round(y * (info.height - 1)) * info.width + Math.round(x * (info.width - 1))] as number;
    t.equal(at(0.5, 0.5), 255, 'painted: white');
    t.equal(at(0.35, 0.5), 255, 'painted: white');
    t.equal(at(0.1, 0.5), 0, 'left of the stroke: black');
    t.equal(at(0.9, 0.5), 0, 'right of the stroke: black');
    t.equal(at(0.5, 0.05), 0, 'above the stroke: black');
    t.same(problems, [], 'no script errors');
  });

  t.test('a refiner chosen on the page takes over; the image\'s settings name it and "use these settings" picks it again', async (t) => {
    const dir = outputTestdir(t);
    const modelsDir = path.join(dir, 'models');
    await writeTinyCheckpoint(modelsDir, { family: 'sdxl', name: 'base.safetensors' });
    await writeTinyCheckpoint(modelsDir, { family: 'sdxl-refiner', name: 'refiner.safetensors' });
    const { url } = await startTestServer(t, { modelsDir, outputDir: path.join(dir, 'output') });
    const { page, problems } = await openPage(t, browser, url);
    const refiner = page.getByLabel('Refiner', { exact: true });
    const switchAt = page.getByLabel('Refiner switch at', { exact: true });
    await refiner.locator('option[value="refiner"]').waitFor({ state: 'attached' });
    t.same(await optionValues(refiner), ['', 'base', 'refiner'], 'none, then the checkpoints');
    t.ok(await switchAt.isDisabled(), 'no switch-at without a refiner');
    await refiner.selectOption('refiner');
    await page.getByLabel('Prompt', { exact: true }).fill('a lighthouse');
    await fillFields(page, { Width: '64', Height: '64', Steps: '2', Seed: '7', 'Refiner switch at': '0.5' });
    await page.getByRole('button', { name: 'Generate' }).click();
    const tile = page.getByRole('button', { name: /^Image 1 of "a lighthouse"/ });
    await tile.locator('img').waitFor();

    await refiner.selectOption('');
    await tile.click();
    const details = page.getByRole('dialog', { name: 'Image settings' });
    await details.waitFor();
    const fields = await details.locator('dl').innerText();
    t.match(fields, /Refiner\s+refiner/);
    t.match(fields, /Refiner switch at\s+0\.5/);
    await details.getByRole('button', { name: 'Use these settings' }).click();
    t.equal(await refiner.inputValue(), 'refiner');
    t.equal(await switchAt.inputValue(), '0.5');
    t.ok(await switchAt.isEnabled());
    t.same(problems, [], 'no script errors');
  });

  t.test('a FLUX.1 dev model offers guidance and its samplers, leaves out the unused negative prompt at cfg 1 and makes an image; '
    + 'an SD model keeps its fields', async (t) => {
    const dir = outputTestdir(t);
    const modelsDir = path.join(dir, 'models');
    const outputDir = path.join(dir, 'output');
    await writeTinyCheckpoint(modelsDir, { name: 'sd.safetensors' });
    // The components (and the T5 tokenizer, so the page's prompt can be read) named by a JSON file in the models folder.
    const dev = await writeTinyFlux(path.join(dir, 'flux-parts'), { variant: 'flux-dev' });
    await writeFile(path.join(modelsDir, 'flux-dev.json'), JSON.stringify(dev));
    const { url } = await startTestServer(t, { modelsDir, outputDir });
    const { page, problems } = await openPage(t, browser, url);

    const model = page.getByLabel('Model', { exact: true });
    const guidance = page.getByLabel('Guidance', { exact: true });
    const negative = page.getByLabel('Negative prompt', { exact: true });
    const sampler = page.getByLabel('Sampler', { exact: true });
    const cfg = page.getByLabel('CFG scale', { exact: true });
    const width = page.getByLabel('Width', { exact: true });
    await model.locator('option[value="flux-dev"]').waitFor({ state: 'attached' });
    t.same((await optionValues(model)).sort(), ['', 'flux-dev', 'sd'], 'the server default, then the models by name');

    await model.selectOption('sd');
    t.ok(await guidance.isHidden(), 'no guidance for SD');
    t.same(await optionValues(sampler), samplers(), 'every sampler for SD');
    t.equal(await sampler.inputValue(), 'euler_a');
    await cfg.fill('1');
    t.ok(await negative.isEnabled(), 'an SD model keeps its negative prompt at cfg 1');
    t.same([await width.getAttribute('step'), await width.getAttribute('placeholder')], ['8', '512']);
    await cfg.fill('');

    await model.selectOption('flux-dev');
    await guidance.waitFor();
    t.equal(await guidance.getAttribute('placeholder'), '3.5');
    t.ok(await negative.isDisabled(), 'at FLUX.1\'s cfg 1 the negative prompt is unused');
    await waitForText(page.locator('#negative-prompt-hint'), /Unused at CFG scale 1/);
    t.same(await optionValues(sampler), flowSamplerNames, 'only the flow samplers');
    t.equal(await sampler.inputValue(), 'euler', 'the family\'s sampler');
    t.equal(await page.getByLabel('Steps', { exact: true }).getAttribute('placeholder'), '20');
    t.equal(await cfg.getAttribute('placeholder'), '1');
    t.same([await width.getAttribute('step'), await width.getAttribute('placeholder')], ['16', '1024']);
    await cfg.fill('2');
    t.ok(await negative.isEnabled(), 'above cfg 1 the negative prompt is used');
    await negative.fill('blurry');
    await cfg.fill('1');
    t.ok(await negative.isDisabled());
    t.equal(await negative.inputValue(), 'blurry', 'its text stays for a higher cfg');

    await page.getByLabel('Prompt', { exact: true }).fill('a lighthouse at dawn');
    await fillFields(page, { Width: '64', Height: '64', Steps: '2', Seed: '3', Guidance: '5' });
    await page.screenshot({ path: path.join(screenshotDir, 'flux-dev.png'), fullPage: true });
    await page.getByRole('button', { name: 'Generate' }).click();
    const tile = page.getByRole('button', { name: /^Image 1 of "a lighthouse at dawn"/ });
    // The job list says why, should the job fail.
    await waitForText(page.locator('#job-list'), /Done/i, 60_000);
    await tile.locator('img').waitFor();
    const [id] = await jobFolders(outputDir);
    const job = JSON.parse(await readFile(path.join(outputDir, id as string, 'job.json'), 'utf8')) as { model: string; parameters: object };
    t.equal(job.model, 'flux-dev');
    t.match(job.parameters, { guidance: 5, cfgScale: 1, sampler: 'euler', width: 64, height: 64 });
    t.notOk('negativePrompt' in job.parameters, 'the disabled negative prompt is not sent');
    await tile.click();
    const details = page.getByRole('dialog', { name: 'Image settings' });
    t.match(await details.locator('dl').innerText(), /Distilled CFG Scale\s+5/);
    await details.getByRole('button', { name: 'Close' }).click();

    await model.selectOption('sd');
    t.ok(await guidance.isHidden(), 'guidance hides again');
    t.ok(await negative.isEnabled());
    t.same(await optionValues(sampler), samplers());
    t.equal(await sampler.inputValue(), 'euler_a', 'SD\'s sampler as before');
    t.same(problems, [], 'no script errors');
  });

  t.test('with a FLUX.1 Kontext model, image to image edits the image by the prompt: a hint, no strength, the image\'s size',
    async (t) => {
      const dir = outputTestdir(t);
      const modelsDir = path.join(dir, 'models');
      const outputDir = path.join(dir, 'output');
      await writeTinyCheckpoint(modelsDir, { name: 'sd.safetensors' });
      const dev = await writeTinyFlux(path.join(dir, 'flux-parts'), { variant: 'flux-dev' });
      await writeFile(path.join(modelsDir, 'flux1-kontext-dev.json'), JSON.stringify(dev));
      const { url } = await startTestServer(t, { modelsDir, outputDir });
      const { page, problems } = await openPage(t, browser, url);

      const model = page.getByLabel('Model', { exact: true });
      const strength = page.getByLabel('Strength', { exact: true });
      const hint = page.locator('#kontext-hint');
      await model.locator('option[value="flux1-kontext-dev"]').waitFor({ state: 'attached' });
      await page.getByLabel('Image to image', { exact: true }).check();
      await model.selectOption('sd');
      t.ok(await strength.isVisible(), 'an SD model takes a strength');
      t.ok(await hint.isHidden());
      await model.selectOption('flux1-kontext-dev');
      t.ok(await strength.isHidden(), 'Kontext noises nothing: no strength');
      await waitForText(hint, /reads the image beside the prompt/);
      t.equal(await page.getByLabel('Width', { exact: true }).getAttribute('placeholder'), 'image\'s', 'empty, the size is the image\'s');

      await page.getByLabel('Image file (PNG, JPEG or WebP)', { exact: true })
        .setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: await gradientPng(96, 64) });
      await page.getByLabel('Prompt', { exact: true }).fill('make the sky red');
      await fillFields(page, { Steps: '1', Seed: '2' });
      await page.screenshot({ path: path.join(screenshotDir, 'kontext.png'), fullPage: true });
      await page.getByRole('button', { name: 'Generate' }).click();
      await waitForText(page.locator('#job-list'), /Done/i, 60_000);
      await page.getByRole('button', { name: /^Image 1 of "make the sky red"/ }).locator('img').waitFor();
      const [id] = await jobFolders(outputDir);
      const job = JSON.parse(await readFile(path.join(outputDir, id as string, 'job.json'), 'utf8')) as
        { mode: string; uploads: Record<string, string>; parameters: Record<string, unknown> };
      t.match(job, { mode: 'img2img', model: 'flux1-kontext-dev', uploads: { reference1: /^reference1\./ } });
      t.notOk('image' in job.uploads, 'the image is a reference, not a start');
      t.notOk('strength' in job.parameters);
      t.match(await sharp(path.join(outputDir, id as string, '1.png')).metadata(), { width: 96, height: 64 }, 'the image\'s size');

      await model.selectOption('sd');
      t.ok(await strength.isVisible(), 'the strength comes back');
      t.ok(await hint.isHidden());
      t.same(problems, [], 'no script errors');
    });

  t.test('a waiting job can be cancelled; a running one shows its progress and live preview', async (t) => {
    const model = new FakeModel({ open: false });
    const { url } = await startTestServer(t, { model });
    const { page, problems } = await openPage(t, browser, url);
    const generate = page.getByRole('button', { name: 'Generate' });
    const prompt = page.getByLabel('Prompt', { exact: true });
    await fillFields(page, { Width: '64', Height: '64', Steps: '4' });
    await prompt.fill('first');
    await generate.click();
    await prompt.fill('second');
    await generate.click();

    const jobs = page.locator('#job-list > li');
    await waitForText(jobs.nth(0), /Waiting/i);
    await waitForText(jobs.nth(1), /Running/i);
    model.release();
    await waitForText(jobs.nth(1), /Image 1 of 1 · 25%/);
    await jobs.nth(1).locator('img[src^="blob:"]').waitFor();
    t.equal(await jobs.nth(1).getByRole('progressbar').getAttribute('value'), '0.25');
    await page.screenshot({ path: path.join(screenshotDir, 'queue.png'), fullPage: true });

    await page.getByRole('button', { name: 'Cancel "second"' }).click();
    await waitForText(jobs.nth(0), /Cancelled/i);
    const stored = await page.evaluate(() => localStorage.getItem('sdnode.jobs'));
    const [second] = JSON.parse(stored ?? '[]') as { resultUrl: string }[];
    t.match((await getJson(`${url}${second?.resultUrl}`)).body, { status: 'FAILED', error: { code: 'CANCELLED' } });

    model.release({ open: true });
    await waitForText(jobs.nth(1), /Done/i);
    t.equal(model.calls.length, 1, 'the cancelled job never ran');
    t.same(problems, [], 'no script errors');
  });

  t.test('with an API key: the page says it needs one, and works once it is entered', async (t) => {
    const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['secret-key'] });
    const { page, problems } = await openPage(t, browser, url);
    const banner = page.locator('#page-error');
    await waitForText(banner, /This server needs an API key.*Enter the server's API key/);

    const key = page.getByLabel('API key', { exact: true });
    await key.fill('wrong');
    await page.getByRole('button', { name: 'Save key' }).click();
    await waitForText(banner, /The API key is not valid/);
    await page.getByLabel('Prompt', { exact: true }).fill('a locked door');
    await fillFields(page, { Width: '64', Height: '64', Steps: '2' });
    await page.getByRole('button', { name: 'Generate' }).click();
    await waitForText(page.locator('#form-error'), /The API key is not valid \(UNAUTHORIZED\)/);

    await key.fill('secret-key');
    await page.getByRole('button', { name: 'Save key' }).click();
    await banner.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'Generate' }).click();
    const tile = page.getByRole('button', { name: /^Image 1 of "a locked door"/ }).locator('img');
    await tile.waitFor();
    t.match(await tile.getAttribute('src'), /^blob:/);

    await page.reload();
    t.equal(await page.getByLabel('API key', { exact: true }).inputValue(), 'secret-key', 'the key is kept');
    await tile.waitFor();
    t.same(problems, [], 'no script errors');
  });
  t.test('under --api-prefix the page, its assets and every call it makes live below the prefix', async (t) => {
    const { url } = await startTestServer(t, { model: new FakeModel(), apiPrefix: '/sd' });
    const { page, problems } = await openPage(t, browser, url);
    await waitForText(page.locator('#server-status'), /Model: fake-model.* 0 running/);
    t.equal(await page.getByRole('link', { name: 'API docs' }).getAttribute('href'), '/sd/docs');
    await page.getByLabel('Prompt', { exact: true }).fill('a harbour at dusk');
    await fillFields(page, { Width: '64', Height: '64', Steps: '2' });
    await page.getByRole('button', { name: 'Generate' }).click();
    const tile = page.getByRole('button', { name: /^Image 1 of "a harbour at dusk"/ }).locator('img');
    await tile.waitFor();
    t.match(await tile.getAttribute('src'), /^blob:/);
    const stored = await page.evaluate(() => localStorage.getItem('sdnode.jobs'));
    t.match(JSON.parse(stored ?? '[]'), [{ resultUrl: /^\/sd\/text-to-image\// }]);
    t.same(problems, [], 'no script errors');
  });
}

async function openPage(t: Test, browser: Browser, url: string): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  // Answers such as a 401 are logged by the browser too; those are the page's business.
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(message.text());
  });
  await page.goto(`${url}/`);
  return { page, problems };
}

async function fillFields(page: Page, values: Record<string, string>): Promise<void> {
  for (const [label, value] of Object.entries(values)) await page.getByLabel(label, { exact: true }).fill(value);
}

async function optionValues(select: Locator): Promise<string[]> {
  return select.locator('option').evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value));
}

/** Waits until the element's text matches; the error names what it last said. */
async function waitForText(locator: Locator, pattern: RegExp, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    text = await locator.innerText({ timeout: timeoutMs }).catch(() => '');
    if (pattern.test(text)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Timed out waiting for ${pattern}; the text was: ${JSON.stringify(text)}`);
}

/** A left-to-right gradient, so the input image is visibly something. */
async function gradientPng(width: number, height: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set([Math.round((255 * x) / width), 120, Math.round((255 * y) / height)], (y * width + x) * 3);
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
