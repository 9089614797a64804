/**
 * The run archive in the real PostgreSQL (127.0.0.1:5432, database `test`, a schema of this file):
 * a finished run is written once with its phases and events and only then gets its Redis expiry;
 * a run Redis expired is still served by `GET /api/runs/:id`; `DELETE /api/runs/:id` removes it from
 * both; with PostgreSQL unreachable (a TCP proxy stopped) the run stays readable in Redis and is
 * archived once the proxy is back.
 */
import { RUN_KEY_SUFFIXES } from '@agentfleet/core';
import { openHistoryStore, purgeRuns, startHttpApi, type HistoryStore } from '@agentfleet/manager';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, spawnCli, startFleet, testWorkflow } from './support/fleet.js';
import { ADMIN_KEY, eventually } from './support/http-api.js';
import { createTestSchema, dropSchema, pgUrl, schemaClient, startPgProxy } from './support/postgres.js';

const workflow = testWorkflow({
  agents: ['planner', 'designer'],
  phases: [
    { name: 'plan', agent: 'planner' },
    { name: 'design', agent: 'designer', depends_on: ['plan'] },
  ],
});

let schema: string;
let history: HistoryStore;
let sql: pg.Client;

beforeAll(async () => {
  schema = await createTestSchema('archive');
  history = await openHistoryStore({ url: pgUrl(), schema });
  sql = await schemaClient(schema);
});
afterAll(async () => {
  await sql?.end();
  await history?.close();
  if (schema) await dropSchema(schema);
});

/** Resolves when `runId` was reported; reports are kept, so a report before the wait counts. */
function reports() {
  const seen = new Set<string>();
  const waiters = new Map<string, () => void>();
  return {
    report(runId: string) {
      seen.add(runId);
      waiters.get(runId)?.();
    },
    wait(runId: string): Promise<void> {
      if (seen.has(runId)) return Promise.resolve();
      return new Promise((resolve) => waiters.set(runId, resolve));
    },
  };
}

