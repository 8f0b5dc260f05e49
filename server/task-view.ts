// The JSON bodies of the M1 API, shaped from a task snapshot.

import type { TaskSnapshot } from './tasks.js';
import type { TaskError, TaskKind, TaskProgress, TaskRecord } from './task.js';

export type TaskStatusBody =
  | { status: 'QUEUED'; resultUrl: string }
  | { status: 'IN_PROGRESS'; resultUrl: string; progress: TaskProgress; imageUrls: string[] }
  | { status: 'COMPLETE'; resultUrl: string; imageUrls: string[] }
  | { status: 'FAILED'; resultUrl: string; error: TaskError; imageUrls: string[] };

export function resultUrl(kind: TaskKind, id: string): string {
  return `/${kind}/${id}`;
}

export function queuedBody(record: TaskRecord): TaskStatusBody {
  return { status: 'QUEUED', resultUrl: resultUrl(record.kind, record.id) };
}

export function statusBody({ record, imagesDone, progress }: TaskSnapshot): TaskStatusBody {
  const url = resultUrl(record.kind, record.id);
  const imageUrls = Array.from({ length: imagesDone }, (_, i) => `${url}/${i + 1}.png`);
  switch (record.state) {
    case 'COMPLETE':
      return { status: 'COMPLETE', resultUrl: url, imageUrls };
    case 'FAILED':
      return {
        status: 'FAILED',
        resultUrl: url,
        error: record.error ?? { code: 'GENERATION_FAILED', message: 'The task failed' },
        imageUrls,
      };
    case 'QUEUED':
      // A resumed task that already has images is partly done, whatever its place in the queue.
      if (imagesDone === 0 && progress === undefined) return { status: 'QUEUED', resultUrl: url };
      break;
    case 'IN_PROGRESS':
      break;
  }
  return { status: 'IN_PROGRESS', resultUrl: url, progress: currentProgress(record, imagesDone, progress), imageUrls };
}

// The worker reports progress after it has written an image, so for a moment the files can be
// ahead of the last report; the files win.
function currentProgress(record: TaskRecord, imagesDone: number, reported: TaskProgress | undefined): TaskProgress {
  const totalImages = record.parameters.iterations;
  if (reported && reported.currentImageIndex >= imagesDone) return reported;
  return imagesDone >= totalImages
    ? { currentImageIndex: totalImages - 1, currentImageProgress: 1, totalImages }
    : { currentImageIndex: imagesDone, currentImageProgress: 0, totalImages };
}
