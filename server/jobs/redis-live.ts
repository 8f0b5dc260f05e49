// What is live about running jobs, shared through Redis: workers write progress and the latest
// preview into a hash per job and publish every event; API processes read the hash (polling
// clients) and subscribe to the events (waiting and streaming clients). Cancel and skip travel
// the other way, on a control channel, with a cancel flag in the hash for a worker that picks the
// job up just after the message went out.
//
//   <prefix>:live:<id>   progress (JSON), preview (PNG), preview-at (JSON {imageIndex, step}), cancel

import type { Redis } from 'ioredis';

import type { JobPreview, JobProgress } from './job.js';
import type { QueueEvent } from './queue.js';
import type { RedisConnection, RedisKeys } from './redis.js';

/** Live state outlives a worker that died without cleaning up by this long at most. */
const liveTtlSeconds = 24 * 3600;

export type ControlMessage = { type: 'cancel' | 'skip'; jobId: string };

type WireEvent =
  | Exclude<QueueEvent, { type: 'preview' }>
  | { type: 'preview'; jobId: string; imageIndex: number; step: number; png: string };

export class LiveJobs {
  readonly #connection: RedisConnection;
  readonly #keys: RedisKeys;

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection;
    this.#keys = keys;
  }

  async progress(jobId: string): Promise<JobProgress | undefined> {
    const text = await this.#connection.call((redis) => redis.hget(this.#keys.live(jobId), 'progress'));
    return text === null ? undefined : (JSON.parse(text) as JobProgress);
  }

  async preview(jobId: string): Promise<JobPreview | undefined> {
    const [png, at] = await this.#connection.call((redis) =>
      Promise.all([redis.hgetBuffer(this.#keys.live(jobId), 'preview'), redis.hget(this.#keys.live(jobId), 'preview-at')]));
    if (!png || at === null) return undefined;
    return { png, ...(JSON.parse(at) as { imageIndex: number; step: number }) };
  }

  /** Records what an event says about the job (progress, preview) and publishes the event. */
  async report(event: QueueEvent): Promise<void> {
    const key = this.#keys.live(event.jobId);
    await this.#connection.call(async (redis) => {
      const batch = redis.multi();
      if (event.type === 'progress') batch.hset(key, 'progress', JSON.stringify(event.progress)).expire(key, liveTtlSeconds);
      if (event.type === 'preview') {
        const { png, imageIndex, step } = event.preview;
        batch.hset(key, 'preview', png, 'preview-at', JSON.stringify({ imageIndex, step })).expire(key, liveTtlSeconds);
      }
      if (event.type === 'settled') batch.hdel(key, 'progress', 'preview', 'preview-at');
      batch.publish(this.#keys.events, encodeEvent(event));
      await batch.exec();
    });
  }

  /** Forgets the job's live state, cancel request included, and says it settled. */
  async finish(jobId: string): Promise<void> {
    await this.#connection.call((redis) => redis.multi()
      .del(this.#keys.live(jobId))
      .publish(this.#keys.events, encodeEvent({ type: 'settled', jobId }))
      .exec());
  }

  async requestCancel(jobId: string): Promise<void> {
    const key = this.#keys.live(jobId);
    await this.#connection.call((redis) => redis.multi()
      .hset(key, 'cancel', '1').expire(key, liveTtlSeconds)
      .publish(this.#keys.control, JSON.stringify({ type: 'cancel', jobId } satisfies ControlMessage))
      .exec());
  }

  async requestSkip(jobId: string): Promise<void> {
    await this.#connection.call((redis) =>
      redis.publish(this.#keys.control, JSON.stringify({ type: 'skip', jobId } satisfies ControlMessage)));
  }

  async cancelRequested(jobId: string): Promise<boolean> {
    return (await this.#connection.call((redis) => redis.hexists(this.#keys.live(jobId), 'cancel'))) === 1;
  }
}

/** Calls `listener` with every job event any process publishes; returns the function that stops it. */
export async function subscribeEvents(subscriber: Redis, keys: RedisKeys, listener: (event: QueueEvent) => void): Promise<() => Promise<void>> {
  return subscribeChannel(subscriber, keys.events, (text) => {
    const event = decodeEvent(text);
    if (event) listener(event);
  });
}

/** Calls `listener` with every cancel and skip request. */
export async function subscribeControl(subscriber: Redis, keys: RedisKeys, listener: (message: ControlMessage) => void): Promise<() => Promise<void>> {
  return subscribeChannel(subscriber, keys.control, (text) => {
    const message = parseJson(text) as Partial<ControlMessage> | undefined;
    if ((message?.type === 'cancel' || message?.type === 'skip') && typeof message.jobId === 'string') {
      listener({ type: message.type, jobId: message.jobId });
    }
  });
}

async function subscribeChannel(subscriber: Redis, channel: string, onText: (text: string) => void): Promise<() => Promise<void>> {
  const onMessage = (from: string, text: string): void => {
    if (from === channel) onText(text);
  };
  subscriber.on('message', onMessage);
  await subscriber.subscribe(channel);
  return async () => {
    subscriber.off('message', onMessage);
    await subscriber.unsubscribe(channel).catch(() => {});
  };
}

function encodeEvent(event: QueueEvent): string {
  if (event.type !== 'preview') return JSON.stringify(event);
  const { png, imageIndex, step } = event.preview;
  return JSON.stringify({ type: 'preview', jobId: event.jobId, imageIndex, step, png: png.toString('base64') } satisfies WireEvent);
}

function decodeEvent(text: string): QueueEvent | undefined {
  const event = parseJson(text) as WireEvent | undefined;
  if (!event || typeof event.jobId !== 'string') return undefined;
  if (event.type !== 'preview') return event;
  return { type: 'preview', jobId: event.jobId, preview: { png: Buffer.from(event.png, 'base64'), imageIndex: event.imageIndex, step: event.step } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
