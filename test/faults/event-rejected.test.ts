/**
 * An event whose decision throws (a scheduler bug, or input it cannot take) is refused for good and
 * recorded on the run as `event_rejected`; the run is not wedged: the commits grouped with it, and
 * later completions, approvals, deadlines and cancels of that run, are decided as usual. The throw is
 * injected through the driver's `beforeDecide` hook, standing for `decide` throwing on that event.
 */
import { createLogger, initialRunState, type RunMeta, type SchedulerEvent, type WorkflowDefinition } from '@agentfleet/core';
import { RunDriver, RunStore } from '@agentfleet/core/internal';
import { describe, expect, it } from 'vitest';
import { testWorkflow } from '../support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';
import { connect, runEvents } from './helpers.js';

const silent = createLogger({ name: 'test', level: 'silent' });

/** plan → sign_off (approval) → build. */
const withApproval = testWorkflow({
  agents: ['planner', 'coder'],
  phases: [
    { name: 'plan', agent: 'planner' },
    { name: 'sign_off', type: 'approval', depends_on: ['plan'], timeout: 600 },
    { name: 'build', agent: 'coder', depends_on: ['sign_off'] },
  ],
});

/** The event the injected scheduler fault throws on: an external event named `poison`. */
const isPoison = (event: SchedulerEvent): boolean => event.type === 'external_event' && event.event === 'poison';

function poisoningDriver(conn: ReturnType<typeof connect>, prefix: string): RunDriver {
  return new RunDriver({
    redis: conn.redis,
    prefix,
    store: new RunStore(conn.redis, prefix),
    log: silent,
    followUp: () => Promise.resolve(),
    beforeDecide: (_runId, event) => {
      if (isPoison(event)) throw new RangeError('Maximum call stack size exceeded');
    },
  });
}

async function createRun(store: RunStore, workflow: WorkflowDefinition, id: string): Promise<void> {
  const now = Date.now();
  const meta: RunMeta = { run_id: id, workflow, requirements: 'A wiki', variables: {}, created_at: now, provider: 'offline', trace: {} };
  const state = initialRunState(workflow, now);
  expect(await store.createRun(meta, state, {})).toBe(true);
  // The create's own outbox entry (the start) is dropped: the test starts the run itself.
  await store.clearOutbox(id, [state.version]);
}

const poison = (): SchedulerEvent => ({ type: 'external_event', at: Date.now(), event: 'poison', data: { deep: true } });

function completed(phase: string, agent: string): SchedulerEvent[] {
  const at = Date.now();
  return [
    { type: 'phase_started', at, phase, iteration: 1, attempt: 1, agent },
    { type: 'phase_completed', at, phase, iteration: 1, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'offline', agent },
  ];
}

describe('an event whose decision throws', () => {
  it('is refused with EVENT_REJECTED and recorded; the completion committed with it, the approval and the last completion still move the run to completed', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('event-rejected');
    const conn = connect(url, prefix);
    const driver = poisoningDriver(conn, prefix);
    try {
      const id = 'run-poisoned';
      await createRun(conn.store, withApproval, id);
      await driver.apply(id, { type: 'run_started', at: Date.now() });

      // On its own: refused for good, nothing committed, the refusal on the run's events.
      const versionBefore = await conn.store.getVersion(id);
      const alone = driver.apply(id, poison());
      await expect(alone).rejects.toMatchObject({ code: 'EVENT_REJECTED', retryable: false });
      await expect(alone).rejects.toThrow(/external_event event could not be decided and was refused: RangeError: Maximum call stack size exceeded/);
      expect(await conn.store.getVersion(id)).toBe(versionBefore);
      const rejected = (await runEvents(conn.store, id)).filter((e) => e.type === 'event_rejected');
      expect(rejected).toEqual([expect.objectContaining({ type: 'event_rejected', event: 'external_event', error: expect.objectContaining({ code: 'EVENT_REJECTED' }) })]);

      // Committed in one group with the plan's completion (both wait behind a commit in flight, then
      // are decided together): the completion lands, the poison does not.
      const [, plan, poisoned] = await Promise.allSettled([
        driver.apply(id, { type: 'phase_deadline', at: Date.now(), phase: 'build', iteration: 1 }),
        driver.apply(id, completed('plan', 'planner'), { output: { phase: 'plan', value: { summary: 'ok' } } }),
        driver.apply(id, poison()),
      ]);
      expect(plan.status).toBe('fulfilled');
      expect(plan.status === 'fulfilled' && plan.value.decision.accepted).toBe(true);
      expect(poisoned.status).toBe('rejected');
      expect((await conn.store.getRun(id)).state.phases.sign_off?.status).toBe('waiting');

      // The approval, then the last phase's completion.
      const approved = await driver.apply(id, { type: 'external_event', at: Date.now(), event: 'approval', data: { approved: true } });
      expect(approved.decision.accepted).toBe(true);
      expect((await conn.store.getRun(id)).state.phases.build?.status).toBe('queued');
      await expect(driver.apply(id, poison())).rejects.toMatchObject({ code: 'EVENT_REJECTED' });
      const done = await driver.apply(id, completed('build', 'coder'), { output: { phase: 'build', value: { files: [] } } });
      expect(done.decision.accepted).toBe(true);
      expect((await conn.store.getRun(id)).state.status).toBe('completed');
      expect((await runEvents(conn.store, id)).filter((e) => e.type === 'event_rejected')).toHaveLength(3);
    } finally {
      await driver.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('leaves the run to its deadline and to a cancel: a phase deadline fails the phase, and a cancel after a refused event cancels the run', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('event-rejected-cancel');
    const conn = connect(url, prefix);
    const driver = poisoningDriver(conn, prefix);
    try {
      // A deadline: the phase in flight is failed by it after a refused event.
      const timedOut = 'run-poisoned-deadline';
      await createRun(conn.store, withApproval, timedOut);
      await driver.apply(timedOut, { type: 'run_started', at: Date.now() });
      await expect(driver.apply(timedOut, poison())).rejects.toMatchObject({ code: 'EVENT_REJECTED' });
      const deadline = await driver.apply(timedOut, { type: 'phase_deadline', at: Date.now(), phase: 'plan', iteration: 1 });
      expect(deadline.decision.accepted).toBe(true);
      const afterDeadline = await conn.store.getRun(timedOut);
      expect(afterDeadline.state.phases.plan?.status).toBe('failed');
      expect(afterDeadline.state.status).toBe('failed');

      // A cancel.
      const cancelled = 'run-poisoned-cancel';
      await createRun(conn.store, withApproval, cancelled);
      await driver.apply(cancelled, { type: 'run_started', at: Date.now() });
      await expect(driver.apply(cancelled, poison())).rejects.toMatchObject({ code: 'EVENT_REJECTED' });
      const cancel = await driver.apply(cancelled, { type: 'cancel_requested', at: Date.now(), reason: 'user asked' });
      expect(cancel.decision.accepted).toBe(true);
      expect((await conn.store.getRun(cancelled)).state.status).toBe('cancelled');
      const types = (await runEvents(conn.store, cancelled)).map((e) => e.type);
      expect(types.indexOf('event_rejected')).toBeLessThan(types.indexOf('run_finished'));
    } finally {
      await driver.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
});
