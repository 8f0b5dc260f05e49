// One rule for credentials: once an API key or an --api-auth user is set, every route that
// generates needs one, in every API; the task API's public access and sign-up do not get around it.

import t from 'tap';

import { startServer } from '../server/index.js';
import { FakeModel, startTestServer } from './server-helpers.js';

const basic = `Basic ${Buffer.from('alice:pw').toString('base64')}`;

async function send(url: string, init: RequestInit & { json?: unknown } = {}): Promise<number> {
  const { json, ...rest } = init;
  const body = json === undefined ? rest.body : JSON.stringify(json);
  const headers = { ...(json !== undefined && { 'content-type': 'application/json' }), ...(rest.headers as Record<string, string>) };
  return (await fetch(url, { ...rest, headers, body })).status;
}

function generatingRequests(url: string, authorization?: string): [string, Promise<number>][] {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  const form = new FormData();
  form.append('prompt', 'x');
  const quick = { prompt: 'x', steps: 1, width: 64, height: 64 };
  return [
    ['M1', send(`${url}/text-to-image`, { method: 'POST', body: form, headers })],
    ['OpenAI', send(`${url}/v1/images/generations`, { method: 'POST', json: { prompt: 'x', size: '256x256' }, headers })],
    ['A1111', send(`${url}/sdapi/v1/txt2img`, { method: 'POST', json: quick, headers })],
    ['Photoshop', send(`${url}/txt2img`, { method: 'POST', json: { prompt: 'x', num_inference_steps: 1 }, headers })],
    ['/generate', send(`${url}/generate`, { method: 'POST', json: quick, headers })],
    ['tasks', send(`${url}/txt2img?prompt=x&width=64&height=64&steps=1`, { headers })],
  ];
}

t.test('--api-auth alone protects every API, and its users are let in everywhere', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), apiAuth: ['alice:pw'] });
  for (const [api, status] of generatingRequests(url)) t.equal(await status, 401, `${api} without credentials`);
  for (const [api, status] of generatingRequests(url, `Basic ${Buffer.from('alice:wrong').toString('base64')}`)) {
    t.equal(await status, 401, `${api} with a wrong password`);
  }
  for (const [api, status] of generatingRequests(url, basic)) t.equal(await status, 200, `${api} with alice's password`);
});

t.test('with an API key, ENABLE_PUBLIC_ACCESS and ENABLE_SIGNUP open nothing', async (t) => {
  const tasks = { secretKey: 's'.repeat(32), enablePublicAccess: true, enableSignup: true };
  const { url } = await startTestServer(t, { model: new FakeModel(), apiKeys: ['key'], tasks });
  t.equal(await send(`${url}/txt2img?prompt=x&width=64&height=64&steps=1`), 401, 'no public generation');
  t.equal(await send(`${url}/token/all`, { method: 'POST' }), 401, 'no public token');
  const signUp = (headers: Record<string, string>) => send(`${url}/user`, { method: 'POST', json: { username: 'eve', password: 'long enough' }, headers });
  t.equal(await signUp({}), 401, 'sign-up needs a key');
  t.equal(await signUp({ authorization: 'Bearer key' }), 200, 'a key holder makes users');
  t.equal(await send(`${url}/txt2img?prompt=x&width=64&height=64&steps=1`, { headers: { authorization: 'Bearer key' } }), 200);
});

t.test('the server says which APIs are open to anyone', async (t) => {
  const start = async (options: Parameters<typeof startServer>[0]) => {
    const running = await startServer({ port: 0, log: () => {}, model: new FakeModel(), outputDir: t.testdir(), ...options });
    await running.close({ abort: true });
    return running.openApis;
  };
  t.same(await start({}), ['m1', 'openai', 'a1111', 'tasks', 'photoshop', 'generate', 'comfyui', 'sdcpp']);
  t.same(await start({ apis: ['m1', 'tasks'], tasks: { secretKey: 's'.repeat(32) } }), ['m1'], 'tasks needs tokens');
  t.same(await start({ apis: ['m1', 'tasks'], tasks: { secretKey: 's'.repeat(32), enableSignup: true } }), ['m1', 'tasks'], 'anyone may sign up');
  t.same(await start({ apiAuth: ['alice:pw'], tasks: { enablePublicAccess: true } }), []);
});
