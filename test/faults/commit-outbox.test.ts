/**
 * The commit path of a run under faults, each made deterministic: a committer that stops right after
 * its commit or half way through its effects, a reply to a commit lost on the wire (a loopback TCP
 * proxy cuts the connection after Redis ran the fenced script), and Redis refusing commits (out of
 * memory). The commit writes an outbox of the effects still to carry out, so none of these loses the
 * next phase's job, the run's start, or an attempt.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { BUILTIN_ROLES, recoverStalledOut, startAgentPool } from '@agentfleet/agents';
import { startManager } from '@agentfleet/manager';
import {
  FleetClient,
  TestClock,
  agentQueueName,
  createLogger,
  createRedis,
  fleetIdGenerator,
  initialRunState,
  phaseJobId,
  type PhaseJobData,
  type PhaseJobResult,
  type RunMeta,
  type SchedulerEvent,
  type WorkflowDefinition,
} from '@agentfleet/core';
import {
  RunDriver,
  RunStore,
} from '@agentfleet/core/internal';
import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider as BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { GatedLlm } from '../support/http-api.js';
import { testWorkflow } from '../support/fleet.js';
import { startReplyDroppingProxy } from '../support/reply-dropping-proxy.js';
import { cleanupPrefix, redisUrl, startRedisServer, uniquePrefix } from '../support/redis.js';
import { waitForRunEnd, waitForRunEvent, waitForRunStatus } from '../support/run-events.js';
import { connect, countEvents, runEvents, waitUntil, withConnection } from './helpers.js';

const silent = createLogger({ name: 'test', level: 'silent' });

/** Two phases that become ready together, then one after both. */
const fanOut = testWorkflow({
  agents: ['planner', 'coder'],
  phases: [
    { name: 'a', agent: 'planner' },
    { name: 'b', agent: 'planner' },
    { name: 'c', agent: 'coder', depends_on: ['a', 'b'] },
  ],
});

/** One phase: its completion completes the run. */
const onePhase = testWorkflow({ agents: ['planner'], phases: [{ name: 'plan', agent: 'planner', retries: 0 }] });

/** The same with an end action, so the run's finish has a follow-up to carry out. */
const onePhaseWithEndAction = testWorkflow({
  agents: ['planner'],
  end_action_type: 'api_call',
  end_action_target: 'http://127.0.0.1:9/run-finished',
  phases: [{ name: 'plan', agent: 'planner', retries: 0 }],
});

const chain = testWorkflow({
  agents: ['planner', 'coder'],
  phases: [
    { name: 'plan', agent: 'planner', retries: 0 },
    { name: 'code', agent: 'coder', depends_on: ['plan'] },
  ],
});

/** The commit script's SHA1 (what EVALSHA sends) and a line of its text (what EVAL sends). */
const APPLY_DECISION = readFileSync(fileURLToPath(new URL('../../packages/core/src/store/commands/apply-decision-7.lua', import.meta.url)), 'utf8');
const APPLY_DECISION_MARKERS = [createHash('sha1').update(APPLY_DECISION).digest('hex'), 'apply-decision: commit a decision'];

/**
 * Run `work` with spans going to memory, with the fleet's ids and the W3C propagator (as the
 * telemetry SDK of `fleet agents` installs them); returns the spans it finished.
 */
