// The native addon itself: it loads, describes the machine, and a missing or broken .node file is
// an error that says how to rebuild rather than a crash.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { AddonLoadError, loadAddon, loadAddonFile } from '../bindings/index.js';

t.test('the addon loads and reports the CPU backend, ggml version and cores', async (t) => {
  const info = loadAddon().systemInfo();
  t.match(info.ggmlVersion, /^\d+\.\d+\.\d+$/);
  t.ok(info.backends.includes('cpu'));
  const cpu = info.devices.find((device) => device.backend === 'cpu');
  t.ok(cpu, 'a CPU device is usable');
  t.ok(cpu!.memoryTotal > 0);
  t.ok(info.physicalCores >= 1);
  t.ok(Array.isArray(info.cpuFeatures));
});

t.test('loading twice gives the same addon', async (t) => {
  t.equal(loadAddon(), loadAddon());
});

t.test('a missing .node file is an ERR_ADDON_LOAD error that says how to build', async (t) => {
  const missing = path.join(t.testdir(), 'sdnode.node');
  t.throws(() => loadAddonFile(missing), { name: 'AddonLoadError', code: 'ERR_ADDON_LOAD', message: /npx sdnode build/ });
});

t.test('a corrupt .node file is an ERR_ADDON_LOAD error naming the file', async (t) => {
  const corrupt = path.join(t.testdir(), 'sdnode.node');
  await writeFile(corrupt, Buffer.from('this is not a shared library'));
  const error = t.throws(() => loadAddonFile(corrupt)) as AddonLoadError;
  t.equal(error.code, 'ERR_ADDON_LOAD');
  t.match(error.message, corrupt);
  t.match(error.message, /npx sdnode build/);
});
