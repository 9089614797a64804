/**
 * The store's Lua commands against real Redis: the fenced commit writes the outbox entry with the
 * state or nothing at all, clearing drops only what was carried out, and stale outboxes are leased.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../../../../test/support/redis.js';
import type { RunMeta } from '../result.js';
import { initialRunState } from '../scheduler/decide.js';
import type { Decision, RunState } from '../scheduler/types.js';
import { compileWorkflow } from '../workflow/compile.js';
import { RunStore } from './run-store.js';

const prefix = uniquePrefix('run-store');
let redis: Redis;
let store: RunStore;

beforeAll(() => {
  redis = new Redis(redisUrl());
  store = new RunStore(redis, prefix);
});
afterAll(async () => {
  redis.disconnect();
  await cleanupPrefix(redisUrl(), prefix);
});

const workflow = compileWorkflow({ name: 'store-test', version: '1', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] });

async function newRun(id: string): Promise<RunState> {
  const now = Date.now();
  const meta: RunMeta = { run_id: id, workflow, requirements: 'x', variables: {}, created_at: now, provider: 'offline', trace: {} };
  const state = initialRunState(workflow, now);
  await store.createRun(meta, state, {});
  // Its creator carried out the create's outbox entry (the start), as a client does.
  await store.clearOutbox(id, [state.version]);
  return state;
}

/** A decision that starts the run and enqueues `plan` (what `decide` returns for `run_started`). */
function started(state: RunState): Decision {
  const next: RunState = { ...state, version: state.version + 1, status: 'active' };
  return { accepted: true, state: next, actions: [{ type: 'enqueue_phase', phase: 'plan', iteration: 1 }], events: [{ type: 'run_started', at: 1 }], outputs: {}, reopened: false };
}

describe('createRun (the commit\'s create mode, its start in the outbox)', () => {
  it("writes the run with its start as the outbox entry of its first commit (version 0), aged from its creation, and writes nothing for an id taken", async () => {
    const now = Date.now();
    const meta: RunMeta = { run_id: 'c1', workflow, requirements: 'x', variables: {}, created_at: now, provider: 'offline', trace: {} };
    const state = initialRunState(workflow, now);
    expect(await store.createRun(meta, state, { plan: { summary: 'reused' } })).toBe(true);
    expect(await store.readOutbox('c1')).toEqual([{ version: 0, at: now, commits: [], effects: [{ type: 'start_run' }] }]);
    expect(await redis.zscore(store.outboxesKey, 'c1')).toBe(String(now));
    expect((await store.getRun('c1')).state.status).toBe('created');
    expect(await store.getOutputs('c1')).toEqual({ plan: { summary: 'reused' } });
    expect(await store.createRun({ ...meta, requirements: 'other' }, state, {})).toBe(false);
    expect((await store.getRun('c1')).meta.requirements).toBe('x');
  });
});

describe('apply-decision-7.lua creating the run', () => {
  it('writes the run, its index entries, its first event, the context it starts with and the decision in one step; a second create with the id writes nothing', async () => {
    const now = Date.now();
    const meta: RunMeta = { run_id: 'c2', workflow, requirements: 'x', variables: {}, created_at: now - 5, provider: 'offline', trace: {} };
    const state = initialRunState(workflow, now - 5);
    const create = (m: RunMeta) => store.apply('c2', (_meta, st) => started(st), { known: { meta: m, state, outputs: { earlier: { n: 1 } } }, create: true });

    const first = await create(meta);
    expect(first.created).toBe(true);
    expect(first.decision.accepted).toBe(true);
    const run = await store.getRun('c2');
    expect(run.meta.requirements).toBe('x');
    expect(run.state.status).toBe('active');
    expect(run.state.version).toBe(state.version + 1);
    expect(await store.getOutputs('c2')).toEqual({ earlier: { n: 1 } });
    // Indexed from its creation time, active, and its events in order: the create's, then the decision's.
    expect(await redis.zscore(store.indexKey, 'c2')).toBe(String(now - 5));
    expect(await redis.sismember(store.activeKey, 'c2')).toBe(1);
    const events = (await redis.xrange(store.eventsKey('c2'), '-', '+')).map(([, fields]) => fields[1]);
    expect(events).toEqual(['run_created', 'run_started']);
    // The decision's enqueue had no job to add here, so it waits in the outbox under the committed version.
    expect((await store.readOutbox('c2')).map((e) => [e.version, e.effects.map((x) => x.type)])).toEqual([[state.version + 1, ['enqueue_phase']]]);

    const again = await create({ ...meta, requirements: 'other' });
    expect(again.created).toBe(false);
    expect(again.decision.accepted).toBe(false);
    // The stored run, not the one the refused create decided on.
    expect(again.before.version).toBe(state.version + 1);
    expect((await store.getRun('c2')).meta.requirements).toBe('x');
    expect(await redis.xlen(store.eventsKey('c2'))).toBe(2);
  });
});

