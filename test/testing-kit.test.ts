/**
 * The testing kit users test their workflows with: scripted agents (`replies.yaml`), the disposable
 * `createTestFleet`, and `fleet test --replies --expect` as a user's CI runs it (a child process, a
 * private redis-server).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecordingLlmClient, createTestFleet, readCassette } from '@agentfleet/cli';
import { FleetError, compileWorkflow, loadWorkflowFile, type LlmClient, type LlmRequest } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './support/fleet.js';
import { redisUrl, uniquePrefix } from './support/redis.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/testing-kit/${name}`, import.meta.url));
const changes = { verdict: 'changes_requested', findings: [{ severity: 'major', file: 'src/server.mjs', message: 'no input validation' }], summary: 'needs work' };
const approve = { verdict: 'approve', findings: [], summary: 'looks good' };

/** Tests that spawn `fleet` (and its private redis-server) get four minutes on a loaded machine. */
const SPAWNS_FLEET = { timeout: 240_000 };

describe('createTestFleet', () => {
  it('scripts a review loop (changes requested, then approve) and a transient error twice, and counts the calls', SPAWNS_FLEET, async () => {
    await using fleet = await createTestFleet({
      redisUrl: redisUrl(),
      replies: { review: [changes, approve], design: [{ error: 'PROVIDER_OVERLOADED', times: 2 }] },
    });
    const { result, events, calls } = await fleet.run(await loadWorkflowFile(fixture('workflow.yaml')), 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(calls).toEqual({ planning: 1, design: 3, implementation: 2, review: 2 });
    expect(fleet.callsByRole()).toEqual({ planner: 1, designer: 3, coder: 2, reviewer: 2 });
    expect(result.phases.find((p) => p.name === 'design')).toMatchObject({ status: 'completed', attempts: 3 });
    expect(result.phases.find((p) => p.name === 'review')).toMatchObject({ status: 'completed', iterations: 2 });
    expect(result.results.review).toEqual(approve);
    expect(events.filter((e) => e.type === 'phase_retry').map((e) => [e.phase, e.error.code])).toEqual([
      ['design', 'PROVIDER_OVERLOADED'],
      ['design', 'PROVIDER_OVERLOADED'],
    ]);
    // The second coder call carries the review's findings.
    const coderCalls = fleet.llm.requests.filter((r) => r.phase === 'implementation');
    expect(JSON.stringify(coderCalls[1]?.request.messages)).toContain('no input validation');
  });

  it('expires an approval with a one-day timeout as soon as the test clock passes it', SPAWNS_FLEET, async () => {
    const DAY_MS = 24 * 3600 * 1000;
    await using fleet = await createTestFleet({ redisUrl: redisUrl() });
    const workflow = compileWorkflow({
      name: 'sign-off',
      agents: ['planner', 'designer'],
      phases: [
        { name: 'planning', agent: 'planner' },
        { name: 'sign_off', type: 'approval', description: 'approve the plan', depends_on: ['planning'], timeout: 86_400 },
        { name: 'design', agent: 'designer', depends_on: ['sign_off'] },
      ],
    });
    let waited = false;
    const { result, events } = await fleet.run(workflow, 'Build a todo API', {
      onEvent: (e) => {
        if (e.type !== 'phase_waiting') return;
        // Nobody answers; a day (and a second) passes on the test clock.
        waited = true;
        fleet.clock.advance(DAY_MS + 1000);
      },
    });
    expect(waited).toBe(true);
    expect(result.status).toBe('failed');
    expect(result.phases.find((p) => p.name === 'sign_off')?.error).toMatchObject({ code: 'APPROVAL_TIMEOUT' });
    expect(result.phases.find((p) => p.name === 'design')?.status).not.toBe('completed');
    expect(events.map((e) => e.type)).toContain('phase_waiting');
    expect(fleet.callsByRole()).toEqual({ planner: 1 });
  });

  it('refuses a reply that does not fit the role, naming its path, before anything runs', SPAWNS_FLEET, async () => {
    await using fleet = await createTestFleet({ redisUrl: redisUrl(), replies: { review: [approve, { verdict: 'maybe', findings: [], summary: 'unsure' }] }, repliesSource: 'replies.yaml' });
    const err = await fleet.run(await loadWorkflowFile(fixture('workflow.yaml'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetError);
    expect((err as FleetError).code).toBe('INVALID_INPUT');
    expect((err as FleetError).message).toMatch(/^replies\.yaml: review\[1\]: does not match the reviewer role's output schema: review\[1\]\.verdict: /);
    expect(fleet.llm.requests).toHaveLength(0);
    await expect(createTestFleet({ redisUrl: redisUrl(), replies: { design: [{ error: 'NO_SUCH_CODE' }] } })).rejects.toThrow('replies: design[0].error: unknown error code "NO_SUCH_CODE"');
    const unknownPhase = await createTestFleet({ redisUrl: redisUrl(), replies: { desing: approve } });
    try {
      await expect(unknownPhase.run(await loadWorkflowFile(fixture('workflow.yaml')))).rejects.toThrow('replies: desing: workflow "delivery-under-test" has no phase "desing"');
    } finally {
      await unknownPhase.close();
    }
  });
});

describe('fleet test', () => {
  const env = () => cliEnv(redisUrl(), uniquePrefix('fleet-test-cli'));

  it('passes when the run matches expect.yaml (exit 0), on a private redis-server', SPAWNS_FLEET, async () => {
    const res = await runCli(['test', fixture('workflow.yaml'), '--replies', fixture('replies.yaml'), '--expect', fixture('expect.yaml')], env(), { timeoutMs: 100_000 });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('phases completed in order planning → design → implementation → review → implementation → review');
    expect(res.stderr).toContain('model calls {"planning":1,"design":3,"implementation":2,"review":2}');
    expect(res.stderr).toContain(`fleet test: ok (matches ${fixture('expect.yaml')})`);
  });

  it('prints a diff and exits 1 when the run does not match', SPAWNS_FLEET, async () => {
    const res = await runCli(['test', fixture('workflow.yaml'), '--replies', fixture('replies.yaml'), '--expect', fixture('expect-wrong.yaml')], env(), { timeoutMs: 100_000 });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain(`3 differences from ${fixture('expect-wrong.yaml')}:`);
    expect(res.stderr).toContain(['  phases.review.iterations', '    - expected: 1', '    + actual:   2'].join('\n'));
    expect(res.stderr).toContain(['  phases.review.calls', '    - expected: 1', '    + actual:   2'].join('\n'));
    expect(res.stderr).toContain(['  context.review.verdict', '    - expected: "changes_requested"', '    + actual:   "approve"'].join('\n'));
  });

  it('exits 2 naming the path of a bad fixture, before running anything', SPAWNS_FLEET, async () => {
    const res = await runCli(['test', fixture('workflow.yaml'), '--replies', fixture('bad-replies.yaml')], env(), { timeoutMs: 100_000 });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(`fleet: ${fixture('bad-replies.yaml')}: review[1]: does not match the reviewer role's output schema: review[1].verdict:`);
    expect(res.stderr).not.toContain('fleet test: delivery-under-test: run');
  });
});

describe('record and replay', () => {
  it('fleet run --record stores every call; fleet test --replay passes on the same workflow and fails naming the changed prompt', SPAWNS_FLEET, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-cassette-'));
    try {
      const cassette = join(dir, 'cassette.jsonl');
      const env = cliEnv(redisUrl(), uniquePrefix('fleet-record'));
      const recorded = await runCli(['run', '--workflow', fixture('workflow.yaml'), '--record', cassette, '--out', join(dir, 'out'), 'Build a todo API'], env, { timeoutMs: 100_000 });
      expect(recorded.code, recorded.stderr).toBe(0);
      const entries = readCassette(cassette);
      expect(entries.map((e) => [e.phase, e.call])).toEqual([['planning', 1], ['design', 1], ['implementation', 1], ['review', 1]]);
      expect(entries.every((e) => e.requirements === 'Build a todo API' && e.reply !== undefined)).toBe(true);

      const same = await runCli(['test', fixture('workflow.yaml'), '--replay', cassette], env, { timeoutMs: 100_000 });
      expect(same.code, same.stderr).toBe(0);
      expect(same.stderr).toContain('fleet test: ok');

      // The design phase gets new instructions: its request no longer matches the recording.
      const changed = join(dir, 'changed.yaml');
      writeFileSync(changed, readFileSync(fixture('workflow.yaml'), 'utf8').replace('{ name: design, agent: designer,', '{ name: design, agent: designer, instructions: "Use PostgreSQL.",'));
      const differs = await runCli(['test', changed, '--replay', cassette], env, { timeoutMs: 100_000 });
      expect(differs.code, differs.stderr).toBe(1);
      expect(differs.stderr).toContain(`replay of ${cassette}: phase "design" call 1 sent a request that differs from the recorded one (- recorded, + now):`);
      expect(differs.stderr).toContain('+ messages[0] user: Use PostgreSQL.');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('redacts key-shaped strings from what it records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-cassette-'));
    try {
      const path = join(dir, 'c.jsonl');
      const leaky: LlmClient = {
        provider: 'test',
        model: 'm',
        generate: () => Promise.resolve({ output: { note: 'the key is sk-ant-api03-abcdefghijklmnop' }, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm', id: 'x', stopReason: 'tool_use' }),
      };
      const request = { role: 'planner', system: 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz', messages: [], tool: { name: 'submit', description: '', inputSchema: {} }, maxTokens: 10, inputs: { phase: 'p', requirements: 'r' } } as unknown as LlmRequest;
      await new RecordingLlmClient(leaky, path).generate(request);
      const text = readFileSync(path, 'utf8');
      expect(text).not.toContain('sk-ant-api03-abcdefghijklmnop');
      expect(text).not.toContain('abcdefghijklmnopqrstuvwxyz');
      expect(text.match(/\[REDACTED\]/g)).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
