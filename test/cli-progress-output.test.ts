// The pieces of `sdnode generate` a terminal user sees: the progress bar redrawn in place, and the
// output names that never replace an existing file unless asked.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { writeImages } from '../server/cli/output-files.js';
import { formatBar, formatDuration, ProgressBar, type BarStream } from '../server/cli/progress-bar.js';

function stream(isTTY: boolean, columns = 80): BarStream & { text: () => string } {
  let text = '';
  return { isTTY, columns, write: (chunk: string) => { text += chunk; }, text: () => text };
}

t.test('on a terminal the bar is redrawn in place and lines printed through it land above it', async (t) => {
  const out = stream(true);
  const bar = new ProgressBar(out, 0);
  t.ok(bar.live);
  bar.draw({ label: 'image 1/2', done: 5, total: 20, rate: '1.25 s/step', etaSeconds: 43.4 });
  bar.draw({ label: 'image 1/2', done: 6, total: 20, rate: '1.25 s/step', etaSeconds: 42 });
  bar.print('Saved out.png');
  t.equal(out.text(), '\r\x1b[2Kimage 1/2 ▕██████░░░░░░░░░░░░░░░░░░▏ 5/20  1.25 s/step  ETA 0:43'
    + '\r\x1b[2Kimage 1/2 ▕███████░░░░░░░░░░░░░░░░░▏ 6/20  1.25 s/step  ETA 0:42'
    + '\r\x1b[2KSaved out.png\n');
});

t.test('quick redraws are skipped, but never the last one', async (t) => {
  const out = stream(true);
  const bar = new ProgressBar(out, 60_000);
  for (let done = 1; done <= 1130; done++) bar.draw({ label: 'tensors', done, total: 1130 });
  t.match(out.text(), /^\r\x1b\[2Ktensors ▕░+▏ 1\/1130\r\x1b\[2Ktensors ▕█+▏ 1130\/1130$/);
});

t.test('the bar fits a narrow terminal', async (t) => {
  const out = stream(true, 30);
  new ProgressBar(out).draw({ label: 'tensors', done: 1, total: 1130, etaSeconds: 3 });
  t.equal(out.text().replace('\r\x1b[2K', '').length, 29);
});

t.test('off a terminal nothing is drawn and printed lines are plain', async (t) => {
  const out = stream(false);
  const bar = new ProgressBar(out);
  t.notOk(bar.live);
  bar.draw({ label: 'image 1/1', done: 1, total: 2 });
  bar.print('image 1/1: 2 steps');
  bar.clear();
  t.equal(out.text(), 'image 1/1: 2 steps\n');
});

t.test('durations read as m:ss or h:mm:ss', async (t) => {
  t.same([0, 7.4, 59.6, 750, 3723].map(formatDuration), ['0:00', '0:07', '1:00', '12:30', '1:02:03']);
  t.equal(formatBar({ label: 'x', done: 0, total: 0 }), `x ▕${'░'.repeat(24)}▏ 0/0`);
});

t.test('one image takes the name given, then the next free number', async (t) => {
  const dir = t.testdir();
  const out = path.join(dir, 'cat.png');
  t.same(await writeImages(out, [Buffer.from('a')], false), [out]);
  t.same(await writeImages(out, [Buffer.from('b')], false), [path.join(dir, 'cat-1.png')]);
  t.same(await writeImages(out, [Buffer.from('c')], false), [path.join(dir, 'cat-2.png')]);
  t.equal(await readFile(out, 'utf8'), 'a', 'the first file is kept');
});

t.test('several images are numbered from 1 and a second run goes on counting', async (t) => {
  const dir = t.testdir({ 'out-2.png': 'older' });
  const out = path.join(dir, 'out.png');
  const first = await writeImages(out, [Buffer.from('1'), Buffer.from('2')], false);
  t.same(first.map((file) => path.basename(file)), ['out-1.png', 'out-3.png']);
  const second = await writeImages(out, [Buffer.from('3'), Buffer.from('4')], false);
  t.same(second.map((file) => path.basename(file)), ['out-4.png', 'out-5.png']);
  t.equal(await readFile(path.join(dir, 'out-2.png'), 'utf8'), 'older');
});

t.test('--overwrite replaces the plain names, and missing folders are made', async (t) => {
  const dir = t.testdir({ 'out.png': 'old', 'out-1.png': 'old' });
  t.same(await writeImages(path.join(dir, 'out.png'), [Buffer.from('new')], true), [path.join(dir, 'out.png')]);
  await writeImages(path.join(dir, 'out.png'), [Buffer.from('n1'), Buffer.from('n2')], true);
  t.same(await readdir(dir), ['out-1.png', 'out-2.png', 'out.png']);
  t.equal(await readFile(path.join(dir, 'out-1.png'), 'utf8'), 'n1');
  const nested = path.join(dir, 'a', 'b', 'c.png');
  t.same(await writeImages(nested, [Buffer.from('x')], false), [nested]);
});
