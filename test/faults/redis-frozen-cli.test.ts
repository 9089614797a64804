/**
 * CLI commands against a frozen Redis: a private `redis-server` is SIGSTOPped, so it accepts TCP
 * connections (the kernel does) and never answers. `status`, `workers`, `run`, `manager` and
 * `agents` each say "Redis at … is not answering" and exit 2 on their own, instead of hanging.
 * A Redis that answers PING but then executes nothing (`CLIENT PAUSE … WRITE`): `fleet cancel` says
 * it is not answering and exits 2 once its command timeout (10 s) passes, instead of waiting.
 * (The bounds below only catch a command that would hang; they are not timing assertions.)
 */
import { FleetClient, compileWorkflow, createRedis } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../support/fleet.js';
import { startRedisServer } from '../support/redis.js';

const COMMANDS: string[][] = [
  ['status'],
  ['workers'],
  ['run', 'Build a tiny todo API'],
  ['manager'],
  ['agents', '--roles', 'planner'],
];

describe('a frozen Redis', () => {
  it('status, workers, run, manager and agents say Redis is not answering and exit 2', async () => {
    await using server = await startRedisServer();
    server.kill('SIGSTOP');
    try {
      const env = cliEnv(server.url, '{fleet-frozen}');
      const results = await Promise.all(COMMANDS.map((args) => runCli(args, env, { timeoutMs: 90_000 })));
      results.forEach((res, i) => {
        const name = COMMANDS[i]?.join(' ') ?? '';
        expect(res.code, `${name}: ${res.stderr}`).toBe(2);
        expect(res.stderr, name).toContain(`Redis at ${server.url} is not answering (no reply to PING within`);
        expect(res.stderr, name).not.toMatch(/\n\s+at /); // one line, no stack trace
      });
    } finally {
      server.kill('SIGCONT');
    }
  }, 120_000);

  it('fleet cancel against a Redis that answers PING but executes no write says it is not answering and exits 2', async () => {
    await using server = await startRedisServer();
    const redis = createRedis(server.url);
    // Pause and unpause on a connection of their own: a write the client's connection still has
    // queued (its queue's metadata, written once the queue is ready) would hold the UNPAUSE behind it.
    const admin = createRedis(server.url);
    const client = new FleetClient(redis, '{fleet-frozen}');
    try {
      const workflow = compileWorkflow({ name: 'paused', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] });
      const runId = await client.submit({ workflow, requirements: 'Build a tiny todo API', provider: 'offline' });
      await admin.client('PAUSE', '120000', 'WRITE');
      const res = await runCli(['cancel', runId], cliEnv(server.url, '{fleet-frozen}'), { timeoutMs: 90_000 });
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toContain(`fleet: Redis at ${server.url} is not answering (no reply to a command within 10 s)`);
    } finally {
      await admin.client('UNPAUSE').catch(() => undefined);
      await client.close();
      redis.disconnect();
      admin.disconnect();
    }
  }, 120_000);
});
