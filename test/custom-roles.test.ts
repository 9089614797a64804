/**
 * Issue 8, what users reach without code: request budgets through `fleet run`, custom roles from a
 * YAML file (`fleet roles add`) served by `fleet run` (offline model) and by a separate
 * `fleet agents --roles <custom>` process through the real Anthropic SDK against the local Messages
 * API server (JSON Schema repair loop), FLEET_ROLE_MODULES roles, and a phase's `model:`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { customRole, placeholderFor } from '@agentfleet/agents';
import { FleetClient, type FleetError, createRedis, parseRoleDefinition, type RunResult } from '@agentfleet/core';
import { startManager } from '@agentfleet/manager';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic } from './support/fake-anthropic.js';
import { cliEnv, runCli, spawnCli, testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

/** Tests that spawn `fleet` processes: each start costs seconds on a loaded machine, so they get four minutes, not the default 30 s. */
const SPAWNS_FLEET = { timeout: 240_000 };

const dir = mkdtempSync(join(tmpdir(), 'fleet-roles-'));
const prefix = uniquePrefix('custom-roles');
afterAll(() => cleanupPrefix(redisUrl(), prefix));

const OUTPUT_SCHEMA = {
  type: 'object',
  required: ['severity', 'summary', 'labels'],
  additionalProperties: false,
  properties: {
    severity: { enum: ['low', 'high'] },
    summary: { type: 'string', minLength: 1 },
    labels: { type: 'array', minItems: 1, items: { type: 'string' } },
    effort_days: { type: 'integer', minimum: 1 },
  },
};
const ROLE_YAML = `name: triage
description: Triages a request into a severity, labels and a summary.
instructions: |
  You are a triage agent. Read the requirements and the plan, then rate the severity,
  label the work and summarise it in one sentence.
model: claude-haiku-4-5
output_schema:
${JSON.stringify(OUTPUT_SCHEMA)}
`.replace('output_schema:\n', 'output_schema: ');

const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('role files', () => {
  it('validates a role file, naming the field, and builds a role whose offline answer fits its schema', () => {
    const bad = (raw: unknown) => {
      try {
        parseRoleDefinition(raw, ['planner'], 'r.yaml');
      } catch (err) {
        return (err as FleetError).message;
      }
      return 'accepted';
    };
    const base = { name: 'x', description: 'd', instructions: 'i', output_schema: { type: 'object' } };
    expect(bad({ ...base, output_schema: { type: 'object', properties: { a: { typ: 'string' } } } })).toMatch(/output_schema is not a valid JSON Schema.*unknown keyword: "typ"/);
    expect(bad({ ...base, output_schema: { type: 'array' } })).toMatch(/output must be an object/);
    expect(bad({ ...base, name: 'Bad Name', instructions: '' })).toMatch(/name must start with a lower-case letter[\s\S]*instructions: give the role/);
    expect(bad({ ...base, name: 'planner' })).toMatch(/"planner" is a built-in role/);
    expect(bad({ ...base, temprature: 0.2 })).toMatch(/temprature/);

    const role = customRole(parseRoleDefinition({ ...base, output_schema: OUTPUT_SCHEMA }));
    const offline = role.offline({ requirements: 'r', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] });
    expect(offline).toEqual({ severity: 'low', summary: expect.stringContaining('[offline model') as string, labels: [expect.stringContaining('labels[0]') as string] });
    expect(role.validateOutput?.(offline)).toEqual({ ok: true, value: offline });
    expect(role.validateOutput?.({ severity: 'urgent', labels: [], extra: 1 })).toEqual({
      ok: false,
      problems: ['summary: must have required property \'summary\'', 'extra: must NOT have additional properties', 'severity: must be equal to one of the allowed values ("low", "high")', 'labels: must NOT have fewer than 1 items'],
    });
    expect(placeholderFor({ type: 'object', required: ['at', 'n'], properties: { at: { type: 'string', format: 'date-time' }, n: { type: 'number', exclusiveMinimum: 2 } } })).toEqual({ at: '2000-01-01T00:00:00.000Z', n: 3 });
  });
});

