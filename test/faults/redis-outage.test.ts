/**
 * Faults 4 and 5 (second half) of issue 6, each on a private `redis-server` this file may kill:
 * Redis (AOF on, fsync always) crashes in the middle of runs and comes back (meanwhile the HTTP API
 * answers 503 at once and the CLI says Redis is unreachable); a pool stopped with
 * SIGTERM while Redis is gone still exits after its grace period.
 */
import { loadBuiltinWorkflow } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { startFakeAnthropic } from '../support/fake-anthropic.js';
import { cliEnv, runCli, spawnCli, testWorkflow, type CliProcess } from '../support/fleet.js';
import { freePort, startRedisServer } from '../support/redis.js';
import { waitForRunEvent } from '../support/run-events.js';
import { connect, countEvents, runEvents, waitUntil } from './helpers.js';

const PREFIX = '{fleet-outage}';
const ADMIN_KEY = 'admin-key-for-the-outage-test-0123456789';

describe('Redis goes away', () => {
  it('fault 4: Redis (AOF) is SIGKILLed mid-run and restarted: the CLI says it is unreachable meanwhile, processes reconnect, every run completes once', async () => {
    await using server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const env = cliEnv(server.url, PREFIX, { FLEET_OFFLINE_LATENCY_MS: '300', FLEET_ADMIN_KEY: ADMIN_KEY });
    const port = await freePort();
    const processes: CliProcess[] = [
      spawnCli(['manager', '--port', String(port)], env),
      spawnCli(['agents', '--roles', 'planner,designer,coder,reviewer', '--concurrency', '4'], env),
    ];
    const conn = connect(server.url, PREFIX);
    try {
      // The HTTP API starts after the manager consumes: wait for it too, or Redis could go before it listens.
      await processes[0]!.waitFor('manager: HTTP API listening on', 60_000);
      await processes[1]!.waitFor('agents: serving', 30_000);
      const workflow = await loadBuiltinWorkflow('software-delivery');
      const ids = await Promise.all(['A wiki', 'A poll service', 'A pastebin', 'A feed reader'].map((requirements) => conn.client.submit({ workflow, requirements, provider: 'offline' })));
      // Let the runs get going: every run has finished its first phase.
      await Promise.all(ids.map((id) => waitForRunEvent({ redis: conn.redis, prefix: PREFIX }, id, (e) => e.type === 'phase_completed', { what: 'its first phase' })));

      server.kill('SIGKILL');
      // The HTTP API answers 503 while Redis is down, public and authenticated routes alike: Redis comes
      // back only after these answers, so a request waiting for Redis would never be answered here.
      for (const path of ['/healthz', `/api/runs/${ids[0]!}`]) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
        expect(res.status, path).toBe(503);
      }
      const status = await runCli(['status'], env, { timeoutMs: 15_000 });
      expect(status.code).toBe(2);
      expect(status.stderr).toContain(`Redis is unreachable at redis://127.0.0.1:${server.port}`);
      // Both processes have lost Redis by now (the CLI above failed to reach it): bring it back.
      await server.restart();

      await waitUntil(async () => (await conn.store.activeRunIds().catch(() => ['?'])).length === 0, 90_000, 'every run to finish after the restart');
      for (const id of ids) {
        const result = await conn.client.result(id);
        expect(result.status).toBe('completed');
        const events = await runEvents(conn.store, id);
        expect(countEvents(events, 'run_finished')).toBe(1);
        for (const phase of ['planning', 'design', 'implementation', 'review']) expect(countEvents(events, 'phase_completed', phase)).toBe(1);
      }
      // The API serves again once its own connection is back: it reconnects on ioredis's backoff, which
      // may still be waiting when the workers (other connections) have finished every run, and until
      // then each request answers 503 at once (it is never held).
      const answer = async (): Promise<number> => (await fetch(`http://127.0.0.1:${port}/api/runs/${ids[0]!}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status;
      let last = 0;
      await waitUntil(async () => (last = await answer()) !== 503, 30_000, 'the HTTP API to reach Redis again');
      expect(last).toBe(200);
      // Both processes survived the outage and still stop cleanly.
      for (const p of processes) expect(await p.stop('SIGTERM')).toBe(0);
    } finally {
      await Promise.all(processes.map((p) => p.stop('SIGKILL')));
      await conn.close();
    }
    // Its own waits (first phases, the CLI's answer, every run after the restart) add up past the default 30 s.
  }, 240_000);

  it('fault 5: SIGTERM a pool with a job in flight while Redis is gone: it exits by itself, abandoning the job at the end of its grace period', async () => {
    await using server = await startRedisServer();
    await using fake = await startFakeAnthropic();
    fake.setResponder(() => ({ hang: true }));
    const env = cliEnv(server.url, PREFIX, { ANTHROPIC_API_KEY: 'sk-ant-test-key', ANTHROPIC_BASE_URL: fake.url });
    const manager = spawnCli(['manager'], env);
    const agents = spawnCli(['agents', '--roles', 'coder', '--grace', '2'], env);
    const conn = connect(server.url, PREFIX);
    try {
      await manager.waitFor('manager: consuming');
      await agents.waitFor('agents: serving');
      const workflow = testWorkflow({ agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder', timeout: 60 }] });
      await conn.client.submit({ workflow, requirements: 'Build a todo API', provider: 'anthropic' });
      await fake.waitForRequests(1, 15_000);
      server.kill('SIGKILL');

      agents.child.kill('SIGTERM');
      // It exits by itself with Redis still gone (a pool that waited for Redis would never exit: the
      // test would time out), not killed by a signal.
      await agents.exited;
      expect(agents.child.signalCode).toBeNull();
      expect(agents.output()).toContain('finishing jobs in flight (up to 2s)');
    } finally {
      await agents.stop('SIGKILL');
      await manager.stop('SIGKILL');
      await conn.close();
    }
  });
});
