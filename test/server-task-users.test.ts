// Task API users as an attacker picks them: names the server uses itself, and names that are
// properties of every JavaScript object.

import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { FakeModel, getJson, startTestServer } from './server-helpers.js';

const secretKey = 's'.repeat(32);

async function signUp(url: string, username: string, headers: Record<string, string> = {}):
  Promise<{ status: number; body: { access_token?: string; detail?: unknown } }> {
  const response = await fetch(`${url}/user`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username, password: 'long enough' }),
  });
  return { status: response.status, body: await response.json() as { access_token?: string } };
}

async function logIn(url: string, username: string): Promise<number> {
  return (await fetch(`${url}/token`, { method: 'POST', body: new URLSearchParams({ username, password: 'long enough' }) })).status;
}

t.test('the API-key holders\' and the public namespaces cannot be signed up for', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['key'], tasks: { secretKey, enableSignup: true } });
  for (const name of ['apikey', 'all']) {
    const answer = await signUp(url, name, { authorization: 'Bearer key' });
    t.equal(answer.status, 409, name);
    t.match(answer.body, { detail: /reserved/ });
    t.equal(await logIn(url, name), 401);
  }
});

t.test('a reserved name left in users.json by an older version logs in no more', async (t) => {
  const first = await startTestServer(t, { model: new FakeModel(), tasks: { secretKey, enableSignup: true } });
  t.equal((await signUp(first.url, 'bob')).status, 200);
  const file = path.join(first.outputDir, 'users.json');
  const stored = JSON.parse(await readFile(file, 'utf8')) as { users: Record<string, unknown> };
  await first.close();
  await writeFile(file, JSON.stringify({ users: { apikey: stored.users.bob } }));
  const second = await startTestServer(t, { model: new FakeModel(), outputDir: first.outputDir, tasks: { secretKey } });
  t.equal(await logIn(second.url, 'apikey'), 401);
});

t.test('usernames such as constructor and __proto__ sign up and log in like any other', async (t) => {
  const { url, outputDir } = await startTestServer(t, { model: new FakeModel(), tasks: { secretKey, enableSignup: true } });
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const answer = await signUp(url, name);
    t.equal(answer.status, 200, `sign up ${name}`);
    t.equal(await logIn(url, name), 200, `log in ${name}`);
    t.equal((await signUp(url, name)).status, 409, `${name} is taken now`);
    t.equal((await getJson(`${url}/models`, { headers: { authorization: `Bearer ${answer.body.access_token}` } })).status, 200);
  }
  t.equal(await logIn(url, 'valueOf'), 401, 'a name nobody signed up as');
  const stored = JSON.parse(await readFile(path.join(outputDir, 'users.json'), 'utf8')) as { users: object };
  t.same(Object.keys(stored.users).sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
});

t.test('log-ins are limited per client and username: the 11th attempt in a minute is a 429', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), tasks: { secretKey, enableSignup: true } });
  t.equal((await signUp(url, 'bob')).status, 200);
  t.equal((await signUp(url, 'carol')).status, 200);
  for (let i = 0; i < 10; i++) {
    const wrong = await fetch(`${url}/token`, { method: 'POST', body: new URLSearchParams({ username: 'bob', password: `guess ${i}` }) });
    t.equal(wrong.status, 401);
  }
  const refused = await fetch(`${url}/token`, { method: 'POST', body: new URLSearchParams({ username: 'bob', password: 'long enough' }) });
  t.equal(refused.status, 429, 'the right password too, once the limit is reached');
  t.match(refused.headers.get('retry-after'), /^\d+$/);
  t.match(await refused.json(), { detail: /Too many attempts; retry in \d+ s/ });
  t.equal(await logIn(url, 'carol'), 200, 'another user is not held up');
  for (let i = 0; i < 16; i++) t.equal(await logIn(url, `nobody${i}`), 401);
  t.equal(await logIn(url, 'carol'), 429, 'the 31st attempt from one client in a minute');
});

t.test('a SECRET_KEY under 32 bytes is refused at start; tokens without exp are refused', async (t) => {
  await t.rejects(startTestServer(t, { model: new FakeModel(), tasks: { secretKey: 'short' } }),
    { name: 'RangeError', message: /SECRET_KEY must be at least 32 bytes but has 5/ });
  const { url } = await startTestServer(t, { model: new FakeModel(), tasks: { secretKey } });
  const { SignJWT } = await import('jose');
  const key = new TextEncoder().encode(secretKey);
  const forever = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('all').sign(key);
  t.equal((await getJson(`${url}/models`, { headers: { authorization: `Bearer ${forever}` } })).status, 401);
  const expiring = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('all').setExpirationTime('1h').sign(key);
  t.equal((await getJson(`${url}/models`, { headers: { authorization: `Bearer ${expiring}` } })).status, 200);
});
