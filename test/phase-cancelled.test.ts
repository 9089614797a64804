/**
 * A phase cancelled while its agent works: the attempt is aborted, and its error says it was
 * cancelled (`PHASE_CANCELLED`, not retried), not that it timed out.
 */
import { BUILTIN_ROLES } from '@agentfleet/agents';
import { agentQueueName, phaseJobId } from '@agentfleet/core';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { connect, quietManager, quietPool, waitUntil } from './faults/helpers.js';
import { testWorkflow } from './support/fleet.js';
import { GatedLlm } from './support/http-api.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

describe('a cancelled phase', () => {
  it("its attempt's error is PHASE_CANCELLED, and it is not retried", async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('phase-cancelled');
    const conn = connect(url, prefix);
    const llm = new GatedLlm();
    const pool = await quietPool(url, prefix, [BUILTIN_ROLES.planner!], llm, 1);
    const manager = await quietManager(url, prefix);
    const queue = new Queue(agentQueueName('planner'), { connection: conn.redis, prefix });
    try {
      llm.hold('plan');
      const workflow = testWorkflow({ agents: ['planner'], phases: [{ name: 'plan', agent: 'planner', retries: 2 }] });
      const id = await conn.client.submit({ workflow, requirements: 'A wiki', provider: 'offline' });
      await llm.entered('plan');
      await conn.client.cancel(id, 'stopped by the test');
      const jobId = phaseJobId(id, 'plan', 1);
      await waitUntil(async () => (await (await queue.getJob(jobId))?.getState()) === 'failed', 15_000, 'the aborted job to end');
      const job = await queue.getJob(jobId);
      expect(job?.failedReason).toMatch(/^PHASE_CANCELLED: /);
      expect(job?.attemptsMade).toBe(1);
      expect((await conn.store.getRun(id)).state.status).toBe('cancelled');
    } finally {
      llm.release('plan');
      await queue.close();
      await manager.close();
      await pool.close(1000);
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
});
