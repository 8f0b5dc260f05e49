// Latents and the VAE: EmptyLatentImage, LatentUpscale, LatentUpscaleBy, SetLatentNoiseMask,
// VAEEncode, VAEEncodeForInpaint, VAEDecode, VAEDecodeTiled.

import type { Latent } from '../../../../lib/index.js';
import { resizePlanes, type ResizeMethod } from './resize.js';
import { outputs, type CheckpointRef, type ImageBatch, type MaskValue, type NodeContext, type NodeDefinition } from './types.js';

/** Pixels per latent cell of the UNet families. */
const vaeScale = 8;
const latentChannels = 4;
const latentUpscaleMethods: ResizeMethod[] = ['nearest-exact', 'bilinear', 'area', 'bicubic'];

/** Zeros for `batch` images of width × height pixels (floored to multiples of `step`). */
function emptyLatent(width: number, height: number, batch: number, channels: number, step: number): Latent {
  if (batch > 64) throw new RangeError(`batch_size ${batch} is above 64, the most sdnode samples at once`);
  const w = Math.floor(width / step) * step, h = Math.floor(height / step) * step;
  return { width: w, height: h, channels, batch, data: new Float32Array(batch * channels * (w / vaeScale) * (h / vaeScale)) };
}

function upscaleLatent(latent: Latent, width: number, height: number, method: ResizeMethod, crop: boolean): Latent {
  const w = latent.width / vaeScale, h = latent.height / vaeScale, toW = Math.max(1, width / vaeScale), toH = Math.max(1, height / vaeScale);
  const data = resizePlanes(latent.data, latent.batch * latent.channels, w, h, toW, toH, method, crop);
  const noiseMask = latent.noiseMask && resizePlanes(latent.noiseMask, 1, w, h, toW, toH, 'bilinear', crop);
  return { ...latent, width: toW * vaeScale, height: toH * vaeScale, data, ...(noiseMask && { noiseMask }) };
}

/** A pixel mask as one value per latent cell (the mean of its pixels), at the latent's size. */
function maskToLatent(mask: MaskValue, latent: Latent): Float32Array {
  return resizePlanes(mask.data, 1, mask.width, mask.height, latent.width / vaeScale, latent.height / vaeScale, 'area', false);
}

async function encodeBatch(images: ImageBatch, vae: CheckpointRef, context: NodeContext): Promise<Latent> {
  const model = await context.model(vae);
  const latents: Latent[] = [];
  for (const image of images) {
    // ComfyUI encodes the largest crop of the image's top left corner the model takes (multiples of
    // 8 pixels, 16 for the transformers' 2×2 patches).
    const step = model.info.prediction === 'flow' ? 2 * vaeScale : vaeScale;
    const width = Math.floor(image.width / step) * step, height = Math.floor(image.height / step) * step;
    latents.push(await model.encodeImage(cropped(image, width, height), { signal: context.signal }));
  }
  const [first] = latents;
  const data = new Float32Array(latents.reduce((sum, l) => sum + l.data.length, 0));
  let offset = 0;
  for (const latent of latents) {
    data.set(latent.data, offset);
    offset += latent.data.length;
  }
  return { ...first!, batch: latents.length, data };
}

function cropped(image: ImageBatch[number], width: number, height: number): ImageBatch[number] {
  if (width === image.width && height === image.height) return image;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) data.set(image.data.subarray(y * image.width * 3, (y * image.width + width) * 3), y * width * 3);
  return { width, height, data };
}

/** ComfyUI's grow_mask_by: a square max filter `by` pixels wide. */
function growMask(mask: MaskValue, by: number): MaskValue {
  if (by === 0) return mask;
  const { width, height, data } = mask;
  const out = new Float32Array(data.length);
  const lo = Math.floor((by - 1) / 2), hi = by - 1 - lo;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let yy = Math.max(0, y - hi); yy <= Math.min(height - 1, y + lo); yy++) {
        for (let xx = Math.max(0, x - hi); xx <= Math.min(width - 1, x + lo); xx++) v = Math.max(v, data[yy * width + xx]!);
      }
      out[y * width + x] = v;
    }
  }
  return { width, height, data: out };
}

