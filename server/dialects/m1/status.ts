// M1 ↔ jobs: a form becomes JobParameters; a job snapshot becomes the M1 status object.

import type { JobMode, JobParameters, JobProgress } from '../../jobs/job.js';
import {
  a1111RefinerFields, chosenSeed, multipleOf8, refinerParameters, samplerFields, withoutUndefined,
} from '../../jobs/parameters.js';
import type { JobSnapshot } from '../../jobs/service.js';
import type { M1Form, M1Kind, M1Status } from './schemas.js';

export const modeByKind: Readonly<Record<M1Kind, JobMode>> = {
  'text-to-image': 'txt2img',
  'image-to-image': 'img2img',
  'inpaint-image': 'inpaint',
};

export function jobParameters(form: M1Form): JobParameters {
  return withoutUndefined({
    prompt: form.prompt ?? '',
    negativePrompt: form.negative_prompt,
    count: form.iterations ?? 1,
    seed: chosenSeed(form.seed),
    steps: form.steps,
    width: multipleOf8('width', form.width),
    height: multipleOf8('height', form.height),
    cfgScale: form.cfg_scale,
    guidance: form.guidance,
    ...samplerFields(form.sampler, form.scheduler),
    strength: form.strength,
    maskBlur: form.mask_blur,
    maskedStart: form.masked_start,
    vaeTiling: form.vae_tiling,
    refiner: refinerParameters(form.refiner_checkpoint, form.refiner_switch_at, a1111RefinerFields),
  });
}

/** `prefix`: the server's --api-prefix ('' for none). */
export function resultUrl(prefix: string, kind: M1Kind, id: string): string {
  return `${prefix}/${kind}/${id}`;
}

export function queuedBody(prefix: string, kind: M1Kind, id: string): M1Status {
  return { status: 'QUEUED', resultUrl: resultUrl(prefix, kind, id) };
}

export function statusBody(prefix: string, kind: M1Kind, { record, imagesDone, progress, hasPreview }: JobSnapshot): M1Status {
  const url = resultUrl(prefix, kind, record.id);
  const imageUrls = Array.from({ length: imagesDone }, (_, i) => `${url}/${i + 1}.png`);
  switch (record.state) {
    case 'COMPLETE':
      return { status: 'COMPLETE', resultUrl: url, imageUrls };
    case 'FAILED':
      return {
        status: 'FAILED',
        resultUrl: url,
        error: record.error ?? { code: 'GENERATION_FAILED', message: 'The job failed' },
        imageUrls,
      };
    case 'QUEUED':
      // A resumed job that already has images is partly done, whatever its place in the queue.
      if (imagesDone === 0 && progress === undefined) return { status: 'QUEUED', resultUrl: url };
      break;
    case 'IN_PROGRESS':
      break;
  }
  return {
    status: 'IN_PROGRESS',
    resultUrl: url,
    progress: currentProgress(record.parameters.count, imagesDone, progress),
    imageUrls,
    ...(hasPreview && { previewUrl: `${url}/preview.png` }),
  };
}

// The worker reports progress after it has written an image, so for a moment the files can be
// ahead of the last report; the files win.
function currentProgress(totalImages: number, imagesDone: number, reported: JobProgress | undefined): JobProgress {
  if (reported && reported.currentImageIndex >= imagesDone) {
    const { currentImageIndex, currentImageProgress } = reported;
    return { currentImageIndex, currentImageProgress, totalImages };
  }
  return imagesDone >= totalImages
    ? { currentImageIndex: totalImages - 1, currentImageProgress: 1, totalImages }
    : { currentImageIndex: imagesDone, currentImageProgress: 0, totalImages };
}
