/**
 * What `fleet run` prints while its Redis is away: a private `redis-server` (AOF) is SIGKILLed while
 * the run waits for an approval, then restarted. The output holds one line saying Redis does not
 * answer and one saying it answers again, no `[ioredis] Unhandled error event` stack and no error
 * dump per reconnection attempt; the run then completes.
 */
import { FleetClient, createRedis } from '@agentfleet/core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFailed } from 'vitest';
import { cliEnv, spawnCli } from '../support/fleet.js';
import { startRedisServer } from '../support/redis.js';

const PREFIX = '{fleet-outage-output}';
const WORKFLOW = `name: outage-wait
description: a plan, then an approval
agents: [planner]
phases:
  - name: plan
    agent: planner
  - name: sign_off
    type: approval
    depends_on: [plan]
    timeout: 600
`;

describe('fleet run during a Redis outage', () => {
  it('says once that Redis does not answer and once that it is back, with no ioredis stack traces, and the run completes', async () => {
    await using server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const dir = await mkdtemp(join(tmpdir(), 'fleet-outage-output-'));
    const file = join(dir, 'outage-wait.yaml');
    await writeFile(file, WORKFLOW);
    const run = spawnCli(['run', '-w', file, '--out', join(dir, 'out'), 'Build a tiny todo API'], cliEnv(server.url, PREFIX));
    // A run that never ends fails at the test's timeout: show what it printed.
    onTestFailed(() => console.error(`fleet run printed:\n${run.output()}`));
    try {
      await run.waitFor('sign_off waiting for "approval"');
      const runId = /run ([0-9a-f-]{36}): outage-wait/.exec(run.output())?.[1];
      expect(runId).toBeDefined();

      server.kill('SIGKILL');
      // The first connection to notice says it: refused (reconnecting), reset or a broken pipe (open, or
      // writing, when Redis died).
      await run.waitFor(`fleet: Redis at ${server.url} does not answer (`);
      await server.restart();
      await run.waitFor(`fleet: Redis at ${server.url} answers again`);

      const redis = createRedis(server.url);
      const client = new FleetClient(redis, PREFIX);
      try {
        await client.sendEvent(runId as string, 'approval', { approved: true });
      } finally {
        await client.close();
        redis.disconnect();
      }
      const exitCode = await run.exited;
      expect(exitCode).toBe(0);
      const output = run.output();
      expect(output).toContain('run completed');
      expect(output).not.toContain('Unhandled error event');
      // One line names the lost connection: no dump per connection and reconnection attempt.
      const lost = output.split('\n').filter((line) => /ECONNREFUSED|ECONNRESET|EPIPE/.test(line));
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatch(/^fleet: Redis at redis:\/\/127\.0\.0\.1:\d+ does not answer \((ECONNREFUSED|ECONNRESET|EPIPE)\); waiting for it: the run goes on once it is back \(Ctrl-C to stop\)$/);
      expect(output).not.toMatch(/^Error: /m);
      expect(output.split('\n').filter((line) => line.includes('answers again'))).toHaveLength(1);
    } finally {
      await run.stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
