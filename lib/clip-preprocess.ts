// CLIP's image preprocessing, as transformers' CLIPImageProcessor does it for the safety checker:
// the shortest side scaled to the model's input size with Pillow's bicubic filter, a centre crop to
// a square, then each channel normalised with CLIP's mean and standard deviation.
//
// The resampling follows Pillow's 8-bit path exactly (a separable convolution whose support grows
// with the reduction, 22-bit fixed-point coefficients, rounding and clipping after each pass), so
// the pixels the checker sees are the ones the reference pipeline's checker sees.

/** CLIP's per-channel mean and standard deviation (OpenAI's training statistics). */
export const clipMean = [0.48145466, 0.4578275, 0.40821073] as const;
export const clipStd = [0.26862954, 0.26130258, 0.27577711] as const;

/** RGB bytes, 3 a pixel, row-major. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

const precisionBits = 22;

// Keys' cubic convolution with a = -0.5, Pillow's BICUBIC.
function bicubic(distance: number): number {
  const a = -0.5;
  const x = Math.abs(distance);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Taps {
  /** First input index of each output sample. */
  first: Int32Array;
  /** Input samples each output sample reads. */
  count: Int32Array;
  /** Fixed-point weights, `stride` per output sample. */
  weights: Int32Array;
  stride: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
  const raw = new Float64Array(stride);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      raw[x] = bicubic((x + lo - center + 0.5) / filterScale);
      sum += raw[x];
    }
    for (let x = 0; x < n; x++) {
      const w = sum === 0 ? 0 : raw[x] / sum;
      weights[i * stride + x] = Math.trunc(w < 0 ? -0.5 + w * 2 ** precisionBits : 0.5 + w * 2 ** precisionBits);
    }
    first[i] = lo;
    count[i] = n;
  }
  return { first, count, weights, stride };
}

function clip8(sum: number): number {
  const value = Math.floor(sum / 2 ** precisionBits);
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

function resizeHorizontal(image: RgbImage, width: number): RgbImage {
  const { first, count, weights, stride } = taps(image.width, width);
  const out = new Uint8Array(width * image.height * 3);
  for (let y = 0; y < image.height; y++) {
    const row = y * image.width * 3;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 2 ** (precisionBits - 1);
        for (let k = 0; k < count[x]; k++) sum += image.data[row + (first[x] + k) * 3 + c] * weights[x * stride + k];
        out[(y * width + x) * 3 + c] = clip8(sum);
      }
    }
  }
  return { data: out, width, height: image.height };
}

function resizeVertical(image: RgbImage, height: number): RgbImage {
  const { first, count, weights, stride } = taps(image.height, height);
  const rowBytes = image.width * 3;
  const out = new Uint8Array(rowBytes * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < rowBytes; i++) {
      let sum = 2 ** (precisionBits - 1);
      for (let k = 0; k < count[y]; k++) sum += image.data[(first[y] + k) * rowBytes + i] * weights[y * stride + k];
      out[y * rowBytes + i] = clip8(sum);
    }
  }
  return { data: out, width: image.width, height };
}

/** Pillow's `resize((width, height), BICUBIC)` of an 8-bit RGB image: horizontal pass, then vertical. */
export function resizeBicubic(image: RgbImage, width: number, height: number): RgbImage {
  const wide = width === image.width ? image : resizeHorizontal(image, width);
  return height === image.height ? wide : resizeVertical(wide, height);
}

/** Size after scaling the shortest side to `side`, the other in proportion (rounded down), as transformers does. */
export function shortestSideSize(width: number, height: number, side: number): { width: number; height: number } {
  if (width <= height) return { width: side, height: Math.trunc((side * height) / width) };
  return { width: Math.trunc((side * width) / height), height: side };
}

/**
 * The checker's input for one image: planes [3, size, size] of normalised floats, written into
 * `out` at `offset`.
 */
export function clipPixels(image: RgbImage, size: number, out: Float32Array, offset: number): void {
  const target = shortestSideSize(image.width, image.height, size);
  const resized = resizeBicubic(image, target.width, target.height);
  const top = Math.floor((resized.height - size) / 2);
  const left = Math.floor((resized.width - size) / 2);
  for (let c = 0; c < 3; c++) {
    const mean = clipMean[c];
    const std = clipStd[c];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const value = resized.data[((top + y) * resized.width + left + x) * 3 + c];
        out[offset + (c * size + y) * size + x] = (value / 255 - mean) / std;
      }
    }
  }
}
