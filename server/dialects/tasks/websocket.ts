// GET /events?token=… as a websocket (the `ws` package): every event of the caller's tasks as it
// happens, starting with the latest event of each unfinished one. Web pages of other sites may not
// open it (Origin, Host), clients send nothing of size, and the connections are bounded.

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { WebSocketServer } from 'ws';

import type { AllowedHosts } from '../../http/origin.js';
import type { TaskEventHub } from './events.js';
import type { Credentials } from './routes.js';

/** Open event sockets, all users together; more are refused with 503. */
export const maxEventSockets = 256;

/** Largest message a client may send (it needs to send none). */
const maxPayloadBytes = 4096;

/** `path`: /events under the server's --api-prefix. */
export function attachEventSocket(server: Server, path: string, hub: TaskEventHub,
  identify: (credentials: Credentials) => Promise<string | undefined>, allowed: AllowedHosts): void {
  const sockets = new WebSocketServer({ noServer: true, maxPayload: maxPayloadBytes });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) return;
    if (!allowed.host(req.headers.host) || !allowed.origin(req.headers.origin, req.headers.host)) {
      socket.end(refusal('403 Forbidden', 'This web page or host may not open the event socket (--allowed-hosts)'));
      return;
    }
    if (sockets.clients.size >= maxEventSockets) {
      socket.end(refusal('503 Service Unavailable', 'Too many event sockets are open; retry later'));
      return;
    }
    identify({ authorization: req.headers.authorization, token: url.searchParams.get('token') ?? undefined }).then((user) => {
      if (user === undefined) {
        socket.end(refusal('401 Unauthorized', 'Not authenticated'));
        return;
      }
      sockets.handleUpgrade(req, socket, head, (ws) => {
        // Events that arrive while the latest ones are being read wait their turn.
        let stop: (() => void) | undefined;
        let closed = false;
        // A protocol error (a message over maxPayload) closes the socket; unheard, it would throw.
        ws.on('error', () => ws.terminate());
        ws.on('close', () => {
          closed = true;
          stop?.();
        });
        void hub.listen(user, (event) => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(event));
        }).then((unsubscribe) => {
          if (closed) unsubscribe();
          else stop = unsubscribe;
        });
      });
    }, () => socket.destroy());
  });
  server.on('close', () => sockets.close());
}

function refusal(status: string, detail: string): string {
  return `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ detail })}`;
}
