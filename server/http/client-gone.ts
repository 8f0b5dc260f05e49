// Synchronous routes cancel their job when the client goes away. The signal is made before the
// body is read and the job submitted, so a client that leaves at any moment is noticed.

import type { RequestHandler, Response } from 'express';

/** Middleware: `clientGone(res)` aborts once the connection closes before the answer is complete. */
export const watchClient: RequestHandler = (req, res, next) => {
  const controller = new AbortController();
  res.locals.clientGone = controller.signal;
  res.on('close', () => {
    if (!res.writableEnded) controller.abort();
  });
  if (req.socket.destroyed) controller.abort();
  next();
};

export function clientGone(res: Response): AbortSignal {
  const signal = res.locals.clientGone as AbortSignal | undefined;
  if (!signal) throw new Error('watchClient must run before this route');
  return signal;
}
