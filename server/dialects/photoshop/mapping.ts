// Photoshop plug-in requests → jobs: base64 images decoded and checked, the result's size taken
// from the image (generated at multiples of 8, 16 for flow models, scaled back when the image's
// sides are not), and the safety checker asked for on every image. A FLUX.1 Kontext model reads
// img2img's image as a reference beside the prompt (see kontext.ts).

import { ApiError } from '../../http/errors.js';
import { imageSize } from '../../http/uploads.js';
import type { JobMode, JobParameters } from '../../jobs/job.js';
import { checkOutputSize } from '../../jobs/limits.js';
import { chosenSeed, multipleOf8, withoutUndefined } from '../../jobs/parameters.js';
import type { Upload } from '../../jobs/store.js';
import { base64Image } from '../a1111/images.js';
import { kontextJob, kontextParameters } from '../kontext.js';
import type { Img2ImgRequest, MaskingRequest, Txt2ImgRequest } from './schemas.js';

export type PhotoshopRoute = 'txt2img' | 'img2img' | 'masking';

export interface PhotoshopJob {
  mode: JobMode;
  parameters: JobParameters;
  uploads: Partial<Record<'image' | 'mask', Upload>>;
}

// diffusers' defaults, which the plug-in's own server used.
const defaultStrength: Readonly<Record<'img2img' | 'masking', number>> = { img2img: 0.8, masking: 1 };

/** What the job depends on of the model, as known before it runs. */
export interface PhotoshopModel {
  /** A flow model (FLUX.1, SD3): sizes in multiples of 16. */
  flow: boolean;
  kontext: boolean;
}

export async function photoshopJob(route: PhotoshopRoute, body: Txt2ImgRequest | Img2ImgRequest | MaskingRequest,
  maxUploadBytes: number, model: PhotoshopModel): Promise<PhotoshopJob> {
  const common: JobParameters = withoutUndefined({
    prompt: body.prompt,
    count: body.num_outputs ?? 1,
    seed: chosenSeed(body.seed),
    steps: body.num_inference_steps,
    cfgScale: body.guidance_scale,
    // As the plug-in's server, through the reference pipeline: flagged images come back black.
    safetyCheck: 'filter' as const,
  });
  if (route === 'txt2img') {
    const { width, height } = body as Txt2ImgRequest;
    const size = withoutUndefined({ width: multipleOf8('width', width), height: multipleOf8('height', height) });
    return { mode: 'txt2img', parameters: { ...common, ...size }, uploads: {} };
  }
  const { init_image: initText, strength } = body as Img2ImgRequest;
  const image = await decoded('init_image', initText, maxUploadBytes);
  const { width, height } = await imageSize(image);
  checkOutputSize('init_image', width, height);
  if (route === 'img2img' && model.kontext) {
    const kontext = await kontextJob([image], 'init_image');
    return { mode: 'img2img', parameters: kontextParameters({ ...common, ...scaledTo(kontext.size, width, height) }, kontext), uploads: kontext.uploads };
  }
  const step = model.flow ? 16 : 8;
  const parameters = { ...common, ...generationSize(width, height, step), strength: strength ?? defaultStrength[route] };
  if (route === 'img2img') return { mode: 'img2img', parameters, uploads: { image } };
  const mask = await decoded('mask_image', (body as MaskingRequest).mask_image, maxUploadBytes);
  const maskSize = await imageSize(mask);
  if (maskSize.width !== width || maskSize.height !== height) {
    throw new ApiError(400, 'INVALID_PARAMETER', `mask_image must have the size of init_image (${width}x${height}) `
      + `but is ${maskSize.width}x${maskSize.height}`, { param: 'mask_image' });
  }
  return { mode: 'inpaint', parameters, uploads: { image, mask } };
}

// A form body decodes '+' to a space, and base64 has no spaces: a client that did not
// percent-encode its base64 still gets its image.
async function decoded(field: string, text: string, maxUploadBytes: number): Promise<Upload> {
  const upload = await base64Image(field, text.replace(/ /g, '+'));
  if (upload.data.length > maxUploadBytes) {
    throw new ApiError(413, 'UPLOAD_TOO_LARGE',
      `${field} is larger than the upload limit of ${Math.round(maxUploadBytes / 2 ** 20 * 100) / 100} MB (--max-upload-mb)`, { param: field });
  }
  return upload;
}

// The engine makes sides that are multiples of `step` within 64–2048; any other size is made at
// the nearest such size below and scaled to the image's own.
function generationSize(width: number, height: number, step: number): Pick<JobParameters, 'width' | 'height' | 'outputWidth' | 'outputHeight'> {
  const side = (value: number) => Math.min(2048, Math.max(64, Math.floor(value / step) * step));
  return scaledTo({ width: side(width), height: side(height) }, width, height);
}

function scaledTo(generated: { width: number; height: number }, width: number, height: number):
  Pick<JobParameters, 'width' | 'height' | 'outputWidth' | 'outputHeight'> {
  const exact = generated.width === width && generated.height === height;
  return exact ? generated : { ...generated, outputWidth: width, outputHeight: height };
}
