/**
 * The run codec: every stored document round-trips, is written snake_case with `v`, records written
 * before the layout had a version (camelCase state, no `v`) still decode, and a malformed one is
 * refused with an error naming the run and the field. Plus the same through the store on real Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../../../../test/support/redis.js';
import { FleetError } from '../errors.js';
import type { RunMeta, RunResult } from '../result.js';
import type { RunState } from '../scheduler/types.js';
import { compileWorkflow } from '../workflow/compile.js';
import {
  decodeOutboxEntry,
  decodeRunMeta,
  decodeRunEvent,
  decodeRunResult,
  decodeRunState,
  encodeOutboxEntry,
  encodeRunMeta,
  encodeRunResult,
  encodeRunState,
  RUN_RECORD_VERSION,
  type OutboxEntry,
} from './run-codec.js';
import { RunStore } from './run-store.js';

/** A state with every optional field set, and user data (phase names, event data) in camelCase. */
const fullState: RunState = {
  status: 'waiting',
  version: 7,
  totalRetries: 2,
  phases: {
    planIt: {
      status: 'completed',
      iteration: 2,
      attempts: 1,
      queuedAt: 1000,
      startedAt: 1100,
      finishedAt: 1500,
      durationMs: 400,
      usage: { input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 1, cache_creation_input_tokens: 2, cost_usd: 0.5, thinking_tokens: 3 },
      agent: 'planner',
      cacheHit: true,
      model: 'm',
      feedback: { from: 'review', note: 'again', event: { type: 'input', data: { someField: 1 } } },
      batched: true,
      journal: { iteration: 1, steps: 3 },
      span: { trace_id: 'a'.repeat(32), span_id: 'b'.repeat(16), flags: 1 },
    },
    review: {
      status: 'waiting',
      iteration: 1,
      attempts: 1,
      usage: { input_tokens: 0, output_tokens: 0 },
      waitingFor: { event: 'approval', prompt: { askedWhat: 'ok?' } },
      error: { code: 'PHASE_TIMEOUT', message: 'slow', category: 'system', retryable: true, details: { timeoutMs: 5 } },
      reason: 'because',
    },
  },
  errors: [{ phase: 'planIt', error: { code: 'INTERNAL', message: 'x', category: 'system', retryable: true } }],
  createdAt: 900,
  startedAt: 950,
  finishedAt: 2000,
  usage: { input_tokens: 10, output_tokens: 20 },
  model: 'm',
  models: ['m'],
  cancelReason: 'user',
  events: [{ type: 'approval', data: { camelKey: true }, at: 1200, id: 'e1' }],
  resumes: 1,
  span: { trace_id: 'c'.repeat(32), span_id: 'd'.repeat(16), flags: 0 },
  budgetRaise: { run: { usd: 1, tokens: 100 }, phases: { planIt: { usd: 0.5, tokens: 0 } } },
};

const workflow = compileWorkflow({ name: 'codec-test', version: '3', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] });
const meta: RunMeta = { run_id: 'r1', workflow, requirements: 'build it', variables: { lang: 'ts' }, created_at: 900, provider: 'offline', trace: {}, priority: 5 };

/** Every key of `value` and the objects inside it, except under the fields that hold user data. */
function storedKeys(value: unknown, userData: ReadonlySet<string>, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) storedKeys(v, userData, out);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      out.push(key);
      if (!userData.has(key)) storedKeys(v, userData, out);
    }
  }
  return out;
}

