// Jobs in Redis (--redis), so that API processes and workers on any machines share them without
// a shared disk. One hash per job:
//
//   <prefix>:job:<id>   record (JSON, as job.json), upload:image, upload:mask, image:1, image:2, …,
//                       retain-ms (how long it stays once finished, set by the API that took it)
//
// A finished job's hash expires after its retention, images and all. Writes to a job that was
// removed in the meantime (a cancelled synchronous request) fail instead of recreating half a job.

import { randomBytes } from 'node:crypto';

import { isJobId } from './ids.js';
import { isFinished, type JobError, type JobRecord, type JobState, type UploadSlot } from './job.js';
import type { RedisConnection, RedisKeys } from './redis.js';
import { newRecord, parseRecord, type JobStore, type NewJob } from './store.js';

// KEYS[1] job hash; ARGV: field, value. Sets the field only if the job still exists.
const setIfExists = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

// KEYS[1] job hash; ARGV: record JSON, '1' when finished. A finished job starts its retention.
const writeState = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[1])
if ARGV[2] == '1' then
  local ms = tonumber(redis.call('HGET', KEYS[1], 'retain-ms'))
  if ms and ms > 0 then redis.call('PEXPIRE', KEYS[1], ms) end
end
return 1`;

export interface RedisJobStoreOptions {
  /** How long a finished job and its images are kept, in ms. */
  retentionMs: number;
}

export class RedisJobStore implements JobStore {
  readonly #connection: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #options: RedisJobStoreOptions;

  constructor(connection: RedisConnection, keys: RedisKeys, options: RedisJobStoreOptions) {
    this.#connection = connection;
    this.#keys = keys;
    this.#options = options;
  }

  get location(): string {
    return `Redis at ${this.#connection.displayUrl}`;
  }

  secret(): Promise<Buffer> {
    return this.#connection.call(async (redis) => {
      await redis.set(this.#keys.secret, randomBytes(32), 'NX');
      const secret = await redis.getBuffer(this.#keys.secret);
      if (!secret) throw new Error(`${this.#keys.secret} vanished from Redis`);
      return secret;
    });
  }

  /** Nothing is ever half-written: every write is one command or one transaction. */
  async removeLeftovers(): Promise<void> {}

  async create(job: NewJob): Promise<JobRecord> {
    const record = newRecord(job);
    const fields = new Map<string, string | Uint8Array>();
    for (const [slot, upload] of Object.entries(job.uploads) as [UploadSlot, NonNullable<NewJob['uploads'][UploadSlot]>][]) {
      record.uploads[slot] = `${slot}.${upload.ext}`;
      fields.set(`upload:${slot}`, Buffer.from(upload.data));
    }
    fields.set('record', JSON.stringify(record));
    fields.set('retain-ms', String(this.#options.retentionMs));
    await this.#connection.call((redis) => redis.hset(this.#keys.job(job.id), fields));
    return record;
  }

  async read(id: string): Promise<JobRecord | undefined> {
    if (!isJobId(id)) return undefined;
    const text = await this.#connection.call((redis) => redis.hget(this.#keys.job(id), 'record'));
    return text === null ? undefined : parseRecord(id, text);
  }

  async setState(id: string, state: JobState, error: JobError | null = null): Promise<JobRecord> {
    const record = await this.read(id);
    if (!record) throw new Error(`Job ${id} is not in ${this.location}`);
    const updated: JobRecord = { ...record, state, error, updatedAt: new Date().toISOString() };
    const written = await this.#connection.call((redis) =>
      redis.eval(writeState, 1, this.#keys.job(id), JSON.stringify(updated), isFinished(state) ? '1' : '0'));
    if (written !== 1) throw new Error(`Job ${id} is not in ${this.location}`);
    return updated;
  }

  async readUpload(id: string, slot: UploadSlot): Promise<Buffer | undefined> {
    if (!isJobId(id)) return undefined;
    return (await this.#connection.call((redis) => redis.hgetBuffer(this.#keys.job(id), `upload:${slot}`))) ?? undefined;
  }

  async writeImage(id: string, n: number, png: Uint8Array): Promise<void> {
    const written = await this.#connection.call((redis) =>
      redis.eval(setIfExists, 1, this.#keys.job(id), `image:${n}`, Buffer.from(png)));
    if (written !== 1) throw new Error(`Job ${id} is not in ${this.location}`);
  }

  async countImages(id: string): Promise<number> {
    if (!isJobId(id)) return 0;
    const fields = new Set(await this.#connection.call((redis) => redis.hkeys(this.#keys.job(id))));
    let count = 0;
    while (fields.has(`image:${count + 1}`)) count++;
    return count;
  }

  async readImage(id: string, n: number): Promise<Buffer | undefined> {
    if (!isJobId(id) || !Number.isSafeInteger(n) || n < 1) return undefined;
    return (await this.#connection.call((redis) => redis.hgetBuffer(this.#keys.job(id), `image:${n}`))) ?? undefined;
  }

  imageLocation(id: string, n: number): string {
    return `${this.#keys.job(id)} image:${n}`;
  }

  async remove(id: string): Promise<void> {
    if (!isJobId(id)) return;
    await this.#connection.call((redis) => redis.del(this.#keys.job(id)));
  }

  /** Every job still kept, oldest first (a scan of the keyspace: for tools, not for requests). */
  async list(): Promise<JobRecord[]> {
    const pattern = this.#keys.job('*');
    const keys = await this.#connection.call(async (redis) => {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        found.push(...batch);
        cursor = next;
      } while (cursor !== '0');
      return found;
    });
    const records: JobRecord[] = [];
    for (const key of keys) {
      const record = await this.read(key.slice(pattern.length - 1));
      if (record) records.push(record);
    }
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }
}
