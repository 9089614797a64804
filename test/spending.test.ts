/**
 * Spending like a scheduler, end to end on real Redis through the real Anthropic SDK against a local
 * Messages API server: a budget with `on_exceed: wait` pauses the run (`waiting_for: budget`), a
 * `budget` event sent with the real `fleet event` CLI raises it and the phase goes on; two phases
 * running at the same time reserve what their calls may cost, so together they do not pass the
 * run's budget.
 */
import { createRedis, modelPrice, type RunResult, type StoredRunEvent } from '@agentfleet/core';
import { coder, designer, planner, type RoleInput } from '@agentfleet/agents';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic, type FakeReply, type FakeRequest } from './support/fake-anthropic.js';
import { cliEnv, fakeAnthropicClient, runCli, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';
import { startHttpApi } from '@agentfleet/manager';

const MODEL = 'claude-sonnet-5-5'; // $3 / $15 per MTok
const PRICE = modelPrice(MODEL);
const base: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan = planner.offline(base);
const design = designer.offline({ ...base, upstream: [{ phase: 'planning', role: 'planner', output: plan }] });
const outputs: Record<string, unknown> = { planner: plan, designer: design, coder: coder.offline(base) };
const toolOf = (r: FakeRequest) => r.forcedToolName?.replace(/^submit_|_output$/g, '') ?? '';

let fake: FakeAnthropic | undefined;
let fleet: FleetFixture | undefined;
let closeApi: (() => Promise<void>) | undefined;
afterEach(async () => {
  await closeApi?.();
  closeApi = undefined;
  await fleet?.close();
  await fake?.close();
  fleet = undefined;
  fake = undefined;
});

/** Submit `workflow`, calling `onEvent` with each run event, and resolve with the result once the run ends. */
async function submit(f: FleetFixture, workflow: ReturnType<typeof testWorkflow>, onEvent: (e: StoredRunEvent['event']) => void): Promise<{ runId: string; done: Promise<RunResult> }> {
  const runId = await f.client.submit({ workflow, requirements: 'Build a todo API', provider: 'test' });
  const blocking = createRedis(f.url, { forWorker: true });
  const done = f.client.follow(runId, blocking, (e) => onEvent(e.event)).finally(() => blocking.disconnect());
  return { runId, done };
}

describe('budgets that pause', () => {
  it('puts the run in waiting (waiting_for: budget) before the call that would pass it; `fleet event <run> budget` raises it and the run completes', async () => {
    fake = await startFakeAnthropic();
    // Every call bills 1000 input and 1000 output tokens: $0.018.
    fake.setResponder((req) => ({ toolInput: outputs[toolOf(req)], usage: { input_tokens: 1000, output_tokens: 1000 } }));
    fleet = await startFleet({ name: 'budget-wait', llm: fakeAnthropicClient(fake.url, MODEL) });
    const wf = testWorkflow({
      agents: ['planner', 'designer'],
      budget: { max_cost_usd: 0.0181, on_exceed: 'wait' },
      phases: [
        { name: 'planning', agent: 'planner' },
        { name: 'design', agent: 'designer', depends_on: ['planning'] },
      ],
    });
    let onWaiting: (e: StoredRunEvent['event']) => void = () => undefined;
    const waiting = new Promise<StoredRunEvent['event']>((resolve) => (onWaiting = resolve));
    const { runId, done } = await submit(fleet, wf, (e) => {
      if (e.type === 'phase_waiting' && e.event === 'budget') onWaiting(e);
    });
    const waited = await waiting;
    expect(waited).toMatchObject({ phase: 'design', prompt: { scope: 'run', limit: 'max_cost_usd', max: 0.0181, call: { model: MODEL } } });

    const paused = await fleet.client.result(runId);
    expect(paused.status).toBe('waiting');
    expect(paused.waiting_for).toHaveLength(1);
    expect(paused.waiting_for[0]).toMatchObject({ phase: 'design', event: 'budget', prompt: { scope: 'run', limit: 'max_cost_usd', max: 0.0181 } });
    expect((paused.waiting_for[0]?.prompt as { spent: number }).spent).toBeCloseTo(0.018, 9);
    expect(paused.phases.find((p) => p.name === 'design')?.status).toBe('waiting');
    // Stopped before its call: the designer was never asked.
    expect(fake.requests.filter((r) => toolOf(r) === 'designer')).toHaveLength(0);

    // Data that is no raise is refused by the CLI, naming the fix.
    const bad = await runCli(['event', runId, 'budget', '--data', '{"add_usd": -1}'], cliEnv(fleet.url, fleet.prefix));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('add_usd must be a number of USD > 0');

    const sent = await runCli(['event', runId, 'budget', '--data', '{"add_usd": 2}'], cliEnv(fleet.url, fleet.prefix));
    expect(sent.stderr + sent.stdout).toContain(`event "budget" sent to run ${runId}`);
    const result = await done;
    expect(result.status).toBe('completed');
    expect(result.results.design).toEqual(design);
    expect(fake.requests.filter((r) => toolOf(r) === 'designer')).toHaveLength(1);
    expect(result.usage.cost_usd).toBeCloseTo(0.036, 9);
  });

  it('with on_exceed: fail (the default) fails the phase with BUDGET_EXCEEDED as before', async () => {
    fake = await startFakeAnthropic();
    fake.setResponder((req) => ({ toolInput: outputs[toolOf(req)], usage: { input_tokens: 1000, output_tokens: 1000 } }));
    fleet = await startFleet({ name: 'budget-fail', llm: fakeAnthropicClient(fake.url, MODEL) });
    const wf = testWorkflow({
      agents: ['planner', 'designer'],
      budget: { max_cost_usd: 0.0181 },
      phases: [
        { name: 'planning', agent: 'planner' },
        { name: 'design', agent: 'designer', depends_on: ['planning'] },
      ],
    });
    const { done } = await submit(fleet, wf, () => undefined);
    const result = await done;
    expect(result.status).toBe('failed');
    expect(result.errors[0]).toMatchObject({ phase: 'design', error: { code: 'BUDGET_EXCEEDED' } });
    expect(fake.requests.filter((r) => toolOf(r) === 'designer')).toHaveLength(0);
  });
});

describe('budgets that pause, over the HTTP API', () => {
  it('takes on_exceed in the request budget, refuses a budget event that is no raise (400), and goes on after a raise', async () => {
    fake = await startFakeAnthropic();
    fake.setResponder((req) => ({ toolInput: outputs[toolOf(req)], usage: { input_tokens: 1000, output_tokens: 1000 } }));
    fleet = await startFleet({ name: 'budget-http', llm: fakeAnthropicClient(fake.url, MODEL) });
    const admin = 'admin-key-0123456789abcdef';
    const api = await startHttpApi({ redisUrl: fleet.url, prefix: fleet.prefix, port: 0, host: '127.0.0.1', adminKeys: [admin], provider: 'anthropic' });
    closeApi = () => api.close();
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(api.url + path, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const workflow = {
      name: 'budget-http',
      agents: ['planner', 'designer'],
      phases: [
        { name: 'planning', agent: 'planner' },
        { name: 'design', agent: 'designer', depends_on: ['planning'] },
      ],
    };
    const created = await call('POST', '/api/runs', { requirements: 'Build a todo API', workflow, budget: { max_cost_usd: 0.0181, on_exceed: 'wait' } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const runId = String(created.body.run_id);
    let onWaiting: () => void = () => undefined;
    const waiting = new Promise<void>((resolve) => (onWaiting = resolve));
    const blocking = createRedis(fleet.url, { forWorker: true });
    const done = fleet.client
      .follow(runId, blocking, (e) => {
        if (e.event.type === 'phase_waiting' && e.event.event === 'budget') onWaiting();
      })
      .finally(() => blocking.disconnect());
    await waiting;
    const shown = await call('GET', `/api/runs/${runId}`);
    expect(shown.body).toMatchObject({ status: 'waiting', waiting_for: [{ phase: 'design', event: 'budget' }] });

    const bad = await call('POST', `/api/runs/${runId}/events`, { type: 'budget', data: { add_usd: 0 } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('add_usd');
    const raised = await call('POST', `/api/runs/${runId}/events`, { type: 'budget', data: { add_usd: 2 } });
    expect(raised.status).toBe(202);
    expect((await done).status).toBe('completed');
  });
});

describe('reservations', () => {
  it('two phases running at the same time do not together pass the run budget: what the provider billed stays within it', async () => {
    fake = await startFakeAnthropic();
    const billed: number[] = [];
    let releaseFirst: () => void = () => undefined;
    const firstMayAnswer = new Promise<void>((resolve) => (releaseFirst = resolve));
    // Each reply wants 1000 output tokens and is cut off at the request's max_tokens, as the API does;
    // the provider bills what it sent.
    const reply = (req: FakeRequest): FakeReply => {
      const cap = Number(req.body?.max_tokens);
      const out = Math.min(1000, cap);
      billed.push((100 * (PRICE?.inputPerMTok ?? 0) + out * (PRICE?.outputPerMTok ?? 0)) / 1e6);
      return { toolInput: outputs.planner, usage: { input_tokens: 100, output_tokens: out }, ...(out < 1000 ? { stopReason: 'max_tokens' } : {}) };
    };
    fake.setResponder(async (req) => {
      // The first call is held until the other phase has either sent its own call (both in flight at
      // once) or is seen waiting for what the first one holds.
      if (fake?.requests.length === 1) await firstMayAnswer;
      else releaseFirst();
      return reply(req);
    });
    fleet = await startFleet({ name: 'budget-reserve', llm: fakeAnthropicClient(fake.url, MODEL) });
    const wf = testWorkflow({
      agents: ['planner'],
      // Each full reply costs $0.0003 + $0.015: two of them ($0.0306) would pass $0.03.
      budget: { max_cost_usd: 0.03 },
      error_handling: { continue_on_error: true },
      phases: [
        { name: 'a', agent: 'planner' },
        { name: 'b', agent: 'planner' },
      ],
    });
    const held: StoredRunEvent['event'][] = [];
    const { done } = await submit(fleet, wf, (e) => {
      if (e.type === 'budget_held') {
        held.push(e);
        releaseFirst();
      }
    });
    const result = await done;
    expect(held).toHaveLength(1);
    expect(billed.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(0.03);
    const statuses = result.phases.map((p) => p.status).sort();
    // One phase got its full reply; the other was capped to what was left, cut off there, and failed on the budget.
    expect(statuses).toEqual(['completed', 'failed']);
    expect(result.errors[0]?.error.code).toBe('BUDGET_EXCEEDED');
  });
});
