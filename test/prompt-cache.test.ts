/**
 * Prompt caching for long runs, end to end on real Redis through the real Anthropic SDK against a
 * local Messages API server that keeps a prompt cache with TTLs on its own clock: phases ten
 * minutes apart find their shared prefix gone with the default 5-minute TTL and still cached with
 * `prompt_cache_ttl: 1h`; 1-hour writes are priced 2× input, reads 0.1×; the run's result reports the
 * cache hit rate.
 */
import { planner } from '@agentfleet/agents';
import type { RunResult } from '@agentfleet/core';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from './support/fake-anthropic.js';
import { fakeAnthropicClient, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';

const MODEL = 'claude-sonnet-5-5'; // $3 / $15 per MTok; cache writes $3.75 (5m) or $6 (1h), reads $0.30
const plan = planner.offline({ requirements: 'Build a todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] });
const TEN_MINUTES = 10 * 60_000;

let fake: FakeAnthropic | undefined;
let fleet: FleetFixture | undefined;
afterEach(async () => {
  await fleet?.close();
  await fake?.close();
  fleet = undefined;
  fake = undefined;
});

/** Three planner phases one after another, each request ten minutes (on the server's clock) after the one before. */
async function runChain(name: string, ttl: '1h' | undefined): Promise<{ result: RunResult; fake: FakeAnthropic }> {
  const start = Date.now();
  let served = 0;
  fake = await startFakeAnthropic({ promptCache: { now: () => start + served * TEN_MINUTES } });
  fake.setResponder(() => {
    served += 1;
    return { toolInput: plan, usage: { output_tokens: 100 } };
  });
  fleet = await startFleet({ name, llm: fakeAnthropicClient(fake.url, MODEL) });
  const wf = testWorkflow({
    agents: ['planner'],
    ...(ttl ? { prompt_cache_ttl: ttl } : {}),
    phases: [
      { name: 'a', agent: 'planner' },
      { name: 'b', agent: 'planner', depends_on: ['a'] },
      { name: 'c', agent: 'planner', depends_on: ['b'] },
    ],
  });
  const { result } = await fleet.run(wf, 'Build a todo API');
  expect(result.status).toBe('completed');
  return { result, fake };
}

const hitRate = (u: RunResult['usage']) => (u.cache_read_input_tokens ?? 0) / (u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0));

/** Costs in results are rounded to a millionth of a dollar: `actual` is `exact` to within half of one. */
function expectUsd(actual: number | undefined, exact: number): void {
  expect(actual).toBeDefined();
  expect(Math.abs((actual ?? Number.NaN) - exact)).toBeLessThanOrEqual(0.5e-6 + 1e-12);
}

describe('prompt_cache_ttl', () => {
  it('with the default 5-minute TTL, phases ten minutes apart read nothing from the cache (hit rate 0)', async () => {
    const { result, fake } = await runChain('cache-5m', undefined);
    const system = fake.requests[0]?.body?.system as Array<{ cache_control?: unknown }>;
    expect(system[0]?.cache_control).toEqual({ type: 'ephemeral' });
    expect(result.usage.cache_read_input_tokens).toBe(0);
    expect(result.prompt_cache_hit_rate).toBe(0);
    const a = result.phases.find((p) => p.name === 'a');
    // 5-minute writes at 1.25× input.
    expectUsd(a?.usage.cost_usd, ((a?.usage.input_tokens ?? 0) * 3 + (a?.usage.cache_creation_input_tokens ?? 0) * 3.75 + 100 * 15) / 1e6);
  });

  it('with prompt_cache_ttl: 1h the shared prefix is still cached ten minutes later: writes cost 2×, reads 0.1×, and the result reports the hit rate', async () => {
    const { result, fake } = await runChain('cache-1h', '1h');
    const body = fake.requests[0]?.body as { system: Array<{ cache_control?: unknown }>; messages: Array<{ content: Array<{ cache_control?: unknown }> }> };
    expect(body.system[0]?.cache_control).toEqual({ type: 'ephemeral', ttl: '1h' });
    expect(body.messages[0]?.content[0]?.cache_control).toEqual({ type: 'ephemeral', ttl: '1h' });

    const [a, b, c] = ['a', 'b', 'c'].map((n) => result.phases.find((p) => p.name === n));
    expect(a?.usage.cache_read_input_tokens).toBe(0);
    // b and c share the tool definition and the system prompt with a (their upstream outputs differ).
    expect(b?.usage.cache_read_input_tokens).toBeGreaterThan(0);
    expect(c?.usage.cache_read_input_tokens).toBe(b?.usage.cache_read_input_tokens);
    for (const p of [a, b, c]) {
      const u = p?.usage;
      expectUsd(u?.cost_usd, ((u?.input_tokens ?? 0) * 3 + (u?.cache_creation_input_tokens ?? 0) * 6 + (u?.cache_read_input_tokens ?? 0) * 0.3 + 100 * 15) / 1e6);
    }
    expect(result.prompt_cache_hit_rate).toBeGreaterThan(0);
    expect(result.prompt_cache_hit_rate).toBeCloseTo(hitRate(result.usage), 4);
    expect(b?.prompt_cache_hit_rate).toBeCloseTo(hitRate(b?.usage ?? result.usage), 4);
  });
});
