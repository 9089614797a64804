/**
 * Redis full, for real: a private `redis-server` (noeviction) whose `maxmemory` is set below what it
 * already uses, so it answers PING but refuses every write with `OOM command not allowed`.
 * - `/readyz` answers 503 with `redis: "full"` and `REDIS_OUT_OF_MEMORY` (`/healthz` stays 200: the
 *   process is alive, it only must not get traffic);
 * - a write through the API (`POST /api/runs`) answers 503 `REDIS_OUT_OF_MEMORY` with a message that
 *   says what to do, not Redis's raw reply;
 * - `fleet run` prints one line saying Redis is full and exits 2;
 * - an agent pool on it logs each repeated error once, then once more with the count held back.
 */
import { Writable } from 'node:stream';
import { planner, startAgentPool } from '@agentfleet/agents';
import { createLogger, createRedis } from '@agentfleet/core';
import { startHttpApi } from '@agentfleet/manager';
import { describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../support/fleet.js';
import { startRedisServer } from '../support/redis.js';
import { CountingOfflineLlm, waitUntil } from './helpers.js';

const PREFIX = '{fleet-full}';
const ADMIN_KEY = 'admin-key-for-the-redis-full-test-0123';

describe('Redis at its maxmemory', () => {
  it('/readyz says full, API writes answer 503 REDIS_OUT_OF_MEMORY, fleet run prints one line and exits 2', async () => {
    await using server = await startRedisServer();
    const api = await startHttpApi({ redisUrl: server.url, prefix: PREFIX, port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], provider: 'offline' });
    const admin = createRedis(server.url);
    try {
      expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
      await admin.config('SET', 'maxmemory', '1');

      const ready = await fetch(`${api.url}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { status: string; redis: string; code: string; message: string };
      expect(body).toMatchObject({ status: 'unavailable', redis: 'full', code: 'REDIS_OUT_OF_MEMORY' });
      expect(body.message).toMatch(/^Redis is full \(its used memory is over maxmemory, policy noeviction\) and refuses writes: free memory/);
      expect((await fetch(`${api.url}/healthz`)).status).toBe(200);

      const post = await fetch(`${api.url}/api/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ requirements: 'Build a tiny todo API', workflow: 'software-delivery' }),
      });
      expect(post.status).toBe(503);
      const error = ((await post.json()) as { error: { code: string; message: string } }).error;
      expect(error.code).toBe('REDIS_OUT_OF_MEMORY');
      expect(error.message).not.toContain('OOM command not allowed');
      expect(error.message).toContain('raise maxmemory');

      const run = await runCli(['run', 'Build a tiny todo API'], cliEnv(server.url, PREFIX), { timeoutMs: 90_000 });
      expect(run.code, run.stderr).toBe(2);
      const lines = run.stderr.split('\n').filter((l) => l.startsWith('fleet:'));
      expect(lines).toEqual([
        `fleet: Redis at ${server.url} is full (its used memory is over maxmemory, policy noeviction) and refuses writes: free memory (fleet runs purge --older-than 7d, a shorter FLEET_RUN_RETENTION) or raise maxmemory; runs in flight go on once it has room`,
      ]);
      expect(run.stderr).not.toMatch(/ReplyError|\n\s+at /);

      // The API serves again once Redis has room.
      await admin.config('SET', 'maxmemory', '0');
      expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    } finally {
      await admin.config('SET', 'maxmemory', '0').catch(() => undefined);
      admin.disconnect();
      await api.close();
    }
  }, 120_000);

  it("an agent pool's repeated error is logged once, then once more with the count of repeats held back", async () => {
    await using server = await startRedisServer();
    const lines: Array<{ msg: string; repeated?: number; level: string }> = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { msg: string; repeated?: number; level: string });
        done();
      },
    });
    const pool = await startAgentPool({
      redisUrl: server.url,
      prefix: PREFIX,
      roles: [planner],
      llm: new CountingOfflineLlm([planner]),
      concurrency: 2,
      logger: createLogger({ name: 'agents', level: 'error', destination }),
    });
    const admin = createRedis(server.url);
    try {
      await admin.config('SET', 'maxmemory', '1');
      // Every worker turn fails the same way while Redis is full: the second line of a message says how many were held back.
      await waitUntil(() => lines.some((l) => (l.repeated ?? 0) > 0), 60_000, 'a log line with the count of repeats held back');
      const repeated = lines.find((l) => (l.repeated ?? 0) > 0) as { msg: string; repeated: number };
      expect(repeated.msg).toMatch(/^OOM command not allowed/);
      const same = lines.filter((l) => l.msg === repeated.msg);
      expect(same.map((l) => l.repeated)).toEqual([undefined, repeated.repeated]);
    } finally {
      await admin.config('SET', 'maxmemory', '0').catch(() => undefined);
      admin.disconnect();
      await pool.close(2000);
    }
  }, 120_000);
});
