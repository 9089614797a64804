/**
 * The run driver on real Redis, without a manager or pools: a fan-in's completions arriving together
 * are committed in few writes (group commit), each caller learns whether its own event was accepted,
 * and the output of a refused completion never reaches the shared context. The merge rule of a group
 * commit is decide's, unit-tested in packages/core/src/scheduler/decide-batch.test.ts.
 */
import { FleetClient, agentQueueName, createLogger, createRedis, type SchedulerEvent } from '@agentfleet/core';
import { RunDriver, RunStore } from '@agentfleet/core/internal';
import { afterAll, describe, expect, it } from 'vitest';
import { testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const url = redisUrl();
const prefix = uniquePrefix('run-driver');
afterAll(() => cleanupPrefix(url, prefix));

const workflow = testWorkflow({
  agents: ['planner', 'coder', 'reviewer'],
  phases: [
    { name: 'plan', agent: 'planner' },
    ...['b1', 'b2', 'b3', 'b4', 'b5', 'b6'].map((name) => ({ name, agent: 'coder', depends_on: ['plan'] })),
    { name: 'review', agent: 'reviewer', depends_on: ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'] },
  ],
});

const completed = (phase: string, at = Date.now()): SchedulerEvent => ({
  type: 'phase_completed',
  at,
  phase,
  iteration: 1,
  attempt: 1,
  usage: { input_tokens: 1, output_tokens: 1 },
  model: 'm',
  startedAt: at,
});

function startDriver(redis: ReturnType<typeof createRedis>, store: RunStore, followUps: string[] = []): RunDriver {
  return new RunDriver({
    redis,
    prefix,
    store,
    log: createLogger({ name: 'test', level: 'silent' }),
    followUp: async (_meta, actions) => void followUps.push(...actions.map((a) => a.type)),
  });
}

describe('RunDriver', () => {
  it('commits a fan-in arriving at once in few writes; a refused completion is reported refused and its output is dropped', async () => {
    const redis = createRedis(url);
    const store = new RunStore(redis, prefix);
    const client = new FleetClient(redis, prefix);
    const followUps: string[] = [];
    const driver = startDriver(redis, store, followUps);
    let commits = 0;
    const apply = store.apply.bind(store);
    store.apply = async (...args: Parameters<typeof store.apply>) => {
      commits += 1;
      return apply(...args);
    };
    try {
      // submit starts the run (plan queued); this driver then commits what workers would.
      const id = await client.submit({ workflow, requirements: 'fan-in', provider: 'offline' });
      await driver.apply(id, completed('plan'), { output: { phase: 'plan', value: { steps: 1 } } });
      commits = 0;

      const branches = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
      const results = await Promise.all([
        ...branches.map((b) => driver.apply(id, completed(b), { output: { phase: b, value: { by: b } } })),
        // A zombie attempt of b1 reporting again with another output: refused, its output dropped.
        driver.apply(id, completed('b1'), { output: { phase: 'b1', value: { by: 'zombie' } } }),
      ]);
      expect(results.map((r) => r.decision.accepted)).toEqual([true, true, true, true, true, true, false]);
      // The first completion commits alone; the rest waited for it and commit together.
      expect(commits).toBe(2);

      const { state } = await store.getRun(id);
      for (const b of branches) expect(state.phases[b]?.status).toBe('completed');
      expect(state.phases.review?.status).toBe('queued');
      expect(await store.getOutputs(id, ['b1'])).toEqual({ b1: { by: 'b1' } });
      const events = (await store.readEvents(id)).map((e) => e.event);
      expect(events.filter((e) => e.type === 'phase_completed' && 'phase' in e && e.phase === 'b1')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'phase_queued' && 'phase' in e && e.phase === 'review')).toHaveLength(1);
      // The review phase got its job once, and a deadline.
      expect(await driver.queueFor('reviewer').getJob(`${id}.review.1`)).toBeDefined();
      expect(await redis.zscore(store.deadlinesKey, JSON.stringify([id, 'review', 1]))).not.toBeNull();
      expect(await redis.zscore(store.deadlinesKey, JSON.stringify([id, 'b1', 1]))).toBeNull();

      await driver.apply(id, completed('review'), { output: { phase: 'review', value: { verdict: 'approve' } } });
      expect((await store.getRun(id)).state.status).toBe('completed');
      expect(followUps).toEqual(['finish_run']);
    } finally {
      await driver.close();
      await client.close();
      redis.disconnect();
    }
  });

  it('decides again on a fresh read when the state a caller remembered would refuse its event', async () => {
    const redis = createRedis(url);
    const store = new RunStore(redis, prefix);
    const client = new FleetClient(redis, prefix);
    const driver = startDriver(redis, store);
    try {
      const id = await client.submit({ workflow, requirements: 'stale known', provider: 'offline' });
      const stale = await store.getRun(id);
      await driver.apply(id, completed('plan'), { output: { phase: 'plan', value: {} } });
      // On the remembered state b1 is still pending, so its completion would be refused there.
      const applied = await driver.apply(id, completed('b1'), { output: { phase: 'b1', value: { by: 'b1' } }, known: { meta: stale.meta, state: stale.state } });
      expect(applied.decision.accepted).toBe(true);
      expect((await store.getRun(id)).state.phases.b1?.status).toBe('completed');
      expect(await store.getOutputs(id, ['b1'])).toEqual({ b1: { by: 'b1' } });
    } finally {
      await driver.close();
      await client.close();
      redis.disconnect();
    }
  });
});

describe('fairness counts', () => {
  it("a phase job leaves its key's count with the commit that ends it: not on a retry, and on a wait that ends the job", async () => {
    const redis = createRedis(url);
    const store = new RunStore(redis, prefix);
    const client = new FleetClient(redis, prefix);
    const driver = startDriver(redis, store);
    const fair = `${prefix}:fair:${agentQueueName('planner')}:`;
    const oneStep = testWorkflow({ agents: ['planner'], phases: [{ name: 'plan', agent: 'planner', retries: 2 }] });
    try {
      const id = await client.submit({ workflow: oneStep, requirements: 'fairness counts', provider: 'offline' });
      const job = (iteration: number) => `${id}.plan.${iteration}`;
      expect(await redis.zrange(fair, '0', '-1')).toContain(job(1));

      const at = Date.now();
      await driver.apply(id, [
        { type: 'phase_started', at, phase: 'plan', iteration: 1, attempt: 1, agent: 'planner' },
        { type: 'phase_attempt_failed', at, phase: 'plan', iteration: 1, attempt: 1, error: { code: 'PROVIDER_OVERLOADED', message: 'busy', category: 'provider', retryable: true }, willRetry: true, retryDelayMs: 1000, usage: { input_tokens: 0, output_tokens: 0 }, startedAt: at },
      ]);
      // Retried: the job is still in the queue (delayed), and still counted.
      expect(await redis.zrange(fair, '0', '-1')).toContain(job(1));

      // The agent's reply asks for input: the phase waits, and its job ends.
      await driver.apply(id, [
        { type: 'phase_started', at, phase: 'plan', iteration: 1, attempt: 2, agent: 'planner' },
        { type: 'phase_completed', at, phase: 'plan', iteration: 1, attempt: 2, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm', startedAt: at, action: { type: 'wait', event: 'answers', prompt: ['Who signs in?'] } },
      ]);
      expect((await store.getRun(id)).state.phases.plan?.status).toBe('waiting');
      expect(await redis.zrange(fair, '0', '-1')).not.toContain(job(1));
    } finally {
      await driver.close();
      await client.close();
      redis.disconnect();
    }
  });
});
