// The Canny edge detector as OpenCV's cv::Canny defines it (what AUTOMATIC1111's ControlNet
// "canny" preprocessor calls): 3×3 Sobel gradients with replicated borders, the L1 magnitude
// |dx| + |dy| (OpenCV's default; L2 on request), non-maximum suppression along the gradient's
// direction quantised to 0°, 45°, 90° or 135°, then hysteresis: pixels above `high` are edges, and
// pixels above `low` that survived suppression are edges when 8-connected to one.

/** Options of `canny()`. */
export interface CannyOptions {
  /** Gradient magnitude a pixel must exceed to continue an edge. Range 0–2040 (L1), default 100. */
  low?: number;
  /** Gradient magnitude a pixel must exceed to start an edge. Range 0–2040 (L1), default 200. */
  high?: number;
  /** Use the Euclidean magnitude sqrt(dx² + dy²) instead of |dx| + |dy|. Default false (OpenCV's default). */
  l2Gradient?: boolean;
}

// tan(22.5°) in 15-bit fixed point, as OpenCV compares gradient directions without dividing.
const TAN_22_5 = Math.round(0.4142135623730950488 * (1 << 15));

/**
 * Edges of an image of `channels` bytes per pixel (1 or 3; a colour pixel's gradient is that of its
 * channel with the largest magnitude, as OpenCV does): one byte per pixel, 255 on edges, 0 elsewhere.
 */
export function canny(pixels: Uint8Array, width: number, height: number, channels: 1 | 3, options: CannyOptions = {}): Uint8Array {
  let low = options.low ?? 100;
  let high = options.high ?? 200;
  const l2 = options.l2Gradient ?? false;
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`canny: expected ${width}×${height}×${channels} = ${width * height * channels} bytes but received ${pixels.length}`);
  }
  if (low > high) [low, high] = [high, low];
  // OpenCV compares squared magnitudes against squared thresholds for L2, and floors the thresholds.
  if (l2) {
    low = Math.min(32767, low) ** 2;
    high = Math.min(32767, high) ** 2;
  }
  low = Math.floor(low);
  high = Math.floor(high);

  const size = width * height;
  const dx = new Int32Array(size);
  const dy = new Int32Array(size);
  const magnitude = new Float64Array(size);
  const at = (x: number, y: number, c: number) => {
    const cx = x < 0 ? 0 : x >= width ? width - 1 : x;
    const cy = y < 0 ? 0 : y >= height ? height - 1 : y;
    return pixels[(cy * width + cx) * channels + c];
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      let best = -1;
      for (let c = 0; c < channels; c++) {
        const gx = at(x + 1, y - 1, c) + 2 * at(x + 1, y, c) + at(x + 1, y + 1, c)
          - at(x - 1, y - 1, c) - 2 * at(x - 1, y, c) - at(x - 1, y + 1, c);
        const gy = at(x - 1, y + 1, c) + 2 * at(x, y + 1, c) + at(x + 1, y + 1, c)
          - at(x - 1, y - 1, c) - 2 * at(x, y - 1, c) - at(x + 1, y - 1, c);
        const m = l2 ? gx * gx + gy * gy : Math.abs(gx) + Math.abs(gy);
        if (m > best) {
          best = m;
          dx[i] = gx;
          dy[i] = gy;
        }
      }
      magnitude[i] = best;
    }
  }

  // 0: not an edge, 1: a weak candidate, 2: an edge.
  const state = new Uint8Array(size);
  const stack: number[] = [];
  const mag = (x: number, y: number) => (x < 0 || y < 0 || x >= width || y >= height ? 0 : magnitude[y * width + x]);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const m = magnitude[i];
      if (m <= low) continue;
      const xs = Math.abs(dx[i]);
      const ys = Math.abs(dy[i]) * (1 << 15);
      const tg22x = xs * TAN_22_5;
      let isMaximum: boolean;
      // The first neighbour must be strictly smaller and the second not larger, so a plateau two
      // pixels wide keeps exactly one of them (OpenCV's rule).
      if (ys < tg22x) {
        isMaximum = m > mag(x - 1, y) && m >= mag(x + 1, y);
      } else if (ys > tg22x + xs * (1 << 16)) {
        isMaximum = m > mag(x, y - 1) && m >= mag(x, y + 1);
      } else {
        const s = (dx[i] < 0) !== (dy[i] < 0) ? -1 : 1;
        isMaximum = m > mag(x - s, y - 1) && m > mag(x + s, y + 1);
      }
      if (!isMaximum) continue;
      if (m > high) {
        state[i] = 2;
        stack.push(i);
      } else {
        state[i] = 1;
      }
    }
  }
  while (stack.length > 0) {
    const i = stack.pop() as number;
    const x = i % width;
    const y = (i - x) / width;
    for (let ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
      for (let nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
        const j = ny * width + nx;
        if (state[j] === 1) {
          state[j] = 2;
          stack.push(j);
        }
      }
    }
  }
  const edges = new Uint8Array(size);
  for (let i = 0; i < size; i++) edges[i] = state[i] === 2 ? 255 : 0;
  return edges;
}
