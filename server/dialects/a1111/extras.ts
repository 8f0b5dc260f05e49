// AUTOMATIC1111's extras (postprocessing) routes: /sdapi/v1/extra-single-image and
// extra-batch-images upscale images by a factor or to a size with upscaler_1, optionally blended
// with upscaler_2's result. Upscalers: None (the image as it is), Lanczos, Nearest, and the
// ESRGAN-family files of the upscaler folder, by name. They answer when the image is done; a client
// that leaves aborts its upscale.

import type { RequestHandler, Router } from 'express';
import sharp from 'sharp';

import { MAX_INPUT_PIXELS } from '../../../lib/images.js';
import { SdnodeError } from '../../../lib/index.js';
import type { ResponseSpec } from '../../http/api.js';
import { clientGone, watchClient } from '../../http/client-gone.js';
import type { ServerContext } from '../../http/context.js';
import { ApiError } from '../../http/errors.js';
import { parseWith } from '../../http/schema.js';
import { UnknownUpscalerError, type UpscalerCatalog } from '../../models/upscalers.js';
import { base64Image } from './images.js';
import {
  extraBatchImagesResponseSchema, extraBatchImagesSchema, extraSingleImageResponseSchema, extraSingleImageSchema, upscalerListSchema,
  type ExtrasRequest,
} from './schemas.js';

/** The upscalers that need no file, as A1111 names them. */
const builtIn = ['None', 'Lanczos', 'Nearest'] as const;

interface Rgb {
  data: Buffer;
  width: number;
  height: number;
}

export interface ExtrasRouteOptions {
  tag: string;
  auth: RequestHandler;
  /** JSON body parser for requests of `images` images. */
  bodyFor: (images: number) => RequestHandler;
  errors: Record<number, ResponseSpec>;
  upscalers: UpscalerCatalog;
}

export function extrasRoutes(router: Router, context: ServerContext, options: ExtrasRouteOptions): void {
  const { api } = context;
  const { tag, auth, upscalers } = options;

  api.route(router, {
    method: 'get', path: '/sdapi/v1/upscalers', tag,
    summary: 'Image upscalers: None, Lanczos, Nearest and the ESRGAN-family files of the upscaler folder (--upscaler-dir)',
    responses: { 200: { description: 'The upscalers', schema: upscalerListSchema }, 401: options.errors[401] as ResponseSpec },
  }, auth, async (_req, res) => {
    const files = (await upscalers.list()).map((entry) => ({
      name: entry.name, model_name: 'ESRGAN', model_path: entry.name + entry.path.slice(entry.path.lastIndexOf('.')), model_url: null, scale: 4,
    }));
    res.json([...builtIn.map((name) => ({ name, model_name: null, model_path: null, model_url: null, scale: 4 })), ...files]);
  });

  api.route(router, {
    method: 'post', path: '/sdapi/v1/extra-single-image', tag, summary: 'Upscale one image (A1111\'s Extras tab)',
    body: { contentType: 'application/json', schema: extraSingleImageSchema },
    responses: { 200: { description: 'The upscaled image as base64 PNG', schema: extraSingleImageResponseSchema }, ...options.errors },
  }, auth, watchClient, options.bodyFor(1), async (req, res) => {
    const body = parseWith(extraSingleImageSchema, req.body ?? {}, '/sdapi/v1/extra-single-image');
    checkFaceRestoration(body);
    const image = await postprocess(await decoded('image', body.image), body, upscalers, clientGone(res));
    res.json({ html_info: htmlInfo(body), image: image.toString('base64') });
  });

  api.route(router, {
    method: 'post', path: '/sdapi/v1/extra-batch-images', tag, summary: 'Upscale several images (A1111\'s Extras tab, batch)',
    body: { contentType: 'application/json', schema: extraBatchImagesSchema },
    responses: { 200: { description: 'The upscaled images as base64 PNG, in order', schema: extraBatchImagesResponseSchema }, ...options.errors },
  }, auth, watchClient, options.bodyFor(64), async (req, res) => {
    const body = parseWith(extraBatchImagesSchema, req.body ?? {}, '/sdapi/v1/extra-batch-images');
    checkFaceRestoration(body);
    const inputs = await Promise.all(body.imageList.map((item, i) => decoded(`imageList[${i}].data`, item.data)));
    const images: string[] = [];
    for (const input of inputs) images.push((await postprocess(input, body, upscalers, clientGone(res))).toString('base64'));
    res.json({ html_info: htmlInfo(body), images });
  });
}

function checkFaceRestoration(body: ExtrasRequest): void {
  for (const field of ['gfpgan_visibility', 'codeformer_visibility'] as const) {
    if (body[field] > 0) throw new ApiError(422, 'UNSUPPORTED_PARAMETER', `${field}: sdnode has no face restoration; send 0`, { param: field });
  }
}

