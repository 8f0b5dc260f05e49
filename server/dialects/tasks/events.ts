// The task API's events, made from the job system's: pending (submitted), started, progress (step,
// steps, preview blob), finished (result blob and the parameters used) and aborted (with a reason).
// The latest event of each task is kept for GET /task/{id} and for websocket clients that connect
// late; listeners receive the events of their own user's tasks.

import { isFinished, type JobRecord } from '../../jobs/job.js';
import type { QueueEvent } from '../../jobs/queue.js';
import { safetyVerdicts } from '../../jobs/safety.js';
import type { JobService } from '../../jobs/service.js';
import { resultBlobId } from './blobs.js';
import type { TaskEvent } from './schemas.js';

export interface TaskInfo {
  owner: string;
  /**
   * Base of the links (BASE_URL or the submitting request's origin, with the --api-prefix); for a
   * task of an earlier run, just the prefix.
   */
  baseUrl: string;
  /** What the client asked for, in the API's names, for `parameters_used`. */
  parametersUsed: Record<string, unknown>;
  warnings: string[];
}

type Listener = (event: TaskEvent) => void;

export class TaskEventHub {
  readonly #jobs: JobService;
  readonly #dialect: string;
  readonly #apiPrefix: string;
  readonly #tasks = new Map<string, TaskInfo>();
  readonly #latest = new Map<string, TaskEvent>();
  readonly #listeners = new Map<Listener, string>();
  readonly #unsubscribe: () => void;
  #handling: Promise<void> = Promise.resolve();
  /** The unfinished tasks an earlier run left, read from the store once (the first listener waits for it). */
  #earlier: Promise<void> | undefined;

