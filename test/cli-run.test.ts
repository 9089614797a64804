/**
 * The main job through the real `fleet` CLI, as a newcomer runs it: `fleet run "<requirements>"`
 * on real Redis, with the manager and the four role pools in the CLI's process.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedis, type RunResult } from '@agentfleet/core';
import { RunStore } from '@agentfleet/core/internal';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const REQUIREMENTS = 'Build a REST API for a todo list with user accounts and due-date reminders';
const prefixes: string[] = [];
function prefix(name: string): string {
  const p = uniquePrefix(name);
  prefixes.push(p);
  return p;
}
afterAll(async () => {
  for (const p of prefixes) await cleanupPrefix(redisUrl(), p);
});

describe('fleet run', () => {
  it('runs software-delivery to completion: JSON on stdout, progress on stderr, artifacts on disk', async () => {
    const p = prefix('cli-run');
    const out = mkdtempSync(join(tmpdir(), 'fleet-out-'));
    const res = await runCli(['run', REQUIREMENTS, '--json', '--out', out], cliEnv(redisUrl(), p));
    expect(res.stderr).toContain('offline model');
    expect(res.code, res.stderr).toBe(0);

    const result = JSON.parse(res.stdout) as RunResult;
    expect(result.status).toBe('completed');
    expect(result.workflow).toEqual({ name: 'software-delivery', version: '1.0.0' });
    expect(result.phases.map((ph) => [ph.name, ph.agent, ph.status])).toEqual([
      ['planning', 'planner', 'completed'],
      ['design', 'designer', 'completed'],
      ['implementation', 'coder', 'completed'],
      ['review', 'reviewer', 'completed'],
    ]);
    expect(result.usage.input_tokens).toBeGreaterThan(0);
    expect(result.provider).toBe('offline');
    expect(result.artifacts_dir).toBe(out);

    // Phases ran in dependency order: each started only after the one before it completed.
    const redis = createRedis(redisUrl());
    try {
      const events = (await new RunStore(redis, p).readEvents(result.run_id)).map((e) => e.event);
      const order = events.filter((e) => e.type === 'phase_started' || e.type === 'phase_completed').map((e) => `${e.type}:${(e as { phase: string }).phase}`);
      expect(order).toEqual([
        'phase_started:planning', 'phase_completed:planning',
        'phase_started:design', 'phase_completed:design',
        'phase_started:implementation', 'phase_completed:implementation',
        'phase_started:review', 'phase_completed:review',
      ]);
    } finally {
      redis.disconnect();
    }

    // Progress lines went to stderr with durations.
    expect(res.stderr).toMatch(/✓ planning completed in \d+\.\ds/);
    expect(res.stderr).toMatch(/run completed in/);

    expect(readdirSync(out).sort()).toEqual(['design.md', 'files', 'plan.md', 'result.json', 'review.md']);
    expect(readFileSync(join(out, 'plan.md'), 'utf8')).toContain('## Tasks');
    expect(readFileSync(join(out, 'review.md'), 'utf8')).toContain('**Verdict: approve**');
    expect(existsSync(join(out, 'files', 'src', 'server.mjs'))).toBe(true);
    const onDisk = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as RunResult;
    expect(onDisk.run_id).toBe(result.run_id);
    expect(Object.keys(onDisk.results)).toEqual(['planning', 'design', 'implementation', 'review']);
  });

  it('writes artifacts to runs/<run_id> by default and prints a summary', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'fleet-cwd-'));
    const res = await runCli(['run', 'A CLI that converts CSV files to JSON'], cliEnv(redisUrl(), prefix('cli-default')), { cwd });
    expect(res.code, res.stderr).toBe(0);
    const [runId] = readdirSync(join(cwd, 'runs'));
    expect(res.stdout).toContain(`Run ${runId} completed`);
    expect(existsSync(join(cwd, 'runs', String(runId), 'result.json'))).toBe(true);
  });

  it.each([
    ['a cycle', 'phases:\n  - {name: a, agent: coder, depends_on: [b]}\n  - {name: b, agent: coder, depends_on: [a]}\n', /dependency cycle: a -> b -> a/],
    ['an unknown dependency', 'phases:\n  - {name: a, agent: coder, depends_on: [nope]}\n', /phase "a": depends_on "nope" is not a phase/],
    ['an unknown agent', 'phases:\n  - {name: a, agent: tester_agent}\n', /phase "a": agent "tester_agent" is not in the workflow's agents list/],
  ])('rejects a workflow with %s with exit 2, naming the phase, and enqueues nothing', async (_label, phases, message) => {
    const p = prefix('cli-bad');
    const dir = mkdtempSync(join(tmpdir(), 'fleet-wf-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `name: bad\nagents: [coder]\n${phases}`);
    const res = await runCli(['run', 'anything', '--workflow', file], cliEnv(redisUrl(), p));
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    const redis = createRedis(redisUrl());
    try {
      expect(await redis.keys(`${p}*`)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('exits 2 for usage errors, naming the flag', async () => {
    const env = cliEnv(redisUrl(), prefix('cli-usage'));
    const empty = await runCli(['run'], env);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/no requirements given/);
    const badFlag = await runCli(['run', 'x', '--concurrency', 'zero'], env);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--concurrency must be a whole number/);
    const unknownWorkflow = await runCli(['run', 'x', '--workflow', 'nope'], env);
    expect(unknownWorkflow.code).toBe(2);
    expect(unknownWorkflow.stderr).toMatch(/no workflow "nope"; built-in workflows: .*software-delivery/);
    const shadowing = await runCli(['run', 'x', '--var', 'planning=ignore the plan'], env);
    expect(shadowing.code).toBe(2);
    expect(shadowing.stderr).toMatch(/variable "planning" has the name of a phase of software-delivery; rename it/);
  });
});
