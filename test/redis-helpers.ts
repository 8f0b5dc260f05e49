// Shared by the --redis tests: a real redis-server per test on a free port with its data in the
// test's folder (stop and start it again to simulate an outage), and sdnode processes (workers)
// run through the CLI in child processes.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import path from 'node:path';

import type { Test } from 'tap';

import { exitCode, spawnCli, waitForOutput } from './server-helpers.js';

export interface TestRedis {
  url: string;
  /** Stops the server (SIGTERM: it writes its append-only file first). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
}

/** The redis-server binary; tests fail, never skip, without it. */
function redisServerBinary(): string {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error('redis-server is not installed; the --redis tests need it. Install it with '
      + '`apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS).');
  }
  return 'redis-server';
}

export async function startRedis(t: Test, dir: string): Promise<TestRedis> {
  const binary = redisServerBinary();
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const server = spawn(binary, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'always', '--logfile', path.join(dir, 'redis.log'),
    ], { stdio: 'ignore' });
    child = server;
    await waitForPort(port, server);
  };
  const stop = async (): Promise<void> => {
    const server = child;
    child = undefined;
    if (!server) return;
    server.kill('SIGTERM');
    await exitCode(server);
  };
  t.teardown(() => {
    child?.kill('SIGKILL');
  });
  await start();
  return { url: `redis://127.0.0.1:${port}/0`, stop, start };
}

export type CliProcess = ReturnType<typeof spawnCli>;

/** Runs `sdnode <args>` until the test ends; resolves once it says it is ready. */
export async function startSdnode(t: Test, args: string[]): Promise<CliProcess> {
  const child = spawnCli(args);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await waitForOutput(child, /Press Ctrl\+C to stop/);
  return child;
}

/** Polls `check` every 50 ms until it returns true. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 30_000, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// redis-server prints nothing we read; it is ready once it accepts connections.
async function waitForPort(port: number, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`redis-server exited with ${server.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
