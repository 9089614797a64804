/**
 * Manager-side deadlines count from the enqueue. A phase whose deadline passes while its job still
 * waits in a queue nobody serves yet (a backlog, a pool that starts late) is not failed: the deadline
 * is pushed back. A phase whose job is gone is failed by it.
 */
import { BUILTIN_ROLES, createLlmClient, startAgentPool } from '@agentfleet/agents';
import { FleetClient, agentQueueName, createRedis, loadConfig, phaseJobId } from '@agentfleet/core';
import { startManager } from '@agentfleet/manager';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('manager-side deadlines', () => {
  it('a job still waiting for a worker outlives its deadline; a job that vanished does not', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('deadlines');
    const manager = await startManager({ redisUrl: url, prefix, deadlineGraceMs: 100, warn: () => undefined });
    const redis = createRedis(url);
    const blocking = createRedis(url, { forWorker: true });
    const client = new FleetClient(redis, prefix, { deadlineGraceMs: 100 });
    const roles = [BUILTIN_ROLES.planner!];
    let pool: Awaited<ReturnType<typeof startAgentPool>> | undefined;
    try {
      // Deadline: 1 s timeout × 1 attempt + 0.1 s grace. No pool serves the planner for 2 s.
      const wf = testWorkflow({ agents: ['planner'], phases: [{ name: 'planning', agent: 'planner', timeout: 1, retries: 0 }] });
      const waiting = await client.submit({ workflow: wf, requirements: 'A todo API', provider: 'offline' });
      await sleep(2000);
      expect((await client.result(waiting)).phases[0]?.status).toBe('queued');

      // A second run whose job is removed behind the manager's back: its deadline fails it.
      const lost = await client.submit({ workflow: wf, requirements: 'A chat server', provider: 'offline' });
      const queue = new Queue(agentQueueName('planner'), { connection: redis, prefix });
      for (let i = 0; i < 50 && !(await queue.getJob(phaseJobId(lost, 'planning', 1))); i++) await sleep(20);
      expect(await queue.remove(phaseJobId(lost, 'planning', 1))).toBe(1);
      await queue.close();
      const failed = await client.follow(lost, blocking, () => undefined);
      expect(failed.status).toBe('failed');
      expect(failed.phases[0]?.error?.code).toBe('PHASE_TIMEOUT');

      pool = await startAgentPool({ redisUrl: url, prefix, roles, llm: createLlmClient(loadConfig({}), roles), onError: () => undefined });
      const done = await client.follow(waiting, blocking, () => undefined);
      expect(done.status).toBe('completed');
    } finally {
      await pool?.close(1000);
      await manager.close();
      await client.close();
      blocking.disconnect();
      redis.disconnect();
      await cleanupPrefix(url, prefix);
    }
  });
});
