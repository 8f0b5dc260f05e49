// Waiting for an OpenAI job and answering: one JSON body when it is done, or Server-Sent Events
// (partial images from the live previews, then each finished image) with `stream: true`. A client
// that goes away cancels its job.

import type { Request, Response } from 'express';
import sharp from 'sharp';

import { clientGone } from '../../http/client-gone.js';
import { ApiError, jobFailureError } from '../../http/errors.js';
import type { ServerContext } from '../../http/context.js';
import type { JobPreview, JobRecord } from '../../jobs/job.js';
import { safetyVerdicts, type SafetyVerdicts } from '../../jobs/safety.js';
import { JobAbandonedError, type JobSnapshot } from '../../jobs/service.js';
import { encodeOutput, type OutputFormat } from './mapping.js';
import type { ResultUrls } from './urls.js';

export interface ResultOptions {
  responseFormat: 'url' | 'b64_json';
  outputFormat: OutputFormat;
  compression: number | undefined;
  /** 'image_generation' or 'image_edit': the prefix of streamed event types. */
  eventPrefix: 'image_generation' | 'image_edit';
  /** Partial images per image when streaming; undefined: answer with one JSON body. */
  stream: { partialImages: number } | undefined;
  quality: string;
  background: string;
}

/** Resolves once the answer is sent (or the client has gone). */
export async function answerWhenDone(context: ServerContext, urls: ResultUrls, req: Request, res: Response,
  record: JobRecord, options: ResultOptions): Promise<void> {
  const signal = clientGone(res);
  const created = Math.floor(Date.now() / 1000);
  const sizeLabel = outputSizeLabel(record);
  try {
    if (options.stream) {
      await streamEvents(context, res, record, options, signal, created, sizeLabel);
      return;
    }
    const done = await context.jobs.wait(record.id, signal);
    throwIfFailed(done);
    const base = `${req.protocol}://${req.get('host') ?? 'localhost'}`;
    const pngs: Buffer[] = [];
    for (let n = 1; n <= done.imagesDone; n++) pngs.push(await context.jobs.readImage(record.id, n));
    const safety = verdictsOf(record, pngs);
    const data = [];
    for (const [i, png] of pngs.entries()) {
      const nsfw = safety && { nsfw: safety.nsfw[i] ?? null };
      if (options.responseFormat === 'url') {
        data.push({ url: base + urls.sign(record.id, i + 1, options.outputFormat), ...nsfw });
      } else {
        const image = await encodeOutput(png, options.outputFormat, options.compression);
        data.push({ b64_json: image.toString('base64'), ...nsfw });
      }
    }
    res.json({
      created, data, output_format: options.outputFormat, size: sizeLabel, quality: options.quality, background: options.background,
      ...(safety?.warning !== undefined && { warning: safety.warning }),
    });
  } catch (error) {
    if (error instanceof JobAbandonedError) return;
    throw error;
  }
}

async function streamEvents(context: ServerContext, res: Response, record: JobRecord, options: ResultOptions,
  signal: AbortSignal, created: number, size: string): Promise<void> {
  res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.flushHeaders();
  const common = { created_at: created, size, quality: options.quality, background: options.background, output_format: options.outputFormat };
  const send = (type: string, data: object): void => {
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  };
  const partialImages = options.stream?.partialImages ?? 0;
  // Partial images are spread evenly over each image's steps: with 2, at 1/3 and 2/3 of the way.
  let fraction = 0;
  const sentForImage = new Map<number, number>();
  let partialIndex = 0;
  // Events are written in order even though encoding is asynchronous.
  let writing = Promise.resolve();
  const enqueue = (work: () => Promise<void>): void => {
    writing = writing.then(work).catch(() => {});
  };
  const onPreview = (preview: JobPreview): void => {
    const sent = sentForImage.get(preview.imageIndex) ?? 0;
    if (sent >= partialImages || fraction < (sent + 1) / (partialImages + 1)) return;
    sentForImage.set(preview.imageIndex, sent + 1);
    const index = partialIndex++;
    enqueue(async () => {
      const image = await partialImage(preview, record, options);
      send(`${options.eventPrefix}.partial_image`, { b64_json: image.toString('base64'), ...common, partial_image_index: index });
    });
  };
  const onImage = (n: number): void => {
    enqueue(async () => {
      const png = await context.jobs.readImage(record.id, n);
      const image = await encodeOutput(png, options.outputFormat, options.compression);
      const safety = verdictsOf(record, [png]);
      send(`${options.eventPrefix}.completed`, {
        b64_json: image.toString('base64'), ...common,
        ...(safety && { nsfw: safety.nsfw[0] ?? null }), ...(safety?.warning !== undefined && { warning: safety.warning }),
      });
    });
  };
  const done = await context.jobs.wait(record.id, signal, {
    onProgress: (progress) => {
      fraction = progress.currentImageProgress;
    },
    onPreview,
    onImage,
  });
  await writing;
  if (done.record.state === 'FAILED') {
    const error = failure(done);
    const type = error.status >= 500 ? 'server_error' : 'invalid_request_error';
    send('error', { error: { message: error.message, type, param: error.param ?? null, code: error.code } });
  }
  res.end();
}

// A preview is one pixel per latent cell; clients expect a picture of the final size.
async function partialImage(preview: JobPreview, record: JobRecord, options: ResultOptions): Promise<Buffer> {
  const { width, height } = outputSize(record);
  const meta = await sharp(preview.png).metadata();
  const scaled = await sharp(preview.png)
    .resize(width ?? (meta.width ?? 64) * 8, height ?? (meta.height ?? 64) * 8, { fit: 'fill', kernel: 'cubic' })
    .png().toBuffer();
  return encodeOutput(scaled, options.outputFormat, options.compression);
}

function verdictsOf(record: JobRecord, pngs: readonly Buffer[]): SafetyVerdicts | undefined {
  return record.parameters.safetyCheck === undefined ? undefined : safetyVerdicts(pngs);
}

function outputSize(record: JobRecord): { width: number | undefined; height: number | undefined } {
  const p = record.parameters;
  return { width: p.outputWidth ?? p.width, height: p.outputHeight ?? p.height };
}

function outputSizeLabel(record: JobRecord): string {
  const { width, height } = outputSize(record);
  return width === undefined || height === undefined ? 'auto' : `${width}x${height}`;
}

function throwIfFailed(snapshot: JobSnapshot): void {
  if (snapshot.record.state === 'FAILED') throw failure(snapshot);
}

function failure(snapshot: JobSnapshot): ApiError {
  return jobFailureError(snapshot.record.error);
}
