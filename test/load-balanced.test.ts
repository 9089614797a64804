/**
 * `agent_select: load_balanced` against Redis: the committer reads the candidate queues' depths
 * before deciding, the scheduler picks the least loaded one and records it in the phase state, the
 * job goes to that queue, and a cancel finds it there.
 */
import { Queue } from 'bullmq';
import { agentQueueName, createLogger, phaseJobId } from '@agentfleet/core';
import { RunDriver } from '@agentfleet/core/internal';
import { describe, expect, it } from 'vitest';
import { connect, runEvents } from './faults/helpers.js';
import { testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const roles = ['lb-a', 'lb-b', 'lb-c'];
const workflow = testWorkflow({
  agents: roles,
  phases: [
    { name: 'plan', agent: 'lb-a' },
    { name: 'test', agent_select: { type: 'load_balanced', agents: roles }, depends_on: ['plan'] },
  ],
});

describe('load_balanced', () => {
  it('queues the phase to the least loaded candidate (ties: the first listed), records it, and cancels it there', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('load-balanced');
    const conn = connect(url, prefix);
    const fillers = roles.map((r) => new Queue(agentQueueName(r), { connection: conn.redis, prefix }));
    const driver = new RunDriver({ redis: conn.redis, prefix, store: conn.store, log: createLogger({ name: 'test', level: 'silent' }), followUp: async () => undefined });
    try {
      // Phase jobs always carry a priority, so they wait as `prioritized`, not `waiting`: lb-a has 3
      // of them, lb-b 1, lb-c 1 waiting and 1 delayed. A depth of `waiting` (+ `active`) alone would
      // see lb-a and lb-b empty and pick the busiest, lb-a.
      const add = (q: Queue, n: number, opts: { priority?: number; delay?: number }) => q.add('filler', {}, { jobId: `filler-${n}`, ...opts });
      await Promise.all([add(fillers[0]!, 0, { priority: 5 }), add(fillers[0]!, 1, { priority: 5 }), add(fillers[0]!, 2, { priority: 5 }), add(fillers[1]!, 0, { priority: 5 })]);
      await Promise.all([add(fillers[2]!, 0, {}), add(fillers[2]!, 1, { delay: 3_600_000 })]);
      expect(await Promise.all(fillers.map((q) => q.getWaitingCount()))).toEqual([0, 0, 1]);

      const id = await conn.client.submit({ workflow, requirements: 'r', provider: 'offline' });
      // The run's first phase is queued to its fixed role; it completes here, which queues `test`.
      await driver.apply(id, [
        { type: 'phase_started', at: Date.now(), phase: 'plan', iteration: 1, attempt: 1 },
        { type: 'phase_completed', at: Date.now(), phase: 'plan', iteration: 1, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm' },
      ], { output: { phase: 'plan', value: { ok: true } } });

      const jobId = phaseJobId(id, 'test', 1);
      const run = await conn.store.getRun(id);
      expect(run.state.phases.test).toMatchObject({ status: 'queued', agent: 'lb-b' });
      expect((await runEvents(conn.store, id)).find((e) => e.type === 'phase_queued' && 'phase' in e && e.phase === 'test')).toMatchObject({ agent: 'lb-b' });
      const [inA, inB, inC] = await Promise.all(fillers.map((q) => q.getJob(jobId)));
      expect(inA).toBeUndefined();
      expect(inB?.data).toMatchObject({ role: 'lb-b', phase: 'test' });
      expect(inC).toBeUndefined();

      // The recorded role finds the job; without one (a run written before roles were recorded) every candidate is searched.
      const def = workflow.phases.find((p) => p.name === 'test')!;
      expect((await driver.findPhaseJob(def, 'lb-b', jobId))?.id).toBe(jobId);
      expect((await driver.findPhaseJob(def, undefined, jobId))?.id).toBe(jobId);

      await driver.apply(id, { type: 'cancel_requested', at: Date.now(), reason: 'test' });
      expect((await conn.store.getRun(id)).state.status).toBe('cancelled');
      expect(await fillers[1]!.getJob(jobId)).toBeUndefined();
    } finally {
      await driver.close();
      await Promise.all(fillers.map((q) => q.close()));
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
});