describe('run state', () => {
  it('round-trips, stored snake_case with v, user data untouched', () => {
    const raw = encodeRunState(fullState);
    const stored = JSON.parse(raw) as Record<string, unknown>;
    expect(stored.v).toBe(RUN_RECORD_VERSION);
    expect(stored).toMatchObject({ total_retries: 2, created_at: 900, started_at: 950, finished_at: 2000, cancel_reason: 'user', budget_raise: fullState.budgetRaise });
    expect(stored.phases).toMatchObject({ planIt: { queued_at: 1000, started_at: 1100, finished_at: 1500, duration_ms: 400, cache_hit: true }, review: { waiting_for: { event: 'approval' } } });
    // Phase names are keys of `phases` and `budget_raise.phases`; event data, prompts and error details are the user's.
    const keys = storedKeys(stored, new Set(['phases', 'data', 'prompt', 'details'])).filter((k) => /[A-Z]/.test(k));
    expect(keys).toEqual([]);
    expect(decodeRunState('r1', raw)).toEqual(fullState);
  });

  it('decodes a state written before the layout had a version (camelCase, no v)', () => {
    // Written the old way: JSON.stringify of the in-memory state.
    const old = JSON.stringify(fullState);
    expect(old).toContain('"totalRetries":2');
    expect(decodeRunState('r1', old)).toEqual(fullState);
  });

  it('refuses a malformed state, naming the run and the field', () => {
    const bad = JSON.parse(encodeRunState(fullState)) as { phases: { planIt: { status: string } } };
    bad.phases.planIt.status = 'sleeping';
    expect(() => decodeRunState('r-bad', JSON.stringify(bad))).toThrow(/run "r-bad": stored state is malformed at phases\.planIt\.status/);
    const noCreated = { ...fullState, createdAt: undefined };
    expect(() => decodeRunState('r-bad', JSON.stringify(noCreated))).toThrow(/run "r-bad": stored state is malformed at createdAt/);
    expect(() => decodeRunState('r-bad', '{"status":')).toThrow(/run "r-bad": stored state is malformed: not JSON/);
    expect(() => decodeRunState('r-bad', '[]')).toThrow(/run "r-bad": stored state is malformed: not a JSON object/);
    expect(() => decodeRunState('r-bad', JSON.stringify({ ...JSON.parse(encodeRunState(fullState)), v: 3 }))).toThrow(/run "r-bad": stored state is malformed at v: layout version 3/);
    try {
      decodeRunState('r-bad', JSON.stringify(bad));
    } catch (err) {
      expect(err).toBeInstanceOf(FleetError);
      expect((err as FleetError).code).toBe('INTERNAL');
      expect((err as FleetError).retryable).toBe(false);
      expect((err as FleetError).details).toEqual({ run_id: 'r-bad', document: 'state', field: 'phases.planIt.status' });
    }
  });
  it('refuses to write a state that does not fit the layout with an INTERNAL error naming the run and the field', () => {
    const bad = { ...fullState, phases: { ...fullState.phases, planIt: { ...fullState.phases.planIt, status: 'sleeping' } } } as unknown as RunState;
    expect(() => encodeRunState(bad, 'r-write')).toThrow(FleetError);
    expect(() => encodeRunState(bad, 'r-write')).toThrow(/run "r-write": .*phases\.planIt\.status/);
  });
});

describe('meta, result and outbox entry', () => {
  const result = {
    run_id: 'r1',
    workflow: { name: 'codec-test', version: '3' },
    status: 'completed',
    requirements: 'build it',
    variables: {},
    created_at: new Date(900).toISOString(),
    finished_at: new Date(2000).toISOString(),
    duration_ms: 1100,
    phases: [{ name: 'plan' }],
    completed_phases: ['plan'],
    failed_phases: [],
    skipped_phases: [],
    parallel_speedup: 1,
    results: {},
    errors: [],
    usage: { input_tokens: 1, output_tokens: 2 },
    results_in_context: ['plan'],
  } as unknown as RunResult & { results_in_context: string[] };
  const entry: OutboxEntry = { version: 3, at: 1000, commits: ['c1'], effects: [{ type: 'enqueue_phase', phase: 'plan', iteration: 1 }, { type: 'start_run' }] };

  it('round-trip with v', () => {
    expect(JSON.parse(encodeRunMeta(meta))).toMatchObject({ v: RUN_RECORD_VERSION, run_id: 'r1' });
    expect(decodeRunMeta('r1', encodeRunMeta(meta))).toEqual(meta);
    expect(JSON.parse(encodeRunResult(result))).toMatchObject({ v: RUN_RECORD_VERSION, results_in_context: ['plan'] });
    expect(decodeRunResult('r1', encodeRunResult(result))).toEqual(result);
    expect(JSON.parse(encodeOutboxEntry(entry))).toMatchObject({ v: RUN_RECORD_VERSION, version: 3 });
    expect(decodeOutboxEntry('r1', encodeOutboxEntry(entry))).toEqual(entry);
  });

  it('decode records written without v', () => {
    expect(decodeRunMeta('r1', JSON.stringify(meta))).toEqual(meta);
    expect(decodeRunResult('r1', JSON.stringify(result))).toEqual(result);
    expect(decodeOutboxEntry('r1', JSON.stringify(entry))).toEqual(entry);
  });

  it('refuse malformed ones, naming the run and the field', () => {
    expect(() => decodeRunMeta('r2', JSON.stringify({ ...meta, workflow: { name: 'x' } }))).toThrow(/run "r2": stored meta is malformed at workflow\.version/);
    expect(() => decodeRunResult('r2', JSON.stringify({ ...result, status: 'done' }))).toThrow(/run "r2": stored result is malformed at status/);
    expect(() => decodeOutboxEntry('r2', JSON.stringify({ ...entry, effects: [{ type: 'launch' }] }))).toThrow(/run "r2": stored outbox entry is malformed at effects\.0\.type/);
  });

  it('refuse to write a result or an outbox entry that readers could not branch on', () => {
    expect(() => encodeRunResult({ ...result, status: 'done' } as unknown as typeof result)).toThrow(/run "r1": stored result is malformed at status/);
    expect(() => encodeOutboxEntry({ ...entry, effects: [{ type: 'launch' }] } as unknown as OutboxEntry, 'r2')).toThrow(/run "r2": stored outbox entry is malformed at effects\.0\.type/);
  });
});

