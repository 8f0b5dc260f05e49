// A server killed mid-task (SIGKILL: no chance to clean up) resumes the task at its next start,
// and every image ends up on disk and served.

import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';
import t, { type Test } from 'tap';

import { writeTinyCheckpoint } from './fixtures/checkpoint.js';
import { exitCode, getJson, jobFolders, outputTestdir, pollTask, postForm, spawnCli, waitForOutput } from './server-helpers.js';

async function startCli(t: Test, args: string[]): Promise<{ url: string; child: ReturnType<typeof spawnCli> }> {
  const child = spawnCli(args);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await waitForOutput(child, /Press Ctrl\+C to stop/);
  return { url: /listening on (http:\/\/\S+)/.exec(child.output())?.[1] ?? '', child };
}


t.test('a task interrupted by SIGKILL completes after a restart on the same --output', async (t) => {
  const dir = outputTestdir(t);
  const modelPath = await writeTinyCheckpoint(dir);
  const outputDir = path.join(dir, 'output');
  const args = ['serve', '--model', modelPath, '--port', '0', '--output', outputDir, '--threads', '1'];

  const first = await startCli(t, args);
  t.match(first.child.output(), new RegExp(`curl -F prompt="a photo of a cat" ${first.url}/text-to-image`));
  const totalImages = 4;
  const { body } = await postForm(`${first.url}/text-to-image`,
    { prompt: 'a lighthouse', iterations: String(totalImages), steps: '4', seed: '1000', width: '64', height: '64' });
  const resultUrl = body.resultUrl ?? '';
  const [midway] = (await pollTask(`${first.url}${resultUrl}`, (status) => (status.imageUrls?.length ?? 0) >= 1)).slice(-1);
  t.equal(midway?.status, 'IN_PROGRESS', 'killed while the task is in progress');
  first.child.kill('SIGKILL');
  await exitCode(first.child);

  const taskDir = path.join(outputDir, path.basename(resultUrl));
  const pngsBefore = (await readdir(taskDir)).filter((name) => /^\d+\.png$/.test(name));
  t.ok(pngsBefore.length >= 1 && pngsBefore.length < totalImages, `${pngsBefore.length} images made before the kill`);
  t.match(JSON.parse(await readFile(path.join(taskDir, 'job.json'), 'utf8')), { state: 'IN_PROGRESS' });
  const bytesBefore = await Promise.all(pngsBefore.map((name) => readFile(path.join(taskDir, name))));

  const second = await startCli(t, args);
  t.match(second.child.output(), /1 unfinished resumed/);
  const seen = await pollTask(`${second.url}${resultUrl}`, (status) => status.status === 'COMPLETE');
  t.same(seen.at(-1)?.imageUrls, Array.from({ length: totalImages }, (_, i) => `${resultUrl}/${i + 1}.png`));
  t.match(second.child.output(), new RegExp(`resuming at image ${pngsBefore.length + 1}`));
  for (let n = 1; n <= totalImages; n++) {
    const response = await fetch(`${second.url}${resultUrl}/${n}.png`);
    t.equal(response.status, 200, `image ${n} is served`);
    t.match(await sharp(Buffer.from(await response.arrayBuffer())).metadata(), { format: 'png', width: 64, height: 64 });
  }
  const after = await Promise.all(pngsBefore.map((name) => readFile(path.join(taskDir, name))));
  t.ok(after.every((bytes, i) => bytes.equals(bytesBefore[i] ?? Buffer.alloc(0))), 'images made before the kill are kept');
  t.same((await readdir(taskDir)).filter((name) => name.endsWith('.tmp')), [], 'no temporary files left');
  t.match((await getJson(`${second.url}/health`)).body, { ready: true, queue: { waiting: 0, running: 0 } });
});

t.test('--delete-incomplete removes the interrupted task instead', async (t) => {
  const dir = outputTestdir(t);
  const modelPath = await writeTinyCheckpoint(dir);
  const outputDir = path.join(dir, 'output');
  const args = ['serve', '--model', modelPath, '--port', '0', '--output', outputDir, '--threads', '1'];

  const first = await startCli(t, args);
  const { body } = await postForm(`${first.url}/text-to-image`,
    { prompt: 'a lighthouse', iterations: '4', steps: '4', width: '64', height: '64' });
  const resultUrl = body.resultUrl ?? '';
  await pollTask(`${first.url}${resultUrl}`, (status) => (status.imageUrls?.length ?? 0) >= 1);
  first.child.kill('SIGKILL');
  await exitCode(first.child);

  const second = await startCli(t, [...args, '--delete-incomplete']);
  t.match(second.child.output(), /1 unfinished deleted/);
  t.equal((await getJson(`${second.url}${resultUrl}`)).status, 404);
  t.same(await jobFolders(outputDir), []);
});
