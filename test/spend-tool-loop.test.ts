/**
 * Spending inside a tool loop, end to end on real Redis through the real Anthropic SDK against the
 * local server that speaks the Messages and Message Batches APIs: a `mode: batch` phase with a tool
 * sends every model call of its loop as its own batch (the tool call's `tool_use` and its
 * `tool_result` travel in the second one), each with the phase's 1-hour prompt cache breakpoints,
 * and its budget counts every call of the loop at the batch price.
 */
import { planner, type RoleInput } from '@agentfleet/agents';
import { createAnthropicBatches, createRedis, type RunResult, type StoredRunEvent } from '@agentfleet/core';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic, type FakeRequest } from './support/fake-anthropic.js';
import { fakeAnthropicClient, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';

const MODEL = 'claude-sonnet-5-5'; // $3 / $15 per MTok; half through the Batches API
const base: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'planning', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan = planner.offline(base);

let fake: FakeAnthropic | undefined;
let fleet: FleetFixture | undefined;
afterEach(async () => {
  await fleet?.close();
  await fake?.close();
  fleet = undefined;
  fake = undefined;
});

/** The request's messages carry a tool result: the loop's second call. */
const hasToolResult = (req: FakeRequest): boolean => JSON.stringify(req.body?.['messages'] ?? []).includes('"tool_result"');

describe('a tool loop in batch mode', () => {
  it('sends each call of the loop as a batch with the 1-hour cache TTL, and its budget counts both at the batch price', async () => {
    fake = await startFakeAnthropic({ batches: { endAfterRetrievals: 0 } });
    fake.setResponder((req: FakeRequest) =>
      hasToolResult(req)
        ? { toolInput: plan, toolName: 'submit_planner_output', usage: { input_tokens: 1000, output_tokens: 1000 } }
        : { toolCalls: [{ name: 'list_files', input: { path: '.' } }], usage: { input_tokens: 1000, output_tokens: 1000 } },
    );
    fleet = await startFleet({
      name: 'spend-tool-loop',
      llm: fakeAnthropicClient(fake.url, MODEL),
      manager: { batches: createAnthropicBatches({ anthropicApiKey: 'sk-ant-test-key', anthropicBaseUrl: fake.url }), batchPollMs: 50 },
    });
    // Direct, the two calls cost $0.036: over the budget before the second one. In batches, $0.018.
    const workflow = testWorkflow({
      agents: ['planner'],
      budget: { max_cost_usd: 0.03 },
      phases: [{ name: 'planning', agent: 'planner', mode: 'batch', prompt_cache_ttl: '1h', tools: ['list_files'] }],
    });
    const runId = await fleet.client.submit({ workflow, requirements: 'Build a todo API', provider: 'test' });
    const events: StoredRunEvent['event'][] = [];
    const blocking = createRedis(fleet.url, { forWorker: true });
    const result: RunResult = await fleet.client.follow(runId, blocking, (e) => events.push(e.event)).finally(() => blocking.disconnect());

    expect(result.status, JSON.stringify(result.errors)).toBe('completed');
    expect(result.results.planning).toEqual(plan);
    // One batch per model call of the loop, none sent directly.
    expect(fake.batches).toHaveLength(2);
    expect(fake.requests.filter((r) => r.path === '/v1/messages')).toHaveLength(0);
    const [first, second] = fake.batches.map((b) => b.requests[0]?.params ?? {});
    expect(JSON.stringify(first?.['system'])).toContain('"ttl":"1h"');
    expect(JSON.stringify(second?.['system'])).toContain('"ttl":"1h"');
    expect(JSON.stringify(second?.['messages'])).toContain('"cache_control":{"type":"ephemeral","ttl":"1h"}');
    // The second call carries the first one's tool call and its result as tool blocks.
    const messages = second?.['messages'] as Array<{ role: string; content: Array<{ type: string; name?: string; tool_use_id?: string }> }>;
    expect(messages.map((m) => m.content.map((b) => b.type))).toEqual([['text', 'text'], ['tool_use'], ['tool_result']]);
    expect(messages[1]?.content[0]?.name).toBe('list_files');
    // The job came back once per batch; the journal replayed the tool call instead of running it again.
    expect(events.filter((e) => e.type === 'tool_call').map((e) => (e as { tool: string }).tool)).toEqual(['list_files']);
    expect(events.filter((e) => e.type === 'phase_waiting' && e.event === 'batch')).toHaveLength(2);
    // Both calls billed once each, at half the price; the ledger counted what the phase reports.
    const planning = result.phases.find((p) => p.name === 'planning');
    expect(planning).toMatchObject({ status: 'completed', attempts: 1, mode: 'batch' });
    expect(planning?.usage).toMatchObject({ input_tokens: 2000, output_tokens: 2000 });
    expect(planning?.usage.cost_usd).toBeCloseTo(0.018, 9);
    expect(Number(await fleet.redis.hget(`${fleet.prefix}:run:${runId}:budget`, 'run:spent_usd'))).toBeCloseTo(0.018, 9);
    expect(fake.billed.requests).toBe(2);
  });
});
