// The server's credentials: API keys (--api-key, SDNODE_API_KEYS; `Authorization: Bearer <key>`)
// and AUTOMATIC1111's --api-auth users (`Authorization: Basic`). One rule: once any is configured,
// every route that generates, lists or returns images needs one of them, in every API (the task
// API's own tokens come on top). Both are compared through SHA-256 digests with timingSafeEqual,
// so neither a secret's content nor its length leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';

import type { Request, RequestHandler } from 'express';

import { ApiError } from './errors.js';

export class ApiKeys {
  readonly #digests: Buffer[];
  readonly #basicDigests: Buffer[];

  /** `basicAuth`: "user:password" pairs (--api-auth). */
  constructor(keys: readonly string[], basicAuth: readonly string[] = []) {
    this.#digests = keys.map(digest);
    this.#basicDigests = basicAuth.map(digest);
  }

  /** Whether any credential is configured (then every generating route needs one). */
  get enabled(): boolean {
    return this.#digests.length > 0 || this.#basicDigests.length > 0;
  }

  /** Whether --api-auth users are configured: a 401 then asks for Basic credentials. */
  get basicAuth(): boolean {
    return this.#basicDigests.length > 0;
  }

  /** Whether the request carries one of the keys (always true when no keys are configured). */
  accepts(req: Request): boolean {
    return this.acceptsHeader(req.get('authorization'));
  }

  /** The same, for an Authorization header value (websocket upgrades have no Express request). */
  acceptsHeader(authorization: string | undefined): boolean {
    if (!this.enabled) return true;
    const bearer = bearerToken(authorization);
    if (bearer !== undefined) return matchesAny(this.#digests, bearer);
    const basic = basicCredentials(authorization);
    return basic !== undefined && matchesAny(this.#basicDigests, basic);
  }

  /** Middleware: 401 in the dialect's error shape unless the request has a valid key. */
  required(): RequestHandler {
    return (req, _res, next) => {
      if (this.accepts(req)) {
        next();
        return;
      }
      const given = req.get('authorization') !== undefined;
      const wanted = this.basicAuth ? 'an API key or a user of --api-auth' : 'an API key';
      next(new ApiError(401, 'UNAUTHORIZED', given
        ? `The API key${this.basicAuth ? ' or password' : ''} is not valid`
        : `This server needs ${wanted}: send Authorization: Bearer <key>${this.basicAuth ? ' or Basic' : ''}`, {
        headers: { 'WWW-Authenticate': this.basicAuth ? 'Basic' : 'Bearer' },
      }));
    };
  }
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1]?.trim();
}

/** "user:password" of a Basic Authorization header. */
function basicCredentials(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  return match ? Buffer.from(match[1] as string, 'base64').toString('utf8') : undefined;
}

// Every digest is compared, so the time taken does not say which one matched.
function matchesAny(digests: readonly Buffer[], secret: string): boolean {
  const candidate = digest(secret);
  let matched = false;
  for (const known of digests) matched = timingSafeEqual(known, candidate) || matched;
  return matched;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Keys from --api-key flags and SDNODE_API_KEYS (comma-separated), without blanks or repeats. */
export function collectApiKeys(flags: readonly string[], env: string | undefined): string[] {
  const all = [...flags, ...(env ?? '').split(',')].map((key) => key.trim()).filter((key) => key !== '');
  return [...new Set(all)];
}
