/**
 * What `fleet` prints for a person: short lines, no JSON log lines (unless `--log-json` or
 * `FLEET_LOG_LEVEL=debug`), and each warning once. Real `fleet run`, `fleet manager` and
 * `fleet agents` processes on a Redis started for this test with `maxmemory-policy allkeys-lru`
 * (the policy every component warns about), and the real Anthropic SDK against a local Messages API
 * server that keeps a call open so a run can be interrupted while a phase runs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic } from './support/fake-anthropic.js';
import { cliEnv, runCli, spawnCli } from './support/fleet.js';
import { startRedisServer, uniquePrefix, type RedisServer } from './support/redis.js';

const EVICTION = 'warning: Redis maxmemory-policy is "allkeys-lru"; set it to "noeviction" (redis-server --maxmemory-policy noeviction), or runs and jobs may be evicted';

/** Lines that are JSON log entries (pino's `{"level":…`). */
function jsonLines(output: string): string[] {
  return output.split('\n').filter((l) => l.startsWith('{"level"'));
}

function count(output: string, line: string): number {
  return output.split('\n').filter((l) => l === line).length;
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer({ args: ['--maxmemory-policy', 'allkeys-lru'] });
});
afterAll(async () => {
  await redis?.stop();
});

describe('human output', () => {
  it('fleet run: the eviction warning once (not once per component), no JSON log lines; --log-json gives JSON', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fleet-log-'));
    const env = cliEnv(redis.url, uniquePrefix('log-run'));
    const human = await runCli(['run', 'Build a todo API', '--out', join(out, 'a')], env, { timeoutMs: 120_000 });
    expect(human.code, human.stderr).toBe(0);
    expect(count(human.stderr, EVICTION), human.stderr).toBe(1);
    expect(human.stderr).not.toContain('IMPORTANT! Eviction policy');
    expect(jsonLines(human.stderr)).toEqual([]);

    const json = await runCli(['run', 'Build a todo API', '--out', join(out, 'b'), '--log-json'], env, { timeoutMs: 120_000 });
    expect(json.code, json.stderr).toBe(0);
    const eviction = jsonLines(json.stderr)
      .map((l) => JSON.parse(l) as { level: string; name: string; msg: string })
      .filter((w) => w.msg.includes('maxmemory-policy is "allkeys-lru"'));
    // The manager's check, and BullMQ's warning (one per Redis connection) said once, as a log line.
    expect(eviction.map((w) => `${w.level} ${w.name}`).sort()).toEqual(['warn fleet', 'warn manager']);
    expect(json.stderr).not.toContain('IMPORTANT! Eviction policy');
  }, 300_000);

  it('fleet manager and fleet agents: no JSON log lines while serving a run, the warning once each; FLEET_LOG_LEVEL=debug gives JSON', async () => {
    const env = cliEnv(redis.url, uniquePrefix('log-procs'));
    const manager = spawnCli(['manager'], env);
    const agents = spawnCli(['agents', '--roles', 'planner,designer,coder,reviewer'], env);
    try {
      await manager.waitFor('manager: consuming');
      await agents.waitFor('agents: serving');
      const out = mkdtempSync(join(tmpdir(), 'fleet-log-'));
      const run = await runCli(['run', 'Build a todo API', '--no-local-workers', '--out', out], env, { timeoutMs: 120_000 });
      expect(run.code, run.stderr).toBe(0);
    } finally {
      await manager.stop();
      await agents.stop();
    }
    for (const p of [manager, agents]) {
      expect(jsonLines(p.output()), p.output()).toEqual([]);
      expect(count(p.output(), EVICTION), p.output()).toBe(1);
    }

    const debugEnv = { ...env, FLEET_LOG_LEVEL: 'debug' };
    await using debug = spawnCli(['agents', '--roles', 'planner'], debugEnv);
    await debug.waitFor('"msg":"agent pool started"');
    expect(jsonLines(debug.output()).length).toBeGreaterThan(0);
  }, 300_000);

  it('fleet run interrupted with Ctrl-C while a phase runs: the cancellation in plain lines, no JSON log line', async () => {
    await using fake = await startFakeAnthropic({ apiKey: 'sk-ant-test-key' });
    fake.setResponder(() => ({ hang: true }));
    const dir = mkdtempSync(join(tmpdir(), 'fleet-log-'));
    const file = join(dir, 'one.yaml');
    writeFileSync(file, 'name: one-phase\nagents: [planner]\nphases:\n  - name: plan\n    agent: planner\n    timeout: 120\n');
    const env = { ...cliEnv(redis.url, uniquePrefix('log-sigint'), { ANTHROPIC_API_KEY: 'sk-ant-test-key' }), ANTHROPIC_BASE_URL: fake.url };
    const run = spawnCli(['run', 'Build a todo API', '--workflow', file, '--out', join(dir, 'out')], env);
    try {
      await run.waitFor('▶ plan (planner) started');
      await fake.waitForRequests(1, 60_000);
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(1);
    } finally {
      await run.stop();
    }
    expect(run.output()).toContain('■ plan cancelled: run cancelled: interrupted by the user (SIGINT)');
    expect(run.output()).toMatch(/^ {2}cancelled +plan /m);
    expect(jsonLines(run.output()), run.output()).toEqual([]);
    // A cancellation the user asked for is not a warning.
    expect(run.output()).not.toMatch(/^warning: phase attempt failed/m);
  }, 300_000);
});
