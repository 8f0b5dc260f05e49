// --cert / --key: the same API over HTTPS.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';

import t from 'tap';

import { outputTestdir, startTestServer } from './server-helpers.js';

function selfSignedCertificate(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

t.test('with a certificate and key the server speaks HTTPS', async (t) => {
  const dir = outputTestdir(t);
  const { cert, key } = selfSignedCertificate(dir);
  const { url } = await startTestServer(t, { cert, key, outputDir: path.join(dir, 'output') });
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const { status, body } = await httpsGet(`${url}/health`, readFileSync(cert));
  t.equal(status, 200);
  t.match(JSON.parse(body), { ready: false, model: null });
});

t.test('a certificate without its key is refused at start', async (t) => {
  const dir = outputTestdir(t);
  const { cert } = selfSignedCertificate(dir);
  await t.rejects(startTestServer(t, { cert, outputDir: dir }), /needs both cert and key/);
});
