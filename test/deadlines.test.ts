/**
 * Manager-side deadlines count from the enqueue. A phase whose deadline passes while its job still
 * waits in a queue nobody serves yet (a backlog, a pool that starts late) is not failed: the deadline
 * is pushed back. A phase whose job is gone is failed by it.
 */
import { BUILTIN_ROLES, createLlmClient, startAgentPool } from '@agentfleet/agents';
import { FleetClient, agentQueueName, createRedis, loadConfig, phaseJobId } from '@agentfleet/core';
import { deadlineMember } from '@agentfleet/core/internal';
import { startManager } from '@agentfleet/manager';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

/**
 * Resolve once the manager queue's event stream shows job `jobId` completed (the manager handled it):
 * a blocking read of the stream, woken by each new entry.
 */
async function managerHandled(redis: Redis, client: FleetClient, jobId: string, timeoutMs = 20_000): Promise<void> {
  const stream = client.managerQueue.queue.keys.events!;
  const reader = redis.duplicate();
  try {
    const deadline = Date.now() + timeoutMs;
    let last = '0';
    for (;;) {
      const reply = (await reader.xread('BLOCK', 1000, 'STREAMS', stream, last));
      for (const [id, f] of reply?.[0]?.[1] ?? []) {
        last = id;
        const fields = new Map(Array.from({ length: f.length / 2 }, (_, i): [string, string] => [f[2 * i] ?? '', f[2 * i + 1] ?? '']));
        if (fields.get('event') === 'completed' && fields.get('jobId') === jobId) return;
      }
      if (Date.now() > deadline) throw new Error(`the manager did not handle ${jobId} in ${timeoutMs} ms`);
    }
  } finally {
    reader.disconnect();
  }
}

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
      // Deadline: 1 s timeout × 1 attempt + 0.1 s grace. No pool serves the planner until the manager
      // has handled that deadline (its report on the manager queue completed) and left the phase be.
      const wf = testWorkflow({ agents: ['planner'], phases: [{ name: 'planning', agent: 'planner', timeout: 1, retries: 0 }] });
      const waiting = await client.submit({ workflow: wf, requirements: 'A todo API', provider: 'offline' });
      await managerHandled(redis, client, `${phaseJobId(waiting, 'planning', 1)}.deadline`);
      expect((await client.result(waiting)).phases[0]?.status).toBe('queued');
      expect(await redis.zscore(client.store.deadlinesKey, deadlineMember({ run_id: waiting, phase: 'planning', iteration: 1 }))).not.toBeNull();

      // A second run whose job is removed behind the manager's back: its deadline fails it.
      const lost = await client.submit({ workflow: wf, requirements: 'A chat server', provider: 'offline' });
      const queue = new Queue(agentQueueName('planner'), { connection: redis, prefix });
      // submit returns once the run's first job is queued, so it is there to remove.
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