async function rowCounts(runId: string): Promise<{ runs: number; phases: number; events: number }> {
  const q = async (table: string) => Number((await sql.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE run_id = $1`, [runId])).rows[0]?.n);
  return { runs: await q('runs'), phases: await q('run_phases'), events: await q('run_events') };
}

describe('run archive (PostgreSQL)', () => {
  it('archives a finished run once, then lets Redis expire it; GET serves it from the archive; DELETE removes it from both', async () => {
    const archived = reports();
    await using fleet = await startFleet({ name: 'archive', manager: { history, runRetentionMs: 60_000, archive: { onArchived: (id) => archived.report(id) } } });
    const { result } = await fleet.run(workflow, 'an archived todo app');
    expect(result.status).toBe('completed');
    await archived.wait(result.run_id);

    const runKey = fleet.client.store.runKey(result.run_id);
    const events = await fleet.redis.xlen(`${runKey}:events`);
    expect(await rowCounts(result.run_id)).toEqual({ runs: 1, phases: 2, events });
    expect(await fleet.redis.pttl(runKey), 'expiry set after the archive write').toBeGreaterThan(0);
    expect(await fleet.redis.zscore(fleet.client.store.archivePendingKey, result.run_id)).toBeNull();
    const row = (await sql.query<{ result: { results: unknown } }>('SELECT status, workflow_name, requirements, input_tokens, result FROM runs WHERE run_id = $1', [result.run_id])).rows[0];
    expect(row).toMatchObject({ status: 'completed', workflow_name: 'test', requirements: 'an archived todo app', input_tokens: String(result.usage.input_tokens) });
    expect(row?.result.results).toEqual(result.results);

    // A second write of the same run (a redelivered job) overwrites, never duplicates.
    await history.write({ result, labels: {}, events: await fleet.client.store.readEvents(result.run_id) });
    expect(await rowCounts(result.run_id)).toEqual({ runs: 1, phases: 2, events });

    // Redis lets it expire; the API serves it from the archive.
    const api = await startHttpApi({ redisUrl: fleet.url, prefix: fleet.prefix, port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], history, bullBoard: false });
    await using _closeApi = { [Symbol.asyncDispose]: () => api.close() };
    for (const suffix of RUN_KEY_SUFFIXES) await fleet.redis.pexpire(runKey + suffix, 1);
    await eventually(async () => ((await fleet.redis.exists(runKey)) === 0 ? true : undefined), 'the run to expire from Redis');
    const get = (method = 'GET') => fetch(`${api.url}/api/runs/${result.run_id}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const served = await get();
    expect(served.status).toBe(200);
    expect(await served.json()).toMatchObject({ run_id: result.run_id, status: 'completed', results: result.results });

    const sse = await fetch(`${api.url}/api/runs/${result.run_id}/events`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(sse.status).toBe(200);
    const text = await sse.text();
    expect(text.match(/^event: /gm)?.length, 'every archived event').toBe(events);
    expect(text).toContain('event: run_finished');

    const env = cliEnv(fleet.url, fleet.prefix, { FLEET_HISTORY_URL: pgUrl(), FLEET_HISTORY_SCHEMA: schema });
    const status = await runCli(['status', result.run_id], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ run_id: result.run_id, status: 'completed' });
    const listed = await runCli(['status', '--status', 'completed', '-n', '500'], env);
    expect(listed.stdout).toContain(`${result.run_id}  completed  test`);

    // Pattern mining reads the archive: the run's steps are learned though Redis no longer holds it.
    const mined = await runCli(['patterns', '--min-frequency', '1', '--min-success-rate', '0', '--json'], env);
    expect(mined.code, mined.stderr).toBe(0);
    expect(JSON.parse(mined.stdout)).toContainEqual(expect.objectContaining({ steps: ['agent:planner', 'agent:designer'], frequency: 1, success_rate: 1 }));
    const redisOnly = await runCli(['patterns', '--min-frequency', '1', '--min-success-rate', '0', '--json'], cliEnv(fleet.url, fleet.prefix));
    expect(JSON.parse(redisOnly.stdout)).toEqual([]);
    const suggested = await runCli(['patterns', 'suggest', '1', '--name', 'learned-from-archive', '--min-frequency', '1', '--min-success-rate', '0'], env);
    expect(suggested.code, suggested.stderr).toBe(0);
    expect(suggested.stdout).toMatch(/name: learned-from-archive/);

    const deleted = await get('DELETE');
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toEqual({ run_id: result.run_id, deleted: { redis: false, archive: true } });
    expect((await get()).status).toBe(404);
    expect(await rowCounts(result.run_id)).toEqual({ runs: 0, phases: 0, events: 0 });
    // A fleet, the archive, an HTTP API and a key expiry in one test: past 30 s on a loaded machine (seen at load 22).
  }, 120_000);

  it('with PostgreSQL unreachable the run stays in Redis, and is archived once when it is back', async () => {
    const proxy = await startPgProxy();
    const throughProxy = await openHistoryStore({ url: proxy.url, schema, poolSize: 2 });
    const archived = reports();
    const failed = reports();
    try {
      await using fleet = await startFleet({
        name: 'archive-outage',
        manager: { history: throughProxy, runRetentionMs: 60_000, archive: { retryMaxDelayMs: 200, onArchived: (id) => archived.report(id), onRetry: (id) => failed.report(id) } },
      });
      await proxy.stop();
      const { result } = await fleet.run(workflow, 'archived after an outage');
      await failed.wait(result.run_id);
      const runKey = fleet.client.store.runKey(result.run_id);
      expect(await fleet.redis.pttl(runKey), 'no expiry before the archive write').toBe(-1);
      expect(await fleet.redis.zscore(fleet.client.store.archivePendingKey, result.run_id)).not.toBeNull();
      expect((await fleet.client.store.getResult(result.run_id)).status, 'readable from Redis meanwhile').toBe('completed');
      expect(await rowCounts(result.run_id)).toMatchObject({ runs: 0 });

      await proxy.start();
      await archived.wait(result.run_id);
      expect(await rowCounts(result.run_id)).toEqual({ runs: 1, phases: 2, events: await fleet.redis.xlen(`${runKey}:events`) });
      expect(await fleet.redis.pttl(runKey)).toBeGreaterThan(0);
    } finally {
      await throughProxy.close();
      await proxy.stop();
    }
  });

  it('a manager killed in the middle of a write loses nothing: the next manager archives the run once', async () => {
    await using fleet = await startFleet({ name: 'archive-kill' });
    const env = cliEnv(fleet.url, fleet.prefix, { FLEET_HISTORY_URL: pgUrl(), FLEET_HISTORY_SCHEMA: schema, FLEET_RUN_RETENTION: '1h' });
    const managerArgs = ['manager', '--lock-duration', '2000', '--stalled-interval', '1000'];
    const first = spawnCli(managerArgs, env);
    await using _first = first;
    await first.waitFor('archiving finished runs to PostgreSQL');

    // Hold the archive's table, so the first manager's write blocks inside its transaction.
    const locker = await schemaClient(schema);
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE runs IN ACCESS EXCLUSIVE MODE');
      const { result } = await fleet.run(workflow, 'archived across a manager crash');
      await eventually(
        async () => (Number((await sql.query<{ n: string }>('SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND relation = $1::regclass', [`${schema}.runs`])).rows[0]?.n) > 0 ? true : undefined),
        "the first manager's write to wait on the lock",
        30_000,
      );
      await first.stop('SIGKILL');
      await locker.query('ROLLBACK');

      const runKey = fleet.client.store.runKey(result.run_id);
      expect(await fleet.redis.zscore(fleet.client.store.archivePendingKey, result.run_id), 'still pending').not.toBeNull();
      expect(await fleet.redis.pttl(runKey), 'no expiry before the archive write').toBe(-1);

      await using _second = spawnCli(managerArgs, env);
      await eventually(async () => ((await fleet.redis.zscore(fleet.client.store.archivePendingKey, result.run_id)) === null ? true : undefined), 'the second manager to archive the run', 60_000);
      expect(await rowCounts(result.run_id)).toEqual({ runs: 1, phases: 2, events: await fleet.redis.xlen(`${runKey}:events`) });
      expect(await fleet.redis.pttl(runKey)).toBeGreaterThan(0);
    } finally {
      await locker.end();
    }
  }, 120_000);

  it('purge removes finished runs older than the cutoff from Redis and the archive, by status', async () => {
    const archived = reports();
    await using fleet = await startFleet({ name: 'archive-purge', manager: { history, runRetentionMs: 0, archive: { onArchived: (id) => archived.report(id) } } });
    const runs = [await fleet.run(workflow, 'purged one'), await fleet.run(workflow, 'purged two')].map((r) => r.result.run_id);
    for (const id of runs) await archived.wait(id);
    // The cutoff is an input: every run finished before it.
    const cutoff = Date.now() + 1;
    expect(await purgeRuns(fleet.client.store, history, { finishedBefore: cutoff, status: 'failed' })).toEqual({ redis: 0, archive: 0 });
    const removed = await purgeRuns(fleet.client.store, history, { finishedBefore: cutoff, status: 'completed' });
    expect(removed.redis).toBe(2);
    expect(removed.archive).toBeGreaterThanOrEqual(2);
    for (const id of runs) {
      expect(await fleet.redis.exists(fleet.client.store.runKey(id))).toBe(0);
      expect(await fleet.redis.zscore(fleet.client.store.indexKey, id)).toBeNull();
      expect(await rowCounts(id)).toEqual({ runs: 0, phases: 0, events: 0 });
    }
    const cli = await runCli(['runs', 'purge', '--older-than', '30d'], cliEnv(fleet.url, fleet.prefix, { FLEET_HISTORY_URL: pgUrl(), FLEET_HISTORY_SCHEMA: schema }));
    expect(cli.stdout + cli.stderr).toContain('purged 0 run(s) from Redis, 0 from the archive');
  });
});
