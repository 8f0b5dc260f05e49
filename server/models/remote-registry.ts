// Models with --redis: API processes have no model files; workers offer theirs in Redis.
//
//   <prefix>:workers       set of worker ids
//   <prefix>:worker:<id>   JSON WorkerOffer, expiring unless the worker renews it (its heartbeat),
//                          so a dead worker's models disappear on their own
//   <prefix>:default-model the default chosen through AUTOMATIC1111's options
//
// The listings show what live workers offer. A request naming no model gets the default chosen
// through the options, else the API process's --model name (queued even while no worker offers
// it: one may start; the queue fails it after --no-worker-timeout), else the only model offered.

import { hostname } from 'node:os';
import path from 'node:path';

import { z } from 'zod';

import type { RedisConnection, RedisKeys } from '../jobs/redis.js';
import { InvalidFieldError } from '../parse.js';
import { findModelEntry, modelNameOf, NoModelError, UnknownModelError, type ModelCatalog, type ModelEntry } from './registry.js';

/** What one worker process tells the others about itself. */
export interface WorkerOffer {
  id: string;
  host: string;
  pid: number;
  /** Jobs it runs at once. */
  concurrency: number;
  /** Its models, each with `kontext` set: whether it is FLUX.1 Kontext, which only its files and marks tell. */
  models: ModelEntry[];
  /** Names it has loaded now. */
  loaded: string[];
}

// Anything that can write to Redis can write an offer: each is checked before it is believed.
const offerSchema = z.object({
  id: z.string().min(1).max(256),
  host: z.string().max(256),
  pid: z.number().int().nonnegative(),
  concurrency: z.number().int().min(1).max(1024),
  models: z.array(z.object({
    name: z.string().min(1).max(512).regex(/^[^\u0000-\u001f]+$/),
    path: z.string().max(4096),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    kontext: z.boolean().optional(),
  })).max(10_000),
  loaded: z.array(z.string().max(512)).max(10_000),
});

/**
 * A worker's offer as read from Redis, or undefined when it is not one. Model paths keep only
 * their file names: they are paths on the worker's machine, and this process never opens (or
 * hashes) a file a worker named. Each model's `kontext` is the worker's word (absent from an
 * older worker's offer: the model's name then decides).
 */
export function parseOffer(text: string): WorkerOffer | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const result = offerSchema.safeParse(parsed);
  if (!result.success) return undefined;
  const offer = result.data;
  return {
    ...offer,
    models: offer.models.map((entry) => ({
      name: entry.name,
      path: path.basename(entry.path.replaceAll('\\', '/')),
      ...(entry.sha256 !== undefined && { sha256: entry.sha256 }),
      ...(entry.kontext !== undefined && { kontext: entry.kontext }),
    })),
  };
}

/** Heartbeats: a worker is listed while its offer is renewed within this time. */
export const offerTtlMs = 6000;
export const heartbeatMs = 2000;
/** Listings are read from Redis at most this often. */
const cacheMs = 250;

