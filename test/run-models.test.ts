/**
 * Models per role through the real `fleet run`: with `FLEET_ROLE_MODELS` the result names the model
 * of each phase (as the provider reported it), keeps the run's main model in `model`, lists every
 * model in `models`, and the summary line gives the run's cost. Real Redis, the real Anthropic SDK
 * against a local Messages API server.
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { designer, planner, type RoleInput } from '@agentfleet/agents';
import type { RunResult } from '@agentfleet/core';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic } from './support/fake-anthropic.js';
import { cliEnv, runCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await cleanupPrefix(redisUrl(), p);
});

const base: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan = planner.offline(base);
const design = designer.offline({ ...base, upstream: [{ phase: 'plan', role: 'planner', output: plan }] });
const outputs: Record<string, unknown> = { planner: plan, designer: design, reviewer: { verdict: 'approve', findings: [], summary: 'looks good' } };

const WORKFLOW = `name: models-per-role
version: "1"
agents: [planner, designer, reviewer]
phases:
  - name: plan
    agent: planner
    timeout: 30
  - name: design
    agent: designer
    depends_on: [plan]
    timeout: 30
  - name: review
    agent: reviewer
    depends_on: [design]
    timeout: 30
`;

describe('a model per phase', () => {
  it('FLEET_ROLE_MODELS: each phase names its model, `model` stays the main one, `models` lists both, the summary gives the cost', async () => {
    await using fake = await startFakeAnthropic({ apiKey: 'sk-ant-test-key' });
    // 1000 input and 500 output tokens per call: $0.0105 on claude-sonnet-4 ($3 / $15 per MTok), $0.0035 on claude-haiku-4-5 ($1 / $5).
    fake.setResponder((req) => ({ toolInput: outputs[req.forcedToolName?.replace(/^submit_|_output$/g, '') ?? ''], usage: { input_tokens: 1000, output_tokens: 500 } }));
    const dir = mkdtempSync(join(tmpdir(), 'fleet-models-'));
    const file = join(dir, 'models.yaml');
    writeFileSync(file, WORKFLOW);
    const p = uniquePrefix('run-models');
    prefixes.push(p);
    const env = {
      ...cliEnv(redisUrl(), p, { ANTHROPIC_API_KEY: 'sk-ant-test-key' }),
      ANTHROPIC_BASE_URL: fake.url,
      FLEET_MODEL: 'claude-sonnet-4',
      FLEET_ROLE_MODELS: 'reviewer=claude-haiku-4-5',
    };
    const run = await runCli(['run', 'Build a todo API', '--workflow', file, '--out', join(dir, 'out')], env, { timeoutMs: 120_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(new Set(fake.requests.map((r) => (r.body as { model: string }).model))).toEqual(new Set(['claude-sonnet-4', 'claude-haiku-4-5']));

    const runId = /run ([0-9a-f-]{36}):/.exec(run.stderr)?.[1];
    expect(runId, run.stderr).toBeDefined();
    const status = await runCli(['status', runId!], env);
    const result = JSON.parse(status.stdout) as RunResult;
    expect(result.phases.map((ph) => [ph.name, ph.model])).toEqual([
      ['plan', 'claude-sonnet-4'],
      ['design', 'claude-sonnet-4'],
      ['review', 'claude-haiku-4-5'],
    ]);
    expect(result.model).toBe('claude-sonnet-4');
    expect(result.models).toEqual(['claude-sonnet-4', 'claude-haiku-4-5']);
    expect(result.usage.cost_usd).toBeCloseTo(2 * 0.0105 + 0.0035, 6);

    // The summary on stdout: each phase's model (two are in use) and the cost beside the tokens.
    expect(run.stdout).toMatch(/review\s+reviewer\s+\S+s\s+claude-haiku-4-5/);
    expect(run.stdout).toContain('Tokens: 3000 in, 1500 out, cost $0.0245 (anthropic, claude-sonnet-4, claude-haiku-4-5)');
  }, 180_000);
});
