/**
 * Following a run from the CLI after `fleet run` ended: `fleet resume --follow` and `fleet rerun
 * --follow` draw the run's progress with the lines of `fleet run`, rewrite its artifacts and exit by
 * its outcome; `fleet watch <run_id>` follows a run from Redis when no manager URL is given. Real
 * `fleet` processes (manager, agent pools, run, resume, rerun, watch, event) on real Redis, offline model.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResult } from '@agentfleet/core';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, spawnCli, type CliProcess } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await cleanupPrefix(redisUrl(), p);
});

const WORKFLOW = [
  'name: follow-me',
  'agents: [planner, reviewer]',
  'phases:',
  '  - name: plan',
  '    agent: planner',
  '  - name: review',
  '    agent: reviewer',
  '    depends_on: [plan]',
  '  - name: sign_off',
  '    type: approval',
  '    depends_on: [review]',
  '',
].join('\n');

function resultIn(dir: string): RunResult {
  return JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as RunResult;
}

describe('following a run after fleet run', () => {
  it('resume --follow and rerun --follow draw progress, rewrite the artifacts and exit by outcome; watch follows from Redis', async () => {
    const p = uniquePrefix('follow-cli');
    prefixes.push(p);
    // No FLEET_MANAGER_URL: `fleet watch` reads Redis.
    const env = cliEnv(redisUrl(), p);
    delete env.FLEET_MANAGER_URL;
    const dir = mkdtempSync(join(tmpdir(), 'fleet-follow-'));
    const file = join(dir, 'follow-me.yaml');
    writeFileSync(file, WORKFLOW);
    const out = join(dir, 'artifacts');
    const processes: CliProcess[] = [spawnCli(['manager'], env), spawnCli(['agents', '--roles', 'planner'], env)];
    try {
      await processes[0]!.waitFor('manager: consuming');
      await processes[1]!.waitFor('agents: serving');

      // The first run stops at review (no reviewer pool yet) and is cancelled: its artifacts hold the plan only.
      const first = spawnCli(['run', 'Build a todo REST API', '--workflow', file, '--no-local-workers', '--out', out], env);
      processes.push(first);
      await first.waitFor('no worker serves role reviewer', 60_000);
      const runId = /run ([0-9a-f-]{36}):/.exec(first.output())?.[1] as string;
      expect(runId, first.output()).toBeDefined();
      expect((await runCli(['cancel', runId], env)).code).toBe(0);
      expect(await first.exited).toBe(1);
      expect(resultIn(out)).toMatchObject({ run_id: runId, status: 'cancelled' });
      expect(existsSync(join(out, 'plan.md'))).toBe(true);
      expect(existsSync(join(out, 'review.md'))).toBe(false);

      // resume --follow, once a reviewer pool runs: the lines of fleet run from the resume on, up to the approval.
      processes.push(spawnCli(['agents', '--roles', 'reviewer'], env));
      await processes.at(-1)!.waitFor('agents: serving');
      const resume = spawnCli(['resume', runId, '--follow'], env);
      processes.push(resume);
      await resume.waitFor(`answer: fleet event ${runId} approval`, 60_000);
      expect(resume.output()).toContain('run resumed');
      expect(resume.output()).toMatch(/✓ review completed in \d+\.\ds/);
      // Only what happened since the resume: the plan completed before it.
      expect(resume.output()).not.toContain('✓ plan completed');

      // watch, without a manager URL, follows the same run from Redis: its whole history, then live.
      const watch = spawnCli(['watch', runId], env);
      processes.push(watch);
      await watch.waitFor('⏸ sign_off waiting for "approval"', 60_000);
      expect(watch.output()).toContain('run created: workflow follow-me');

      expect((await runCli(['event', runId, 'approval', '--data', '{"approved": true}'], env)).code).toBe(0);
      expect(await resume.exited).toBe(0);
      expect(await watch.exited).toBe(0);
      expect(watch.output()).toContain(`run ${runId} completed (follow-me v1.0.0`);
      expect(resume.output()).toMatch(new RegExp(`Run ${runId} completed in`));
      expect(resume.output()).toMatch(/completed\s+sign_off/);
      // The artifacts were rewritten where fleet run wrote them.
      expect(resume.output()).toContain(`Artifacts: ${out}`);
      expect(resultIn(out)).toMatchObject({ run_id: runId, status: 'completed' });
      expect(readFileSync(join(out, 'review.md'), 'utf8')).toContain('# Review');

      // rerun --follow from review, rejected at sign-off: a failed run, exit 1, watched to the same end.
      const rerun = spawnCli(['rerun', runId, '--from', 'review', '--follow', '--json'], env);
      processes.push(rerun);
      let rerunStdout = '';
      rerun.child.stdout?.on('data', (d: Buffer) => (rerunStdout += d.toString()));
      await rerun.waitFor('⏸ sign_off waiting for "approval"', 60_000);
      const newId = /run ([0-9a-f-]{36}) re-runs/.exec(rerun.output())?.[1] as string;
      expect(newId, rerun.output()).toBeDefined();
      expect(rerun.output()).not.toContain('✓ plan completed');
      const watchRerun = spawnCli(['watch', newId], env);
      processes.push(watchRerun);
      await watchRerun.waitFor('⏸ sign_off waiting for "approval"', 60_000);
      expect((await runCli(['event', newId, 'reject'], env)).code).toBe(0);
      expect(await rerun.exited).toBe(1);
      expect(await watchRerun.exited).toBe(1);
      expect(watchRerun.output()).toContain(`run ${newId} failed`);
      expect(JSON.parse(rerunStdout)).toMatchObject({ run_id: newId, status: 'failed', artifacts_dir: out });
      // The directory fleet run was given holds the latest result: the rerun's.
      expect(resultIn(out)).toMatchObject({ run_id: newId, status: 'failed', links: { rerun_of: { run_id: runId, from: 'review' } } });
    } finally {
      for (const proc of processes.reverse()) await proc.stop();
    }
  }, 300_000);

  it('watch of an unknown run exits 2 naming it; --out without --follow is refused', async () => {
    const p = uniquePrefix('follow-cli-bad');
    prefixes.push(p);
    const env = cliEnv(redisUrl(), p);
    delete env.FLEET_MANAGER_URL;
    const watch = await runCli(['watch', '00000000-0000-4000-8000-000000000000'], env);
    expect(watch.code).toBe(2);
    expect(watch.stderr).toMatch(/00000000-0000-4000-8000-000000000000/);
    const outOnly = await runCli(['resume', '00000000-0000-4000-8000-000000000000', '--out', 'x'], env);
    expect(outOnly.code).toBe(2);
    expect(outOnly.stderr).toContain('--out needs --follow');
  }, 120_000);
});