async function withMemoryTracing(work: () => Promise<void>): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const tracing = new BasicTracerProvider({ idGenerator: fleetIdGenerator, spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  trace.setGlobalTracerProvider(tracing);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  try {
    await work();
    await tracing.forceFlush();
    return exporter.getFinishedSpans();
  } finally {
    await tracing.shutdown();
    trace.disable();
    propagation.disable();
  }
}

/** A run written as a client writes it, not started yet (dated `now`). */
async function createRun(store: RunStore, workflow: WorkflowDefinition, id: string, now = Date.now()): Promise<{ meta: RunMeta; state: ReturnType<typeof initialRunState> }> {
  const meta: RunMeta = { run_id: id, workflow, requirements: 'A wiki', variables: {}, created_at: now, provider: 'offline', trace: {} };
  const state = initialRunState(workflow, now);
  expect(await store.createRun(meta, state, {})).toBe(true);
  // The create's own outbox entry (the start) is dropped: these tests commit the start themselves.
  await store.clearOutbox(id, [state.version]);
  return { meta, state };
}

/** The run has no outbox entry left, and is not listed among the runs with one. */
async function expectNoOutbox(conn: ReturnType<typeof connect>, id: string): Promise<void> {
  expect(await conn.store.readOutbox(id)).toEqual([]);
  expect(await conn.redis.zscore(conn.store.outboxesKey, id)).toBeNull();
}

/** A run created and started (its first jobs added by the start commit), as a client leaves it. */
async function startedRun(conn: ReturnType<typeof connect>, prefix: string, workflow: WorkflowDefinition, id: string, clock?: TestClock): Promise<void> {
  const { meta, state } = await createRun(conn.store, workflow, id, clock?.now());
  const starter = driverOn(conn.redis, prefix, undefined, clock);
  await starter.apply(id, { type: 'run_started', at: clock?.now() ?? Date.now() }, { known: { meta, state, outputs: {} } });
  await starter.close();
}

function driverOn(redis: Redis, prefix: string, beforeEffect?: (runId: string, effect: { type: string }) => void, clock?: TestClock): RunDriver {
  return new RunDriver({ redis, prefix, store: new RunStore(redis, prefix), log: silent, followUp: () => Promise.resolve(), beforeEffect, clock });
}

/** A phase job's BullMQ state (`prioritized`, `active`, …), or undefined when there is no such job. */
async function jobState(redis: Redis, prefix: string, role: string, jobId: string): Promise<string | undefined> {
  const queue = new Queue(agentQueueName(role), { connection: redis, prefix });
  try {
    return await (await queue.getJob(jobId))?.getState();
  } finally {
    await queue.close();
  }
}

async function jobExists(redis: Redis, prefix: string, role: string, jobId: string): Promise<boolean> {
  const queue = new Queue(agentQueueName(role), { connection: redis, prefix });
  try {
    return (await queue.getJob(jobId)) !== undefined;
  } finally {
    await queue.close();
  }
}

/** `plan`'s attempt 1, started and completed, as a worker commits it. */
function planCompleted(): SchedulerEvent[] {
  const at = Date.now();
  return [
    { type: 'phase_started', at, phase: 'plan', iteration: 1, attempt: 1, agent: 'planner' },
    { type: 'phase_completed', at, phase: 'plan', iteration: 1, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'offline', agent: 'planner' },
  ];
}

class CrashHere extends Error {}

describe('the commit writes an outbox', () => {
  it("crash after the create commit, before any effect: the run's start waits in its outbox, and the manager's reconcile starts it once", async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('outbox-crash-after-create');
    const conn = connect(url, prefix);
    const manager = await startManager({ redisUrl: url, prefix, warn: () => undefined, onError: () => undefined, logger: silent, outboxLeaseMs: 0 });
    try {
      const id = 'run-crash-after-create';
      const now = Date.now();
      const meta: RunMeta = { run_id: id, workflow: fanOut, requirements: 'A wiki', variables: {}, created_at: now, provider: 'offline', trace: {} };
      const state = initialRunState(fanOut, now);
      expect(await conn.store.createRun(meta, state, {})).toBe(true);
      // The client that created it stops before carrying out anything of the create's outbox.
      const crashing = driverOn(conn.redis, prefix, (_runId, effect) => {
        if (effect.type === 'start_run') throw new CrashHere('stopped after the create');
      });
      await expect(crashing.startCreated(meta, state, {})).rejects.toThrow(CrashHere);
      await crashing.close();

      // The manager (lease 0) finds the create's outbox entry and starts the run from it.
      await waitUntil(async () => (await conn.redis.zscore(conn.store.outboxesKey, id)) === null, 15_000, 'the manager to reconcile the outbox');
      const run = await conn.store.getRun(id);
      expect(run.state.status).toBe('active');
      expect(countEvents(await runEvents(conn.store, id), 'run_started')).toBe(1);
      expect(await jobExists(conn.redis, prefix, 'planner', phaseJobId(id, 'a', 1))).toBe(true);
      expect(await jobExists(conn.redis, prefix, 'planner', phaseJobId(id, 'b', 1))).toBe(true);
      expect(await conn.store.readOutbox(id)).toEqual([]);
      // A late reconcile of the same (carried out) start does nothing more.
      const late = driverOn(conn.redis, prefix);
      expect(await late.reconcile(id)).toBe(0);
      await late.close();
      expect(countEvents(await runEvents(conn.store, id), 'run_started')).toBe(1);
    } finally {
      await manager.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it("crash right after the start commit: the first jobs are in their queues, written by the commit itself, and no outbox entry is left", async () => {
    await withConnection('outbox-crash-after-start', async ({ prefix, conn }) => {
      const id = 'run-crash-after-start';
      const { meta, state } = await createRun(conn.store, fanOut, id);
      // Any effect carried out after the commit would stop here: the start commit has none left.
      const crashing = driverOn(conn.redis, prefix, () => {
        throw new CrashHere('stopped after the commit');
      });
      await crashing.apply(id, { type: 'run_started', at: Date.now() }, { known: { meta, state, outputs: {} } });
      await crashing.close();
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'a', 1))).toBe('prioritized');
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'b', 1))).toBe('prioritized');
      await expectNoOutbox(conn, id);
    });
  });

  it("a client's start commit drops the create's outbox entry in the same step: no separate clear is sent", async () => {
    await withConnection('outbox-start-clears-create', async ({ prefix, conn }) => {
      const id = 'run-start-clears-create';
      const now = Date.now();
      const meta: RunMeta = { run_id: id, workflow: fanOut, requirements: 'A wiki', variables: {}, created_at: now, provider: 'offline', trace: {} };
      const state = initialRunState(fanOut, now);
      expect(await conn.store.createRun(meta, state, {})).toBe(true);
      expect((await conn.store.readOutbox(id)).map((e) => e.effects.map((x) => x.type))).toEqual([['start_run']]);
      // A store whose separate clear fails: only the start commit itself can drop the entry.
      const store = new RunStore(conn.redis, prefix);
      store.clearOutbox = () => Promise.reject(new Error('a separate outbox clear was sent'));
      const driver = new RunDriver({ redis: conn.redis, prefix, store, log: silent, followUp: () => Promise.resolve() });
      await driver.startCreated(meta, state, {});
      await driver.close();
      expect((await conn.store.getRun(id)).state.status).toBe('active');
      await expectNoOutbox(conn, id);
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'a', 1))).toBe('prioritized');
    });
  });

  it('a create whose start decision throws writes nothing: no run, and no refusal recorded on a run that does not exist', async () => {
    await withConnection('outbox-create-decide-throws', async ({ prefix, conn }) => {
      const id = 'run-create-decide-throws';
      const now = Date.now();
      const meta: RunMeta = { run_id: id, workflow: fanOut, requirements: 'A wiki', variables: {}, created_at: now, provider: 'offline', trace: {} };
      const driver = new RunDriver({
        redis: conn.redis,
        prefix,
        store: conn.store,
        log: silent,
        followUp: () => Promise.resolve(),
        beforeDecide: () => {
          throw new Error('deciding the start failed');
        },
      });
      await expect(driver.createStarted(meta, initialRunState(fanOut, now), {})).rejects.toMatchObject({ code: 'EVENT_REJECTED' });
      await driver.close();
      expect(await conn.redis.exists(conn.store.runKey(id), conn.store.eventsKey(id), conn.store.contextKey(id))).toBe(0);
      expect(await conn.redis.zscore(conn.store.indexKey, id)).toBeNull();
    });
  });

  it("crash right after a worker's commit: the next phase's job is in its queue, written by the commit itself, and no outbox entry is left", async () => {
    await withConnection('outbox-crash-after-worker-commit', async ({ prefix, conn }) => {
      const id = 'run-crash-after-worker-commit';
      await startedRun(conn, prefix, chain, id);
      // The holder of plan's job commits its completion; any effect after the commit would stop it here.
      const crashing = driverOn(conn.redis, prefix, () => {
        throw new CrashHere('stopped after the commit');
      });
      await crashing.apply(id, planCompleted(), { output: { phase: 'plan', value: { summary: 'a plan' } } });
      await crashing.close();
      expect((await conn.store.getRun(id)).state.phases.code?.status).toBe('queued');
      expect(await jobState(conn.redis, prefix, 'coder', phaseJobId(id, 'code', 1))).toBe('prioritized');
      await expectNoOutbox(conn, id);
    });
  });

  it('a finish with nothing to follow up (no parent run, no end action) leaves no outbox entry; one with an end action leaves its finish', async () => {
    await withConnection('outbox-finish', async ({ prefix, conn }) => {
      for (const [id, workflow, left] of [['run-plain-finish', onePhase, []], ['run-finish-with-end-action', onePhaseWithEndAction, [['finish_run']]]] as const) {
        await startedRun(conn, prefix, workflow, id);
        const crashing = driverOn(conn.redis, prefix, () => {
          throw new CrashHere('stopped after the commit');
        });
        // Stopped before carrying out the finish: what is in the outbox is what a reconciler would find.
        await expect(crashing.apply(id, planCompleted(), { output: { phase: 'plan', value: { summary: 'a plan' } } })).rejects.toThrow(CrashHere);
        await crashing.close();
        expect((await conn.store.getRun(id)).state.status).toBe('completed');
        expect((await conn.store.readOutbox(id)).map((e) => e.effects.map((x) => x.type))).toEqual(left);
      }
    });
  });

  it('crash after the commit, before any effect: the outbox keeps the effects the commit could not do itself (a cancelled run\'s job removals), and the manager carries them out once the outbox outlives its lease (the lease skipped on a test clock, not waited)', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('outbox-crash-after-commit');
    const conn = connect(url, prefix);
    // The committer and the manager read one test clock, a day ahead of real time; the manager keeps
    // its default 30 s lease. It is running before the crash, so its start-up reconcile finds nothing:
    // only its sweep of outboxes older than the lease can carry this one out.
    const clock = new TestClock();
    clock.advance(24 * 3600_000);
    const manager = await startManager({ redisUrl: url, prefix, warn: () => undefined, onError: () => undefined, logger: silent, clock });
    try {
      const id = 'run-crash-after-commit';
      await startedRun(conn, prefix, fanOut, id, clock);
      // The process that commits the run's cancellation stops before removing the queued jobs.
      const crashing = driverOn(conn.redis, prefix, () => {
        throw new CrashHere('stopped after the commit');
      }, clock);
      const committedBy = clock.now();
      await expect(crashing.apply(id, { type: 'cancel_requested', at: clock.now(), reason: 'not wanted' })).rejects.toThrow(CrashHere);
      await crashing.close();

      expect((await conn.store.getRun(id)).state.status).toBe('cancelled');
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'a', 1))).toBe('prioritized');
      const outbox = await conn.store.readOutbox(id);
      expect(outbox.flatMap((e) => e.effects.filter((x) => x.type === 'cancel_phase').map((x) => ('phase' in x ? x.phase : '')))).toEqual(['a', 'b']);
      // The outbox is dated by the committer's clock (a day ahead), not by the machine's.
      expect(Number(await conn.redis.zscore(conn.store.outboxesKey, id))).toBeGreaterThanOrEqual(committedBy);

      // The lease passes on the clock: the manager's next sweep carries the outbox out.
      clock.advance(30_000);
      await waitUntil(async () => (await conn.redis.zscore(conn.store.outboxesKey, id)) === null, 15_000, 'the manager to reconcile the outbox');
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'a', 1))).toBeUndefined();
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'b', 1))).toBeUndefined();
      expect(await conn.store.readOutbox(id)).toEqual([]);
    } finally {
      await manager.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it("a manager starting carries out every pending outbox, however young: a failed run's fallback its committer did not get to starts at once", async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('outbox-manager-start');
    const conn = connect(url, prefix);
    const failing = testWorkflow({ agents: ['planner'], error_handling: { fallback_workflow: 'plan-again' }, phases: [{ name: 'plan', agent: 'planner', retries: 0 }] });
    const fallback = testWorkflow({ name: 'plan-again', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] });
    try {
      const id = 'run-failed-before-fallback';
      await startedRun(conn, prefix, failing, id);
      // The worker that commits the failure (which fails the run) stops before any of its effects.
      const crashing = driverOn(conn.redis, prefix, () => {
        throw new CrashHere('stopped after the commit');
      });
      const at = Date.now();
      const error = { code: 'PROVIDER_BAD_REQUEST', message: 'bad request', category: 'provider', retryable: false } as const;
      await expect(
        crashing.apply(id, { type: 'phase_attempt_failed', at, phase: 'plan', iteration: 1, attempt: 1, error, willRetry: false, usage: { input_tokens: 0, output_tokens: 0 }, startedAt: at }),
      ).rejects.toThrow(CrashHere);
      await crashing.close();
      expect((await conn.store.getRun(id)).state.status).toBe('failed');
      expect((await conn.store.activeRunIds()).includes(id)).toBe(false);
      // The finish itself has nothing to do (no parent, no end action): only the fallback is left.
      expect((await conn.store.readOutbox(id)).flatMap((e) => e.effects.map((x) => x.type))).toEqual(['start_fallback']);

      // The default lease (30 s) has not passed: the start-up reconcile does it, before startManager returns.
      const manager = await startManager({ redisUrl: url, prefix, warn: () => undefined, onError: () => undefined, logger: silent, resolveWorkflow: () => Promise.resolve(fallback) });
      try {
        expect((await conn.store.getRun(`${id}.fallback`)).meta.links).toEqual({ fallback_of: id });
        expect(await conn.store.readOutbox(id)).toEqual([]);
      } finally {
        await manager.close();
      }
    } finally {
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('crash half way through the outbox: reconcile carries out what is missing (the second job removal of a cancelled run), and a second reconcile finds nothing', async () => {
    await withConnection('outbox-crash-half-way', async ({ prefix, conn }) => {
      const id = 'run-crash-half-way';
      await startedRun(conn, prefix, fanOut, id);
      let cancels = 0;
      const crashing = driverOn(conn.redis, prefix, (_runId, effect) => {
        if (effect.type === 'cancel_phase' && ++cancels === 2) throw new CrashHere('stopped half way');
      });
      await expect(crashing.apply(id, { type: 'cancel_requested', at: Date.now(), reason: 'not wanted' })).rejects.toThrow(CrashHere);
      await crashing.close();
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'a', 1))).toBeUndefined();
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'b', 1))).toBe('prioritized');

      const reconciler = driverOn(conn.redis, prefix);
      expect(await reconciler.reconcile(id)).toBe(1);
      expect(await reconciler.reconcile(id)).toBe(0);
      await reconciler.close();
      const queue = new Queue(agentQueueName('planner'), { connection: conn.redis, prefix });
      expect(await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).toEqual([]);
      await queue.close();
      expect(await conn.redis.zscore(conn.store.outboxesKey, id)).toBeNull();
      expect((await conn.store.getRun(id)).state.status).toBe('cancelled');
    });
  });

  it("a commit answered before its effects (a worker finishing its job): a failed effect (a job removal) is tried again from the outbox, and close waits for it", async () => {
    await withConnection('outbox-after-reply', async ({ prefix, conn }) => {
      const id = 'run-after-reply';
      await startedRun(conn, prefix, chain, id);
      let cancels = 0;
      const failingOnce = driverOn(conn.redis, prefix, (_runId, effect) => {
        if (effect.type === 'cancel_phase' && ++cancels === 1) throw new CrashHere('the removal failed');
      });
      // Answered although the first try of its effect failed: the commit stands, the effect is in the outbox.
      const applied = await failingOnce.apply(id, { type: 'cancel_requested', at: Date.now(), reason: 'not wanted' }, { effectsAfterReply: true });
      expect(applied.decision.accepted).toBe(true);
      expect(cancels).toBe(1);
      expect((await conn.store.readOutbox(id)).map((e) => e.version)).toEqual([applied.decision.state.version]);
      // close() waits for the carry-out, tried again from the outbox.
      await failingOnce.close();
      expect(cancels).toBe(2);
      expect(await jobState(conn.redis, prefix, 'planner', phaseJobId(id, 'plan', 1))).toBeUndefined();
      await expectNoOutbox(conn, id);
    });
  });

  it("a stalled-out job whose holder committed its outcome and died before its effects: the recovery, refused, carries out the run's outbox itself (no manager running)", async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('outbox-stalled-out');
    const conn = connect(url, prefix);
    // The recovering worker's follow-ups (a finished run's end actions and parent report), as the manager queue would get them.
    const followUps: string[][] = [];
    const driver = new RunDriver({
      redis: conn.redis,
      prefix,
      store: new RunStore(conn.redis, prefix),
      log: silent,
      followUp: (_meta, actions) => {
        followUps.push(actions.map((a) => a.type));
        return Promise.resolve();
      },
    });
    const planner = new Queue<PhaseJobData, PhaseJobResult>(agentQueueName('planner'), { connection: conn.redis, prefix });
    try {
      const id = 'run-stalled-out-refused';
      const { meta, state } = await createRun(conn.store, onePhaseWithEndAction, id);
      await driver.apply(id, { type: 'run_started', at: Date.now() }, { known: { meta, state, outputs: {} } });
      // The holder of plan's job commits its completion (which completes the run) and dies before its follow-ups.
      const crashing = driverOn(conn.redis, prefix, () => {
        throw new CrashHere('stopped after the commit');
      });
      await expect(crashing.apply(id, planCompleted(), { output: { phase: 'plan', value: { summary: 'a plan' } } })).rejects.toThrow(CrashHere);
      await crashing.close();
      expect((await conn.store.getRun(id)).state.status).toBe('completed');
      expect((await conn.store.readOutbox(id)).map((e) => e.effects.map((x) => x.type))).toEqual([['finish_run']]);
      expect(followUps).toEqual([]);

      // BullMQ fails plan's job for its stall limit; the worker host's recovery commits the lost attempt.
      const job = await planner.getJob(phaseJobId(id, 'plan', 1));
      expect(job).toBeDefined();
      const outcome = await recoverStalledOut(job!, { driver, role: 'planner', log: silent, maxStalledCount: 2 });
      // Refused (plan had completed): what the dead holder's commit left is carried out there and then.
      expect(outcome).toBe('ignored');
      expect(followUps).toEqual([['finish_run']]);
      expect(await conn.store.readOutbox(id)).toEqual([]);
      const events = await runEvents(conn.store, id);
      expect(countEvents(events, 'phase_completed', 'plan')).toBe(1);
      expect(countEvents(events, 'phase_retry')).toBe(0);
    } finally {
      await planner.close();
      await driver.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it("a lost reply to a worker's commit still gets the next phase's job added (the resend is refused, the outbox is carried out)", async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('outbox-lost-reply-worker');
    const conn = connect(url, prefix);
    await using proxy = await startReplyDroppingProxy(url);
    const worker = createRedis(proxy.url, { forWorker: true, name: 'worker-through-proxy' });
    worker.on('error', () => undefined);
    try {
      const id = await conn.client.submit({ workflow: chain, requirements: 'A wiki', provider: 'offline' });
      expect((await conn.store.getRun(id)).state.phases.plan?.status).toBe('queued');
      const before = (await conn.store.getVersion(id)) as number;

      const driver = driverOn(worker, prefix);
      const cut = proxy.dropReplyTo(APPLY_DECISION_MARKERS, async () => ((await conn.store.getVersion(id)) ?? 0) > before);
      let applied: Awaited<ReturnType<RunDriver['apply']>> | undefined;
      const spans = await withMemoryTracing(async () => {
        applied = await driver.apply(id, planCompleted(), { output: { phase: 'plan', value: { summary: 'a plan' } } });
        await cut;
        await driver.close();
      });
      // The commit ran once (the connection was cut after it), its resend was refused as a duplicate.
      expect(proxy.connections()).toBeGreaterThanOrEqual(2);
      expect(applied?.decision.accepted).toBe(false);
      const run = await conn.store.getRun(id);
      expect(run.state.phases.plan?.status).toBe('completed');
      expect(run.state.phases.code?.status).toBe('queued');
      expect(countEvents(await runEvents(conn.store, id), 'phase_completed', 'plan')).toBe(1);
      expect(await jobExists(conn.redis, prefix, 'coder', phaseJobId(id, 'code', 1))).toBe(true);
      expect(await conn.store.readOutbox(id)).toEqual([]);
      // The job's send span is emitted once, under the id its data names as the workers' parent.
      const coder = new Queue(agentQueueName('coder'), { connection: conn.redis, prefix });
      const codeJob = await coder.getJob(phaseJobId(id, 'code', 1));
      await coder.close();
      const sends = spans.filter((s) => s.name === `send ${agentQueueName('coder')}`);
      expect(sends.map((s) => `00-${s.spanContext().traceId}-${s.spanContext().spanId}-01`)).toEqual([(codeJob?.data as PhaseJobData | undefined)?.trace.traceparent]);
    } finally {
      worker.disconnect();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it("a lost reply to a client's start commit (a run's create and start in one): the run still starts (its first job is added and its send span emitted, its outbox settled)", async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('outbox-lost-reply-client');
    const conn = connect(url, prefix);
    await using proxy = await startReplyDroppingProxy(url);
    const through = createRedis(proxy.url, { name: 'client-through-proxy' });
    through.on('error', () => undefined);
    const client = new FleetClient(through, prefix, { logger: silent });
    try {
      const id = 'run-lost-start-reply';
      const cut = proxy.dropReplyTo(APPLY_DECISION_MARKERS, async () => {
        const v = await conn.store.getVersion(id);
        return v !== undefined && v > 0 && (await conn.store.getRun(id)).state.status === 'active';
      });
      const spans = await withMemoryTracing(async () => {
        expect(await client.submit({ runId: id, workflow: chain, requirements: 'A wiki', provider: 'offline' })).toBe(id);
        await cut;
      });
      expect(proxy.connections()).toBeGreaterThanOrEqual(2);
      const run = await conn.store.getRun(id);
      expect(run.state.status).toBe('active');
      expect(countEvents(await runEvents(conn.store, id), 'run_created')).toBe(1);
      expect(countEvents(await runEvents(conn.store, id), 'run_started')).toBe(1);
      expect(await jobExists(conn.redis, prefix, 'planner', phaseJobId(id, 'plan', 1))).toBe(true);
      await expectNoOutbox(conn, id);
      // The resent commit was refused as a duplicate; the first job's send span is still emitted, once,
      // under the id its data names as the workers' parent.
      const planner = new Queue(agentQueueName('planner'), { connection: conn.redis, prefix });
      const planJob = await planner.getJob(phaseJobId(id, 'plan', 1));
      await planner.close();
      const sends = spans.filter((s) => s.name === `send ${agentQueueName('planner')}`);
      expect(sends.map((s) => `00-${s.spanContext().traceId}-${s.spanContext().spanId}-01`)).toEqual([(planJob?.data as PhaseJobData | undefined)?.trace.traceparent]);
    } finally {
      await client.close();
      through.disconnect();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
});

describe('a commit Redis refuses', () => {
  it('out of memory (noeviction) while a worker commits: the outcome is kept and committed once Redis takes writes again, no attempt burnt', async () => {
    await using server = await startRedisServer();
    const prefix = '{fleet-oom}';
    const conn = connect(server.url, prefix);
    const llm = new GatedLlm();
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const pool = await startAgentPool({ redisUrl: server.url, prefix, roles: [BUILTIN_ROLES.planner!, BUILTIN_ROLES.coder!], llm, concurrency: 1, onError: () => undefined, logger });
    try {
      llm.hold('plan');
      const id = await conn.client.submit({ workflow: chain, requirements: 'A wiki', provider: 'offline' });
      await llm.entered('plan');
      await waitForRunEvent({ redis: conn.redis, prefix }, id, (e) => e.type === 'phase_started' && e.phase === 'plan', { what: 'the attempt start to be recorded' });
      await conn.redis.config('SET', 'maxmemory', '1');
      llm.release('plan');
      await waitUntil(() => lines.some((l) => l.includes('commit failed on a Redis error')), 15_000, 'a commit refused for memory');
      await waitUntil(() => lines.filter((l) => l.includes('commit failed on a Redis error')).length >= 2, 15_000, 'the commit to be retried');
      await conn.redis.config('SET', 'maxmemory', '0');

      await waitForRunStatus({ redis: conn.redis, prefix }, id, 'completed');
      const run = await conn.store.getRun(id);
      expect(run.state.phases.plan?.attempts).toBe(1);
      const events = await runEvents(conn.store, id);
      expect(countEvents(events, 'phase_completed', 'plan')).toBe(1);
      expect(countEvents(events, 'phase_retry')).toBe(0);
    } finally {
      await pool.close(1000);
      await conn.close();
    }
  });

  it('a phase job BullMQ failed for a commit error is taken up again when its deadline comes, and the run completes', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('outbox-commit-failed-job');
    const conn = connect(url, prefix);
    const workflow = testWorkflow({ agents: ['planner'], phases: [{ name: 'plan', agent: 'planner', retries: 0, timeout: 1 }] });
    const client = new FleetClient(conn.redis, prefix, { deadlineGraceMs: 0, logger: silent });
    try {
      const id = await client.submit({ workflow, requirements: 'A wiki', provider: 'offline' });
      // A worker whose commit kept failing gave the job back to BullMQ, which failed it (no attempt left).
      const failing = new Worker(agentQueueName('planner'), () => Promise.reject(new Error("could not commit the attempt's outcome: OOM command not allowed")), { connection: createRedis(url, { forWorker: true }), prefix });
      await waitUntil(async () => (await new Queue(agentQueueName('planner'), { connection: conn.redis, prefix }).getJob(phaseJobId(id, 'plan', 1)).then((j) => j?.getState())) === 'failed', 10_000, 'the job to fail');
      await failing.close();

      const manager = await startManager({ redisUrl: url, prefix, warn: () => undefined, onError: () => undefined, logger: silent, deadlineGraceMs: 0 });
      const pool = await startAgentPool({ redisUrl: url, prefix, roles: [BUILTIN_ROLES.planner!], llm: new GatedLlm(), concurrency: 1, onError: () => undefined, logger: silent });
      try {
        await waitForRunEnd({ redis: conn.redis, prefix }, id);
        const run = await conn.store.getRun(id);
        expect(run.state.status).toBe('completed');
        expect(run.state.phases.plan?.status).toBe('completed');
      } finally {
        await pool.close(1000);
        await manager.close();
      }
    } finally {
      await client.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
});
