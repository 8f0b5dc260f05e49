// Requests from where they should come from. A web page the user visits may post forms to
// sdnode, open its websocket, or reach it through DNS rebinding (a name of the page's that now
// resolves to 127.0.0.1). So: the Host header must be an IP address, localhost or a name given
// with --allowed-hosts; and a state-changing request or websocket that carries an Origin must come
// from this server itself, from loopback, or from an allowed host.

import { isIP } from 'node:net';

import type { RequestHandler } from 'express';

import { ApiError } from './errors.js';

/** The hosts a server answers for beyond IP addresses and localhost, from --allowed-hosts. */
export class AllowedHosts {
  readonly #names: Set<string>;

  /** `names`: host names (no port); ".example.com" allows every name under example.com too. */
  constructor(names: readonly string[]) {
    this.#names = new Set(names.map((name) => name.trim().toLowerCase()).filter((name) => name !== ''));
  }

  /** Whether a Host header names this server: an IP literal, localhost, or an allowed name. Absent (HTTP/1.0): yes. */
  host(header: string | undefined): boolean {
    if (header === undefined) return true;
    const name = hostname(header);
    return name !== undefined && (isIP(name) !== 0 || isLocalhost(name) || this.#allows(name));
  }

  /** Whether an Origin header may act here: absent, the server's own origin (`host`), loopback, or an allowed name. */
  origin(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    const name = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    return (host !== undefined && url.host.toLowerCase() === host.toLowerCase()) || isLoopback(name) || this.#allows(name);
  }

  #allows(name: string): boolean {
    if (this.#names.has(name)) return true;
    for (const entry of this.#names) if (entry.startsWith('.') && (name.endsWith(entry) || name === entry.slice(1))) return true;
    return false;
  }
}

/** Express middleware: 403 for a Host this server does not answer for, or a cross-site state-changing request. */
export function originGuard(allowed: AllowedHosts): RequestHandler {
  return (req, _res, next) => {
    const host = req.get('host');
    if (!allowed.host(host)) {
      next(new ApiError(403, 'HOST_NOT_ALLOWED',
        `This server does not answer for the host ${JSON.stringify(host)}; start it with --allowed-hosts naming it`));
      return;
    }
    if (!safeMethods.has(req.method) && !allowed.origin(req.get('origin'), host)) {
      next(new ApiError(403, 'ORIGIN_NOT_ALLOWED',
        `Requests from the web page at ${req.get('origin')} are refused; start the server with --allowed-hosts naming its host`));
      return;
    }
    next();
  };
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

function hostname(header: string): string | undefined {
  try {
    return new URL(`http://${header}`).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return undefined;
  }
}

function isLocalhost(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/** localhost, 127.0.0.0/8 or ::1. */
export function isLoopback(name: string): boolean {
  return isLocalhost(name) || name === '::1' || (isIP(name) === 4 && name.startsWith('127.'));
}
