// Images in and out: LoadImage, LoadImageMask, SaveImage, PreviewImage, ImageScale, ImageScaleBy,
// ImageInvert, and the ESRGAN-family upscalers (UpscaleModelLoader, ImageUpscaleWithModel). IMAGE
// values are RGB bytes; files are decoded and encoded with sharp.

import sharp from 'sharp';

import { MAX_INPUT_PIXELS } from '../../../../lib/images.js';
import { insertPngText, loadUpscaler } from '../../../../lib/index.js';
import { outputs, type ImageBatch, type MaskValue, type NodeContext, type NodeDefinition, type NodeResult } from './types.js';

/** PNG text chunks that tell which node stored a job image, and its kind (for /history). */
export const nodeChunk = 'sdnode-node';
export const typeChunk = 'sdnode-type';

const scaleMethods = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos'] as const;
// sharp has no area filter; its linear kernel averages what it shrinks over, the nearest it has.
const kernels: Readonly<Record<(typeof scaleMethods)[number], keyof sharp.KernelEnum>> = {
  'nearest-exact': 'nearest', bilinear: 'linear', area: 'linear', bicubic: 'cubic', lanczos: 'lanczos3',
};

async function readRgba(bytes: Buffer): Promise<{ width: number; height: number; data: Buffer; alpha: boolean }> {
  const image = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).autoOrient();
  const { hasAlpha } = await image.metadata();
  const { data, info } = await image.ensureAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data, alpha: hasAlpha === true };
}

async function scaleImages(images: ImageBatch, width: number, height: number, method: string, crop: boolean): Promise<ImageBatch> {
  return Promise.all(images.map(async (image) => {
    const { data, info } = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
      .resize(width, height, { fit: crop ? 'cover' : 'fill', position: 'centre', kernel: kernels[method as keyof typeof kernels] })
      .raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data) };
  }));
}

async function storeImages(images: ImageBatch, type: 'output' | 'temp', context: NodeContext): Promise<NodeResult> {
  const stored: NodeResult['images'] = [];
  for (const image of images) {
    let png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
    for (const [keyword, text] of Object.entries({ ...context.pngInfo, [nodeChunk]: context.nodeId, [typeChunk]: type })) {
      png = insertPngText(png, keyword, text);
    }
    stored.push({ n: await context.saveImage(png, type), type });
  }
  return { outputs: [], images: stored };
}

