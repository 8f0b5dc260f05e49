// API keys: with --api-key (or SDNODE_API_KEYS) every route that generates, lists or returns
// images needs `Authorization: Bearer <key>`. Keys are compared through their SHA-256 digests
// with timingSafeEqual, so neither a key's content nor its length leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';

import type { Request, RequestHandler } from 'express';

import { ApiError } from './errors.js';

export class ApiKeys {
  readonly #digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.#digests.length > 0;
  }

  /** Whether the request carries one of the keys (always true when no keys are configured). */
  accepts(req: Request): boolean {
    return this.acceptsHeader(req.get('authorization'));
  }

  /** The same, for an Authorization header value (websocket upgrades have no Express request). */
  acceptsHeader(authorization: string | undefined): boolean {
    if (!this.enabled) return true;
    const presented = bearerToken(authorization);
    if (presented === undefined) return false;
    const candidate = digest(presented);
    // Every digest is compared, so the time taken does not say which key matched.
    let matched = false;
    for (const known of this.#digests) matched = timingSafeEqual(known, candidate) || matched;
    return matched;
  }

  /** Middleware: 401 in the dialect's error shape unless the request has a valid key. */
  required(): RequestHandler {
    return (req, _res, next) => {
      if (this.accepts(req)) {
        next();
        return;
      }
      const given = req.get('authorization') !== undefined;
      next(new ApiError(401, 'UNAUTHORIZED', given
        ? 'The API key is not valid'
        : 'This server needs an API key: send Authorization: Bearer <key>', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      }));
    };
  }
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1]?.trim();
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Keys from --api-key flags and SDNODE_API_KEYS (comma-separated), without blanks or repeats. */
export function collectApiKeys(flags: readonly string[], env: string | undefined): string[] {
  const all = [...flags, ...(env ?? '').split(',')].map((key) => key.trim()).filter((key) => key !== '');
  return [...new Set(all)];
}