export class WorkerDirectory {
  readonly #connection: RedisConnection;
  readonly #keys: RedisKeys;
  #cached: { at: number; offers: Promise<WorkerOffer[]> } | undefined;

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection;
    this.#keys = keys;
  }

  /** The offers of the workers alive now; forgets the ids of the dead. `fresh` skips the cache. */
  live(fresh = false): Promise<WorkerOffer[]> {
    const now = Date.now();
    if (!fresh && this.#cached && now - this.#cached.at < cacheMs) return this.#cached.offers;
    const offers = this.#read();
    this.#cached = { at: now, offers };
    offers.catch(() => {
      if (this.#cached?.offers === offers) this.#cached = undefined;
    });
    return offers;
  }

  /** Publishes (or renews) a worker's offer. */
  async advertise(offer: WorkerOffer): Promise<void> {
    await this.#connection.call((redis) => redis.multi()
      .sadd(this.#keys.workers, offer.id)
      .set(this.#keys.worker(offer.id), JSON.stringify(offer), 'PX', offerTtlMs)
      .exec());
  }

  async withdraw(id: string): Promise<void> {
    await this.#connection.call((redis) => redis.multi().srem(this.#keys.workers, id).del(this.#keys.worker(id)).exec());
  }

  async #read(): Promise<WorkerOffer[]> {
    return this.#connection.call(async (redis) => {
      const ids = await redis.smembers(this.#keys.workers);
      if (ids.length === 0) return [];
      const texts = await redis.mget(ids.map((id) => this.#keys.worker(id)));
      const dead = ids.filter((_id, i) => texts[i] === null);
      if (dead.length > 0) await redis.srem(this.#keys.workers, ...dead);
      return texts.flatMap((text) => (text === null ? [] : [parseOffer(text)].filter((offer) => offer !== undefined)));
    });
  }
}

/** A worker id that says where it runs: host, pid and a random part. */
export function newWorkerId(): string {
  return `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export interface RemoteModelRegistryOptions {
  /** The API process's --model: a name (or a file name; its extension is dropped). */
  defaultName?: string;
  /**
   * How long a model stays requestable after the last worker offering it went (--no-worker-timeout):
   * jobs for it queue while workers restart, and fail NO_WORKER if none comes back in time. Default 0.
   */
  rememberMs?: number;
}

export class RemoteModelRegistry implements ModelCatalog {
  readonly configured = true;
  readonly #directory: WorkerDirectory;
  readonly #connection: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #defaultName: string | undefined;
  readonly #rememberMs: number;
  /** Every model seen offered, by name, and when it last was. */
  readonly #seen = new Map<string, { entry: ModelEntry; at: number }>();
  #loaded: string[] = [];

  constructor(directory: WorkerDirectory, connection: RedisConnection, keys: RedisKeys, options: RemoteModelRegistryOptions = {}) {
    this.#directory = directory;
    this.#connection = connection;
    this.#keys = keys;
    this.#defaultName = options.defaultName === undefined ? undefined : modelNameOf(options.defaultName);
    this.#rememberMs = options.rememberMs ?? 0;
  }

  /** Every model some live worker offers: the default first, then by name. */
  async list(fresh = false): Promise<ModelEntry[]> {
    let offers = await this.#directory.live(fresh);
    // Nothing cached may only mean a worker came up since: that case is worth a fresh look.
    if (offers.length === 0 && !fresh) offers = await this.#directory.live(true);
    this.#loaded = [...new Set(offers.flatMap((offer) => offer.loaded))].sort();
    const byName = new Map<string, ModelEntry>();
    for (const entry of offers.flatMap((offer) => offer.models)) {
      const known = byName.get(entry.name);
      if (!known || (known.sha256 === undefined && entry.sha256 !== undefined)) byName.set(entry.name, entry);
    }
    const now = Date.now();
    for (const entry of byName.values()) this.#seen.set(entry.name, { entry, at: now });
    const defaultName = await this.#chosenDefault() ?? this.#defaultName;
    return [...byName.values()].sort((a, b) =>
      Number(b.name === defaultName) - Number(a.name === defaultName) || a.name.localeCompare(b.name));
  }

  /** The default if some worker offers it; undefined when none does or several models leave it open. */
  async defaultModel(): Promise<ModelEntry | undefined> {
    const name = await this.#chosenDefault() ?? this.#defaultName;
    const pick = (entries: ModelEntry[]): ModelEntry | undefined => (name !== undefined
      ? entries.find((entry) => entry.name === name)
      : entries.length === 1 ? entries[0] : undefined);
    return pick(await this.list()) ?? pick(await this.list(true));
  }

  async setDefault(name: string): Promise<ModelEntry> {
    let entries = await this.list();
    if (!findModelEntry(entries, name)) entries = await this.list(true);
    const entry = findModelEntry(entries, name);
    if (!entry) throw new UnknownModelError(name, entries.map((known) => known.name));
    await this.#connection.call((redis) => redis.set(this.#keys.defaultModel, entry.name));
    return entry;
  }

  /** What the workers have loaded, as of the last listing. */
  loadedNames(): string[] {
    return this.#loaded;
  }

  async resolve(requested?: string): Promise<ModelEntry> {
    try {
      return await this.#resolveIn(await this.list(), requested);
    } catch (error) {
      // A worker that started within the listing cache's lifetime is not missed: look again.
      if (!(error instanceof NoModelError || error instanceof UnknownModelError)) throw error;
      const live = await this.list(true);
      try {
        return await this.#resolveIn(live, requested);
      } catch (stillMissing) {
        // Workers restarting: a model offered within --no-worker-timeout is queued for their return.
        const recent = this.#recentlyOffered(live);
        if (recent.length === 0 || !(stillMissing instanceof NoModelError || stillMissing instanceof UnknownModelError)) throw stillMissing;
        return this.#resolveIn([...live, ...recent], requested).catch(() => Promise.reject(stillMissing));
      }
    }
  }

  /** Models no live worker offers now but one did within the last `rememberMs`. */
  #recentlyOffered(live: ModelEntry[]): ModelEntry[] {
    const now = Date.now();
    const offered = new Set(live.map((entry) => entry.name));
    const recent: ModelEntry[] = [];
    for (const [name, { entry, at }] of this.#seen) {
      if (now - at > this.#rememberMs) this.#seen.delete(name);
      else if (!offered.has(name)) recent.push(entry);
    }
    return recent;
  }

  async #resolveIn(entries: ModelEntry[], requested?: string): Promise<ModelEntry> {
    if (requested === undefined || requested.trim() === '') {
      const name = await this.#chosenDefault() ?? this.#defaultName;
      if (name !== undefined) return entries.find((entry) => entry.name === name) ?? { name, path: '' };
      if (entries.length === 1) return entries[0] as ModelEntry;
      if (entries.length === 0) {
        throw new NoModelError('No worker offers a model now, so no image can be made; start one with '
          + 'sdnode worker --redis <url> --models <folder>');
      }
      throw new InvalidFieldError('model', `Several models are offered (${entries.map((entry) => entry.name).join(', ')}); name one in the request`);
    }
    const found = findModelEntry(entries, requested);
    if (found) return found;
    // The configured default is queued even while no worker offers it.
    if (this.#defaultName !== undefined && modelNameOf(requested) === this.#defaultName) return { name: this.#defaultName, path: '' };
    throw new UnknownModelError(requested, entries.map((entry) => entry.name));
  }

  async #chosenDefault(): Promise<string | undefined> {
    return (await this.#connection.call((redis) => redis.get(this.#keys.defaultModel))) ?? undefined;
  }
}
