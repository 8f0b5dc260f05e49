// Multipart parsing (multer, in memory) and the check that each uploaded file is an image sharp
// can read, before a task is queued.

import type { RequestHandler } from 'express';
import multer from 'multer';
import sharp from 'sharp';

import { HttpError } from './errors.js';
import { uploadSlotsByKind } from './form.js';
import type { Upload } from './task-store.js';
import type { TaskKind, UploadSlot } from './task.js';

// The formats the library reads, each with the extension the stored copy gets.
const extensionByFormat: Readonly<Record<string, string>> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

const maxFieldBytes = 64 * 1024;

/** Parses the multipart body into req.body (text fields) and req.files (the kind's file fields). */
export function multipartForm(kind: TaskKind, maxUploadBytes: number): RequestHandler {
  const slots = uploadSlotsByKind[kind];
  const upload = multer({
    storage: multer.memoryStorage(),
    // One file more than the slots, so that an extra file is reported by its field name.
    limits: { fileSize: maxUploadBytes, files: slots.length + 1, fieldSize: maxFieldBytes, fields: 32, parts: 40 },
  });
  const parse = slots.length === 0 ? upload.none() : upload.fields(slots.map((name) => ({ name, maxCount: 1 })));
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) {
      next(new HttpError(400, 'EXPECTED_MULTIPART',
        `Send /${kind} a multipart/form-data body, e.g. curl -F prompt="a photo of a cat" …`));
      return;
    }
    parse(req, res, (error?: unknown) => {
      next(error === undefined ? undefined : uploadError(kind, error, maxUploadBytes));
    });
  };
}

function uploadError(kind: TaskKind, error: unknown, maxUploadBytes: number): unknown {
  if (!(error instanceof multer.MulterError)) {
    // busboy's complaints about a malformed body (bad boundary, truncated part) are plain Errors.
    const detail = error instanceof Error ? error.message : String(error);
    return new HttpError(400, 'INVALID_FORM', `Could not read the multipart form: ${detail}`);
  }
  const field = error.field ?? 'a field';
  switch (error.code) {
    case 'LIMIT_FILE_SIZE':
      return new HttpError(413, 'UPLOAD_TOO_LARGE',
        `${field} is larger than the upload limit of ${formatMegabytes(maxUploadBytes)} MB (--max-upload-mb)`);
    case 'LIMIT_FIELD_VALUE':
      return new HttpError(413, 'FIELD_TOO_LARGE', `${field} is longer than ${maxFieldBytes / 1024} KiB`);
    case 'LIMIT_UNEXPECTED_FILE':
    case 'LIMIT_FILE_COUNT': {
      const slots = uploadSlotsByKind[kind];
      const accepted = slots.length === 0 ? 'no files' : `one file each for ${slots.join(', ')}`;
      return new HttpError(400, 'UNEXPECTED_FILE', `Unexpected file ${field}: /${kind} takes ${accepted}`);
    }
    default:
      return new HttpError(400, 'INVALID_FORM', `Could not read the multipart form: ${error.message}`);
  }
}

function formatMegabytes(bytes: number): string {
  return String(Math.round((bytes / (1024 * 1024)) * 100) / 100);
}

type UploadedFiles = Partial<Record<string, Express.Multer.File[]>>;

/** The kind's uploads, each checked to be an image sharp can read; a 400 naming the field otherwise. */
export async function checkedUploads(kind: TaskKind, files: unknown): Promise<Partial<Record<UploadSlot, Upload>>> {
  const uploaded = (typeof files === 'object' && files !== null ? files : {}) as UploadedFiles;
  const result: Partial<Record<UploadSlot, Upload>> = {};
  for (const slot of uploadSlotsByKind[kind]) {
    const file = uploaded[slot]?.[0];
    if (!file) {
      throw new HttpError(400, 'MISSING_UPLOAD', `/${kind} needs the ${slot} file, e.g. curl -F ${slot}=@${slot}.png`);
    }
    result[slot] = { ext: await imageExtension(slot, file.buffer), data: file.buffer };
  }
  return result;
}

async function imageExtension(slot: UploadSlot, data: Buffer): Promise<string> {
  let format: string | undefined;
  try {
    ({ format } = await sharp(data).metadata());
  } catch {
    format = undefined;
  }
  const ext = format === undefined ? undefined : extensionByFormat[format];
  if (ext === undefined) {
    throw new HttpError(400, 'INVALID_IMAGE',
      `${slot} is not a PNG, JPEG or WebP image`);
  }
  return ext;
}
