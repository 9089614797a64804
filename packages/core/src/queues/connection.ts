import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { redactRedisUrl } from '../config.js';
import { FleetError } from '../errors.js';

/** Whether `url` names a Redis Cluster: `redis+cluster://` or `rediss+cluster://` (TLS). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url);
}

/**
 * An ioredis Cluster for a `redis+cluster://[user:password@]host:port` URL: `host:port` is a seed
 * node; the others are discovered from it (CLUSTER SLOTS).
 */
function clusterFromUrl(url: string, redisOptions: RedisOptions, clusterOptions: ClusterOptions = {}): Cluster {
  const u = new URL(url.replace(/^(rediss?)\+cluster:/i, '$1:'));
  const auth = {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
  return new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
    ...clusterOptions,
    redisOptions: { ...redisOptions, ...auth, ...(u.protocol === 'rediss:' ? { tls: {} } : {}) },
  });
}

/**
 * Open an ioredis connection for AgentFleet.
 *
 * @param url - `redis://` or `rediss://` URL (AUTH/ACL user and password may be in it), or
 *   `redis+cluster://` / `rediss+cluster://` with one seed node of a Redis Cluster. A cluster
 *   connection is an ioredis `Cluster` typed as `Redis`: every command AgentFleet and BullMQ use
 *   exists on both, and every key of a fleet shares the prefix's hash tag (`{fleet}`), so one slot.
 * @param options.forWorker - BullMQ workers need `maxRetriesPerRequest: null` (blocking commands retry forever).
 * @see https://docs.bullmq.io/guide/connections
 * @see https://docs.bullmq.io/bull/patterns/redis-cluster
 */
export function createRedis(
  url: string,
  options: {
    forWorker?: boolean;
    lazy?: boolean;
    name?: string;
    /** Fail commands at once while Redis is down instead of queueing them (an API answering 503); a command times out after this many ms. */
    failFastMs?: number;
    /** A command without a reply after this many ms fails with "Command timed out" (commands still wait for a connection first). */
    commandTimeoutMs?: number;
  } = {},
): Redis {
  const opts: RedisOptions = {
    maxRetriesPerRequest: options.forWorker ? null : options.failFastMs !== undefined ? 1 : 3,
    lazyConnect: options.lazy ?? false,
    enableReadyCheck: true,
    ...(options.name ? { connectionName: options.name } : {}),
    ...(options.commandTimeoutMs !== undefined ? { commandTimeout: options.commandTimeoutMs } : {}),
    ...(options.failFastMs !== undefined ? { enableOfflineQueue: false, commandTimeout: options.failFastMs, connectTimeout: 2000 } : {}),
  };
  if (isClusterUrl(url)) {
    const { lazyConnect, enableOfflineQueue, ...redisOptions } = opts;
    return clusterFromUrl(url, redisOptions, {
      lazyConnect: lazyConnect ?? false,
      enableReadyCheck: true,
      ...(enableOfflineQueue === false ? { enableOfflineQueue: false } : {}),
    }) as unknown as Redis;
  }
  return new Redis(url, opts);
}

/**
 * Check that Redis answers PING within `timeoutMs`.
 *
 * @throws FleetError `REDIS_UNAVAILABLE` with the URL (password redacted) and what to start.
 */
export async function assertRedisReachable(url: string, timeoutMs = 2000): Promise<void> {
  const ok = await pingRedis(url, timeoutMs);
  if (!ok.ok && isRedisAuthFailure(ok.reason)) {
    throw new FleetError('REDIS_UNAVAILABLE', `Redis at ${redactRedisUrl(url)} refused the credentials (${ok.reason}); check the user and password in REDIS_URL`);
  }
  if (!ok.ok && ok.silent) {
    throw new FleetError('REDIS_UNAVAILABLE', redisNotAnsweringMessage(url, timeoutMs));
  }
  if (!ok.ok) {
    throw new FleetError(
      'REDIS_UNAVAILABLE',
      `Redis is unreachable at ${redactRedisUrl(url)} (${ok.reason}); start one with \`docker compose up -d redis\` or install redis-server, or set REDIS_URL`,
    );
  }
}

/** Whether a {@link pingRedis} failure reason says Redis answered but refused the URL's user or password. */
export function isRedisAuthFailure(reason: string): boolean {
  return /WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username/i.test(reason);
}

/**
 * The message for a Redis that accepted the connection (or is still being connected to) but did not
 * answer within `timeoutMs`: frozen (SIGSTOP, a debugger), swapping, or stuck in a long script.
 */
export function redisNotAnsweringMessage(url: string, timeoutMs: number, what = 'PING'): string {
  return `Redis at ${redactRedisUrl(url)} is not answering (no reply to ${what} within ${timeoutMs / 1000} s): it may be frozen, paused, overloaded or busy with a long script; check it with redis-cli -u ${redactRedisUrl(url)} ping`;
}

/**
 * PING Redis once, without retrying; never throws, never waits longer than `timeoutMs` (ms) in all.
 *
 * @returns `ok`, or the reason; `silent: true` when Redis could not be told apart from a frozen one:
 *   nothing refused the connection but no reply came within `timeoutMs`.
 */
export async function pingRedis(url: string, timeoutMs = 2000): Promise<{ ok: true } | { ok: false; reason: string; silent?: boolean }> {
  const redis = isClusterUrl(url)
    ? clusterFromUrl(url, { maxRetriesPerRequest: 0, connectTimeout: timeoutMs, commandTimeout: timeoutMs, retryStrategy: () => null }, { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: () => null })
    : new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        enableOfflineQueue: false,
      });
  // connect() rejects with a bare "Connection is closed."; the 'error' event says why (ECONNREFUSED, WRONGPASS, …).
  let cause: Error | undefined;
  redis.on('error', (err: Error) => {
    cause ??= err;
  });
  // A frozen Redis accepts the TCP connection (the kernel does) and then says nothing: ioredis's
  // connect timeout has ended by then and its ready check waits for ever, so the whole exchange is bounded here.
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<{ ok: false; reason: string; silent: true }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `no reply to PING within ${timeoutMs / 1000} s`, silent: true }), timeoutMs);
  });
  const exchange = (async (): Promise<{ ok: true } | { ok: false; reason: string; silent?: boolean }> => {
    try {
      await redis.connect();
      const pong = await redis.ping();
      return pong === 'PONG' ? { ok: true } : { ok: false, reason: `PING answered ${String(pong)}` };
    } catch (err) {
      const message = cause?.message ?? (err instanceof Error ? err.message : String(err));
      const silent = /Command timed out/.test(message);
      return { ok: false, reason: message.replaceAll(url, redactRedisUrl(url)), ...(silent ? { silent } : {}) };
    }
  })();
  try {
    return await Promise.race([exchange, silence]);
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}

/** Whether `err` is Redis refusing a write because it is full (`OOM command not allowed when used memory > 'maxmemory'`). */
export function isRedisOutOfMemory(err: unknown): boolean {
  return err instanceof Error && /^OOM command not allowed/.test(err.message);
}

/**
 * The error for a write Redis refused because it is full, naming what to do.
 *
 * @param url - the Redis URL (its password is redacted), when known.
 */
export function redisOutOfMemoryError(err: unknown, url?: string): FleetError {
  return new FleetError(
    'REDIS_OUT_OF_MEMORY',
    `Redis${url ? ` at ${redactRedisUrl(url)}` : ''} is full (its used memory is over maxmemory, policy noeviction) and refuses writes: free memory (fleet runs purge --older-than 7d, a shorter FLEET_RUN_RETENTION) or raise maxmemory; runs in flight go on once it has room`,
    { cause: err },
  );
}