  constructor(jobs: JobService, dialect: string, apiPrefix: string) {
    this.#jobs = jobs;
    this.#dialect = dialect;
    this.#apiPrefix = apiPrefix;
    // Handled one after another, so that events go out in the order they happened.
    this.#unsubscribe = jobs.subscribe((event) => {
      this.#handling = this.#handling.then(() => this.#onQueueEvent(event)).catch(() => {});
    });
  }

  close(): void {
    this.#unsubscribe();
  }

  /** A task was submitted. */
  pending(record: JobRecord, info: TaskInfo): TaskEvent {
    this.#tasks.set(record.id, info);
    return this.#emit(record.id, { event_type: 'pending' });
  }

  /** A task was cancelled (DELETE): its aborted event, unless it had already ended. */
  aborted(id: string, reason: string): void {
    const latest = this.#latest.get(id);
    if (latest?.event_type === 'finished' || latest?.event_type === 'aborted') return;
    this.#emit(id, { event_type: 'aborted', reason });
  }

  /**
   * Forgets the tasks that ended (finished or aborted) before `cutoffMs` (epoch ms): their events
   * are read from the job's state from then on, for as long as the job is kept.
   */
  forgetEndedBefore(cutoffMs: number): void {
    for (const [id, event] of this.#latest) {
      if ((event.event_type === 'finished' || event.event_type === 'aborted') && Date.parse(event.timestamp) < cutoffMs) {
        this.#latest.delete(id);
        this.#tasks.delete(id);
      }
    }
  }

  /** The number of tasks whose events are held in memory. */
  get remembered(): number {
    return this.#latest.size;
  }

  /** The latest event of a task of `owner`, from memory or, after a restart, from the job's state. */
  async latest(owner: string, id: string): Promise<TaskEvent | undefined> {
    const snapshot = await this.#jobs.find(id);
    if (!snapshot || snapshot.record.dialect !== this.#dialect || snapshot.record.owner !== owner) return undefined;
    const known = this.#latest.get(id);
    if (known) return known;
    const { record } = snapshot;
    const timestamp = record.updatedAt;
    if (record.state === 'COMPLETE') return { ...(await this.#finished(record, snapshot.imagesDone)), timestamp };
    if (record.state === 'FAILED') return { event_type: 'aborted', task_id: id, timestamp, reason: record.error?.message ?? 'failed' };
    return { event_type: record.state === 'QUEUED' ? 'pending' : 'started', task_id: id, timestamp };
  }

  /**
   * Calls `listener` with every event of `owner`'s tasks; first the latest of each unfinished one.
   * The tasks are those in memory (the store is listed once, not per connection).
   */
  async listen(owner: string, listener: Listener): Promise<() => void> {
    this.#earlier ??= this.#rememberEarlierTasks();
    await this.#earlier;
    for (const [id, info] of [...this.#tasks]) {
      if (info.owner !== owner) continue;
      const latest = this.#latest.get(id) ?? await this.latest(owner, id);
      if (latest && latest.event_type !== 'finished' && latest.event_type !== 'aborted') listener(latest);
    }
    this.#listeners.set(listener, owner);
    return () => this.#listeners.delete(listener);
  }

  async #rememberEarlierTasks(): Promise<void> {
    for (const record of await this.#jobs.list()) {
      if (record.dialect !== this.#dialect || record.owner === undefined || isFinished(record.state) || this.#tasks.has(record.id)) continue;
      this.#tasks.set(record.id, { owner: record.owner, baseUrl: this.#apiPrefix, parametersUsed: {}, warnings: [] });
    }
  }

  async #onQueueEvent(event: QueueEvent): Promise<void> {
    const info = await this.#info(event.jobId);
    if (!info) return;
    const latest = this.#latest.get(event.jobId);
    switch (event.type) {
      case 'progress':
        if (event.progress.step === undefined) {
          if (latest?.event_type === 'pending' || latest === undefined) this.#emit(event.jobId, { event_type: 'started' });
          return;
        }
        this.#emit(event.jobId, {
          event_type: 'progress',
          step: event.progress.step,
          steps: event.progress.steps,
          ...((await this.#jobs.preview(event.jobId)) && { preview_blob_url: `${info.baseUrl}/blob/${resultBlobId(event.jobId, 'preview')}` }),
        });
        return;
      case 'settled': {
        const snapshot = await this.#jobs.find(event.jobId);
        if (!snapshot) return;
        if (snapshot.record.state === 'COMPLETE') {
          this.#emit(event.jobId, await this.#finished(snapshot.record, snapshot.imagesDone));
        } else if (snapshot.record.state === 'FAILED') {
          this.aborted(event.jobId, snapshot.record.error?.message ?? 'The task failed');
        }
        return;
      }
      default:
    }
  }

  // safety_filter in parameters_used says whether the filter ran: false for a task that asked for
  // it when no safety checker was loaded, with a warning saying so.
  async #finished(record: JobRecord, imagesDone: number): Promise<Omit<TaskEvent, 'timestamp'>> {
    const info = this.#tasks.get(record.id);
    const base = info?.baseUrl ?? this.#apiPrefix;
    const urls = Array.from({ length: imagesDone }, (_, i) => `${base}/blob/${resultBlobId(record.id, i + 1)}`);
    const safety = record.parameters.safetyCheck === undefined
      ? undefined
      : safetyVerdicts(await Promise.all(urls.map((_, i) => this.#jobs.readImage(record.id, i + 1))));
    return {
      event_type: 'finished',
      task_id: record.id,
      blob_url: urls[0] ?? '',
      blob_urls: urls,
      parameters_used: {
        ...info?.parametersUsed, seed: record.parameters.seed, safety_filter: safety !== undefined && safety.warning === undefined,
      },
      ...(safety && { nsfw: safety.nsfw }),
      warnings: [...(info?.warnings ?? []), ...(safety?.warning === undefined ? [] : [safety.warning])],
    };
  }

  async #info(id: string): Promise<TaskInfo | undefined> {
    const known = this.#tasks.get(id);
    if (known) return known;
    const snapshot = await this.#jobs.find(id);
    if (!snapshot || snapshot.record.dialect !== this.#dialect || snapshot.record.owner === undefined) return undefined;
    const info: TaskInfo = { owner: snapshot.record.owner, baseUrl: this.#apiPrefix, parametersUsed: {}, warnings: [] };
    this.#tasks.set(id, info);
    return info;
  }

  #emit(id: string, fields: Omit<TaskEvent, 'task_id' | 'timestamp'>): TaskEvent {
    const event: TaskEvent = { ...fields, task_id: id, timestamp: new Date().toISOString() } as TaskEvent;
    this.#latest.set(id, event);
    const owner = this.#tasks.get(id)?.owner;
    for (const [listener, listenerOwner] of this.#listeners) {
      if (listenerOwner === owner) listener(event);
    }
    return event;
  }
}
