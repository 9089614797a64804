/**
 * Concurrency keys, fair sharing across keys and run priority, on real Redis with a real manager and
 * a real agent pool (offline model). No test depends on timing: every run is submitted while no pool
 * runs, then one pool with one job at a time starts, and the order is read from the model calls it
 * makes (one call per run here, made one after another), with the run states read at each call.
 */
import { BUILTIN_ROLES, createLlmClient, startAgentPool, type AgentPool } from '@agentfleet/agents';
import {
  FleetClient,
  concurrencyState,
  createLogger,
  createRedis,
  initialRunState,
  loadConfig,
  phaseJobId,
  agentQueueName,
  systemClock,
  type LlmClient,
  type LlmRequest,
  type RunMeta,
  type RunEventType,
  type RunStatus,
  type WorkflowDefinition,
} from '@agentfleet/core';
import {
  RunDriver,
} from '@agentfleet/core/internal';
import { startManager, type Manager } from '@agentfleet/manager';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';
import { waitForRunEvent } from './support/run-events.js';

const url = redisUrl();
const planner = BUILTIN_ROLES.planner!;

/** A workflow of one planner phase, with the given concurrency and priority settings. */
function oneStep(extra: Record<string, unknown>): WorkflowDefinition {
  return testWorkflow({ name: 'one-step', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner', retries: 0 }], ...extra });
}

/** The run tag `[run:<tag>]` a test put in the requirements, read back from a model request. */
function tagOf(request: LlmRequest): string {
  const tag = /\[run:([^\]]+)\]/.exec(JSON.stringify(request.inputs))?.[1];
  if (tag === undefined) throw new Error('a model request without a [run:<tag>] in its requirements');
  return tag;
}

interface Bench extends AsyncDisposable {
  prefix: string;
  redis: Redis;
  client: FleetClient;
  manager: Manager;
  /** Submit a run tagged `tag` (in its requirements). */
  submit(workflow: WorkflowDefinition, tag: string, extra?: { variables?: Record<string, string>; priority?: number }): Promise<string>;
  /** Start one planner pool taking one job at a time; `onCall` runs before each model call, with the run's tag. */
  startPool(onCall: (tag: string) => Promise<void>): Promise<AgentPool>;
  /** Wait for each run to finish (blocking reads of its events). */
  finished(runIds: readonly string[]): Promise<RunStatus[]>;
  status(runId: string): Promise<RunStatus>;
  /** Resolve once the run's event stream holds an event of `type` (blocking reads). */
  event(runId: string, type: RunEventType): Promise<void>;
}

/** @param clockAheadMs - the manager's clock runs this far ahead (its deadlines come due that much sooner). */
async function bench(name: string, clockAheadMs = 0): Promise<Bench> {
  const prefix = uniquePrefix(name);
  const manager = await startManager({
    redisUrl: url,
    prefix,
    warn: () => undefined,
    logger: createLogger({ name: 'manager', level: 'silent' }),
    clock: { now: () => Date.now() + clockAheadMs, setTimer: systemClock.setTimer },
  });
  const redis = createRedis(url);
  const blocking = createRedis(url, { forWorker: true });
  const client = new FleetClient(redis, prefix);
  let pool: AgentPool | undefined;
  const close = async () => {
    await pool?.close(2000);
    await manager.close();
    await client.close();
    blocking.disconnect();
    redis.disconnect();
    await cleanupPrefix(url, prefix);
  };
  return {
    prefix,
    redis,
    client,
    manager,
    submit: (workflow, tag, extra = {}) =>
      client.submit({ workflow, requirements: `Plan the work of [run:${tag}]`, provider: 'offline', variables: extra.variables ?? {}, ...(extra.priority !== undefined ? { priority: extra.priority } : {}) }),
    async startPool(onCall) {
      const base = createLlmClient(loadConfig({}), [planner]);
      const llm: LlmClient = {
        provider: base.provider,
        model: base.model,
        async generate(request) {
          await onCall(tagOf(request));
          return base.generate(request);
        },
      };
      pool = await startAgentPool({ redisUrl: url, prefix, roles: [planner], concurrency: 1, llm, onError: () => undefined, logger: createLogger({ name: 'agents', level: 'silent' }) });
      return pool;
    },
    async finished(runIds) {
      const out: RunStatus[] = [];
      for (const id of runIds) out.push((await client.follow(id, blocking, () => undefined)).status);
      return out;
    },
    async status(runId) {
      return (await client.store.getRun(runId)).state.status;
    },
    async event(runId, type) {
      await waitForRunEvent({ redis, prefix, blocking }, runId, (e) => e.type === type, { what: `a ${type} event` });
    },
    [Symbol.asyncDispose]: close,
  };
}

describe('concurrency keys', () => {
  it('a key with limit 2 and 10 submitted runs never has more than 2 active and finishes all 10 in submission order', async () => {
    await using b = await bench('concurrency-limit');
    const workflow = oneStep({ concurrency: { key: '{{tenant}}', limit: 2 } });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await b.submit(workflow, `acme-${i}`, { variables: { tenant: 'acme' } }));

    // Two admitted, eight queued in submission order, visible in the run's status and result.
    expect(await Promise.all(ids.map((id) => b.status(id)))).toEqual([...Array<RunStatus>(2).fill('active'), ...Array<RunStatus>(8).fill('queued')]);
    expect(await concurrencyState(b.client.store, 'acme')).toEqual({ active: ids.slice(0, 2).sort(), queued: ids.slice(2) });
    const third = await b.client.result(ids[2]!);
    expect(third.status).toBe('queued');
    expect(third.concurrency).toEqual({ key: 'acme', limit: 2 });
    const queuedEvent = (await b.client.store.readEvents(ids[2]!)).find((e) => e.event.type === 'run_queued');
    expect(queuedEvent?.event).toMatchObject({ type: 'run_queued', key: 'acme', limit: 2, position: 1 });
    // A queued run has no phase job and nothing left in its outbox (it waits for a slot, however long).
    expect(await b.client.store.readOutbox(ids[2]!)).toEqual([]);
    const queue = new Queue(agentQueueName('planner'), { connection: b.redis, prefix: b.prefix });
    expect(await queue.getJob(phaseJobId(ids[2]!, 'plan', 1))).toBeUndefined();
    await queue.close();

    const calls: Array<{ tag: string; active: number; completed: string[] }> = [];
    await b.startPool(async (tag) => {
      const statuses = await Promise.all(ids.map((id) => b.status(id)));
      calls.push({
        tag,
        active: statuses.filter((s) => s === 'active' || s === 'waiting').length,
        completed: ids.filter((_, i) => statuses[i] === 'completed'),
      });
    });
    expect(await b.finished(ids)).toEqual(Array(10).fill('completed'));

    expect(calls.map((c) => c.tag)).toEqual(ids.map((_, i) => `acme-${i}`));
    // At the i-th model call exactly the runs submitted before it have finished, in that order.
    calls.forEach((c, i) => expect(c.completed).toEqual(ids.slice(0, i)));
    expect(Math.max(...calls.map((c) => c.active))).toBe(2);
    expect(await concurrencyState(b.client.store, 'acme')).toEqual({ active: [], queued: [] });
  });

  it('20 clients submitting at once to a key with limit 3: exactly 3 are admitted, the rest queued once each', async () => {
    await using b = await bench('concurrency-race');
    const workflow = oneStep({ concurrency: { key: '{{tenant}}', limit: 3 } });
    // Each submission on its own connection, so the admissions really race in Redis.
    const clients = Array.from({ length: 20 }, () => new FleetClient(createRedis(url), b.prefix));
    try {
      const ids = await Promise.all(clients.map((c, i) => c.submit({ workflow, requirements: `Plan the work of [run:r-${i}]`, provider: 'offline', variables: { tenant: 'race' } })));
      const statuses = await Promise.all(ids.map((id) => b.status(id)));
      expect(statuses.filter((s) => s === 'active')).toHaveLength(3);
      expect(statuses.filter((s) => s === 'queued')).toHaveLength(17);
      const state = await concurrencyState(b.client.store, 'race');
      expect(state.active).toEqual(ids.filter((_, i) => statuses[i] === 'active').sort());
      expect([...state.queued].sort()).toEqual(ids.filter((_, i) => statuses[i] === 'queued').sort());
    } finally {
      await Promise.all(clients.map(async (c) => {
        await c.close();
        c.redis.disconnect();
      }));
    }
  });

  it('cancelling a queued run takes it out of its key\'s queue; the runs behind it move up', async () => {
    await using b = await bench('concurrency-cancel');
    const workflow = oneStep({ concurrency: { key: 'shared-{{tenant}}', limit: 1 } });
    const [first, second, third] = [
      await b.submit(workflow, 'c-0', { variables: { tenant: 't' } }),
      await b.submit(workflow, 'c-1', { variables: { tenant: 't' } }),
      await b.submit(workflow, 'c-2', { variables: { tenant: 't' } }),
    ] as [string, string, string];
    expect(await concurrencyState(b.client.store, 'shared-t')).toEqual({ active: [first], queued: [second, third] });

    await b.client.cancel(second, 'not needed');
    expect(await b.finished([second])).toEqual(['cancelled']);
    expect(await concurrencyState(b.client.store, 'shared-t')).toEqual({ active: [first], queued: [third] });

    const tags: string[] = [];
    await b.startPool(async (tag) => void tags.push(tag));
    expect(await b.finished([first, third])).toEqual(['completed', 'completed']);
    expect(tags).toEqual(['c-0', 'c-2']);
  });

  it('a committer that dies after finishing a run, before starting the next queued one, loses nothing: the outbox reconcile starts it once', async () => {
    await using b = await bench('concurrency-crash');
    const workflow = oneStep({ concurrency: { key: '{{tenant}}', limit: 1 } });
    const first = await b.submit(workflow, 'k-0', { variables: { tenant: 'k' } });
    const second = await b.submit(workflow, 'k-1', { variables: { tenant: 'k' } });
    expect(await b.status(second)).toBe('queued');

    const log = createLogger({ name: 'test', level: 'silent' });
    const dying = new RunDriver({
      redis: b.redis,
      prefix: b.prefix,
      store: b.client.store,
      log,
      followUp: async () => undefined,
      beforeEffect: (_runId, effect) => {
        if (effect.type === 'release_concurrency') throw new Error('committer crashed');
      },
    });
    const at = Date.now();
    await expect(
      dying.apply(first, [
        { type: 'phase_started', at, phase: 'plan', iteration: 1, attempt: 1 },
        { type: 'phase_completed', at, phase: 'plan', iteration: 1, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm', startedAt: at },
      ], { output: { phase: 'plan', value: { summary: 'done' } } }),
    ).rejects.toThrow('committer crashed');
    // The first run finished in that commit; its release is still in its outbox, the second still waits.
    expect(await b.status(first)).toBe('completed');
    expect(await b.status(second)).toBe('queued');
    expect((await b.client.store.readOutbox(first)).flatMap((e) => e.effects.map((x) => x.type))).toContain('release_concurrency');

    // What the manager does for an outbox older than its lease, twice over: the second run starts once.
    const reconciler = new RunDriver({ redis: b.redis, prefix: b.prefix, store: b.client.store, log, followUp: async () => undefined });
    expect(await reconciler.reconcile(first)).toBeGreaterThan(0);
    expect(await b.status(second)).toBe('active');
    expect(await concurrencyState(b.client.store, 'k')).toEqual({ active: [second], queued: [] });
    await reconciler.reconcile(first);
    const starts = (await b.client.store.readEvents(second)).filter((e) => e.event.type === 'run_started');
    expect(starts).toHaveLength(1);
    await dying.close();
    await reconciler.close();

    const tags: string[] = [];
    await b.startPool(async (tag) => void tags.push(tag));
    expect(await b.finished([second])).toEqual(['completed']);
    expect(tags).toEqual(['k-1']);
  });

  it('a run whose client died before admitting it is queued by the manager from its outbox, and runs in its turn', async () => {
    // The manager's clock runs a minute ahead: the orphan's outbox (the start, leased 30 s) is due at once.
    await using b = await bench('concurrency-orphan', 60_000);
    const workflow = oneStep({ concurrency: { key: 'solo', limit: 1 } });
    const first = await b.submit(workflow, 'o-0');
    // A second client wrote its run and died before admitting (or starting) it.
    const now = Date.now();
    const meta: RunMeta = {
      run_id: 'orphan-run', workflow, requirements: 'Plan the work of [run:o-1]', variables: {}, created_at: now, provider: 'offline', trace: {},
      concurrency: { key: 'solo', limit: 1 },
    };
    expect(await b.client.store.createRun(meta, initialRunState(workflow, now), {})).toBe(true);
    await b.event('orphan-run', 'run_queued');
    expect(await b.status('orphan-run')).toBe('queued');
    expect(await concurrencyState(b.client.store, 'solo')).toEqual({ active: [first], queued: ['orphan-run'] });

    const tags: string[] = [];
    await b.startPool(async (tag) => void tags.push(tag));
    expect(await b.finished([first, 'orphan-run'])).toEqual(['completed', 'completed']);
    expect(tags).toEqual(['o-0', 'o-1']);
  });

  it('rejects a concurrency key that renders empty, naming the variable', async () => {
    await using b = await bench('concurrency-invalid');
    await expect(b.submit(oneStep({ concurrency: { key: '{{tenant}}', limit: 1 } }), 'x')).rejects.toThrow(/concurrency\.key "\{\{tenant\}\}" renders to an empty key.*"tenant"/);
    await expect(b.submit(oneStep({}), 'x', { priority: 11 })).rejects.toThrow(/priority must be at most 10/);
  });
});

describe('fair sharing across keys', () => {
  it("200 runs of tenant A queued before 5 of tenant B: B's 5 finish before A's 50th", async () => {
    await using b = await bench('fairness');
    const workflow = oneStep({ concurrency: { key: '{{tenant}}' } });
    const a: string[] = [];
    const bRuns: string[] = [];
    for (let i = 0; i < 200; i++) a.push(await b.submit(workflow, `A-${i}`, { variables: { tenant: 'A' } }));
    for (let i = 0; i < 5; i++) bRuns.push(await b.submit(workflow, `B-${i}`, { variables: { tenant: 'B' } }));

    const tags: string[] = [];
    let bDoneAtA50: RunStatus[] | undefined;
    let countedAtA50: number[] | undefined;
    let aCalls = 0;
    const fairKey = (tenant: string) => `${b.prefix}:fair:${agentQueueName('planner')}:${tenant}`;
    await b.startPool(async (tag) => {
      tags.push(tag);
      if (tag.startsWith('A-') && ++aCalls === 50) {
        bDoneAtA50 = await Promise.all(bRuns.map((id) => b.status(id)));
        countedAtA50 = [await b.redis.zcard(fairKey('A')), await b.redis.zcard(fairKey('B'))];
      }
    });
    expect(await b.finished([...bRuns, ...a])).toEqual(Array(205).fill('completed'));
    // Each key's count is its jobs still in the queue: at A's 50th, the 49 finished are out of it
    // (each commit dropped its job) and the one being worked on is in; once all are done, none is left.
    expect(countedAtA50).toEqual([151, 0]);
    expect([await b.redis.zcard(fairKey('A')), await b.redis.zcard(fairKey('B'))]).toEqual([0, 0]);

    // When A's 50th run is taken, all of B's have finished (they took turns with A's first ones).
    expect(bDoneAtA50).toEqual(Array(5).fill('completed'));
    const bPositions = tags.flatMap((t, i) => (t.startsWith('B-') ? [i] : []));
    expect(bPositions).toHaveLength(5);
    expect(Math.max(...bPositions)).toBeLessThan(10);
    // Within a key, runs go in submission order.
    expect(tags.filter((t) => t.startsWith('A-'))).toEqual(a.map((_, i) => `A-${i}`));
  });
});

describe('run priority', () => {
  it('a priority-10 run submitted behind 100 priority-1 runs finishes first', async () => {
    await using b = await bench('priority');
    const workflow = oneStep({});
    const slow: string[] = [];
    for (let i = 0; i < 100; i++) slow.push(await b.submit(workflow, `low-${i}`, { priority: 1 }));
    const urgent = await b.submit(workflow, 'urgent', { priority: 10 });
    expect((await b.client.result(urgent)).priority).toBe(10);

    const tags: string[] = [];
    let atSecondCall: { urgent: RunStatus; completedLow: number } | undefined;
    await b.startPool(async (tag) => {
      tags.push(tag);
      if (tags.length === 2) {
        const low = await Promise.all(slow.map((id) => b.status(id)));
        atSecondCall = { urgent: await b.status(urgent), completedLow: low.filter((s) => s === 'completed').length };
      }
    });
    expect(await b.finished([urgent, ...slow])).toEqual(Array(101).fill('completed'));
    expect(tags[0]).toBe('urgent');
    // When the second run is taken, the urgent one has finished and none of the others has.
    expect(atSecondCall).toEqual({ urgent: 'completed', completedLow: 0 });
  });
});
