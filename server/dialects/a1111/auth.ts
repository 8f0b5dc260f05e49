// HTTP basic auth as AUTOMATIC1111's --api-auth does it ("user:pass,user2:pass2"), compared in
// constant time through SHA-256 digests like the bearer keys.

import { createHash, timingSafeEqual } from 'node:crypto';

import type { Request } from 'express';

export interface BasicAuthUsers {
  enabled: boolean;
  accepts(req: Request): boolean;
}

export function basicAuthUsers(credentials: readonly string[]): BasicAuthUsers {
  const digests = credentials.map((pair) => digest(pair));
  return {
    enabled: digests.length > 0,
    accepts(req) {
      const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.get('authorization')?.trim() ?? '');
      if (!match) return false;
      const presented = digest(Buffer.from(match[1] as string, 'base64').toString('utf8'));
      let matched = false;
      for (const known of digests) matched = timingSafeEqual(known, presented) || matched;
      return matched;
    },
  };
}

/** "user:pass,user2:pass2" → ["user:pass", "user2:pass2"]; throws on an entry without a colon. */
export function parseApiAuth(text: string): string[] {
  const pairs = text.split(',').map((pair) => pair.trim()).filter((pair) => pair !== '');
  const bad = pairs.find((pair) => !/^[^:]+:.+$/.test(pair));
  if (bad !== undefined || pairs.length === 0) {
    throw new TypeError(`Expected user:password[,user2:password2] for --api-auth but received ${JSON.stringify(text)}`);
  }
  return pairs;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
