// Worker offers as Redis holds them are checked before the API process believes them, and it
// never opens a file a worker named.

import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import t from 'tap';

import { FileHashes } from '../server/models/hashes.js';
import { redisKeys, type RedisConnection } from '../server/jobs/redis.js';
import { parseOffer, RemoteModelRegistry, type WorkerDirectory, type WorkerOffer } from '../server/models/remote-registry.js';

const sha256 = 'a'.repeat(64);
const offer = {
  id: 'w1', host: 'gpu-box', pid: 42, concurrency: 1, loaded: ['v1-5'],
  models: [{ name: 'v1-5', path: '/etc/passwd', sha256 }, { name: 'sdxl', path: 'C:\\models\\sdxl.safetensors' }],
};

t.test('a valid offer keeps only the file names of its models', async (t) => {
  t.same(parseOffer(JSON.stringify(offer)), {
    ...offer, models: [{ name: 'v1-5', path: 'passwd', sha256 }, { name: 'sdxl', path: 'sdxl.safetensors' }],
  });
});

t.test('anything else in Redis is no offer', async (t) => {
  const broken: [string, unknown][] = [
    ['not JSON', '{'],
    ['null', null],
    ['an array', [offer]],
    ['a string pid', { ...offer, pid: '42' }],
    ['no models', { ...offer, models: undefined }],
    ['a model without a name', { ...offer, models: [{ path: '/x' }] }],
    ['a bad hash', { ...offer, models: [{ name: 'x', path: '/x', sha256: 'zz' }] }],
    ['a name with a newline', { ...offer, models: [{ name: 'a\nb', path: '/x' }] }],
    ['concurrency 0', { ...offer, concurrency: 0 }],
    ['loaded not a list', { ...offer, loaded: 'v1-5' }],
  ];
  for (const [what, value] of broken) t.equal(parseOffer(typeof value === 'string' ? value : JSON.stringify(value)), undefined, what);
});

t.test('a model entry is hashed only where it names a file of this machine', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'm.safetensors');
  await writeFile(file, 'abc');
  const hashes = new FileHashes();
  t.equal(await hashes.ofEntry({ name: 'm', path: file }), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.equal(await hashes.ofEntry({ name: 'w', path: 'passwd' }), undefined, 'a worker\'s file name is not opened here');
  t.equal(await hashes.ofEntry({ name: 'w', path: 'passwd', sha256 }), sha256, 'the worker\'s hash is used');
  t.equal(await hashes.ofEntry({ name: 'gone', path: path.join(dir, 'gone.safetensors') }), undefined);
  await writeFile(file, 'abcd');
  t.equal(await hashes.ofEntry({ name: 'm', path: file }), '88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589', 'a new version, a new hash');
});

t.test('with workers restarting, a model offered within --no-worker-timeout still resolves (its job queues)', async (t) => {
  let offers: WorkerOffer[] = [{ id: 'w1', host: 'h', pid: 1, concurrency: 1, loaded: [], models: [{ name: 'v1-5', path: 'v1-5.safetensors' }] }];
  const directory = { live: async () => offers } as unknown as WorkerDirectory;
  const connection = { call: async (use: (redis: { get: () => Promise<null> }) => unknown) => use({ get: async () => null }) } as unknown as RedisConnection;
  const keys = redisKeys();
  const remembering = new RemoteModelRegistry(directory, connection, keys, { rememberMs: 60_000 });
  const forgetting = new RemoteModelRegistry(directory, connection, keys);
  t.equal((await remembering.resolve('v1-5')).name, 'v1-5');
  await forgetting.resolve('v1-5');
  offers = [];
  t.equal((await remembering.resolve('v1-5')).name, 'v1-5', 'named');
  t.equal((await remembering.resolve()).name, 'v1-5', 'the only model, unnamed');
  await t.rejects(remembering.resolve('sdxl'), { name: 'UnknownModelError' }, 'never offered');
  await t.rejects(forgetting.resolve('v1-5'), { name: 'UnknownModelError' }, 'without the window, as before');
  await t.rejects(forgetting.resolve(), { name: 'NoModelError' });
});
