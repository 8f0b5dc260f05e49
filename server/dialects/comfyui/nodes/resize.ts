// Resizing planes of floats (latent channels, masks) as torch's interpolate does for ComfyUI's
// upscale methods, with its optional centre crop to the target's aspect ratio first.

export type ResizeMethod = 'nearest-exact' | 'bilinear' | 'area' | 'bicubic';

/** torch's cubic convolution weight (A = -0.75) of a tap at distance d. */
function cubicWeight(d: number): number {
  const a = -0.75, x = Math.abs(d);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/** The centre crop ComfyUI's "crop: center" takes before scaling: [x, y, width, height]. */
export function centreCrop(width: number, height: number, targetWidth: number, targetHeight: number): [number, number, number, number] {
  const oldAspect = width / height, newAspect = targetWidth / targetHeight;
  if (oldAspect > newAspect) {
    const cropWidth = Math.round(width * (newAspect / oldAspect));
    return [Math.floor((width - cropWidth) / 2), 0, cropWidth, height];
  }
  if (oldAspect < newAspect) {
    const cropHeight = Math.round(height * (oldAspect / newAspect));
    return [0, Math.floor((height - cropHeight) / 2), width, cropHeight];
  }
  return [0, 0, width, height];
}

/** One plane [height, width] resized to [toHeight, toWidth] from the window [x, y, w, h] of it. */
export function resizePlane(
  plane: Float32Array, width: number, window: [number, number, number, number], toWidth: number, toHeight: number, method: ResizeMethod,
): Float32Array {
  const [x0, y0, w, h] = window;
  const out = new Float32Array(toWidth * toHeight);
  const at = (x: number, y: number) => plane[(y0 + y) * width + x0 + x]!;
  const sx = w / toWidth, sy = h / toHeight;
  for (let y = 0; y < toHeight; y++) {
    for (let x = 0; x < toWidth; x++) {
      let value: number;
      if (method === 'nearest-exact') {
        value = at(Math.min(w - 1, Math.floor((x + 0.5) * sx)), Math.min(h - 1, Math.floor((y + 0.5) * sy)));
      } else if (method === 'area') {
        // Adaptive average pooling: the mean of the cells the output cell covers.
        const xa = Math.floor(x * sx), xb = Math.max(xa + 1, Math.ceil((x + 1) * sx));
        const ya = Math.floor(y * sy), yb = Math.max(ya + 1, Math.ceil((y + 1) * sy));
        let sum = 0;
        for (let yy = ya; yy < yb; yy++) for (let xx = xa; xx < xb; xx++) sum += at(Math.min(w - 1, xx), Math.min(h - 1, yy));
        value = sum / ((xb - xa) * (yb - ya));
      } else if (method === 'bicubic') {
        // align_corners=False, 4×4 taps, edges clamped (torch's bicubic, not antialiased).
        const fx = (x + 0.5) * sx - 0.5, fy = (y + 0.5) * sy - 0.5;
        const x0 = Math.floor(fx), y0 = Math.floor(fy);
        value = 0;
        for (let j = -1; j <= 2; j++) {
          const wy = cubicWeight(fy - (y0 + j));
          for (let i = -1; i <= 2; i++) {
            value += wy * cubicWeight(fx - (x0 + i)) * at(Math.min(w - 1, Math.max(0, x0 + i)), Math.min(h - 1, Math.max(0, y0 + j)));
          }
        }
      } else {
        // align_corners=False: source coordinates of pixel centres, clamped at the edges.
        const fx = Math.max(0, (x + 0.5) * sx - 0.5), fy = Math.max(0, (y + 0.5) * sy - 0.5);
        const xa = Math.min(w - 1, Math.floor(fx)), ya = Math.min(h - 1, Math.floor(fy));
        const xb = Math.min(w - 1, xa + 1), yb = Math.min(h - 1, ya + 1);
        const tx = fx - xa, ty = fy - ya;
        value = (at(xa, ya) * (1 - tx) + at(xb, ya) * tx) * (1 - ty) + (at(xa, yb) * (1 - tx) + at(xb, yb) * tx) * ty;
      }
      out[y * toWidth + x] = value;
    }
  }
  return out;
}

/** Every plane of `data` ([planes, height, width]) resized; the crop is centred when asked for. */
export function resizePlanes(
  data: Float32Array, planes: number, width: number, height: number, toWidth: number, toHeight: number, method: ResizeMethod, crop: boolean,
): Float32Array {
  const window = crop ? centreCrop(width, height, toWidth, toHeight) : [0, 0, width, height] as [number, number, number, number];
  const out = new Float32Array(planes * toWidth * toHeight);
  for (let p = 0; p < planes; p++) {
    const plane = data.subarray(p * width * height, (p + 1) * width * height);
    out.set(resizePlane(plane, width, window, toWidth, toHeight, method), p * toWidth * toHeight);
  }
  return out;
}