export const imageNodes: Record<string, NodeDefinition> = {
  LoadImage: {
    category: 'image',
    description: 'An image from the input folder (/upload/image), and its alpha as a mask (1 where transparent).',
    // The names are the input folder's files; routes fill them in.
    required: { image: [[], { image_upload: true }] },
    outputs: [['IMAGE', 'IMAGE'], ['MASK', 'MASK']],
    run: async (i, context) => {
      const { width, height, data, alpha } = await readRgba(await context.readInput(i.image as string));
      const rgb = new Uint8Array(width * height * 3);
      const mask = new Float32Array(width * height);
      for (let p = 0; p < width * height; p++) {
        rgb.set(data.subarray(p * 4, p * 4 + 3), p * 3);
        if (alpha) mask[p] = 1 - data[p * 4 + 3]! / 255;
      }
      return outputs([{ width, height, data: rgb }] satisfies ImageBatch, { width, height, data: mask } satisfies MaskValue);
    },
  },
  LoadImageMask: {
    category: 'mask',
    description: 'One channel of an image from the input folder as a mask (alpha: 1 where transparent).',
    required: { image: [[], { image_upload: true }], channel: [['alpha', 'red', 'green', 'blue']] },
    outputs: [['MASK', 'MASK']],
    run: async (i, context) => {
      const { width, height, data } = await readRgba(await context.readInput(i.image as string));
      const channel = ['red', 'green', 'blue', 'alpha'].indexOf(i.channel as string);
      const mask = new Float32Array(width * height);
      for (let p = 0; p < width * height; p++) {
        const value = data[p * 4 + channel]! / 255;
        mask[p] = channel === 3 ? 1 - value : value;
      }
      return outputs({ width, height, data: mask } satisfies MaskValue);
    },
  },
  SaveImage: {
    category: 'image',
    description: 'Saves the images as PNGs (with the workflow in their text chunks); /view serves them.',
    required: { images: ['IMAGE'], filename_prefix: ['STRING', { default: 'ComfyUI' }] },
    outputs: [],
    outputNode: true,
    run: (i, context) => storeImages(i.images as ImageBatch, 'output', context),
  },
  PreviewImage: {
    category: 'image',
    description: 'Shows the images: stored as temporary PNGs /view serves.',
    required: { images: ['IMAGE'] },
    outputs: [],
    outputNode: true,
    run: (i, context) => storeImages(i.images as ImageBatch, 'temp', context),
  },
  ImageScale: {
    category: 'image/upscaling',
    description: 'Resizes the images to width × height (0 keeps the aspect ratio).',
    required: {
      image: ['IMAGE'], upscale_method: [scaleMethods],
      width: ['INT', { default: 512, min: 0, max: 16384, step: 1 }],
      height: ['INT', { default: 512, min: 0, max: 16384, step: 1 }],
      crop: [['disabled', 'center']],
    },
    outputs: [['IMAGE', 'IMAGE']],
    run: async (i) => {
      const images = i.image as ImageBatch;
      const [first] = images;
      let width = i.width as number, height = i.height as number;
      if (!first || (width === 0 && height === 0)) return outputs(images);
      if (width === 0) width = Math.max(1, Math.round((first.width * height) / first.height));
      if (height === 0) height = Math.max(1, Math.round((first.height * width) / first.width));
      return outputs(await scaleImages(images, width, height, i.upscale_method as string, i.crop === 'center'));
    },
  },
  ImageScaleBy: {
    category: 'image/upscaling',
    description: 'Scales the images by a factor.',
    required: { image: ['IMAGE'], upscale_method: [scaleMethods], scale_by: ['FLOAT', { default: 1.0, min: 0.01, max: 8.0, step: 0.01 }] },
    outputs: [['IMAGE', 'IMAGE']],
    run: async (i) => {
      const images = i.image as ImageBatch, scale = i.scale_by as number;
      const [first] = images;
      if (!first) return outputs(images);
      const width = Math.max(1, Math.round(first.width * scale)), height = Math.max(1, Math.round(first.height * scale));
      return outputs(await scaleImages(images, width, height, i.upscale_method as string, false));
    },
  },
  ImageInvert: {
    category: 'image',
    description: 'Inverts the images\' colours.',
    required: { image: ['IMAGE'] },
    outputs: [['IMAGE', 'IMAGE']],
    run: async (i) => outputs((i.image as ImageBatch).map((image) => ({ ...image, data: image.data.map((v) => 255 - v) }))),
  },
  UpscaleModelLoader: {
    category: 'loaders',
    description: 'An ESRGAN-family upscaler (RRDBNet, SRVGGNetCompact) from the upscaler folder.',
    required: { model_name: [[]] },
    outputs: [['UPSCALE_MODEL', 'UPSCALE_MODEL']],
    // The value is the file; ImageUpscaleWithModel loads it for its run.
    run: async (i, context) => outputs(context.upscalerPath(i.model_name as string)),
  },
  ImageUpscaleWithModel: {
    category: 'image/upscaling',
    description: 'Enlarges the images by the upscaler\'s own factor (×4 for RealESRGAN_x4plus), tile by tile.',
    required: { upscale_model: ['UPSCALE_MODEL'], image: ['IMAGE'] },
    outputs: [['IMAGE', 'IMAGE']],
    run: async (i, context) => {
      const upscaler = await loadUpscaler(i.upscale_model as string);
      try {
        const upscaled: ImageBatch = [];
        for (const image of i.image as ImageBatch) {
          const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
          const result = await upscaler.upscale(png, { scale: upscaler.info.scale, signal: context.signal });
          upscaled.push({ width: result.width, height: result.height, data: new Uint8Array(result.data) });
        }
        return outputs(upscaled);
      } finally {
        await upscaler.close();
      }
    },
  },
};
