// Result links for response_format "url": /v1/images/files/<job>/<n>.<ext>?expires=…&signature=…
// An HMAC over the path and expiry (with a key kept in the output folder) is what authorises the
// download, as OpenAI's own links need no API key; they stop working at `expires`.

import { createHmac, timingSafeEqual } from 'node:crypto';

export class ResultUrls {
  readonly #secret: Buffer;
  readonly #ttlSeconds: number;
  readonly #prefix: string;

  /** `prefix`: the server's --api-prefix ('' for none), which the links start with. */
  constructor(secret: Buffer, ttlSeconds: number, prefix: string) {
    this.#secret = secret;
    this.#ttlSeconds = ttlSeconds;
    this.#prefix = prefix;
  }

  /** Path and query of a link to image `n` of a job in `ext`, valid for the TTL from now. */
  sign(jobId: string, n: number, ext: string, now = Date.now()): string {
    const path = `/v1/images/files/${jobId}/${n}.${ext}`;
    const expires = Math.floor(now / 1000) + this.#ttlSeconds;
    return `${this.#prefix}${path}?expires=${expires}&signature=${this.#signature(path, expires)}`;
  }

  /** 'ok', 'expired' or 'invalid' for a link's path (without the prefix), expires and signature. */
  check(path: string, expires: string, signature: string, now = Date.now()): 'ok' | 'expired' | 'invalid' {
    const expiresAt = Number(expires);
    if (!/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(signature)) return 'invalid';
    const expected = Buffer.from(this.#signature(path, expiresAt), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return 'invalid';
    return expiresAt * 1000 < now ? 'expired' : 'ok';
  }

  #signature(path: string, expires: number): string {
    return createHmac('sha256', this.#secret).update(`${path}\n${expires}`).digest('hex');
  }
}
