/**
 * Redis for `fleet run`: the configured one when it answers, else a private `redis-server` started
 * from PATH (temporary directory, free port, `maxmemory-policy noeviction`, nothing saved) and
 * stopped when the command exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { FleetError, isRedisAuthFailure, pingRedis, redactRedisUrl, redisNotAnsweringMessage } from '@agentfleet/core';

export interface RedisHandle {
  url: string;
  /** true when this process started the server (and will stop it). */
  private: boolean;
  stop(): Promise<void>;
}

/** Absolute path of an executable on PATH, or undefined. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Use the Redis at `url`, or start a private one.
 *
 * @param log - where to say that a private Redis was started (stderr).
 * @param options.allowPrivate - start a private Redis when nothing answers (false for `--no-local-workers`:
 *   no other process could serve the run). @defaultValue true
 * @param options.alwaysPrivate - start a private Redis without trying `url` (`fleet test`). @defaultValue false
 * @throws FleetError `REDIS_UNAVAILABLE` when Redis refuses the URL's credentials (the message never holds
 *   the password), or nothing answers at `url` and no private server may or can be started.
 */
export async function ensureRedis(url: string, log: (line: string) => void, options: { allowPrivate?: boolean; alwaysPrivate?: boolean } = {}): Promise<RedisHandle> {
  const ping = options.alwaysPrivate === true ? { ok: false as const, reason: 'a private Redis was asked for' } : await pingRedis(url, 1500);
  if (ping.ok) return { url, private: false, stop: () => Promise.resolve() };
  // Something listens there but says nothing (a frozen Redis): a private server would hide it.
  if ('silent' in ping && ping.silent === true) throw new FleetError('REDIS_UNAVAILABLE', redisNotAnsweringMessage(url, 1500));
  if (isRedisAuthFailure(ping.reason)) {
    throw new FleetError('REDIS_UNAVAILABLE', `Redis at ${redactRedisUrl(url)} refused the credentials (${ping.reason}); check the user and password in REDIS_URL`);
  }
  if (options.allowPrivate === false) {
    throw new FleetError('REDIS_UNAVAILABLE', `Redis is unreachable at ${redactRedisUrl(url)} (${ping.reason}); start it or set REDIS_URL`);
  }
  const binary = findOnPath('redis-server');
  if (!binary) {
    throw new FleetError(
      'REDIS_UNAVAILABLE',
      `Redis is unreachable at ${redactRedisUrl(url)} (${ping.reason}) and redis-server is not on PATH. ` +
        'Start Redis with `docker compose up -d redis`, or install redis-server (e.g. `apt-get install redis-server`), or set REDIS_URL.',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'fleet-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  const killChild = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killChild);
  // A signal ends Node without its 'exit' event: stop the private server first. SIGINT is left to a
  // handler of the caller when there is one (`fleet run` cancels the run on Ctrl-C, then stops it).
  const onSignal = (signal: NodeJS.Signals) => {
    if (signal === 'SIGINT' && process.listenerCount('SIGINT') > 1) return;
    killChild();
    rmSync(dir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const privateUrl = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if ((await pingRedis(privateUrl, 500)).ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      killChild();
      throw new FleetError('REDIS_UNAVAILABLE', `could not start a private redis-server (${binary}) on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  log(`Redis: nothing answered at ${redactRedisUrl(url)}; started a private redis-server on ${privateUrl} (stopped at exit)`);
  return {
    url: privateUrl,
    private: true,
    async stop() {
      process.removeListener('exit', killChild);
      for (const s of signals) process.removeListener(s, onSignal);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        killChild();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
