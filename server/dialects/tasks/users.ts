// Users and tokens of the task API, configured by the environment variables its users know:
// SECRET_KEY signs HS256 JWTs; ENABLE_PUBLIC_ACCESS=1 lets requests without a token through (and
// enables POST /token/all); ENABLE_SIGNUP=1 enables POST /user. Passwords are kept only as salted
// scrypt hashes, in users.json under --output, written atomically.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { jwtVerify, SignJWT } from 'jose';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, length: number) => Promise<Buffer>;

export interface TaskAuthSettings {
  /** SECRET_KEY; without it a random key is made per start (tokens then end with the process). */
  secretKey?: string;
  enablePublicAccess: boolean;
  enableSignup: boolean;
  printLinkWithToken: boolean;
  /** BASE_URL: the start of every absolute link; default the request's own host. */
  baseUrl?: string;
  /** Token lifetime in seconds. */
  tokenTtlSeconds: number;
}

/** The name a token made by POST /token/all carries. */
export const publicUser = 'all';

/** The task namespace of requests made with an API key (--api-key) rather than a token. */
export const apiKeyUser = 'apikey';

/** Names the server uses itself: nobody signs up or logs in as one (they would share those tasks and blobs). */
export function isReservedUsername(name: string): boolean {
  return name === publicUser || name === apiKeyUser;
}

interface StoredUser {
  salt: string;
  hash: string;
  createdAt: string;
}

export class UserStore {
  readonly #file: string;
  // A map: any name ("constructor", "__proto__") is just a key.
  #users: Map<string, StoredUser> | undefined;

  constructor(outputDir: string) {
    this.#file = path.join(path.resolve(outputDir), 'users.json');
  }

  async exists(name: string): Promise<boolean> {
    return !isReservedUsername(name) && (await this.#load()).has(name);
  }

  /** Adds a user; false when the name is taken or reserved. */
  async add(name: string, password: string): Promise<boolean> {
    const users = await this.#load();
    if (isReservedUsername(name) || users.has(name)) return false;
    const salt = randomBytes(16);
    const hash = await scryptAsync(password, salt, 64);
    users.set(name, { salt: salt.toString('base64'), hash: hash.toString('base64'), createdAt: new Date().toISOString() });
    await this.#save(users);
    return true;
  }

  async verify(name: string, password: string): Promise<boolean> {
    // A reserved name stored by an older version logs in no more.
    const user = isReservedUsername(name) ? undefined : (await this.#load()).get(name);
    // Unknown users cost a hash too, so timing does not say which names exist.
    const salt = user ? Buffer.from(user.salt, 'base64') : randomBytes(16);
    const hash = await scryptAsync(password, salt, 64);
    return user !== undefined && timingSafeEqual(hash, Buffer.from(user.hash, 'base64'));
  }

  async #load(): Promise<Map<string, StoredUser>> {
    if (this.#users) return this.#users;
    try {
      const stored = (JSON.parse(await readFile(this.#file, 'utf8')) as { users: Record<string, StoredUser> }).users;
      this.#users = new Map(Object.entries(stored));
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
      this.#users = new Map();
    }
    return this.#users;
  }

  async #save(users: Map<string, StoredUser>): Promise<void> {
    await mkdir(path.dirname(this.#file), { recursive: true });
    const temp = `${this.#file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify({ users: Object.fromEntries(users) }, null, 2), { mode: 0o600 });
    await rename(temp, this.#file);
  }
}

/** Shortest SECRET_KEY taken, in bytes (UTF-8). */
export const minSecretKeyBytes = 32;

/** A token names its user and an expiry; one without `exp` is refused. */
export class Tokens {
  readonly #key: Uint8Array;
  readonly #ttlSeconds: number;

  constructor(secretKey: string | undefined, ttlSeconds: number) {
    const key = secretKey === undefined ? randomBytes(minSecretKeyBytes) : new TextEncoder().encode(secretKey);
    // HS256 with a short key falls to an offline search from one token.
    if (key.length < minSecretKeyBytes) {
      throw new RangeError(`SECRET_KEY must be at least ${minSecretKeyBytes} bytes but has ${key.length}; `
        + 'make one with: openssl rand -hex 32');
    }
    this.#key = key;
    this.#ttlSeconds = ttlSeconds;
  }

  issue(user: string): Promise<string> {
    return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setIssuedAt()
      .setExpirationTime(`${this.#ttlSeconds}s`).sign(this.#key);
  }

  /** The user a valid, unexpired token names; undefined for anything else. */
  async user(token: string): Promise<string | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.#key, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] });
      return typeof payload.sub === 'string' ? payload.sub : undefined;
    } catch {
      return undefined;
    }
  }
}
