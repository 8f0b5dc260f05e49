import { randomBytes } from 'node:crypto';

// 16 random bytes in base64url: 22 characters of [A-Za-z0-9_-]. Ids double as folder names, so
// anything that does not match exactly is rejected before it gets near the file system.
const jobIdPattern = /^[A-Za-z0-9_-]{22}$/;

export function newJobId(): string {
  return randomBytes(16).toString('base64url');
}

export function isJobId(value: string): boolean {
  return jobIdPattern.test(value);
}
