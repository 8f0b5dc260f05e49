// Multipart parsing (multer, in memory) and the check that each uploaded file is an image sharp
// can read, before a job is queued.

import type { RequestHandler } from 'express';
import multer from 'multer';
import sharp from 'sharp';

import { MAX_INPUT_PIXELS } from '../../lib/images.js';
import type { Upload } from '../jobs/store.js';
import { ApiError } from './errors.js';

// The formats the library reads, each with the extension the stored copy gets.
const extensionByFormat: Readonly<Record<string, string>> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

const maxFieldBytes = 64 * 1024;

/**
 * Room for a request's fields besides its images: four prompts of up to 8 KB and the clients'
 * usual extras (A1111's override_settings and script arguments).
 */
const maxTextFieldsBytes = 256 * 1024;

/**
 * The largest body a route needs that carries `images` base64 images of at most `maxUploadBytes`
 * each (a third larger as base64, plus a data: URL prefix); `percentEncoded` leaves room for
 * %2B / %2F escapes in form-urlencoded bodies. Anything larger is refused before it is read.
 */
export function base64BodyLimit(images: number, maxUploadBytes: number, options: { percentEncoded?: boolean } = {}): number {
  const base64 = Math.ceil(maxUploadBytes / 3) * 4 + 64;
  return Math.ceil(images * base64 * (options.percentEncoded ? 1.5 : 1)) + maxTextFieldsBytes;
}

export interface MultipartOptions {
  /** The route, for messages: "/image-to-image". */
  route: string;
  /** File fields and how many files each takes. */
  files: readonly { name: string; maxCount: number }[];
  maxUploadBytes: number;
  /** How to tell a curl user what to send, e.g. 'curl -F prompt="a photo of a cat" …'. */
  example: string;
}

/** Parses the multipart body into req.body (text fields) and req.files (the declared file fields). */
export function multipartForm(options: MultipartOptions): RequestHandler {
  const maxFiles = options.files.reduce((sum, file) => sum + file.maxCount, 0);
  const upload = multer({
    storage: multer.memoryStorage(),
    // One file more than allowed, so that an extra file is reported by its field name.
    limits: { fileSize: options.maxUploadBytes, files: maxFiles + 1, fieldSize: maxFieldBytes, fields: 48, parts: 64 },
  });
  const parse = options.files.length === 0 ? upload.none() : upload.fields([...options.files]);
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) {
      next(new ApiError(400, 'EXPECTED_MULTIPART', `Send ${options.route} a multipart/form-data body, e.g. ${options.example}`));
      return;
    }
    parse(req, res, (error?: unknown) => {
      next(error === undefined ? undefined : uploadError(options, error));
    });
  };
}

function uploadError(options: MultipartOptions, error: unknown): unknown {
  if (!(error instanceof multer.MulterError)) {
    // busboy's complaints about a malformed body (bad boundary, truncated part) are plain Errors.
    const detail = error instanceof Error ? error.message : String(error);
    return new ApiError(400, 'INVALID_FORM', `Could not read the multipart form: ${detail}`);
  }
  const field = error.field ?? 'a field';
  switch (error.code) {
    case 'LIMIT_FILE_SIZE':
      return new ApiError(413, 'UPLOAD_TOO_LARGE',
        `${field} is larger than the upload limit of ${formatMegabytes(options.maxUploadBytes)} MB (--max-upload-mb)`,
        { param: field });
    case 'LIMIT_FIELD_VALUE':
      return new ApiError(413, 'FIELD_TOO_LARGE', `${field} is longer than ${maxFieldBytes / 1024} KiB`, { param: field });
    case 'LIMIT_UNEXPECTED_FILE':
    case 'LIMIT_FILE_COUNT': {
      const accepted = options.files.length === 0
        ? 'no files'
        : options.files.map((file) => (file.maxCount === 1 ? `one file for ${file.name}` : `up to ${file.maxCount} files for ${file.name}`)).join(', ');
      return new ApiError(400, 'UNEXPECTED_FILE', `Unexpected file ${field}: ${options.route} takes ${accepted}`, { param: field });
    }
    default:
      return new ApiError(400, 'INVALID_FORM', `Could not read the multipart form: ${error.message}`);
  }
}

function formatMegabytes(bytes: number): string {
  return String(Math.round((bytes / (1024 * 1024)) * 100) / 100);
}

type UploadedFiles = Partial<Record<string, Express.Multer.File[]>>;

/** The files multer stored under `name` (none when absent). */
export function uploadedFiles(files: unknown, name: string): Buffer[] {
  const uploaded = (typeof files === 'object' && files !== null ? files : {}) as UploadedFiles;
  return (uploaded[name] ?? []).map((file) => file.buffer);
}

/** An upload's size as it shows: after its EXIF orientation. */
export async function imageSize(upload: Upload): Promise<{ width: number; height: number }> {
  const { width = 0, height = 0, autoOrient } = await sharp(upload.data).metadata();
  return autoOrient ?? { width, height };
}

/**
 * An image upload checked to be PNG, JPEG or WebP of at most MAX_INPUT_PIXELS (the library's
 * limit, 4096×4096); a 400 naming the field otherwise, before its pixels are ever decoded.
 */
export async function imageUpload(field: string, data: Buffer): Promise<Upload> {
  let meta: sharp.Metadata | undefined;
  try {
    meta = await sharp(data).metadata();
  } catch {
    meta = undefined;
  }
  const ext = meta?.format === undefined ? undefined : extensionByFormat[meta.format];
  if (ext === undefined) throw new ApiError(400, 'INVALID_IMAGE', `${field} is not a PNG, JPEG or WebP image`, { param: field });
  const { width = 0, height = 0 } = meta ?? {};
  if (width * height > MAX_INPUT_PIXELS) {
    throw new ApiError(400, 'IMAGE_TOO_LARGE',
      `${field} is ${width}×${height}; images of at most ${MAX_INPUT_PIXELS} pixels (4096×4096) are accepted`, { param: field });
  }
  return { ext, data };
}
