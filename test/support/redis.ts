/**
 * Redis helpers for tests.
 *
 * - {@link redisUrl}: the URL of the Redis every test shares, found or started by
 *   `test/global-setup.ts` and handed to the test workers through vitest's `provide`/`inject`.
 * - {@link uniquePrefix} and {@link cleanupPrefix}: isolate one test file's keys and delete them after.
 * - {@link startRedisServer}: a private `redis-server` on a free port, for tests that kill, freeze or
 *   restart Redis. Never kill or restart the shared server.
 *
 * @example
 * ```ts
 * import { afterAll, it } from 'vitest';
 * import { cleanupPrefix, redisUrl, uniquePrefix } from '../../test/support/redis.js';
 *
 * const prefix = uniquePrefix('store');
 * afterAll(() => cleanupPrefix(redisUrl(), prefix));
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the shared test Redis, provided by `test/global-setup.ts`. */
    redisUrl: string;
  }
}

/**
 * The URL of the Redis server shared by all tests (provided by `test/global-setup.ts`).
 *
 * @throws Error when the global setup did not run (the test was started without the root vitest config).
 */
export function redisUrl(): string {
  const url = inject('redisUrl') as string | undefined;
  if (url === undefined || url === '') {
    throw new Error(
      'redisUrl() has no value: test/global-setup.ts did not run. Run tests from the repository root with `npx vitest run` (root vitest.config.ts).',
    );
  }
  return url;
}

/**
 * A key prefix unique to one test (file), wrapped in a Redis Cluster hash tag so every key of the
 * test lands in the same slot: `{test-<name>-<8 hex chars>}`. Characters of `name` outside
 * `[A-Za-z0-9_.-]` become `-` (a `{` or `}` in the name would break the hash tag).
 *
 * @example `uniquePrefix('scheduler')` → `'{test-scheduler-1f3a9c0e}'`
 */
export function uniquePrefix(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_.-]+/g, '-');
  return `{test-${safe}-${randomBytes(4).toString('hex')}}`;
}

/**
 * Deletes every key that starts with `prefix` (SCAN + UNLINK, never KEYS or FLUSH*).
 *
 * @param url - Redis URL, usually {@link redisUrl}.
 * @param prefix - the literal key prefix, usually from {@link uniquePrefix}; glob characters in it are escaped.
 * @returns the number of keys deleted.
 */
export async function cleanupPrefix(url: string, prefix: string): Promise<number> {
  if (prefix === '') throw new Error('cleanupPrefix: refusing to delete with an empty prefix');
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {
    // Reported through the rejected command instead.
  });
  const match = `${prefix.replace(/[*?[\]\\^]/g, '\\$&')}*`;
  let deleted = 0;
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
  return deleted;
}

/**
 * Sends one PING to `url` without retries.
 *
 * @param timeoutMs - connect and command timeout in milliseconds. @defaultValue 1000
 * @throws Error with the reason (ECONNREFUSED, NOAUTH, timeout, …) when Redis does not answer PONG.
 */
export async function pingRedis(url: string, timeoutMs = 1000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // ioredis rejects connect() with a bare "Connection is closed."; the 'error' event says why.
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    const reply: string = await client.ping();
    if (reply !== 'PONG') throw new Error(`unexpected PING reply: ${reply}`);
  } catch (error) {
    if (cause === undefined) throw error;
    throw new Error(cause.message, { cause: error });
  } finally {
    client.disconnect();
  }
}

/** Options for {@link startRedisServer}. */
export interface StartRedisServerOptions {
  /**
   * Extra `redis-server` arguments, appended after the defaults so they override them
   * (e.g. `['--appendonly', 'yes']` to keep data across {@link RedisServer.restart}).
   * @defaultValue []
   */
  args?: string[];
  /** How long to wait for the first PONG, in milliseconds. @defaultValue 10000 */
  readyTimeoutMs?: number;
}

/** A private `redis-server` process started by {@link startRedisServer}. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Temporary working directory (`--dir`, log file `redis.log`); removed by {@link RedisServer.stop}. */
  readonly dir: string;
  /** Process id of the current `redis-server` (changes after {@link RedisServer.restart}). */
  readonly pid: number | undefined;
  /** Terminates the server (SIGTERM, then SIGKILL after 5 s) and removes {@link RedisServer.dir}. Idempotent. */
  stop(): Promise<void>;
  /**
   * Sends a signal to the server without waiting: `SIGKILL` (default) simulates a crash,
   * `SIGSTOP`/`SIGCONT` freeze and thaw it.
   */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the process if it still runs, starts it again on the same port and directory, waits for PONG. */
  restart(): Promise<void>;
  /** Same as {@link RedisServer.stop}, for `await using server = await startRedisServer()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_ARGS = ['--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--daemonize', 'no'];
const STOP_GRACE_MS = 5_000;

/** One running `redis-server` and the watchdog that outlives this process to clean it up. */
interface RedisProcess {
  child: ChildProcess;
  watchdog: ChildProcess | undefined;
}

/**
 * A `sh` that waits for EOF on its stdin, then SIGKILLs the server and removes its directory.
 * This process holds the only write end of that pipe, so the watchdog fires however this process
 * ends: vitest SIGTERMs or SIGKILLs its fork workers, which skips `exit` handlers, and a test that
 * forgot `stop()` (or crashed) would otherwise leak a server. Best effort: without `sh`, no watchdog.
 */
