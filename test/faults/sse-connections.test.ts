/**
 * SSE streams against a Redis with few connections to give: a private `redis-server --maxclients 64`
 * with a manager, a pool and the HTTP API on it. 200 event streams (20 on each of 10 runs waiting
 * for an approval) share the API process's one blocking reader, so Redis sees one SSE connection,
 * not 200; `fleet status` and a new client still connect; every stream then gets its run's events
 * to `run_finished`. A key that holds its cap of open streams gets 429 `TOO_MANY_STREAMS` for one
 * more, and may open another once one closed.
 */
import { compileWorkflow, createRedis } from '@agentfleet/core';
import { startHttpApi } from '@agentfleet/manager';
import { describe, expect, it } from 'vitest';
import { planner } from '@agentfleet/agents';
import { cliEnv, runCli } from '../support/fleet.js';
import { readSse, type SseMessage } from '../support/http-api.js';
import { startRedisServer } from '../support/redis.js';
import { waitForRunStatus } from '../support/run-events.js';
import { CountingOfflineLlm, connect, quietManager, quietPool, waitUntil } from './helpers.js';

const PREFIX = '{fleet-sse}';
const ADMIN_KEY = 'admin-key-for-the-sse-test-0123456789';
const ANALYST_KEY = 'analyst-key-for-the-sse-test-012345678';

const WORKFLOW = compileWorkflow({
  name: 'sse-wait',
  agents: ['planner'],
  phases: [
    { name: 'plan', agent: 'planner' },
    { name: 'sign_off', type: 'approval', depends_on: ['plan'], timeout: 600 },
  ],
});

