// Synchronous dialects (Photoshop, /generate): wait for the job a request made and answer with its
// images. A client that goes away cancels the job, and nothing is answered.

import type { Response } from 'express';

import type { JobRecord } from '../jobs/job.js';
import { clientGone } from './client-gone.js';
import type { ServerContext } from './context.js';
import { ApiError, jobFailureError } from './errors.js';

/** The job's images, in order, once it is COMPLETE; undefined when the client left. A failed job is an ApiError. */
export async function imagesWhenDone(context: ServerContext, record: JobRecord, res: Response): Promise<Buffer[] | undefined> {
  const done = await context.jobs.waitForClient(record.id, clientGone(res));
  if (!done) return undefined;
  if (done.record.state === 'FAILED') throw jobFailureError(done.record.error);
  const images: Buffer[] = [];
  for (let n = 1; n <= done.imagesDone; n++) images.push(await context.jobs.readImage(record.id, n));
  return images;
}

/** Refuses new work once shutdown has begun. */
export function requireAcceptingJobs(context: ServerContext): void {
  if (!context.acceptingJobs()) throw new ApiError(503, 'SHUTTING_DOWN', 'The server is shutting down; retry later');
}
