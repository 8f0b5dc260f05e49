// GET /events?token=… as a websocket (the `ws` package): every event of the caller's tasks as it
// happens, starting with the latest event of each unfinished one.

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

import { WebSocketServer } from 'ws';

import type { TaskEventHub } from './events.js';
import type { Credentials } from './routes.js';

/** `path`: /events under the server's --api-prefix. */
export function attachEventSocket(server: Server, path: string, hub: TaskEventHub,
  identify: (credentials: Credentials) => Promise<string | undefined>): void {
  const sockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) return;
    identify({ authorization: req.headers.authorization, token: url.searchParams.get('token') ?? undefined }).then((user) => {
      if (user === undefined) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"detail":"Not authenticated"}');
        return;
      }
      sockets.handleUpgrade(req, socket, head, (ws) => {
        // Events that arrive while the latest ones are being read wait their turn.
        let stop: (() => void) | undefined;
        let closed = false;
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