/** Connections Redis holds now, by client name. */
async function clientsByName(redis: ReturnType<typeof createRedis>): Promise<Map<string, number>> {
  const list = (await redis.client('LIST')) as string;
  const out = new Map<string, number>();
  for (const line of list.split('\n').filter(Boolean)) {
    const name = /\bname=(\S*)/.exec(line)?.[1] ?? '';
    out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

describe('SSE streams share Redis connections', () => {
  it('200 streams hold one Redis connection at maxclients 64; fleet clients still connect; every stream reaches run_finished', async () => {
    await using server = await startRedisServer({ args: ['--maxclients', '64'] });
    const manager = await quietManager(server.url, PREFIX);
    const pool = await quietPool(server.url, PREFIX, [planner], new CountingOfflineLlm([planner]));
    const api = await startHttpApi({ redisUrl: server.url, prefix: PREFIX, port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], sseMaxStreamsPerKey: 500, sseKeepAliveMs: 5000 });
    const conn = connect(server.url, PREFIX);
    const admin = createRedis(server.url);
    const streams: Array<Promise<{ messages: SseMessage[]; ended: boolean }>> = [];
    try {
      const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => conn.client.submit({ workflow: WORKFLOW, requirements: `Service ${i}`, provider: 'offline' })));
      // One wait after another on the test's blocking connection (the server takes only 64 clients).
      for (const id of ids) await waitForRunStatus({ redis: conn.redis, prefix: PREFIX, blocking: conn.blocking }, id, 'waiting', { what: 'its approval to be awaited' });

      let opened = 0;
      for (const id of ids) {
        for (let i = 0; i < 20; i++) {
          streams.push(readSse(`${api.url}/api/runs/${id}/events`, ADMIN_KEY, { onOpen: () => (opened += 1) }));
        }
      }
      // Every stream has sent what was there (up to phase_waiting) once it is open; then they all wait.
      await waitUntil(() => opened === 200, 60_000, '200 SSE streams to open');
      expect(api.app.server.listening).toBe(true);

      // The streams' shared reader connects once the first stream subscribes (on a loaded machine, after
      // the streams answered 200): once it is there, it is the only one.
      await waitUntil(async () => ((await clientsByName(admin)).get('fleet-http-sse') ?? 0) > 0, 60_000, "the streams' shared reader to connect");
      const names = await clientsByName(admin);
      expect(names.get('fleet-http-sse') ?? 0).toBe(1);
      const total = [...names.values()].reduce((a, b) => a + b, 0);
      expect(total).toBeLessThan(64);

      // A `fleet` command and a new client still connect.
      const status = await runCli(['status'], cliEnv(server.url, PREFIX), { timeoutMs: 60_000 });
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout.split('\n').filter((l) => l.includes('waiting'))).toHaveLength(10);
      const late = createRedis(server.url);
      try {
        expect(await late.ping()).toBe('PONG');
      } finally {
        late.disconnect();
      }

      for (const id of ids) await conn.client.sendEvent(id, 'approval', { approved: true });
      const results = await Promise.all(streams);
      results.forEach((r, i) => {
        const types = r.messages.map((m) => m.event);
        expect(r.ended, `stream ${i}`).toBe(true);
        expect(types.at(-1), `stream ${i}`).toBe('run_finished');
        expect(types.filter((t) => t === 'phase_waiting'), `stream ${i}`).toHaveLength(1);
        expect(new Set(r.messages.map((m) => m.id)).size, `stream ${i}: no event twice`).toBe(r.messages.length);
      });
    } finally {
      await api.close();
      await Promise.allSettled(streams);
      await pool.close(2000);
      await manager.close();
      await conn.close();
      admin.disconnect();
    }
  }, 240_000);

  it('a key that holds its cap of open streams gets 429 TOO_MANY_STREAMS for one more; another key is not affected', async () => {
    await using server = await startRedisServer();
    const manager = await quietManager(server.url, PREFIX);
    const pool = await quietPool(server.url, PREFIX, [planner], new CountingOfflineLlm([planner]));
    const api = await startHttpApi({
      redisUrl: server.url,
      prefix: PREFIX,
      port: 0,
      host: '127.0.0.1',
      adminKeys: [ADMIN_KEY],
      apiKeys: [{ key: ANALYST_KEY, userType: 'analyst' }],
      sseMaxStreamsPerKey: 3,
    });
    const controllers: AbortController[] = [];
    try {
      const created = await fetch(`${api.url}/api/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ requirements: 'Build a tiny todo API', workflow: { name: 'sse-wait', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }, { name: 'sign_off', type: 'approval', depends_on: ['plan'], timeout: 600 }] } }),
      });
      const { run_id: runId } = (await created.json()) as { run_id: string };
      const open = async (key: string) => {
        const controller = new AbortController();
        controllers.push(controller);
        const res = await fetch(`${api.url}/api/runs/${runId}/events`, { headers: { authorization: `Bearer ${key}` }, signal: controller.signal });
        return { res, controller };
      };
      for (let i = 0; i < 3; i++) expect((await open(ADMIN_KEY)).res.status).toBe(200);
      const over = await open(ADMIN_KEY);
      expect(over.res.status).toBe(429);
      const body = (await over.res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('TOO_MANY_STREAMS');
      expect(body.error.message).toContain('FLEET_SSE_MAX_STREAMS_PER_KEY=3');

      // The analyst key's runs are its own: it may not see the admin's run (404), but its count is its own.
      const own = await fetch(`${api.url}/api/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ANALYST_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ requirements: 'Build a tiny todo API', workflow: 'software-delivery' }),
      });
      const { run_id: analystRun } = (await own.json()) as { run_id: string };
      const analystStream = await fetch(`${api.url}/api/runs/${analystRun}/events`, { headers: { authorization: `Bearer ${ANALYST_KEY}` } });
      expect(analystStream.status).toBe(200);
      await analystStream.body?.cancel();

      // Closing one of the admin's streams frees a place (the server sees the close, then counts it).
      controllers[0]?.abort();
      let reopened: Response | undefined;
      await waitUntil(async () => {
        const attempt = await open(ADMIN_KEY);
        if (attempt.res.status === 200) reopened = attempt.res;
        else await attempt.res.body?.cancel();
        return attempt.res.status === 200;
      }, 30_000, 'a stream to open again after one closed');
      expect(reopened?.status).toBe(200);
    } finally {
      for (const c of controllers) c.abort();
      await api.close();
      await pool.close(2000);
      await manager.close();
    }
  }, 120_000);
});
