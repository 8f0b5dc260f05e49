// Attempts per key (a client address, a username) in a fixed window, for the routes that are
// worth guessing at and cost a password hash each (POST /token, POST /user). In memory: a limit
// per process, which is what a guesser meets.

/** Keys kept at most; past it the expired ones go, then the oldest. */
const maxKeys = 10_000;

export class RateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #windows = new Map<string, { start: number; count: number }>();

  /** `limit` attempts per `windowMs` for each key. */
  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Counts an attempt for `key`; returns the seconds to wait when it is over the limit, else undefined. */
  attempt(key: string, now = Date.now()): number | undefined {
    const window = this.#windows.get(key);
    if (window && now - window.start < this.#windowMs) {
      if (window.count >= this.#limit) return Math.ceil((window.start + this.#windowMs - now) / 1000);
      window.count++;
      return undefined;
    }
    this.#windows.delete(key);
    this.#windows.set(key, { start: now, count: 1 });
    this.#prune(now);
    return undefined;
  }

  #prune(now: number): void {
    if (this.#windows.size <= maxKeys) return;
    for (const [key, window] of this.#windows) if (now - window.start >= this.#windowMs) this.#windows.delete(key);
    // Insertion order is age order: the oldest windows go first.
    for (const key of this.#windows.keys()) {
      if (this.#windows.size <= maxKeys) break;
      this.#windows.delete(key);
    }
  }
}
