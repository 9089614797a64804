/**
 * Real agents at real cost (issue 8), end to end on real Redis through the real Anthropic SDK against
 * a local Messages API server: usage with cache counts and cost per phase and run, the stable
 * cached prompt prefix across a review loop, the coder's streamed reply (and an error mid-stream),
 * and budgets per run, per phase and per request.
 */
import { coder, designer, planner, type RoleInput } from '@agentfleet/agents';
import { createRedis, loadBuiltinWorkflow } from '@agentfleet/core';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic, type FakeReply, type FakeRequest } from './support/fake-anthropic.js';
import { fakeAnthropicClient, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';

const MODEL = 'claude-sonnet-5-5'; // $3 / $15 per MTok, cache writes $3.75, reads $0.30
const base: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan = planner.offline(base);
const design = designer.offline({ ...base, upstream: [{ phase: 'planning', role: 'planner', output: plan }] });
const code = coder.offline({ ...base, upstream: [{ phase: 'design', role: 'designer', output: design }] });
const approve = { verdict: 'approve', findings: [], summary: 'looks good' };
const changes = { verdict: 'changes_requested', findings: [{ severity: 'major', file: 'src/server.mjs', message: 'validate input' }], summary: 'needs work' };

const toolOf = (r: FakeRequest) => r.forcedToolName?.replace(/^submit_|_output$/g, '') ?? '';
const ofRole = (fake: FakeAnthropic, role: string) => fake.requests.filter((r) => toolOf(r) === role);

let fake: FakeAnthropic | undefined;
let fleet: FleetFixture | undefined;
afterEach(async () => {
  await fleet?.close();
  await fake?.close();
  fleet = undefined;
  fake = undefined;
});

async function setup(name: string, reply: (role: string, n: number) => FakeReply): Promise<{ fake: FakeAnthropic; fleet: FleetFixture }> {
  fake = await startFakeAnthropic();
  const seen: Record<string, number> = {};
  fake.setResponder((req) => {
    const role = toolOf(req);
    seen[role] = (seen[role] ?? 0) + 1;
    return reply(role, seen[role]);
  });
  fleet = await startFleet({ name, llm: fakeAnthropicClient(fake.url, MODEL) });
  return { fake, fleet };
}

const outputs: Record<string, unknown> = { planner: plan, designer: design, coder: code, reviewer: approve };

describe('usage, cost and prompt caching', () => {
  it('keeps the prompt prefix byte-identical across a review loop, marks it cacheable, and reports cache tokens and cost per phase and run', async () => {
    const { fake, fleet } = await setup('cost-cache', (role, n) => {
      if (role === 'reviewer') return { toolInput: n === 1 ? changes : approve, usage: { input_tokens: 100, output_tokens: 50 } };
      // The second coder call finds its prefix in the provider's cache.
      if (role === 'coder') return { toolInput: code, usage: n === 1 ? { input_tokens: 200, output_tokens: 1000, cache_creation_input_tokens: 1500 } : { input_tokens: 200, output_tokens: 1000, cache_read_input_tokens: 1500 } };
      return { toolInput: outputs[role], usage: { input_tokens: 1000, output_tokens: 500 } };
    });
    const { result } = await fleet.run(await loadBuiltinWorkflow('software-delivery'), 'Build a todo API');
    expect(result.status).toBe('completed');

    const coderBodies = ofRole(fake, 'coder').map((r) => r.body as { system: unknown; messages: Array<{ content: Array<{ text: string; cache_control?: unknown }> }>; stream?: boolean });
    expect(coderBodies).toHaveLength(2);
    const [first, second] = coderBodies;
    // Breakpoints on the system prompt and on the first user block; the second block (the findings) varies.
    expect(first?.system).toEqual([expect.objectContaining({ type: 'text', cache_control: { type: 'ephemeral' } })]);
    expect(JSON.stringify(second?.system)).toBe(JSON.stringify(first?.system));
    const [prefix1, tail1] = first?.messages[0]?.content ?? [];
    const [prefix2, tail2] = second?.messages[0]?.content ?? [];
    expect(prefix1?.cache_control).toEqual({ type: 'ephemeral' });
    expect(JSON.stringify(prefix2)).toBe(JSON.stringify(prefix1));
    expect(prefix1?.text).toContain('<data kind="output" phase="design"');
    expect(tail1?.cache_control).toBeUndefined();
    expect(tail2?.text).toContain('validate input');
    expect(tail1?.text).not.toContain('validate input');
    // The coder's long reply is streamed (server-sent events).
    expect(first?.stream).toBe(true);

    const implementation = result.phases.find((p) => p.name === 'implementation');
    expect(implementation?.usage).toMatchObject({ input_tokens: 400, output_tokens: 2000, cache_creation_input_tokens: 1500, cache_read_input_tokens: 1500 });
    // 400 in × $3 + 2000 out × $15 + 1500 writes × $3.75 + 1500 reads × $0.30, per MTok.
    expect(implementation?.usage.cost_usd).toBeCloseTo((400 * 3 + 2000 * 15 + 1500 * 3.75 + 1500 * 0.3) / 1e6, 6);
    const planning = result.phases.find((p) => p.name === 'planning');
    expect(planning?.usage).toEqual({ input_tokens: 1000, output_tokens: 500, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, cost_usd: 0.0105 });
    const sum = (k: 'input_tokens' | 'output_tokens' | 'cache_read_input_tokens' | 'cost_usd') => result.phases.reduce((a, p) => a + (p.usage[k] ?? 0), 0);
    expect(result.usage).toMatchObject({ input_tokens: sum('input_tokens'), output_tokens: sum('output_tokens'), cache_read_input_tokens: 1500, cache_creation_input_tokens: 1500 });
    expect(result.usage.cost_usd).toBeCloseTo(sum('cost_usd'), 6);
  });

  it('retries the whole attempt when the stream fails after the first bytes; nothing partial reaches the context', async () => {
    const { fake, fleet } = await setup('stream-error', (role, n) => {
      if (role === 'coder' && n === 1) return { streamError: { errorType: 'overloaded_error', message: 'Overloaded' }, afterDeltas: 3, toolInput: { files: [{ path: 'HALF-WRITTEN', language: 'x', content: 'x'.repeat(200) }], notes: '' } };
      return { toolInput: outputs[role] };
    });
    const wf = testWorkflow({
      agents: ['planner', 'designer', 'coder'],
      phases: [
        { name: 'planning', agent: 'planner' },
        { name: 'design', agent: 'designer', depends_on: ['planning'] },
        { name: 'implementation', agent: 'coder', depends_on: ['design'], retries: 2, retry_delay: 0.05 },
      ],
    });
    const { result, events } = await fleet.run(wf, 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(ofRole(fake, 'coder')).toHaveLength(2);
    expect(result.phases.find((p) => p.name === 'implementation')).toMatchObject({ attempts: 2, status: 'completed' });
    const retry = events.find((e) => e.type === 'phase_retry') as { error: { code: string; details?: Record<string, unknown> } } | undefined;
    expect(retry?.error.code).toBe('PROVIDER_OVERLOADED');
    expect(retry?.error.details).toMatchObject({ mid_stream: true });
    expect(result.results.implementation).toEqual(code);
    expect(JSON.stringify(result)).not.toContain('HALF-WRITTEN');
  });
});

describe('budgets', () => {
  const twoPhases = (extra: Record<string, unknown>, phaseBudget?: Record<string, unknown>) =>
    testWorkflow({
      agents: ['planner', 'designer'],
      phases: [
        { name: 'planning', agent: 'planner', retries: 2 },
        { name: 'design', agent: 'designer', depends_on: ['planning'], retries: 2, ...(phaseBudget ? { budget: phaseBudget } : {}) },
        { name: 'other', agent: 'planner', retries: 2, depends_on: ['planning'] },
      ],
      ...extra,
    });

  it("fails a phase that would pass the run's max_cost_usd, permanently and at once, before calling the model", async () => {
    const { fake, fleet } = await setup('budget-run', (role) => ({ toolInput: outputs[role], usage: { input_tokens: 1000, output_tokens: 1000 } }));
    // Planning costs $0.018; what is left ($0.002) cannot pay for the next phase's input.
    const wf = testWorkflow({
      agents: ['planner', 'designer'],
      budget: { max_cost_usd: 0.02 },
      error_handling: { continue_on_error: true },
      phases: [
        { name: 'planning', agent: 'planner', retries: 2 },
        { name: 'design', agent: 'designer', depends_on: ['planning'], retries: 2 },
      ],
    });
    const { result } = await fleet.run(wf, 'Build a todo API');
    expect(result.phases.find((p) => p.name === 'planning')?.status).toBe('completed');
    const design = result.phases.find((p) => p.name === 'design');
    expect(design).toMatchObject({ status: 'failed', attempts: 1 });
    expect(design?.error).toMatchObject({ code: 'BUDGET_EXCEEDED', retryable: false });
    expect(design?.error?.message).toMatch(/the run would exceed its max_cost_usd budget of \$0\.02.*raise the workflow's budget/);
    expect(fake.requests.filter((r) => toolOf(r) === 'designer')).toHaveLength(0);
    expect(result.usage.cost_usd).toBeLessThanOrEqual(0.02);
  });

  it("caps a phase by its own max_tokens before calling (no request sent), and takes a request's budget", async () => {
    const { fake, fleet } = await setup('budget-phase', (role) => ({ toolInput: outputs[role], usage: { input_tokens: 100, output_tokens: 100 } }));
    const { result } = await fleet.run(twoPhases({ error_handling: { continue_on_error: true } }, { max_tokens: 50 }), 'Build a todo API');
    const design = result.phases.find((p) => p.name === 'design');
    expect(design?.error).toMatchObject({ code: 'BUDGET_EXCEEDED' });
    expect(design?.error?.message).toContain('phase "design" would exceed its max_tokens budget of 50');
    expect(ofRole(fake, 'designer')).toHaveLength(0);
    expect(result.phases.find((p) => p.name === 'other')?.status).toBe('completed');

    // The request's budget (FleetClient.submit `budget`) tightens the workflow's:
    // 200 tokens cannot pay for the planner's prompt.
    const before = fake.requests.length;
    const runId = await fleet.client.submit({ workflow: twoPhases({ budget: { max_tokens: 1_000_000 } }), requirements: 'Build a todo API', provider: 'test', budget: { maxTokens: 200 } });
    const blocking = createRedis(fleet.url, { forWorker: true });
    const second = await fleet.client.follow(runId, blocking, () => undefined).finally(() => blocking.disconnect());
    expect(second.status).toBe('failed');
    expect(second.errors[0]).toMatchObject({ phase: 'planning', error: { code: 'BUDGET_EXCEEDED' } });
    expect(fake.requests.length).toBe(before);
  });
});
