// Web pages of other sites cannot drive sdnode: no cross-site form posts, no DNS rebinding, no
// event socket; upgrades to paths no API serves are closed at once.

import http from 'node:http';

import t from 'tap';
import WebSocket from 'ws';

import { FakeModel, startTestServer } from './server-helpers.js';

/** A request with any Host and Origin header (fetch will not send another Host). */
function request(url: string, options: { method?: string; host?: string; origin?: string; body?: string } = {}):
  Promise<{ status: number; body: string }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      hostname: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: options.method ?? 'GET',
      headers: {
        ...(options.host !== undefined && { host: options.host }),
        ...(options.origin !== undefined && { origin: options.origin }),
        ...(options.body !== undefined && { 'content-type': 'application/x-www-form-urlencoded' }),
      },
    }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const form = 'prompt=x&num_inference_steps=1&width=64&height=64';

t.test('a Host that is not an IP address, localhost or an allowed name is refused (DNS rebinding)', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), allowedHosts: ['sd.example.com', '.lan.example'] });
  const refused = await request(`${url}/health`, { host: 'attacker.example:8888' });
  t.equal(refused.status, 403);
  t.match(JSON.parse(refused.body), { error: { code: 'HOST_NOT_ALLOWED', message: /--allowed-hosts/ } });
  for (const host of ['127.0.0.1:1', 'localhost:8888', '[::1]:8888', '192.168.1.20', 'sd.example.com', 'box.lan.example:8888']) {
    t.equal((await request(`${url}/health`, { host })).status, 200, host);
  }
});

t.test('a state-changing request from another site\'s page is refused; from this server or loopback it goes on', async (t) => {
  const model = new FakeModel();
  const { url } = await startTestServer(t, { model, allowedHosts: ['sd.example.com'] });
  const crossSite = await request(`${url}/txt2img`, { method: 'POST', origin: 'https://attacker.example', body: form });
  t.equal(crossSite.status, 403);
  t.match(JSON.parse(crossSite.body), { error: { code: 'ORIGIN_NOT_ALLOWED' } });
  t.equal((await request(`${url}/txt2img`, { method: 'POST', origin: 'null', body: form })).status, 403, 'a sandboxed page');
  t.equal(model.calls.length, 0);
  t.equal((await request(`${url}/health`, { origin: 'https://attacker.example' })).status, 200, 'reading is no state change');
  for (const origin of [new URL(url).origin, 'http://localhost:5173', 'https://sd.example.com']) {
    t.equal((await request(`${url}/txt2img`, { method: 'POST', origin, body: form })).status, 200, origin);
  }
  t.equal((await request(`${url}/txt2img`, { method: 'POST', body: form })).status, 200, 'no Origin: curl');
});

function upgrade(url: string, options: WebSocket.ClientOptions = {}): Promise<{ opened?: WebSocket; status?: number; error?: Error }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, options);
    socket.on('open', () => resolve({ opened: socket }));
    socket.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode });
      res.resume();
    });
    socket.on('error', (error) => resolve({ error }));
  });
}

t.test('the event socket refuses other sites\' pages, closes oversized messages, and other paths are closed', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel() });
  const events = `${url.replace('http', 'ws')}/events`;
  t.equal((await upgrade(events, { origin: 'https://attacker.example' })).status, 403);
  const { opened } = await upgrade(events, { origin: new URL(url).origin });
  t.ok(opened, 'this server\'s own page may open it');
  const closed = new Promise<number>((resolve) => opened?.on('close', (code) => resolve(code)));
  opened?.send('x'.repeat(8192));
  t.equal(await closed, 1009, 'a message over the payload limit closes the socket');
  const elsewhere = await upgrade(`${url.replace('http', 'ws')}/no-such-socket`);
  t.ok(elsewhere.error, `an upgrade to another path is closed (${elsewhere.error?.message})`);
});
