// Redis as the job system's shared storage (--redis): one connection helper, the key names every
// process agrees on, and the one place a lost connection becomes QueueUnavailableError (503).

import { Redis, type RedisOptions } from 'ioredis';

import type { WriteLine } from './log.js';
import { QueueUnavailableError } from './queue.js';

/** Everything sdnode keeps in Redis, under one prefix. */
export interface RedisKeys {
  /** Prefix of BullMQ's own keys (one queue per model). */
  bullPrefix: string;
  /** Hash per job: record, uploads, result images, its retention. */
  job(id: string): string;
  /** The key that signs result URLs, the same in every API process. */
  secret: string;
  /** Hash per running job: progress, latest preview, cancel request. */
  live(id: string): string;
  /** Set of worker ids; each has a `worker(id)` key that expires without heartbeats. */
  workers: string;
  worker(id: string): string;
  /** Set of model names that have a queue. */
  models: string;
  /** The default model chosen through AUTOMATIC1111's options, shared by the API processes. */
  defaultModel: string;
  /** Pub/sub: job events (progress, preview, image, settled), and cancel/skip for workers. */
  events: string;
  control: string;
}

export function redisKeys(prefix = 'sdnode'): RedisKeys {
  return {
    bullPrefix: `${prefix}:bull`,
    job: (id) => `${prefix}:job:${id}`,
    secret: `${prefix}:url-secret`,
    live: (id) => `${prefix}:live:${id}`,
    workers: `${prefix}:workers`,
    worker: (id) => `${prefix}:worker:${id}`,
    models: `${prefix}:models`,
    defaultModel: `${prefix}:default-model`,
    events: `${prefix}:events`,
    control: `${prefix}:control`,
  };
}

/**
 * 'client': API processes, whose commands fail at once while Redis is away (the request answers
 * 503). 'worker': workers, whose commands wait for the reconnection (BullMQ needs that too).
 */
export type RedisRole = 'client' | 'worker';

const connectTimeoutMs = 10_000;

export class RedisConnection {
  readonly redis: Redis;
  /** The URL without its password, for messages. */
  readonly displayUrl: string;
  readonly #log: WriteLine;
  readonly #duplicates: Redis[] = [];

  private constructor(url: string, redis: Redis, log: WriteLine) {
    this.redis = redis;
    this.displayUrl = redisDisplayUrl(url);
    this.#log = log;
  }

  /** Connects and waits until Redis answers; rejects with a message naming the URL when it does not. */
  static async open(url: string, role: RedisRole, log: WriteLine): Promise<RedisConnection> {
    const options: RedisOptions = role === 'client'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true }
      : { maxRetriesPerRequest: null, lazyConnect: true };
    const connection = new RedisConnection(url, new Redis(url, options), log);
    await connection.#ready(connection.redis);
    return connection;
  }

  /** A second connection with the same options (pub/sub needs its own), closed with this one. */
  async duplicate(): Promise<Redis> {
    const copy = this.redis.duplicate({ enableOfflineQueue: true });
    this.#duplicates.push(copy);
    await this.#ready(copy);
    return copy;
  }

  /** Runs Redis commands; a failure while the connection is down becomes QueueUnavailableError. */
  async call<T>(commands: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await commands(this.redis);
    } catch (error) {
      if (this.redis.status !== 'ready' || isConnectionError(error)) {
        throw new QueueUnavailableError(`Redis at ${this.displayUrl}: ${error instanceof Error ? error.message : String(error)}`);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    for (const redis of [...this.#duplicates, this.redis]) {
      await redis.quit().catch(() => redis.disconnect());
    }
  }

  // Reports an outage once and the reconnection once, not every retry.
  async #ready(redis: Redis): Promise<void> {
    let connected = false;
    let down = false;
    redis.on('error', (error: Error) => {
      if (!connected || down) return;
      down = true;
      this.#log(`Redis at ${this.displayUrl}: ${error.message}; reconnecting`);
    });
    redis.on('ready', () => {
      if (down) this.#log(`Redis at ${this.displayUrl}: connected again`);
      down = false;
    });
    if (redis.status === 'wait') void redis.connect().catch(() => {});
    if (redis.status !== 'ready') {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          redis.disconnect();
          reject(new Error(`Cannot reach Redis at ${this.displayUrl} (tried for ${connectTimeoutMs / 1000} s)`));
        }, connectTimeoutMs);
        redis.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    connected = true;
  }
}

function isConnectionError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  return /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Connection is closed|enableOfflineQueue|MaxRetriesPerRequest|Stream isn't writeable/i.test(message);
}

/** The URL without its password, for messages. */
export function redisDisplayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
