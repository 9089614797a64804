/**
 * Runs start in the submitting client: its first decision and first phase jobs are committed there,
 * with no hop through the manager (the start commit adds the first jobs itself). The create writes
 * the run's start into its outbox; a client that dies before the start commit leaves that outbox
 * behind, and the manager starts the run once the outbox outlives its lease. A run an earlier version created
 * (with no outbox entry for its start) and never started is started when a manager starts.
 */
import { randomUUID } from 'node:crypto';
import { BUILTIN_ROLES } from '@agentfleet/agents';
import { FleetClient, TestClock, agentQueuesKey, createLogger, createRedis, initialRunState, type RunMeta } from '@agentfleet/core';
import { DEFAULT_DEADLINE_GRACE_MS, RunDriver, deadlineMember, phaseDeadlineMs } from '@agentfleet/core/internal';
import { describe, expect, it } from 'vitest';
import { CountingOfflineLlm, connect, countEvents, createUnstartedRun, quietManager, quietPool, runEvents } from './faults/helpers.js';
import { testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const workflow = testWorkflow({
  agents: ['planner', 'coder'],
  phases: [
    { name: 'plan', agent: 'planner' },
    { name: 'code', agent: 'coder', depends_on: ['plan'] },
  ],
});

/** The manager's outbox lease in these tests, ms. */
const LEASE_MS = 500;

/**
 * A connection, an offline LLM and a pool for the planner and the coder on a fresh prefix; the
 * manager (outbox lease {@link LEASE_MS}) starts when the test has left what a dead client leaves.
 */
async function startFleet(name: string) {
  const url = redisUrl();
  const prefix = uniquePrefix(name);
  const conn = connect(url, prefix);
  const llm = new CountingOfflineLlm(Object.values(BUILTIN_ROLES));
  const pool = await quietPool(url, prefix, [BUILTIN_ROLES.planner!, BUILTIN_ROLES.coder!], llm);
  let manager: Awaited<ReturnType<typeof quietManager>> | undefined;
  return {
    url,
    prefix,
    conn,
    llm,
    async startManager() {
      manager = await quietManager(url, prefix, { outboxLeaseMs: LEASE_MS });
    },
    async close() {
      await manager?.close();
      await pool.close(1000);
      await conn.close();
      await cleanupPrefix(url, prefix);
    },
  };
}

describe('run start', () => {
  it('a submitted run starts and completes with no manager running; no outbox is left', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('run-start');
    const conn = connect(url, prefix);
    let pool: Awaited<ReturnType<typeof quietPool>> | undefined;
    try {
      const id = await conn.client.submit({ workflow, requirements: 'A todo API', provider: 'offline' });
      // Started by submit itself: the first phase is queued before any manager exists.
      const run = await conn.store.getRun(id);
      expect(run.state.status).toBe('active');
      expect(run.state.phases.plan?.status).toBe('queued');
      expect(await conn.store.readOutbox(id)).toEqual([]);
      expect(await conn.redis.zscore(conn.store.outboxesKey, id)).toBeNull();
      expect(await conn.redis.smembers(agentQueuesKey(prefix))).toContain('planner');

      pool = await quietPool(url, prefix, [BUILTIN_ROLES.planner!, BUILTIN_ROLES.coder!], new CountingOfflineLlm(Object.values(BUILTIN_ROLES)));
      const result = await conn.client.follow(id, conn.blocking, () => undefined);
      expect(result.status).toBe('completed');
      expect(countEvents(await runEvents(conn.store, id), 'run_started')).toBe(1);
      expect(await conn.redis.zcard(conn.store.deadlinesKey)).toBe(0);
    } finally {
      await pool?.close(1000);
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('a client on a test clock dates the run, and the deadline of its first phase, by that clock', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('run-start-clock');
    const conn = connect(url, prefix);
    const clock = new TestClock();
    clock.advance(7 * 24 * 3600_000);
    const client = new FleetClient(conn.redis, prefix, { clock, logger: createLogger({ name: 'test', level: 'silent' }) });
    try {
      const before = clock.now();
      const id = await client.submit({ workflow, requirements: 'A todo API', provider: 'offline' });
      const after = clock.now();
      const { meta } = await conn.store.getRun(id);
      expect(meta.created_at).toBeGreaterThanOrEqual(before);
      expect(meta.created_at).toBeLessThanOrEqual(after);
      // The first phase's deadline: its time budget after the commit, on the week-ahead clock.
      const plan = workflow.phases.find((p) => p.name === 'plan')!;
      const due = Number(await conn.redis.zscore(conn.store.deadlinesKey, deadlineMember({ run_id: id, phase: 'plan', iteration: 1 })));
      expect(due).toBeGreaterThanOrEqual(before + phaseDeadlineMs(plan, DEFAULT_DEADLINE_GRACE_MS));
      expect(due).toBeLessThanOrEqual(after + phaseDeadlineMs(plan, DEFAULT_DEADLINE_GRACE_MS));
    } finally {
      await client.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('a run whose client died before starting it is started by the manager once its outbox outlives the lease, once', async () => {
    const { conn, llm, startManager, close } = await startFleet('run-start-dead-client');
    try {
      // A manager already running (its start-up reconcile done) sees the run only through its outbox sweep.
      await startManager();
      // What a client leaves when it dies between creating the run and starting it.
      const now = Date.now();
      const id = await createUnstartedRun(conn.store, workflow, 'A chat server', now);
      const result = await conn.client.follow(id, conn.blocking, () => undefined);
      expect(result.status).toBe('completed');
      // Not before the outbox lease (the manager polls every 250 ms).
      const events = await runEvents(conn.store, id);
      const started = events.find((e) => e.type === 'run_started');
      expect(started?.at).toBeGreaterThanOrEqual(now + LEASE_MS);
      expect(countEvents(events, 'run_started')).toBe(1);
      expect(llm.calls.get('A chat server|plan')).toBe(1);
      expect(await conn.redis.zcard(conn.store.deadlinesKey)).toBe(0);
    } finally {
      await close();
    }
  });

  it("a client that commits the start with its queue connection gone: the start commit writes the first phase's job itself, and the run completes once", async () => {
    const { url, prefix, conn, llm, close } = await startFleet('run-start-half');
    try {
      // A client's start whose queue connection is gone: the commit, on the store's connection, adds
      // the first phase's job with the state, so nothing is left for a queue add to fail.
      const id = randomUUID();
      const now = Date.now();
      const meta: RunMeta = { run_id: id, workflow, requirements: 'A wiki', variables: {}, created_at: now, provider: 'offline', trace: {} };
      const state = initialRunState(workflow, now);
      expect(await conn.store.createRun(meta, state, {})).toBe(true);
      const gone = createRedis(url, { failFastMs: 200 });
      await new Promise((resolve) => gone.once('ready', resolve));
      gone.disconnect();
      const driver = new RunDriver({ redis: gone, prefix, store: conn.store, log: createLogger({ name: 'test', level: 'silent' }), followUp: () => Promise.resolve() });
      await driver.startCreated(meta, state, {});
      await driver.close().catch(() => undefined);
      expect(await conn.store.readOutbox(id)).toEqual([]);
      expect(await conn.redis.zscore(conn.store.outboxesKey, id)).toBeNull();

      // No manager runs and the client's queue connection is gone: only the job the start commit
      // wrote lets the agent pools carry the run out.
      const result = await conn.client.follow(id, conn.blocking, () => undefined);
      expect(result.status).toBe('completed');
      const events = await runEvents(conn.store, id);
      expect(countEvents(events, 'run_started')).toBe(1);
      expect(countEvents(events, 'phase_completed', 'plan')).toBe(1);
      expect(llm.calls.get('A wiki|plan')).toBe(1);
      expect(await conn.redis.zcard(conn.store.deadlinesKey)).toBe(0);
    } finally {
      await close();
    }
  });

  it('a run an earlier version created without a start in its outbox, never started, is started when a manager starts, once', async () => {
    const { conn, llm, startManager, close } = await startFleet('run-start-no-outbox');
    try {
      // An earlier version's create: the run and its state, no outbox entry; its client died before starting it.
      const id = await createUnstartedRun(conn.store, workflow, 'A blog engine');
      const { state } = await conn.store.getRun(id);
      await conn.store.clearOutbox(id, [state.version]);
      expect(await conn.store.readOutbox(id)).toEqual([]);
      expect(await conn.redis.zscore(conn.store.outboxesKey, id)).toBeNull();
      expect(state.status).toBe('created');

      await startManager();
      // Started by the start-up reconcile itself: the first phase is queued when startManager returns.
      expect((await conn.store.getRun(id)).state.status).not.toBe('created');
      const result = await conn.client.follow(id, conn.blocking, () => undefined);
      expect(result.status).toBe('completed');
      const events = await runEvents(conn.store, id);
      expect(countEvents(events, 'run_started')).toBe(1);
      expect(llm.calls.get('A blog engine|plan')).toBe(1);
      expect(llm.calls.get('A blog engine|code')).toBe(1);
      expect(await conn.store.readOutbox(id)).toEqual([]);
    } finally {
      await close();
    }
  });
});