describe('run events', () => {
  it('decode as stored, and refuse one without a type or time, naming the run and the entry', () => {
    const event = { type: 'phase_completed', at: 5, phase: 'plan', iteration: 1, attempt: 1, duration_ms: 3 };
    expect(decodeRunEvent('r3', '1-0', JSON.stringify(event))).toEqual(event);
    expect(() => decodeRunEvent('r3', '1-0', JSON.stringify({ type: 'phase_completed' }))).toThrow(/run "r3": stored event 1-0 is malformed at at/);
    expect(() => decodeRunEvent('r3', '2-0', 'nope')).toThrow(/run "r3": stored event 2-0 is malformed: not JSON/);
  });
});

describe('through the store', () => {
  const prefix = uniquePrefix('run-codec');
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

  it('reads a run written the old way and writes it back in the current layout', async () => {
    const id = 'old-run';
    const oldMeta = { ...meta, run_id: id };
    const oldState: RunState = { ...fullState, status: 'active', version: 1, phases: { plan: { status: 'queued', iteration: 1, attempts: 0, queuedAt: 1000, usage: { input_tokens: 0, output_tokens: 0 } } } };
    // The hash as the version before the codec wrote it: JSON.stringify of meta and of the camelCase state.
    await redis.hset(store.runKey(id), 'meta', JSON.stringify(oldMeta), 'state', JSON.stringify(oldState), 'version', '1');
    await redis.zadd(store.indexKey, 900, id);
    expect(await store.getRun(id)).toEqual({ meta: oldMeta, state: oldState, result: undefined });
    expect(await store.readRuns([id, 'gone'])).toEqual([{ meta: oldMeta, state: oldState, result: undefined }, undefined]);
    expect(await store.readRunStates([id, 'gone'])).toEqual([oldState, undefined]);

    const { decision } = await store.apply(id, (_m, state) => ({
      accepted: true,
      state: { ...state, version: state.version + 1, phases: { plan: { ...state.phases.plan!, status: 'running', startedAt: 1100 } } },
      actions: [],
      events: [],
      outputs: {},
      reopened: false,
    }));
    const stored = JSON.parse((await redis.hget(store.runKey(id), 'state'))!) as Record<string, unknown>;
    expect(stored).toMatchObject({ v: RUN_RECORD_VERSION, version: 2, total_retries: 2, phases: { plan: { status: 'running', queued_at: 1000, started_at: 1100 } } });
    expect(stored).not.toHaveProperty('totalRetries');
    expect((await store.getRun(id)).state).toEqual(decision.state);
  });

  it('refuses a malformed stored run with an error naming it and the field', async () => {
    const id = 'bad-run';
    await redis.hset(store.runKey(id), 'meta', encodeRunMeta({ ...meta, run_id: id }), 'state', JSON.stringify({ ...JSON.parse(encodeRunState(fullState)), phases: { plan: { status: 'queued' } } }), 'version', '7');
    await expect(store.getRun(id)).rejects.toThrow(/run "bad-run": stored state is malformed at phases\.plan\.iteration/);
    await expect(store.readRuns([id])).rejects.toThrow(/run "bad-run": stored state is malformed at phases\.plan\.iteration/);
  });
});
