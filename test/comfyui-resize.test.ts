// The latent and mask resizing behind ComfyUI's LatentUpscale, LatentUpscaleBy and
// SetLatentNoiseMask: torch's interpolate modes on planes of floats.
import t from 'tap';

import { centreCrop, resizePlanes } from '../server/dialects/comfyui/nodes/resize.js';

t.test('every method keeps a constant plane constant', async (t) => {
  const plane = new Float32Array(4 * 3).fill(0.25);
  for (const method of ['nearest-exact', 'bilinear', 'area', 'bicubic'] as const) {
    const out = resizePlanes(plane, 1, 4, 3, 8, 6, method, false);
    t.ok(out.every((v) => Math.abs(v - 0.25) < 1e-6), method);
  }
});

t.test('nearest-exact doubles each cell; area halves by averaging', async (t) => {
  const plane = Float32Array.from([1, 2, 3, 4]);
  t.same(Array.from(resizePlanes(plane, 1, 2, 2, 4, 4, 'nearest-exact', false)), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  t.same(Array.from(resizePlanes(plane, 1, 2, 2, 1, 1, 'area', false)), [2.5]);
});

t.test('bilinear and bicubic keep a ramp\'s ends and interpolate between them', async (t) => {
  const ramp = Float32Array.from([0, 1, 2, 3]);
  const bilinear = Array.from(resizePlanes(ramp, 1, 4, 1, 8, 1, 'bilinear', false));
  t.same(bilinear, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]);
  const bicubic = Array.from(resizePlanes(ramp, 1, 4, 1, 8, 1, 'bicubic', false));
  t.ok(bicubic.every((v, i) => i === 0 || v > bicubic[i - 1]!), 'rising');
});

t.test('centre crop takes the middle of the longer side', async (t) => {
  t.same(centreCrop(8, 4, 4, 4), [2, 0, 4, 4]);
  t.same(centreCrop(4, 8, 4, 4), [0, 2, 4, 4]);
  t.same(centreCrop(6, 6, 2, 2), [0, 0, 6, 6]);
});
