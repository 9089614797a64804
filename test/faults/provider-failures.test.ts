/**
 * Fault 6 of issue 6: provider failures through the local Messages API server, driving the real
 * SDK. What `test/phase-failures.test.ts` already proves (529 and 500 retried with backoff, 429 with
 * `retry-after`, a 400 failing at once, a hung call aborted by the phase timeout) is not repeated;
 * this file adds `request_too_large`, a hung connection retried within the phase's attempts, and the
 * token accounting: tokens are counted once for every attempt the provider billed, failed ones too.
 *
 * Streaming (an SSE `error` event after a 200) is not tested: the Anthropic provider does not stream
 * (`messages.create` without `stream`), so there is no such path yet.
 */
import { planner, type Plan } from '@agentfleet/agents';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from '../support/fake-anthropic.js';
import { fakeAnthropicClient, startFleet, testWorkflow, type FleetFixture } from '../support/fleet.js';

const plan: Plan = planner.offline({ requirements: 'Build a todo API', variables: {}, phase: 'planning', instructions: undefined, upstream: [], upstreamErrors: [] });

let fake: FakeAnthropic;
let fleet: FleetFixture;

beforeEach(async () => {
  fake = await startFakeAnthropic();
  fleet = await startFleet({ name: 'fault-provider', roles: [planner], llm: fakeAnthropicClient(fake.url) });
});
afterEach(async () => {
  await fleet.close();
  await fake.close();
});

const onePhase = (extra: Record<string, unknown>) =>
  testWorkflow({ agents: ['planner'], phases: [{ name: 'planning', agent: 'planner', timeout: 10, retry_delay: 0.05, ...extra }] });

describe('provider failures', () => {
  it('request_too_large (413) fails the phase at once with the provider message, without retrying', async () => {
    fake.enqueue({ status: 413, errorType: 'request_too_large', message: 'Request exceeds the maximum allowed number of bytes.' });
    const { result } = await fleet.run(onePhase({ retries: 3 }), 'Build a todo API');
    expect(result.status).toBe('failed');
    expect(result.phases[0]?.error).toMatchObject({ code: 'PROVIDER_BAD_REQUEST', retryable: false });
    expect(result.phases[0]?.error?.message).toContain('Request exceeds the maximum allowed number of bytes.');
    expect(fake.requests).toHaveLength(1);
    expect(result.usage).toMatchObject({ input_tokens: 0, output_tokens: 0 });
  });

  it('a connection that never answers is aborted at the phase timeout and retried; the retry succeeds', async () => {
    fake.enqueue({ hang: true }, { toolInput: plan, usage: { input_tokens: 200, output_tokens: 100 } });
    const { result, events } = await fleet.run(onePhase({ retries: 1, timeout: 0.8 }), 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(result.phases[0]).toMatchObject({ status: 'completed', attempts: 2 });
    expect(events.filter((e) => e.type === 'phase_retry').map((e) => (e as { error: { code: string } }).error.code)).toEqual(['PHASE_TIMEOUT']);
    await fake.waitForAborted(1);
    // The aborted call was never answered, so never billed.
    expect(result.usage).toMatchObject({ input_tokens: 200, output_tokens: 100 });
  });

  it('counts tokens once per billed attempt: a failed attempt whose first reply was billed still counts', async () => {
    fake.enqueue(
      // Attempt 1: a billed reply that fails validation, then an overload on the repair call.
      { toolInput: { summary: 'no tasks' }, usage: { input_tokens: 100, output_tokens: 50 } },
      { status: 529, errorType: 'overloaded_error', message: 'Overloaded' },
      // Attempt 2: a 429 (not billed), then attempt 3 answers.
      { status: 429, errorType: 'rate_limit_error', message: 'slow down', headers: { 'retry-after': '0' } },
      { toolInput: plan, usage: { input_tokens: 120, output_tokens: 80 } },
    );
    const { result } = await fleet.run(onePhase({ retries: 2 }), 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(result.phases[0]?.attempts).toBe(3);
    expect(fake.requests).toHaveLength(4);
    expect(result.usage).toMatchObject({ input_tokens: 220, output_tokens: 130 });
    expect(result.phases[0]?.usage).toMatchObject({ input_tokens: 220, output_tokens: 130 });
  });

  it('counts the billed replies of an attempt that ends with invalid output', async () => {
    const bad = { toolInput: { summary: 'still no tasks' }, usage: { input_tokens: 10, output_tokens: 5 } };
    fake.enqueue(bad, bad, bad);
    const { result } = await fleet.run(onePhase({ retries: 0 }), 'Build a todo API');
    expect(result.status).toBe('failed');
    expect(result.phases[0]?.error?.code).toBe('OUTPUT_INVALID');
    expect(result.usage).toMatchObject({ input_tokens: 30, output_tokens: 15 });
  });
});
