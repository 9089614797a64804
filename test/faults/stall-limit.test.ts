/**
 * A phase job whose holders die until BullMQ fails it for exceeding its stall limit: the failure is
 * taken up at once as a lost attempt of the phase (`PHASE_WORKER_LOST`, counted against `retries`),
 * not left to the manager's deadline (set to half an hour here, far past the test's timeout).
 *
 * The holders are killed at exact points: each takes the job with `getNextJob` and never renews its
 * lock (a SIGKILLed worker does the same); a stalled-job checker puts the job back each time its lock
 * has lapsed. After the third return BullMQ marks the job for failure, and the pool that takes it next
 * fails it without running it.
 */
import { BUILTIN_ROLES, STALL_LIMIT_REASON } from '@agentfleet/agents';
import { agentQueueName, createRedis } from '@agentfleet/core';
import { Worker, type Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { testWorkflow } from '../support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';
import { CountingOfflineLlm, connect, countEvents, quietManager, quietPool, runEvents, waitUntil } from './helpers.js';

/** The pools' `maxStalledCount`: the job fails on its third return to the queue. */
const MAX_STALLED = 2;

const workflow = (retries: number) =>
  testWorkflow({
    agents: ['planner', 'designer'],
    phases: [
      { name: 'a', agent: 'planner', timeout: 600, retries },
      { name: 'b', agent: 'designer', depends_on: ['a'] },
    ],
  });

/**
 * Let `MAX_STALLED + 1` holders take job `jobId` and die holding it, each time waiting until the
 * stalled-job check has put it back; resolves once BullMQ has marked it to fail on its next take.
 */
async function killHoldersPastStallLimit(url: string, prefix: string, jobId: string): Promise<void> {
  const queue = agentQueueName('planner');
  const holdersConn = createRedis(url, { forWorker: true });
  const checkerConn = createRedis(url, { forWorker: true });
  const redis = createRedis(url);
  // Holders take jobs by hand, so nothing renews their 200 ms locks: each is dead once it has the job.
  const holders = new Worker(queue, null, { connection: holdersConn, prefix, lockDuration: 200, autorun: false });
  const checker = new Worker(queue, null, { connection: checkerConn, prefix, autorun: false, stalledInterval: 100, maxStalledCount: MAX_STALLED });
  const jobKey = `${prefix}:${queue}:${jobId}`;
  try {
    for (let kill = 1; kill <= MAX_STALLED + 1; kill++) {
      let job: Job | undefined;
      await waitUntil(async () => Boolean((job = await holders.getNextJob(`holder-${kill}`, { block: false }))), 10_000, `holder ${kill} taking the job`);
      expect(job!.id).toBe(jobId);
      if (kill === 1) void checker.startStalledCheckTimer();
      await waitUntil(async () => Number(await redis.hget(jobKey, 'stc')) === kill && (await redis.lpos(`${prefix}:${queue}:wait`, jobId)) !== null, 20_000, `the job back in the queue after holder ${kill} died`);
    }
    expect(await redis.hget(jobKey, 'defa')).toBe(STALL_LIMIT_REASON);
  } finally {
    await checker.close(true);
    await holders.close(true);
    holdersConn.disconnect();
    checkerConn.disconnect();
    redis.disconnect();
  }
}

describe('a phase job failed for exceeding its stall limit', () => {
  it('is retried at once as a lost attempt (PHASE_WORKER_LOST), and the run completes', { timeout: 90_000 }, async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('stall-limit-retry');
    const llm = new CountingOfflineLlm(Object.values(BUILTIN_ROLES));
    const manager = await quietManager(url, prefix);
    const conn = connect(url, prefix);
    let pool: Awaited<ReturnType<typeof quietPool>> | undefined;
    try {
      const requirements = 'Holders die three times';
      const id = await conn.client.submit({ workflow: workflow(2), requirements, provider: 'offline' });
      await killHoldersPastStallLimit(url, prefix, `${id}.a.1`);

      // The pool's next take fails the job; the pool commits the lost attempt and queues the next one.
      pool = await quietPool(url, prefix, [BUILTIN_ROLES.planner!, BUILTIN_ROLES.designer!], llm);
      const result = await conn.client.follow(id, conn.blocking, () => undefined);
      expect(result.status).toBe('completed');
      expect(result.phases.find((p) => p.name === 'a')).toMatchObject({ status: 'completed', attempts: 2 });
      const events = await runEvents(conn.store, id);
      const retries = events.filter((e) => e.type === 'phase_retry');
      expect(retries.map((e) => [e.phase, e.attempt, e.error.code, e.error.retryable])).toEqual([['a', 1, 'PHASE_WORKER_LOST', true]]);
      expect(countEvents(events, 'phase_completed', 'a')).toBe(1);
      expect(countEvents(events, 'run_finished')).toBe(1);
      // The dead holders never called the model: the one call is the retried attempt's.
      expect(llm.calls.get(`${requirements}|a`)).toBe(1);
      expect(llm.calls.get(`${requirements}|b`)).toBe(1);
    } finally {
      await pool?.close(1000);
      await manager.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('fails the phase with PHASE_WORKER_LOST when it has no attempts left', { timeout: 90_000 }, async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('stall-limit-fail');
    const llm = new CountingOfflineLlm(Object.values(BUILTIN_ROLES));
    const manager = await quietManager(url, prefix);
    const conn = connect(url, prefix);
    let pool: Awaited<ReturnType<typeof quietPool>> | undefined;
    try {
      const requirements = 'Holders die three times, no retries';
      const id = await conn.client.submit({ workflow: workflow(0), requirements, provider: 'offline' });
      await killHoldersPastStallLimit(url, prefix, `${id}.a.1`);

      pool = await quietPool(url, prefix, [BUILTIN_ROLES.planner!, BUILTIN_ROLES.designer!], llm);
      const result = await conn.client.follow(id, conn.blocking, () => undefined);
      expect(result.status).toBe('failed');
      const a = result.phases.find((p) => p.name === 'a');
      expect(a).toMatchObject({ status: 'failed', attempts: 1 });
      expect(a?.error).toMatchObject({ code: 'PHASE_WORKER_LOST' });
      expect(a?.error?.message).toContain('lost its worker more than 2 times on attempt 1 of 1');
      const events = await runEvents(conn.store, id);
      expect(countEvents(events, 'phase_retry')).toBe(0);
      expect(countEvents(events, 'run_finished')).toBe(1);
      expect(llm.calls.size).toBe(0);
    } finally {
      await pool?.close(1000);
      await manager.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
});
