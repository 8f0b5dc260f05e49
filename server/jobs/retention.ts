// How long finished things are kept: jobs and their images, the task API's blobs and its events
// in memory. One setting (--retention, default 24 h) for files as for Redis, where a finished
// job's keys expire on their own.

/** Default retention: 24 hours. */
export const defaultRetentionMs = 24 * 3600 * 1000;

/**
 * Runs `sweep` now and then every so often (a quarter of the retention, at most every 10 minutes)
 * until the returned function is called. The timer does not keep the process alive; a sweep that
 * fails is reported to `log` and tried again next time.
 */
export function sweepEvery(retentionMs: number, sweep: () => Promise<unknown>, log: (line: string) => void): () => void {
  const everyMs = Math.max(1000, Math.min(retentionMs / 4, 10 * 60 * 1000));
  let running: Promise<unknown> = Promise.resolve();
  const run = (): void => {
    running = running.then(sweep).catch((error: unknown) => log(`retention: ${error instanceof Error ? error.message : String(error)}`));
  };
  run();
  const timer = setInterval(run, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
