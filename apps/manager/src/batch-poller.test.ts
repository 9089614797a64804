import { BATCH_WAIT_EVENT, TestClock, compileWorkflow, createLogger, createRedis, initialRunState, type PhaseState, type RunMeta, type RunState } from '@agentfleet/core';
import { BatchStore, RunDriver, RunStore, batchCallKey } from '@agentfleet/core/internal';
import { describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js';
import { batchAwaited, startBatchPoller, type BatchPoller } from './batch-poller.js';

const usage = { input_tokens: 0, output_tokens: 0 };
const batch = { phase: 'planning', iteration: 1, attempt: 1, batch_id: 'msgbatch_2' };
const runWith = (phase: Partial<PhaseState>, status: RunState['status'] = 'active'): Pick<RunState, 'status' | 'phases'> => ({
  status,
  phases: { planning: { status: 'running', iteration: 1, attempts: 1, usage, ...phase } },
});
const waitingOn = (batchId: string): Partial<PhaseState> => ({ status: 'waiting', waitingFor: { event: BATCH_WAIT_EVENT, prompt: { batch_id: batchId } } });

describe('batchAwaited: which open batches the poller keeps', () => {
  it('keeps the batch the phase waits on', () => {
    expect(batchAwaited(runWith(waitingOn('msgbatch_2')), batch)).toBe(true);
  });

  it('keeps a batch the worker submitted but has not recorded yet: the attempt is still running', () => {
    expect(batchAwaited(runWith({ status: 'running' }), batch)).toBe(true);
  });

  it("keeps a batch submitted before the attempt's start was committed: the phase still shows the attempt before", () => {
    expect(batchAwaited(runWith({ status: 'queued', attempts: 0 }), batch)).toBe(true);
    expect(batchAwaited(runWith({ status: 'retrying', attempts: 1 }), { ...batch, attempt: 2 })).toBe(true);
  });

  it("keeps a tool loop's next batch while the phase still shows the wait on the loop's previous one", () => {
    expect(batchAwaited(runWith(waitingOn('msgbatch_1')), batch)).toBe(true);
  });

  it('drops a batch of an earlier attempt, an earlier iteration, or an ended run', () => {
    expect(batchAwaited(runWith({ ...waitingOn('msgbatch_1'), attempts: 2 }), batch)).toBe(false);
    expect(batchAwaited(runWith({ status: 'running', attempts: 2 }), batch)).toBe(false);
    expect(batchAwaited(runWith({ status: 'running', iteration: 2 }), batch)).toBe(false);
    expect(batchAwaited(runWith(waitingOn('msgbatch_2'), 'cancelled'), batch)).toBe(false);
    expect(batchAwaited(runWith({ status: 'completed' }), batch)).toBe(false);
  });
});

/** A {@link TestClock} that says when a timer is set, so a test advances it only once the poller waits on it. */
class WatchedClock extends TestClock {
  #waiters: Array<{ ms: number; resolve: () => void }> = [];

  /** Resolves when a timer of `ms` ms is next set. */
  timerSet(ms: number): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ ms, resolve }));
  }

  override setTimer(ms: number, fn: () => void): () => void {
    const cancel = super.setTimer(ms, fn);
    for (const w of this.#waiters.filter((x) => x.ms === ms)) w.resolve();
    this.#waiters = this.#waiters.filter((x) => x.ms !== ms);
    return cancel;
  }
}

describe('startBatchPoller on an injected clock (real Redis)', () => {
  it('asks about an open batch again when the clock passes the poll interval, and reschedules it by that clock', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('batch-poller-clock');
    const redis = createRedis(url);
    const log = createLogger({ name: 'test', level: 'silent' });
    const store = new RunStore(redis, prefix);
    const driver = new RunDriver({ redis, prefix, store, log, followUp: () => Promise.resolve() });
    const clock = new WatchedClock();
    const hourMs = 3600_000;
    // Each status request resolves the next waiter, so the test waits on the poller's requests, never on time.
    const asked: string[] = [];
    const waiters: Array<() => void> = [];
    const nextAsk = () => new Promise<void>((resolve) => waiters.push(resolve));
    const batches = {
      status: (batchId: string) => {
        asked.push(batchId);
        waiters.shift()?.();
        return Promise.resolve('in_progress' as const);
      },
      cancel: () => Promise.resolve(),
    };
    let poller: BatchPoller | undefined;
    const errors: Error[] = [];
    try {
      const workflow = compileWorkflow({ name: 'batched', agents: ['planner'], phases: [{ name: 'planning', agent: 'planner' }] });
      const runId = 'run-batch-poller-clock';
      const meta: RunMeta = { run_id: runId, workflow, requirements: 'A batch', variables: {}, created_at: clock.now(), provider: 'offline', trace: {} };
      const state: RunState = { ...initialRunState(workflow, meta.created_at), status: 'active', phases: runWith({ status: 'running' }).phases };
      expect(await store.createRun(meta, state, {})).toBe(true);
      const owner = { run_id: runId, phase: 'planning', iteration: 1, attempt: 1, role: 'planner' };
      const key = batchCallKey(runId, 'planning', 1, 1, 0);
      await new BatchStore(redis, prefix).put(key, { batch_id: 'msgbatch_1', custom_id: 'c1', submitted_at: clock.now(), timeout_at: clock.now() + 24 * hourMs }, owner);

      const first = nextAsk();
      const waiting = clock.timerSet(hourMs);
      poller = startBatchPoller({ redis, prefix, store, driver, batches, pollMs: hourMs, log, onError: (err) => errors.push(err), clock });
      await first;
      // The first tick is over: the batch is rescheduled and the next tick waits on the clock.
      await waiting;
      const second = nextAsk();
      // The batch is asked about again an hour later on the clock: advanced, the next tick runs at once.
      clock.advance(hourMs);
      await second;
      expect(asked).toEqual(['msgbatch_1', 'msgbatch_1']);
      expect(errors).toEqual([]);
      await poller.stop();
      poller = undefined;
      const member = (await redis.zrange(`${prefix}:batches:open`, '0', '-1'))[0]!;
      expect(Number(await redis.zscore(`${prefix}:batches:open`, member))).toBeGreaterThanOrEqual(clock.now() + hourMs - 1000);
    } finally {
      await poller?.stop();
      await driver.close();
      redis.disconnect();
      await cleanupPrefix(url, prefix);
    }
  });
});
