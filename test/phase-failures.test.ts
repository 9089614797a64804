/**
 * Retries, timeouts, schema repair, rate limits and continue_on_error, end to end on real Redis:
 * manager and agent pools in this process, the agents calling the real Anthropic SDK against a local
 * server that speaks the Messages API.
 */
import { designer, planner, type Design, type Plan } from '@agentfleet/agents';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from './support/fake-anthropic.js';
import { fakeAnthropicClient, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';

const emptyInput = { requirements: 'Build a todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan: Plan = planner.offline(emptyInput);
const design: Design = designer.offline(emptyInput);

let fake: FakeAnthropic;
let fleet: FleetFixture;

beforeEach(async () => {
  fake = await startFakeAnthropic();
  fleet = await startFleet({ name: 'phase-failures', roles: [planner, designer], llm: fakeAnthropicClient(fake.url) });
});
afterEach(async () => {
  await fleet.close();
  await fake.close();
});

const onePhase = (extra: Record<string, unknown>) =>
  testWorkflow({ agents: ['planner'], phases: [{ name: 'planning', agent: 'planner', timeout: 10, ...extra }] });

describe('a phase through the Anthropic provider', () => {
  it('fails twice (529, 500), backs off exponentially, then succeeds', async () => {
    fake.enqueue(
      { status: 529, errorType: 'overloaded_error', message: 'Overloaded' },
      { status: 500, errorType: 'api_error', message: 'Internal server error' },
      { toolInput: plan, usage: { input_tokens: 120, output_tokens: 80 } },
    );
    const { result, events } = await fleet.run(onePhase({ retries: 2, retry_delay: 0.2 }), 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(result.phases[0]).toMatchObject({ name: 'planning', status: 'completed', attempts: 3 });
    expect(result.results.planning).toEqual(plan);
    expect(result.usage).toMatchObject({ input_tokens: 120, output_tokens: 80 });
    const retries = events.filter((e) => e.type === 'phase_retry');
    expect(retries.map((e) => e.error.code)).toEqual(['PROVIDER_OVERLOADED', 'PROVIDER_OVERLOADED']);
    // The backoff scheduled before each retry: retry_delay 0.2 s doubling, with equal jitter (half
    // fixed, half random): 100-200 ms, then 200-400 ms.
    const [d1, d2] = retries.map((e) => e.delay_ms);
    expect(d1).toBeGreaterThanOrEqual(100);
    expect(d1).toBeLessThanOrEqual(200);
    expect(d2).toBeGreaterThanOrEqual(200);
    expect(d2).toBeLessThanOrEqual(400);
    // That this delay is the one BullMQ waits is apps/agents/src/phase-job.test.ts's: no clock is read here.
  });

  it('aborts the provider call when the phase times out, and fails the phase', async () => {
    fake.enqueue({ hang: true });
    const { result } = await fleet.run(onePhase({ retries: 0, timeout: 0.5 }), 'Build a todo API');
    expect(result.status).toBe('failed');
    expect(result.phases[0]?.error?.code).toBe('PHASE_TIMEOUT');
    await fake.waitForAborted(1);
    expect(fake.aborted).toBe(1);
  });

  it('feeds a validation error back to the model and accepts the repaired reply', async () => {
    fake.enqueue({ toolInput: { summary: 'no tasks here' } }, { toolInput: plan });
    const { result } = await fleet.run(onePhase({ retries: 0 }), 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(result.phases[0]?.attempts).toBe(1);
    expect(fake.requests).toHaveLength(2);
    const repair = JSON.stringify(fake.requests[1]?.body);
    expect(repair).toContain('That tool input is not valid');
    expect(repair).toContain('tasks');
  });

  it('waits for retry-after on a 429 and then succeeds', async () => {
    fake.enqueue({ status: 429, errorType: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit', headers: { 'retry-after': '1' } }, { toolInput: plan });
    const { result, events } = await fleet.run(onePhase({ retries: 1, retry_delay: 0.05 }), 'Build a todo API');
    expect(result.status).toBe('completed');
    // The scheduled backoff is the provider's retry-after (1 s), not the 25-50 ms of retry_delay.
    const retries = events.filter((e) => e.type === 'phase_retry');
    expect(retries.map((e) => [e.error.code, e.delay_ms])).toEqual([['PROVIDER_RATE_LIMITED', 1000]]);
    expect(fake.requests).toHaveLength(2);
  });

  it('fails at once on a permanent error (400), without retrying', async () => {
    fake.enqueue({ status: 400, errorType: 'invalid_request_error', message: 'messages: field required' });
    const { result } = await fleet.run(onePhase({ retries: 3 }), 'Build a todo API');
    expect(result.status).toBe('failed');
    expect(result.phases[0]?.error).toMatchObject({ code: 'PROVIDER_BAD_REQUEST', retryable: false });
    expect(result.phases[0]?.error?.message).toContain('messages: field required');
    expect(fake.requests).toHaveLength(1);
  });
});

describe('continue_on_error with an independent branch', () => {
  // a (planner) fails permanently; b depends on a; c is independent of both.
  const branchy = (continueOnError: boolean) =>
    testWorkflow({
      agents: ['planner', 'designer'],
      error_handling: { continue_on_error: continueOnError },
      phases: [
        { name: 'a', agent: 'planner', retries: 0 },
        { name: 'b', agent: 'designer', depends_on: ['a'] },
        { name: 'c', agent: 'designer' },
      ],
    });

  it('false: the run fails, the independent phase in flight is cancelled (its call aborted), the dependent skipped', async () => {
    fake.setResponder((req) =>
      req.forcedToolName === 'submit_planner_output'
        ? { delayMs: 300, then: { status: 400, errorType: 'invalid_request_error', message: 'bad prompt' } }
        : { delayMs: 5000, then: { toolInput: design } },
    );
    const { result } = await fleet.run(branchy(false), 'Build a todo API');
    expect(result.status).toBe('failed');
    expect(result.phases.map((p) => [p.name, p.status])).toEqual([['a', 'failed'], ['b', 'skipped'], ['c', 'cancelled']]);
    expect(result.errors.map((e) => e.phase)).toEqual(['a']);
    await fake.waitForAborted(1);
  });

  it('true: the error is recorded, the dependent is skipped with the reason, the independent phase completes', async () => {
    fake.setResponder((req) =>
      req.forcedToolName === 'submit_planner_output'
        ? { status: 400, errorType: 'invalid_request_error', message: 'bad prompt' }
        : { delayMs: 300, then: { toolInput: design } },
    );
    const { result } = await fleet.run(branchy(true), 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(result.phases.map((p) => [p.name, p.status])).toEqual([['a', 'failed'], ['b', 'skipped'], ['c', 'completed']]);
    expect(result.phases[1]?.reason).toBe('dependency "a" failed');
    expect(result.failed_phases).toEqual(['a']);
    expect(result.errors).toEqual([{ phase: 'a', error: expect.objectContaining({ code: 'PROVIDER_BAD_REQUEST' }) }]);
    expect(result.results.c).toEqual(design);
  });
});
