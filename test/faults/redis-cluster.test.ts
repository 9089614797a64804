/**
 * Redis Cluster (issue 6): three masters started with `redis-server --cluster-enabled yes` on
 * loopback ports and joined with `redis-cli --cluster create`. AgentFleet reaches it through
 * `REDIS_URL=redis+cluster://127.0.0.1:<port>` (one seed node); every key of a fleet carries the
 * prefix's hash tag (`{fleet}`), so BullMQ's and the run store's multi-key scripts never cross slots.
 * A `fleet run` end to end, then runs submitted to a manager and a pool in separate processes, all
 * complete, and no process reports CROSSSLOT (or any other Redis error).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetClient, createRedis, loadBuiltinWorkflow } from '@agentfleet/core';
import { Redis } from 'ioredis';
import { startHttpApi } from '@agentfleet/manager';
import { describe, expect, it } from 'vitest';
import { cliEnv, runCli, spawnCli, type CliProcess } from '../support/fleet.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { waitUntil } from './helpers.js';

describe('Redis Cluster', () => {
  it('three masters on loopback run workflows with no CROSSSLOT error', async () => {
    const nodes: RedisServer[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'fleet-cluster-'));
    const processes: CliProcess[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        nodes.push(await startRedisServer({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
      }
      execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
      await waitUntil(
        async () => {
          const states = await Promise.all(
            nodes.map(async (n) => {
              const r = new Redis(n.url);
              try {
                return String(await r.call('CLUSTER', 'INFO')).includes('cluster_state:ok');
              } finally {
                r.disconnect();
              }
            }),
          );
          return states.every(Boolean);
        },
        15_000,
        'cluster_state:ok on every node',
      );

      // Seed with a node that does NOT own the {fleet} slot, so every command is routed by the cluster client.
      const probe = new Redis(nodes[0]!.url);
      const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', '{fleet}'));
      const ranges = (await probe.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
      probe.disconnect();
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
      const seed = nodes.find((n) => n.port !== owner)!;
      const url = `redis+cluster://127.0.0.1:${seed.port}`;
      const env = cliEnv(url, '{fleet}');
      const run = await runCli(['run', 'A cluster-wide todo API', '--json', '--out', join(dir, 'out')], env, { timeoutMs: 25_000, cwd: dir });
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ status: 'completed', completed_phases: ['planning', 'design', 'implementation', 'review'] });
      expect(run.stderr).not.toMatch(/CROSSSLOT|ReplyError/);

      processes.push(spawnCli(['manager'], env), spawnCli(['agents', '--roles', 'planner,designer,coder,reviewer'], env));
      await processes[0]!.waitFor('manager: consuming');
      await processes[1]!.waitFor('agents: serving');
      const redis = createRedis(url);
      const blocking = createRedis(url, { forWorker: true });
      const client = new FleetClient(redis, '{fleet}');
      try {
        const workflow = await loadBuiltinWorkflow('software-delivery');
        const ids = await Promise.all(['A wiki', 'A poll service', 'A feed reader'].map((requirements) => client.submit({ workflow, requirements, provider: 'offline' })));
        for (const id of ids) expect((await client.follow(id, blocking, () => undefined)).status).toBe('completed');
        // The HTTP API serves from the cluster too.
        const api = await startHttpApi({ redisUrl: url, prefix: '{fleet}', port: 0, host: '127.0.0.1', adminKeys: ['cluster-admin-key-0123456789'] });
        try {
          expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
          const got = await fetch(`${api.url}/api/runs/${ids[0]!}`, { headers: { authorization: 'Bearer cluster-admin-key-0123456789' } });
          expect(got.status).toBe(200);
          expect(((await got.json()) as { status: string }).status).toBe('completed');
        } finally {
          await api.close();
        }
      } finally {
        await client.close();
        blocking.disconnect();
        redis.disconnect();
      }
      for (const p of processes) expect(p.output()).not.toMatch(/CROSSSLOT|ReplyError/);
      // The fleet's keys live on one node: the one that owns the {fleet} slot.
      const counts = await Promise.all(
        nodes.map(async (n) => {
          const r = new Redis(n.url);
          try {
            return (await r.keys('{fleet}*')).length;
          } finally {
            r.disconnect();
          }
        }),
      );
      expect(counts.filter((c) => c > 0)).toHaveLength(1);
    } finally {
      await Promise.all(processes.map((p) => p.stop('SIGKILL')));
      await Promise.all(nodes.map((n) => n.stop()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