function startWatchdog(pid: number, dir: string): ChildProcess | undefined {
  try {
    const watchdog = spawn('sh', ['-c', 'read -r _ || true; kill -9 "$0" 2>/dev/null; rm -rf "$1"', String(pid), dir], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    watchdog.on('error', () => {
      // No sh: the server is then only cleaned up by stop().
    });
    watchdog.stdin?.on('error', () => {
      // EPIPE when the watchdog is already gone.
    });
    // Neither the watchdog nor its pipe may keep this process alive.
    watchdog.unref();
    if (watchdog.stdin instanceof Socket) watchdog.stdin.unref();
    return watchdog;
  } catch {
    return undefined;
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not find a free TCP port');
  return address.port;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return true;
  const exited = once(child, 'exit').then(
    () => true,
    () => hasExited(child),
  );
  const timedOut = sleep(timeoutMs, false, { ref: false });
  return Promise.race([exited, timedOut]);
}

async function logTail(dir: string): Promise<string> {
  try {
    const text = await readFile(join(dir, 'redis.log'), 'utf8');
    return text.slice(-4000);
  } catch {
    return '';
  }
}

class AddressInUseError extends Error {}

/** Spawns redis-server and resolves once it answers PING; rejects (and kills it) otherwise. */
async function spawnRedis(port: number, dir: string, args: string[], readyTimeoutMs: number): Promise<RedisProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', join(dir, 'redis.log'), ...DEFAULT_ARGS, ...args],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const watchdog = child.pid === undefined ? undefined : startWatchdog(child.pid, dir);
  const processes: RedisProcess = { child, watchdog };
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  let lastError: string | undefined;
  for (;;) {
    if (spawnError !== undefined) {
      watchdog?.kill('SIGKILL');
      throw new Error(
        spawnError.code === 'ENOENT'
          ? '`redis-server` is not on PATH: install it (Debian: `apt-get install redis-server`) or use the shared Redis'
          : `could not spawn redis-server: ${spawnError.message}`,
        { cause: spawnError },
      );
    }
    if (hasExited(child)) {
      const output = `${stderr}\n${await logTail(dir)}`.trim();
      watchdog?.kill('SIGKILL');
      if (/Address already in use/i.test(output)) throw new AddressInUseError(`port ${port} is in use`);
      throw new Error(
        `redis-server exited with ${child.exitCode ?? child.signalCode} before answering PING on port ${port}:\n${output}`,
      );
    }
    try {
      await pingRedis(url, 500);
      return processes;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      await terminate(processes);
      throw new Error(
        `redis-server on port ${port} did not answer PING within ${readyTimeoutMs} ms (${lastError ?? 'no answer'}):\n${await logTail(dir)}`,
      );
    }
    await sleep(50);
  }
}

async function terminate({ child, watchdog }: RedisProcess): Promise<void> {
  // The watchdog would also delete the directory, which restart() still needs.
  watchdog?.kill('SIGKILL');
  if (!hasExited(child)) {
    child.kill('SIGCONT'); // a frozen (SIGSTOP) server cannot handle SIGTERM
    child.kill('SIGTERM');
    if (!(await waitForExit(child, STOP_GRACE_MS))) {
      child.kill('SIGKILL');
      await waitForExit(child, STOP_GRACE_MS);
    }
  }
}

/**
 * Starts a private `redis-server` from PATH on a free port of 127.0.0.1, in a new temporary
 * directory, with `--save '' --appendonly no --maxmemory-policy noeviction` (overridable through
 * `options.args`), and waits until it answers PING.
 *
 * @throws Error when `redis-server` is not on PATH, exits early, or does not answer in time.
 * @example
 * ```ts
 * const server = await startRedisServer();
 * try {
 *   server.kill('SIGKILL'); // the system under test must survive this
 *   await server.restart();
 * } finally {
 *   await server.stop();
 * }
 * ```
 */
export async function startRedisServer(options: StartRedisServerOptions = {}): Promise<RedisServer> {
  const args = options.args ?? [];
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const dir = await mkdtemp(join(tmpdir(), 'agentfleet-redis-'));

  let port = 0;
  let started: RedisProcess | undefined;
  try {
    for (let attempt = 1; started === undefined; attempt++) {
      port = await freePort();
      try {
        started = await spawnRedis(port, dir, args, readyTimeoutMs);
      } catch (error) {
        if (!(error instanceof AddressInUseError) || attempt >= 5) throw error;
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  let current: RedisProcess = started;
  let stopping: Promise<void> | undefined;
  const url = `redis://127.0.0.1:${port}`;

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await terminate(current);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  return {
    url,
    port,
    dir,
    get pid() {
      return current.child.pid;
    },
    stop,
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (!hasExited(current.child)) current.child.kill(signal);
    },
    async restart() {
      if (stopping !== undefined) throw new Error('restart() after stop(): the server is gone');
      await terminate(current);
      current = await spawnRedis(port, dir, args, readyTimeoutMs);
    },
    [Symbol.asyncDispose]: stop,
  };
}
