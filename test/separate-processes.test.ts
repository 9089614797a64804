/**
 * The whole job across separate processes: `fleet manager` in one, each role's pool (`fleet agents
 * --roles <role>`) in its own, and the run submitted from this process. Pools for the same role in
 * two processes share its queue.
 */
import { FleetClient, createRedis, loadBuiltinWorkflow } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { cliEnv, runCli, spawnCli, type CliProcess } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

describe('manager and agent pools in separate processes', () => {
  it('completes runs submitted from elsewhere, and each process stops cleanly on SIGTERM', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('processes');
    const env = cliEnv(url, prefix);
    const processes: CliProcess[] = [
      spawnCli(['manager'], env),
      spawnCli(['agents', '--roles', 'planner'], env),
      spawnCli(['agents', '--roles', 'designer'], env),
      spawnCli(['agents', '--roles', 'coder', '--concurrency', '2'], env),
      spawnCli(['agents', '--roles', 'coder', '--concurrency', '2'], env),
      spawnCli(['agents', '--roles', 'reviewer'], env),
    ];
    const redis = createRedis(url);
    const blocking = createRedis(url, { forWorker: true });
    const client = new FleetClient(redis, prefix);
    try {
      await processes[0]!.waitFor('manager: consuming');
      for (const p of processes.slice(1)) await p.waitFor('agents: serving');

      const workflow = await loadBuiltinWorkflow('software-delivery');
      const ids = await Promise.all(
        ['A URL shortener with analytics', 'A chat server with rooms', 'A blog engine with comments', 'An inventory API'].map((requirements) =>
          client.submit({ workflow, requirements, provider: 'offline' }),
        ),
      );
      for (const id of ids) {
        const result = await client.follow(id, blocking, () => undefined);
        expect(result.status).toBe('completed');
        expect(result.completed_phases).toEqual(['planning', 'design', 'implementation', 'review']);
      }

      // `fleet status <id>` reads the same result from Redis.
      const status = await runCli(['status', ids[0]!], env);
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ run_id: ids[0], status: 'completed' });

      for (const p of processes) expect(await p.stop('SIGTERM')).toBe(0);
    } finally {
      await Promise.all(processes.map((p) => p.stop('SIGKILL')));
      await client.close();
      blocking.disconnect();
      redis.disconnect();
      await cleanupPrefix(url, prefix);
    }
  });
});
