/**
 * Vitest global setup: finds the Redis the tests share, or starts a private one, and hands its URL
 * to every test worker as `inject('redisUrl')` (read it with `redisUrl()` from `test/support/redis.ts`).
 *
 * 1. PING `REDIS_URL` (default `redis://127.0.0.1:6379`). If it answers, use it.
 * 2. Otherwise start a private `redis-server` from PATH on a free port in a temporary directory,
 *    and stop it in teardown.
 * 3. Otherwise fail the run with a message that says what to start. Tests are never skipped.
 *
 * `process.env.REDIS_URL` is also set to the chosen URL, so processes that tests spawn
 * (the `fleet` CLI, workers) find the same server.
 */
import type { TestProject } from 'vitest/node';
import { pingRedis, type RedisServer, startRedisServer } from './support/redis.js';

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
  const previousEnv = process.env.REDIS_URL;

  let reason: string;
  try {
    await pingRedis(configured, 2_000);
    project.provide('redisUrl', configured);
    process.env.REDIS_URL = configured;
    return async () => {
      // The shared server is not ours to stop.
    };
  } catch (error) {
    reason = error instanceof Error ? error.message : String(error);
  }

  let server: RedisServer;
  try {
    server = await startRedisServer();
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      [
        `Tests need Redis 7, but nothing answers PING at ${configured} (${reason})`,
        `and a private redis-server could not be started: ${why}.`,
        'Start one, then run the tests again:',
        "  redis-server --daemonize yes --save '' --appendonly no --maxmemory-policy noeviction",
        'or',
        '  docker compose up -d redis',
        'or set REDIS_URL to a running Redis 7.',
      ].join('\n'),
      { cause: error },
    );
  }

  console.info(`[global-setup] no Redis at ${configured} (${reason}); started a private redis-server at ${server.url}`);
  project.provide('redisUrl', server.url);
  process.env.REDIS_URL = server.url;
  return async () => {
    if (previousEnv === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = previousEnv;
    await server.stop();
  };
}