export const latentNodes: Record<string, NodeDefinition> = {
  EmptyLatentImage: {
    category: 'latent',
    description: 'A latent of zeros: the start of text-to-image.',
    required: {
      width: ['INT', { default: 512, min: 16, max: 16384, step: 8 }],
      height: ['INT', { default: 512, min: 16, max: 16384, step: 8 }],
      batch_size: ['INT', { default: 1, min: 1, max: 4096 }],
    },
    outputs: [['LATENT', 'LATENT']],
    run: async (i) => outputs(emptyLatent(i.width as number, i.height as number, i.batch_size as number, latentChannels, vaeScale)),
  },
  EmptySD3LatentImage: {
    category: 'latent/sd3',
    description: 'A 16-channel latent of zeros (SD3, FLUX.1): the start of text-to-image.',
    required: {
      width: ['INT', { default: 1024, min: 16, max: 16384, step: 16 }],
      height: ['INT', { default: 1024, min: 16, max: 16384, step: 16 }],
      batch_size: ['INT', { default: 1, min: 1, max: 4096 }],
    },
    outputs: [['LATENT', 'LATENT']],
    run: async (i) => outputs(emptyLatent(i.width as number, i.height as number, i.batch_size as number, 16, 16)),
  },
  LatentUpscale: {
    category: 'latent',
    description: 'Resizes the latent to width × height pixels.',
    required: {
      samples: ['LATENT'], upscale_method: [latentUpscaleMethods],
      width: ['INT', { default: 512, min: 0, max: 16384, step: 8 }],
      height: ['INT', { default: 512, min: 0, max: 16384, step: 8 }],
      crop: [['disabled', 'center']],
    },
    outputs: [['LATENT', 'LATENT']],
    run: async (i) => {
      const latent = i.samples as Latent;
      let width = i.width as number, height = i.height as number;
      // ComfyUI: a side of 0 keeps the aspect ratio.
      if (width === 0 && height === 0) return outputs(latent);
      if (width === 0) width = Math.round((latent.width * height) / latent.height);
      if (height === 0) height = Math.round((latent.height * width) / latent.width);
      return outputs(upscaleLatent(latent, Math.round(width / vaeScale) * vaeScale, Math.round(height / vaeScale) * vaeScale,
        i.upscale_method as ResizeMethod, i.crop === 'center'));
    },
  },
  LatentUpscaleBy: {
    category: 'latent',
    description: 'Scales the latent by a factor.',
    required: { samples: ['LATENT'], upscale_method: [latentUpscaleMethods], scale_by: ['FLOAT', { default: 1.5, min: 0.01, max: 8.0, step: 0.01 }] },
    outputs: [['LATENT', 'LATENT']],
    run: async (i) => {
      const latent = i.samples as Latent, scale = i.scale_by as number;
      const width = Math.round((latent.width / vaeScale) * scale) * vaeScale, height = Math.round((latent.height / vaeScale) * scale) * vaeScale;
      return outputs(upscaleLatent(latent, width, height, i.upscale_method as ResizeMethod, false));
    },
  },
  SetLatentNoiseMask: {
    category: 'latent/inpaint',
    description: 'Limits the sampler to where the mask is white.',
    required: { samples: ['LATENT'], mask: ['MASK'] },
    outputs: [['LATENT', 'LATENT']],
    run: async (i) => {
      const latent = i.samples as Latent;
      return outputs({ ...latent, noiseMask: maskToLatent(i.mask as MaskValue, latent) });
    },
  },
  VAEEncode: {
    category: 'latent',
    description: 'The VAE\'s latent of the images.',
    required: { pixels: ['IMAGE'], vae: ['VAE'] },
    outputs: [['LATENT', 'LATENT']],
    run: async (i, context) => outputs(await encodeBatch(i.pixels as ImageBatch, i.vae as CheckpointRef, context)),
  },
  VAEEncodeForInpaint: {
    category: 'latent/inpaint',
    description: 'Encodes the images with the masked region grey, and sets the (grown) mask as the noise mask.',
    required: { pixels: ['IMAGE'], vae: ['VAE'], mask: ['MASK'], grow_mask_by: ['INT', { default: 6, min: 0, max: 64, step: 1 }] },
    outputs: [['LATENT', 'LATENT']],
    run: async (i, context) => {
      const images = i.pixels as ImageBatch, mask = i.mask as MaskValue;
      const [first] = images;
      if (first && (mask.width !== first.width || mask.height !== first.height)) {
        throw new RangeError(`mask is ${mask.width}×${mask.height} but pixels are ${first.width}×${first.height}`);
      }
      const grown = growMask(mask, i.grow_mask_by as number);
      // Pixels to repaint become mid-grey before encoding, as ComfyUI does.
      const greyed = images.map((image) => {
        const data = Uint8Array.from(image.data);
        for (let p = 0; p < mask.data.length; p++) {
          if (mask.data[p]! > 0.5) data.fill(128, p * 3, p * 3 + 3);
        }
        return { ...image, data };
      });
      const latent = await encodeBatch(greyed, i.vae as CheckpointRef, context);
      return outputs({ ...latent, noiseMask: maskToLatent(grown, latent) });
    },
  },
  VAEDecode: {
    category: 'latent',
    description: 'The VAE\'s decode of the latent: images.',
    required: { samples: ['LATENT'], vae: ['VAE'] },
    outputs: [['IMAGE', 'IMAGE']],
    run: async (i, context) => {
      const model = await context.model(i.vae as CheckpointRef);
      return outputs(await model.decode(i.samples as Latent, { signal: context.signal }));
    },
  },
  VAEDecodeTiled: {
    category: '_for_testing',
    description: 'VAEDecode in overlapping tiles (sdnode\'s tiles are 512 pixels whatever tile_size says), for large images.',
    required: {
      samples: ['LATENT'], vae: ['VAE'],
      tile_size: ['INT', { default: 512, min: 64, max: 4096, step: 32 }],
      overlap: ['INT', { default: 64, min: 0, max: 4096, step: 32 }],
    },
    // Video VAEs' inputs, which newer ComfyUI versions write and older workflows lack.
    optional: {
      temporal_size: ['INT', { default: 64, min: 8, max: 4096, step: 4 }],
      temporal_overlap: ['INT', { default: 8, min: 4, max: 4096, step: 4 }],
    },
    outputs: [['IMAGE', 'IMAGE']],
    run: async (i, context) => {
      const model = await context.model(i.vae as CheckpointRef);
      return outputs(await model.decode(i.samples as Latent, { vaeTiling: true, signal: context.signal }));
    },
  },
};
