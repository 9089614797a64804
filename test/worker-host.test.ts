/**
 * The one worker host the agent pools and the tools pool configure, on real Redis: it announces its
 * roles (`fleet workers`), passes the manager's cancel to the job's signal, and its graceful close
 * gives up on a job that never ends once the grace period has passed on the host's clock (a
 * {@link TestClock}: the test skips the 10 minutes, it never waits them).
 */
import { createWorkerHost, type HostedJob } from '@agentfleet/agents';
import { TestClock, agentQueueName, createLogger, createRedis, readPoolHeartbeats, type PhaseJobData, type PhaseJobResult } from '@agentfleet/core';
import { cancelChannel } from '@agentfleet/core/internal';
import { Queue, type Job } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('worker-host');
const url = redisUrl();
afterAll(() => cleanupPrefix(url, prefix));

/** A processor that reports each job it takes and holds it until the test lets it go. */
function heldJobs() {
  const taken: Array<{ job: Job<PhaseJobData, PhaseJobResult>; hosted: HostedJob }> = [];
  const waiters: Array<() => void> = [];
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    taken,
    release,
    /** Resolves once a job was taken. */
    next: () => (taken.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    process: async (job: Job<PhaseJobData, PhaseJobResult>, hosted: HostedJob): Promise<PhaseJobResult> => {
      taken.push({ job, hosted });
      for (const w of waiters.splice(0)) w();
      await released;
      return { reported: false, attempt: 1 };
    },
  };
}

describe('worker host', () => {
  it('announces its role, hands the job the manager cancel, and on close gives up on a stuck job once the grace period passed on its clock', async () => {
    const role = 'hosttest';
    const clock = new TestClock();
    const host = createWorkerHost({ name: 'test-host', redisUrl: url, prefix, concurrency: 3, clock, onError: () => undefined, logger: createLogger({ name: 'test-host', level: 'silent' }), stalledIntervalMs: 600_000 });
    const held = heldJobs();
    await host.start([{ role, process: held.process }], { started: { message: 'test host started' } });
    await expect(host.start([{ role, process: held.process }], { started: { message: 'again' } })).rejects.toThrow(TypeError);

    const redis = createRedis(url);
    const queue = new Queue(agentQueueName(role), { connection: redis, prefix });
    try {
      expect((await readPoolHeartbeats(redis, prefix)).map((h) => [h.role, h.concurrency])).toEqual([[role, 3]]);

      await queue.add('phase', { run_id: 'r1' }, { jobId: 'r1.p.0' });
      await held.next();
      const first = held.taken[0];
      expect(first?.job.id).toBe('r1.p.0');
      const aborted = new Promise<unknown>((resolve) => first?.hosted.signal?.addEventListener('abort', () => resolve(first.hosted.signal?.reason), { once: true }));
      await redis.publish(cancelChannel(prefix), 'r1.p.0');
      expect(await aborted).toBe('cancelled by the manager');
      expect(first?.hosted.phaseHost).toMatchObject({ role, queueName: agentQueueName(role) });

      // The job never ends: close waits for it up to its grace period (10 minutes) on the clock.
      const closed = host.close(600_000);
      expect(host.close()).toBe(closed);
      while (clock.pendingTimers === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      clock.advance(600_000);
      // Past the grace period the job is abandoned (its lock would lapse and another worker take it
      // over) and the host has closed its connections and left the pools list.
      await closed;
      expect(await readPoolHeartbeats(redis, prefix)).toEqual([]);
      expect(await queue.getJobState('r1.p.0')).toBe('active');
    } finally {
      held.release();
      await queue.close();
      redis.disconnect();
    }
  });
});