async function decoded(field: string, text: string): Promise<Rgb> {
  const upload = await base64Image(field, text);
  const { data, info } = await sharp(upload.data, { limitInputPixels: MAX_INPUT_PIXELS }).autoOrient().flatten({ background: '#000000' })
    .toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function htmlInfo(body: ExtrasRequest): string {
  const by = body.resize_mode === 0 ? `Postprocess upscale by: ${body.upscaling_resize}` : `Postprocess upscale to: ${body.upscaling_resize_w}x${body.upscaling_resize_h}`;
  const second = body.upscaler_2 !== 'None' && body.extras_upscaler_2_visibility > 0
    ? `, Postprocess upscaler 2: ${body.upscaler_2}, Postprocess upscaler 2 visibility: ${body.extras_upscaler_2_visibility}` : '';
  return body.upscaler_1 === 'None' ? '' : `<p>${by}, Postprocess upscaler: ${body.upscaler_1}${second}</p>`;
}

/**
 * A1111's postprocessing upscale: by a factor (mode 0) or to a size (mode 1: the factor that covers
 * it, then the centre cropped, or stretched without upscaling_crop); upscaler_2's image blended over
 * upscaler_1's by its visibility. Resolves to a PNG.
 */
async function postprocess(input: Rgb, body: ExtrasRequest, upscalers: UpscalerCatalog, signal: AbortSignal): Promise<Buffer> {
  const png = (image: Rgb) => sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
  if (body.upscaler_1 === 'None') return png(input);
  let width: number;
  let height: number;
  if (body.resize_mode === 0) {
    width = Math.round(input.width * body.upscaling_resize);
    height = Math.round(input.height * body.upscaling_resize);
  } else if (body.upscaling_crop) {
    const scale = Math.max(body.upscaling_resize_w / input.width, body.upscaling_resize_h / input.height);
    width = Math.max(body.upscaling_resize_w, Math.round(input.width * scale));
    height = Math.max(body.upscaling_resize_h, Math.round(input.height * scale));
  } else {
    width = body.upscaling_resize_w;
    height = body.upscaling_resize_h;
  }
  let result = await upscaled(input, body.upscaler_1, 'upscaler_1', width, height, upscalers, signal);
  const visibility = body.extras_upscaler_2_visibility;
  if (body.upscaler_2 !== 'None' && visibility > 0) {
    const second = await upscaled(input, body.upscaler_2, 'upscaler_2', width, height, upscalers, signal);
    const blended = Buffer.alloc(result.data.length);
    for (let i = 0; i < blended.length; i++) blended[i] = Math.round(result.data[i] * (1 - visibility) + second.data[i] * visibility);
    result = { ...result, data: blended };
  }
  if (result.width !== body.upscaling_resize_w || result.height !== body.upscaling_resize_h) {
    if (body.resize_mode === 1) {
      const left = Math.floor((result.width - body.upscaling_resize_w) / 2);
      const top = Math.floor((result.height - body.upscaling_resize_h) / 2);
      return sharp(result.data, { raw: { width: result.width, height: result.height, channels: 3 } })
        .extract({ left, top, width: body.upscaling_resize_w, height: body.upscaling_resize_h }).png().toBuffer();
    }
  }
  return png(result);
}

async function upscaled(
  input: Rgb, name: string, field: string, width: number, height: number, upscalers: UpscalerCatalog, signal: AbortSignal,
): Promise<Rgb> {
  if (name === 'Lanczos' || name === 'Nearest') {
    const data = await sharp(input.data, { raw: { width: input.width, height: input.height, channels: 3 } })
      .resize(width, height, { fit: 'fill', kernel: name === 'Lanczos' ? 'lanczos3' : 'nearest' }).raw().toBuffer();
    return { data, width, height };
  }
  let entry;
  try {
    entry = await upscalers.resolve(name);
  } catch (error) {
    if (error instanceof UnknownUpscalerError) {
      const names = [...builtIn, ...error.available];
      throw new ApiError(422, 'INVALID_PARAMETER', `${field}: unknown upscaler ${JSON.stringify(name)}; available: ${names.join(', ')}`, { param: field });
    }
    throw error;
  }
  try {
    return await upscalers.run(entry, (upscaler) => upscaler.upscaleRgb(input.data, input.width, input.height, { width, height, tile: 128, signal }));
  } catch (error) {
    if (error instanceof SdnodeError && ['ERR_MODEL_FORMAT', 'ERR_MODEL_UNSUPPORTED', 'ERR_MODEL_IO'].includes(error.code)) {
      // The folder's place on the server is not the client's business.
      const message = error.message.replaceAll(entry.path, entry.name);
      throw new ApiError(422, 'INVALID_PARAMETER', `${field}: ${entry.name} cannot be used: ${message}`, { param: field });
    }
    throw error;
  }
}
