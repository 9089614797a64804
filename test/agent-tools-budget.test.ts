/**
 * A budget wait in the middle of a tool loop, end to end on real Redis, through the real Anthropic
 * SDK against the local Messages API server, with a real MCP server (streamable HTTP, written with
 * `@modelcontextprotocol/sdk`, counting its calls): the coder creates a ticket (a side effect), then
 * its next model call would pass the run's budget (`on_exceed: wait`), so the run waits. The real
 * `fleet event <run> budget` raises it; the phase continues the same tool loop from its journal (the
 * model's reply and the tool's result replayed, not repeated), and the run completes with the ticket
 * created once and every reply counted once.
 */
import { coder, loadToolSettings, startAgentPool, type AgentPool } from '@agentfleet/agents';
import { compileWorkflow, type StoredRunEvent } from '@agentfleet/core';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FakeAnthropic } from './support/fake-anthropic.js';
import { blocksOf, closeToolFleet, openToolFleet, type ToolFleet } from './support/tool-fleet.js';
import { cliEnv, fakeAnthropicClient, runCli } from './support/fleet.js';
import { startMcpHttpServer } from './support/mcp-http.js';
import { codeBy } from './faults/helpers.js';

const MODEL = 'claude-sonnet-5-5'; // $3 / $15 per MTok: each reply below bills $0.018
const USAGE = { input_tokens: 1000, output_tokens: 1000 };

let url: string;
let prefix: string;
let fake: FakeAnthropic;
let pool: AgentPool | undefined;
let conn: ToolFleet['conn'];
let artifacts: string;
let fleet: ToolFleet;

beforeEach(async () => {
  ({ url, prefix, fake, conn, artifacts } = fleet = await openToolFleet('tools-budget'));
});

afterEach(async () => {
  await closeToolFleet(fleet, pool);
  pool = undefined;
});

describe('a budget wait in the middle of a tool loop', () => {
  it('the raise continues the same loop: the completed MCP call is not made again, the model is asked only what it was not answered, and every reply is counted once', async () => {
    await using mcp = await startMcpHttpServer({ 'src/app.js': 'export const answer = 42;\n' });
    // The model creates a ticket first; once it has the ticket's result, it submits.
    fake.setResponder((req) =>
      blocksOf(req, 'tool_result').length === 0
        ? { toolCalls: [{ name: 'mcp__files__create_ticket', input: { title: 'implement the API' } }], usage: USAGE }
        : { toolInput: codeBy('the coder'), usage: USAGE },
    );
    pool = await startAgentPool({
      redisUrl: url,
      prefix,
      roles: [coder],
      llm: fakeAnthropicClient(fake.url, MODEL),
      onError: () => undefined,
      toolSettings: { ...loadToolSettings({}), allowedHosts: ['127.0.0.1'], artifactsDir: (runId) => join(artifacts, runId) },
    });
    const workflow = compileWorkflow({
      name: 'tools-budget',
      agents: ['coder'],
      // Room for one reply ($0.018), not for the second call.
      budget: { max_cost_usd: 0.0181, on_exceed: 'wait' },
      mcp_servers: [{ name: 'files', url: mcp.url }],
      phases: [{ name: 'implementation', agent: 'coder', timeout: 60, retries: 0, tools: ['files'] }],
    });
    const runId = await conn.client.submit({ workflow, requirements: 'Build a todo API', provider: 'anthropic' });
    const events: StoredRunEvent['event'][] = [];
    let onWaiting: () => void = () => undefined;
    const waiting = new Promise<void>((resolve) => (onWaiting = resolve));
    const done = conn.client.follow(runId, conn.blocking, (e) => {
      events.push(e.event);
      if (e.event.type === 'phase_waiting' && e.event.event === 'budget') onWaiting();
    });
    await waiting;

    // Paused after the tool call, before the model call that carries its result.
    expect((await conn.client.result(runId)).status).toBe('waiting');
    expect(mcp.calls.map((c) => c.tool)).toEqual(['create_ticket']);
    expect(fake.requests).toHaveLength(1);

    const sent = await runCli(['event', runId, 'budget', '--data', '{"add_usd": 2}'], cliEnv(url, prefix));
    expect(sent.code, sent.stderr).toBe(0);
    const result = await done;

    expect(result.status, JSON.stringify(result.errors)).toBe('completed');
    expect(result.results.implementation).toEqual(codeBy('the coder'));
    // The ticket was created once: the resumed phase replayed the call's result from the journal.
    expect(mcp.calls.map((c) => c.tool)).toEqual(['create_ticket']);
    expect(events.filter((e) => e.type === 'tool_call')).toHaveLength(1);
    // One more model call, the one the budget stopped: it carries the first reply's tool_use and the ticket's result.
    expect(fake.requests).toHaveLength(2);
    const resumed = fake.requests[1];
    expect(blocksOf(resumed, 'tool_use').map((b) => b['name'])).toEqual(['mcp__files__create_ticket']);
    expect(String(blocksOf(resumed, 'tool_result')[0]?.['content'])).toContain('ticket 1 created: implement the API');
    // Both replies billed once each and counted once each ($0.036, not the first one twice).
    expect(fake.billed.requests).toBe(2);
    expect(result.usage).toMatchObject({ input_tokens: 2000, output_tokens: 2000 });
    expect(result.usage.cost_usd).toBeCloseTo(0.036, 9);
    // The loop stayed in the journal of the iteration that paused: reply, tool result, submit reply.
    expect(await conn.redis.hget(`${prefix}:run:${runId}:tool-journal`, 'implementation.1.next')).toBe('3');
    expect(await conn.redis.hget(`${prefix}:run:${runId}:tool-journal`, 'implementation.2.next')).toBeNull();
  });
});