describe('apply-decision-7.lua', () => {
  it('writes the outbox entry under the committed version, with the state, and lists the run as having one', async () => {
    const state = await newRun('r1');
    const applied = await store.apply('r1', (_m, s) => started(s), { now: () => 1234, commitIds: ['c1'] });
    expect(applied.outbox).toEqual({ version: state.version + 1, at: 1234, commits: ['c1'], effects: [{ type: 'enqueue_phase', phase: 'plan', iteration: 1 }] });
    expect(await store.readOutbox('r1')).toEqual([applied.outbox]);
    expect(await redis.zscore(store.outboxesKey, 'r1')).toBe('1234');
    expect((await store.getRun('r1')).state.status).toBe('active');
  });

  it('a decision without effects leaves no outbox; a fenced-out try writes nothing and is decided again', async () => {
    await newRun('r2');
    let tries = 0;
    const applied = await store.apply('r2', (_m, s) => {
      tries++;
      // The first try's version is moved on behind its back: the fence refuses it.
      if (tries === 1) void redis.hset(store.runKey('r2'), 'version', String(s.version + 1), 'state', JSON.stringify({ ...s, version: s.version + 1 }));
      return { ...started(s), actions: [] };
    });
    expect(tries).toBe(2);
    expect(applied.decision.state.version).toBe(2);
    expect(applied.outbox).toBeUndefined();
    expect(await store.readOutbox('r2')).toEqual([]);
    expect(await redis.zscore(store.outboxesKey, 'r2')).toBeNull();
  });
});

describe('clear-outbox-2.lua and claim-due-1.lua', () => {
  it('clears only the versions carried out; the run leaves the set when none is left', async () => {
    await redis.hset(store.outboxKey('r3'), '2', JSON.stringify({ version: 2, at: 1, commits: [], effects: [] }), '3', JSON.stringify({ version: 3, at: 2, commits: [], effects: [] }));
    await redis.zadd(store.outboxesKey, 1, 'r3');
    expect(await store.clearOutbox('r3', [2], 50)).toBe(1);
    expect(await redis.zscore(store.outboxesKey, 'r3')).toBe('50');
    expect((await store.readOutbox('r3')).map((e) => e.version)).toEqual([3]);
    expect(await store.clearOutbox('r3', [3])).toBe(0);
    expect(await redis.zscore(store.outboxesKey, 'r3')).toBeNull();
  });

  it('claims stale outboxes once per lease', async () => {
    await redis.zadd(store.outboxesKey, 10, 'old', 5_000, 'fresh');
    expect(await store.claimStaleOutboxes(100, 9_000)).toEqual(['old']);
    expect(await store.claimStaleOutboxes(100, 9_000)).toEqual([]);
    expect(await redis.zscore(store.outboxesKey, 'old')).toBe('9000');
  });
});

describe('pruneIndex', () => {
  it('drops every expired run older than the retention, steps over runs still held, keeps the recent ones', async () => {
    const pruneStore = new RunStore(redis, `${prefix}:prune`);
    const now = Date.now();
    const day = 86_400_000;
    // A run still held at the very front (oldest), 2,500 runs whose keys expired, and recent runs.
    await pruneStore.redis.zadd(pruneStore.indexKey, now - 10 * day, 'held');
    await pruneStore.redis.hset(pruneStore.runKey('held'), 'state', '{}');
    const expired = Array.from({ length: 2500 }, (_, i) => `expired-${i}`);
    for (let i = 0; i < expired.length; i += 500) {
      await pruneStore.redis.zadd(pruneStore.indexKey, ...expired.slice(i, i + 500).flatMap((id, j) => [now - 9 * day + (i + j) * 1000, id]));
    }
    await pruneStore.redis.zadd(pruneStore.indexKey, now - 1000, 'recent');
    expect(await pruneStore.pruneIndex(7 * day, now)).toBe(2500);
    expect(await pruneStore.redis.zrange(pruneStore.indexKey, '0', '-1')).toEqual(['held', 'recent']);
    // No retention: nothing expires, nothing is looked at.
    await pruneStore.redis.zadd(pruneStore.indexKey, now - 9 * day, 'expired-again');
    expect(await pruneStore.pruneIndex(0, now)).toBe(0);
  });
});