describe('through the CLI', () => {
  const env = cliEnv(redisUrl(), prefix);

  it('registers a YAML role (refusing bad files with exit 2), lists and shows it, and fleet run serves it and a FLEET_ROLE_MODULES role offline', SPAWNS_FLEET, async () => {
    const file = write('triage.yaml', ROLE_YAML);
    const added = await runCli(['roles', 'add', file], env);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toContain('role triage registered (model claude-haiku-4-5)');
    const again = await runCli(['roles', 'add', file], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already registered; `fleet roles add --replace`/);
    const clash = await runCli(['roles', 'add', write('clash.yaml', ROLE_YAML.replace('name: triage', 'name: reviewer'))], env);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain('"reviewer" is a built-in role');
    const list = await runCli(['roles', 'list'], env);
    expect(list.stdout).toMatch(/triage\s+registered\s+Triages a request/);
    expect(list.stdout).toMatch(/planner\s+built-in/);
    const show = await runCli(['roles', 'show', 'triage'], env);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'triage', builtin: false, model: 'claude-haiku-4-5', output_schema: OUTPUT_SCHEMA });

    const module = write('echo-role.mjs', `export default {
  name: 'echoer', description: 'Echoes the triage.', instructions: 'Repeat the triage summary.',
  outputJsonSchema: { type: 'object', required: ['echo'], properties: { echo: { type: 'string' } } },
};\n`);
    const wf = write('triage-wf.yaml', `name: triage-flow
agents: [planner, triage, echoer]
phases:
  - { name: plan, agent: planner, timeout: 20, retries: 0 }
  - { name: triage, agent: triage_agent, depends_on: [plan], timeout: 20, retries: 0 }
  - { name: echo, agent: echoer, depends_on: [triage], timeout: 20, retries: 0 }
`);
    const res = await runCli(['run', 'Fix the login page crash', '-w', wf, '--json', '--out', join(dir, 'out')], { ...env, FLEET_ROLE_MODULES: module });
    expect(res.code, res.stderr).toBe(0);
    const result = JSON.parse(res.stdout) as RunResult;
    expect(result.phases.map((p) => [p.name, p.agent, p.status])).toEqual([
      ['plan', 'planner', 'completed'],
      ['triage', 'triage', 'completed'],
      ['echo', 'echoer', 'completed'],
    ]);
    expect(result.results.triage).toEqual({ severity: 'low', summary: expect.stringContaining('[offline model') as string, labels: [expect.any(String) as string] });
    expect(result.results.echo).toEqual({ echo: expect.stringContaining('[offline model') as string });

    const unknown = await runCli(['agents', '--roles', 'nobody'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no agent role "nobody"; built-in roles: planner.*; registered roles: triage/);
  });

  it('fleet run takes --max-cost-usd and --max-tokens-budget: bad values exit 2, a run over budget fails with BUDGET_EXCEEDED', SPAWNS_FLEET, async () => {
    const bad = await runCli(['run', 'Build a todo API', '--max-cost-usd', 'ten'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-cost-usd must be a number > 0 (e.g. 2.50), got "ten"');
    const badTokens = await runCli(['run', 'Build a todo API', '--max-tokens-budget', '0'], env);
    expect(badTokens.code).toBe(2);
    expect(badTokens.stderr).toContain('--max-tokens-budget must be a whole number ≥ 1, got "0"');

    // The offline model priced at $1,000 per million tokens: the planner's ~500-token prompt costs ~$0.50.
    const over = await runCli(['run', 'Build a todo API', '--json', '--max-cost-usd', '0.05', '--max-tokens-budget', '1000000', '--out', join(dir, 'budget')], {
      ...env,
      FLEET_PRICES: JSON.stringify({ 'agentfleet-offline': { input: 1000, output: 1000 } }),
    });
    expect(over.code).toBe(1);
    const result = JSON.parse(over.stdout) as RunResult;
    expect(result.status).toBe('failed');
    expect(result.errors[0]?.error.code).toBe('BUDGET_EXCEEDED');
    expect(result.errors[0]?.error.message).toMatch(/max_cost_usd budget of \$0\.05/);
  });

  it('a separate fleet agents --roles triage process serves the registered role through the real SDK: a reply failing the schema is repaired naming the violation; a phase model overrides the role model', SPAWNS_FLEET, async () => {
    await using fake = await startFakeAnthropic();
    const valid = { severity: 'high', summary: 'The login page crashes on submit.', labels: ['bug', 'auth'] };
    fake.enqueue({ toolInput: { severity: 'urgent', summary: 'x', labels: ['bug'] } }, { toolInput: valid }, { toolInput: valid });
    await using agents = spawnCli(['agents', '--roles', 'triage'], { ...env, ANTHROPIC_API_KEY: 'sk-ant-test-key', ANTHROPIC_BASE_URL: fake.url });
    await agents.waitFor('agents: serving triage');

    const manager = await startManager({ redisUrl: redisUrl(), prefix, warn: () => undefined });
    const redis = createRedis(redisUrl());
    const blocking = createRedis(redisUrl(), { forWorker: true });
    const client = new FleetClient(redis, prefix);
    try {
      const workflow = testWorkflow({
        name: 'triage-remote',
        agents: ['triage'],
        phases: [
          { name: 'first', agent: 'triage', model: 'claude-sonnet-4-5', timeout: 20, retries: 0 },
          { name: 'second', agent: 'triage', depends_on: ['first'], timeout: 20, retries: 0 },
        ],
      });
      const runId = await client.submit({ workflow, requirements: 'Fix the login page crash', provider: 'anthropic' });
      const result = await client.follow(runId, blocking, () => undefined);
      expect(result.status, JSON.stringify(result.errors)).toBe('completed');
      expect(result.results.first).toEqual(valid);
      expect(result.results.second).toEqual(valid);
    } finally {
      await manager.close();
      await client.close();
      blocking.disconnect();
      redis.disconnect();
    }
    const bodies = fake.requests.map((r) => r.body as { model: string; tools: Array<{ name: string; input_schema: unknown }>; messages: Array<{ content: unknown }> });
    expect(bodies).toHaveLength(3);
    // The tool's input schema is the role file's output_schema in its structured-output form (strict):
    // what a grammar cannot express is left to the validator, which still checks the schema as written.
    expect(bodies[0]?.tools[0]).toMatchObject({
      name: 'submit_triage_output',
      strict: true,
      input_schema: {
        ...OUTPUT_SCHEMA,
        properties: { severity: { enum: ['low', 'high'] }, summary: { type: 'string' }, labels: { type: 'array', minItems: 1, items: { type: 'string' } }, effort_days: { type: 'integer' } },
      },
    });
    // The repair names the JSON Schema violation.
    expect(JSON.stringify(bodies[1]?.messages.at(-1)?.content)).toContain('severity: must be equal to one of the allowed values (\\"low\\", \\"high\\")');
    // Phase `first` (and its repair) on the phase's model; phase `second` on the role file's model.
    expect(bodies.map((b) => b.model)).toEqual(['claude-sonnet-4-5', 'claude-sonnet-4-5', 'claude-haiku-4-5']);

    await agents.stop();
    expect((await runCli(['roles', 'remove', 'triage'], env)).code).toBe(0);
    const gone = await runCli(['roles', 'show', 'triage'], env);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('no custom role "triage" is registered');
  });
});
