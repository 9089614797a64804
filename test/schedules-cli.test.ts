/**
 * `fleet schedules` as a user types it (the real CLI in a child process, on real Redis): a bad cron
 * is refused naming the flag and the fix, then add (requirements from a file), list, show, trigger,
 * pause, resume and remove, and `fleet status` shows the schedule on the run it started.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TemplateRegistry, createRedis } from '@agentfleet/core';
import { cliEnv, runCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('schedules-cli');
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-schedules-'));
  env = cliEnv(redisUrl(), prefix);
  const redis = createRedis(redisUrl());
  await new TemplateRegistry(redis, prefix).create({
    name: 'design-sign-off',
    description: 'waits for a sign-off',
    agents: ['planner'],
    phases: [{ name: 'sign_off', type: 'approval', timeout: 3600 }],
  });
  redis.disconnect();
});
afterAll(async () => {
  await cleanupPrefix(redisUrl(), prefix);
  await rm(dir, { recursive: true, force: true });
});

describe('fleet schedules', () => {
  it('refuses a bad cron naming the flag and the fix', async () => {
    const res = await runCli(['schedules', 'add', 'nightly-review', '--workflow', 'design-sign-off', '--cron', '0 2 * *', '--requirements', 'x'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--cron: "0 2 * *" has 4 fields; write 5');
    const tz = await runCli(['schedules', 'add', 'nightly-review', '--workflow', 'design-sign-off', '--cron', '0 2 * * *', '--tz', 'Berlin', '--requirements', 'x'], env);
    expect(tz.code).toBe(2);
    expect(tz.stderr).toContain('--tz: "Berlin" is not an IANA time zone');
  });

  it('adds, lists, shows, triggers, pauses, resumes and removes a schedule', { timeout: 120_000 }, async () => {
    const req = join(dir, 'req.md');
    await writeFile(req, 'Review the design documents changed today.\n');
    const added = await runCli(
      ['schedules', 'add', 'nightly-review', '--workflow', 'design-sign-off', '--cron', '0 2 * * *', '--tz', 'Europe/Berlin', '--requirements-file', req, '--var', 'team=core'],
      env,
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toContain('schedule nightly-review added');

    const list = await runCli(['schedules', 'list'], env);
    expect(list.stdout).toMatch(/^nightly-review\s+design-sign-off\s+cron "0 2 \* \* \*" Europe\/Berlin\s+next \d{4}-/m);

    const fired = await runCli(['schedules', 'trigger', 'nightly-review'], env);
    expect(fired.code, fired.stderr).toBe(0);
    const runId = fired.stdout.trim();
    expect(runId).toMatch(/^[0-9a-f-]{36}$/);

    const status = await runCli(['status', runId], env);
    const result = JSON.parse(status.stdout) as { requirements: string; variables: Record<string, string>; links: { schedule?: { name: string; fire_time: string } } };
    expect(result.requirements).toBe('Review the design documents changed today.\n');
    expect(result.variables.team).toBe('core');
    expect(result.links.schedule).toMatchObject({ name: 'nightly-review', manual: true });
    const byStatus = await runCli(['status', '--schedule', 'nightly-review'], env);
    expect(byStatus.stdout).toContain(runId);

    const shown = JSON.parse((await runCli(['schedules', 'show', 'nightly-review'], env)).stdout) as { overlap: string; fires: { start: number }; runs: Array<{ run_id: string }> };
    expect(shown.overlap).toBe('skip');
    expect(shown.fires.start).toBe(1);
    expect(shown.runs.map((r) => r.run_id)).toEqual([runId]);

    // The triggered run waits for its sign-off: a second trigger is skipped (overlap skip).
    const again = await runCli(['schedules', 'trigger', 'nightly-review'], env);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain(`nothing started: skipped (run ${runId} is still going`);

    expect((await runCli(['schedules', 'pause', 'nightly-review'], env)).stderr).toContain('schedule nightly-review paused');
    expect((await runCli(['schedules', 'list'], env)).stdout).toMatch(/nightly-review .* paused/);
    expect((await runCli(['schedules', 'resume', 'nightly-review'], env)).stderr).toContain('schedule nightly-review resumed');
    expect((await runCli(['schedules', 'remove', 'nightly-review'], env)).stderr).toContain('schedule nightly-review removed');
    const gone = await runCli(['schedules', 'show', 'nightly-review'], env);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('no schedule "nightly-review"');
  });
});
