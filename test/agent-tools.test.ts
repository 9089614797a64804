/**
 * Tool use inside an agent phase, end to end on real Redis, through the real Anthropic SDK against
 * the local Messages API server, with real MCP servers written with `@modelcontextprotocol/sdk`
 * (stdio, started by the worker; streamable HTTP, started by the test):
 *
 * - a coder that reads a file through MCP (stdio) before it answers: the call is a `tool_use`, the
 *   file comes back as a `tool_result` inside `<data>`, the run shows a `tool_call` event and the
 *   trace an `execute_tool` span;
 * - a tool loop stopped by `max_turns`, with an error naming that bound;
 * - built-in `list_files` / `read_file` on the files an upstream coder wrote, the path rules of
 *   `write_file` (a path that leaves the artifacts directory comes back as an error result), and
 *   `http_request` sending the call's `Idempotency-Key`;
 * - a schema repair sent as the rejected `tool_use` and an `is_error` `tool_result`, and an attempt
 *   that used up its repairs failing as a retryable `OUTPUT_INVALID` that a fresh attempt fixes.
 */
import { coder, createLlmClient, customRole, loadToolSettings, reviewer, startAgentPool, type AgentPool, type AgentRole, type ToolSettings } from '@agentfleet/agents';
import { agentQueueName, compileWorkflow, loadConfig, parseRoleDefinition, phaseJobId, type RunResult, type StoredRunEvent, type WorkflowDefinition } from '@agentfleet/core';
import { RunStore } from '@agentfleet/core/internal';
import { Queue, QueueEvents } from 'bullmq';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FakeAnthropic, FakeRequest } from './support/fake-anthropic.js';
import { closeToolFleet, messagesOf, openToolFleet, type MessageBlock, type ToolFleet } from './support/tool-fleet.js';
import { fakeAnthropicClient } from './support/fleet.js';
import { startMcpHttpServer } from './support/mcp-http.js';
import { codeBy, runEvents, stoppedBeforeEffects } from './faults/helpers.js';
import { waitForRunEvent } from './support/run-events.js';

const STDIO_SERVER = fileURLToPath(new URL('./support/mcp-stdio-server.mjs', import.meta.url));
const PROJECT = { 'src/app.js': 'export const answer = 42; // the secret sauce\n', 'README.md': '# demo\n' };

const exporter = new InMemorySpanExporter();
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
});
afterAll(async () => {
  await tracerProvider.shutdown();
  trace.disable();
  context.disable();
});

let url: string;
let prefix: string;
let fake: FakeAnthropic;
let pool: AgentPool | undefined;
let conn: ToolFleet['conn'];
let artifacts: string;
let fleet: ToolFleet;

beforeEach(async () => {
  ({ url, prefix, fake, conn, artifacts } = fleet = await openToolFleet('agent-tools'));
  exporter.reset();
});

afterEach(async () => {
  await closeToolFleet(fleet, pool);
  pool = undefined;
});

function settings(extra: Partial<ToolSettings> = {}): ToolSettings {
  // The MCP and HTTP servers of these tests listen on loopback, which must be allowed by name.
  return { ...loadToolSettings({}), allowedHosts: ['127.0.0.1'], artifactsDir: (runId) => join(artifacts, runId), ...extra };
}

async function startPool(roles: AgentRole[], toolSettings: ToolSettings = settings()): Promise<void> {
  pool = await startAgentPool({
    redisUrl: url,
    prefix,
    roles,
    llm: fakeAnthropicClient(fake.url),
    onError: () => undefined,
    toolSettings,
    lockDurationMs: 2000,
    stalledIntervalMs: 1000,
  });
}

async function run(workflow: WorkflowDefinition): Promise<{ runId: string; result: RunResult; events: StoredRunEvent['event'][] }> {
  const runId = await conn.client.submit({ workflow, requirements: 'Build a todo API', provider: 'anthropic' });
  const events: StoredRunEvent['event'][] = [];
  const result = await conn.client.follow(runId, conn.blocking, (e) => events.push(e.event));
  return { runId, result, events };
}

type Block = MessageBlock;
const lastBlocks = (r: FakeRequest | undefined): Block[] => {
  const last = messagesOf(r).at(-1)?.content;
  return Array.isArray(last) ? last : [];
};
const toolNames = (r: FakeRequest | undefined): string[] => ((r?.body?.['tools'] ?? []) as Array<{ name: string }>).map((t) => t.name);

describe('a coder that reads a file through MCP before answering', () => {
  it('stdio: the model calls mcp__files__read_file, gets the file as a tool_result inside <data>, then submits; one MCP call, one tool_call event, one execute_tool span', async () => {
    const callsFile = join(artifacts, 'mcp-calls.jsonl');
    await startPool([coder], settings({ mcpCommands: [process.execPath] }));
    fake.setResponder((req) => {
      const results = lastBlocks(req).filter((b) => b['type'] === 'tool_result');
      if (results.length === 0) return { toolCalls: [{ name: 'mcp__files__read_file', input: { path: 'src/app.js' } }] };
      return { toolInput: { ...(codeBy('the coder') as object), notes: `read: ${String(results[0]?.['content'])}` } };
    });
    const workflow = compileWorkflow({
      name: 'mcp-stdio',
      agents: ['coder'],
      mcp_servers: [{ name: 'files', command: process.execPath, args: [STDIO_SERVER], env: { MCP_FILES: JSON.stringify(PROJECT), MCP_CALLS_FILE: callsFile }, tools: ['read_file', 'list_files'] }],
      phases: [{ name: 'implementation', agent: 'coder', timeout: 60, retries: 0, tools: ['files'] }],
    });
    const { runId, result, events } = await run(workflow);

    expect(result.status).toBe('completed');
    // The journal is one of the run's keys: it expires with them once the run finished.
    expect(await conn.redis.hget(`${prefix}:run:${runId}:tool-journal`, 'implementation.1.next')).toBe('3'); // reply, tool result, submit reply
    expect(await conn.redis.pttl(`${prefix}:run:${runId}:tool-journal`)).toBeGreaterThan(0);
    expect(fake.requests).toHaveLength(2);
    const [first, second] = fake.requests;
    // The submit tool ends the turn; the MCP tools the allow-list lets through are offered beside it.
    expect(toolNames(first)).toEqual(['submit_coder_output', 'mcp__files__read_file', 'mcp__files__list_files']);
    expect(first?.body?.['tool_choice']).toEqual({ type: 'any' });
    // The call went back as the model made it, and the file as its tool_result, marked as data.
    const assistant = messagesOf(second).at(-2);
    expect(assistant?.role).toBe('assistant');
    const use = (assistant?.content as Block[])[0];
    expect(use).toMatchObject({ type: 'tool_use', name: 'mcp__files__read_file', input: { path: 'src/app.js' } });
    const [res] = lastBlocks(second);
    expect(res).toMatchObject({ type: 'tool_result', tool_use_id: use?.['id'] });
    expect(res?.['is_error']).toBeUndefined();
    expect(String(res?.['content'])).toBe(`<data kind="tool_result" tool="mcp__files__read_file">\n${PROJECT['src/app.js']}\n</data>`);
    expect((result.results.implementation as { notes: string }).notes).toContain('the secret sauce');
    // The stdio server the worker started saw exactly one call.
    const calls = (await readFile(callsFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(calls).toEqual([{ tool: 'read_file', args: { path: 'src/app.js' } }]);
    const toolEvents = events.filter((e) => e.type === 'tool_call');
    expect(toolEvents).toEqual([
      expect.objectContaining({ type: 'tool_call', phase: 'implementation', tool: 'mcp__files__read_file', call: 1, status: 'ok', input_bytes: JSON.stringify({ path: 'src/app.js' }).length }),
    ]);
    // Arguments are content: not in the event without FLEET_TRACE_CONTENT.
    expect(toolEvents[0]).not.toHaveProperty('arguments');
    const span = exporter.getFinishedSpans().find((s) => s.name === 'execute_tool mcp__files__read_file');
    expect(span?.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'mcp__files__read_file', 'gen_ai.tool.type': 'extension', 'gen_ai.tool.call.id': use?.['id'] });
    expect(span?.attributes['gen_ai.tool.call.arguments']).toBeUndefined();
  });

  it('a stdio command not in FLEET_MCP_ALLOWED_COMMANDS is refused with TOOL_NOT_ALLOWED naming the setting, before any model call', async () => {
    await startPool([coder]);
    const workflow = compileWorkflow({
      name: 'mcp-refused',
      agents: ['coder'],
      mcp_servers: [{ name: 'files', command: process.execPath, args: [STDIO_SERVER] }],
      phases: [{ name: 'implementation', agent: 'coder', timeout: 30, retries: 0, tools: ['files'] }],
    });
    const { result } = await run(workflow);
    expect(result.status).toBe('failed');
    expect(result.phases[0]?.error?.code).toBe('TOOL_NOT_ALLOWED');
    expect(result.phases[0]?.error?.message).toContain('FLEET_MCP_ALLOWED_COMMANDS');
    expect(fake.requests).toHaveLength(0);
  });
});

describe('bounds of the tool loop', () => {
  it('streamable HTTP: a model that keeps calling tools is stopped by max_turns with MAX_TURNS_EXCEEDED naming it; every result went back', async () => {
    await using mcp = await startMcpHttpServer(PROJECT);
    await startPool([coder]);
    fake.setResponder(() => ({ toolCalls: [{ name: 'mcp__files__list_files', input: {} }] }));
    const workflow = compileWorkflow({
      name: 'mcp-turns',
      agents: ['coder'],
      mcp_servers: [{ name: 'files', url: mcp.url }],
      phases: [{ name: 'implementation', agent: 'coder', timeout: 60, retries: 0, tools: ['files'], max_turns: 3 }],
    });
    const { result } = await run(workflow);
    expect(result.status).toBe('failed');
    const error = result.phases[0]?.error;
    expect(error?.code).toBe('MAX_TURNS_EXCEEDED');
    expect(error?.message).toContain('max_turns');
    expect(error?.details).toMatchObject({ max_turns: 3 });
    expect(fake.requests).toHaveLength(3);
    expect(mcp.calls).toHaveLength(3);
    // Each later request carries every earlier call and its result.
    expect(messagesOf(fake.requests[2]).filter((m) => Array.isArray(m.content) && m.content.some((b) => b['type'] === 'tool_result'))).toHaveLength(2);
    // The billed replies of the failed attempt are counted.
    expect(result.usage.input_tokens).toBeGreaterThan(0);
  });
});

describe('built-in tools in the run\'s artifacts directory', () => {
  it('the reviewer lists and reads the files the coder wrote (which reach it by reference), a path leaving the directory is an error result, and http_request sends the call\'s Idempotency-Key', async () => {
    const seen: Array<string | undefined> = [];
    const hook = createServer((req, res) => {
      seen.push(req.headers['idempotency-key'] as string | undefined);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/notify`;
    try {
      await startPool([coder, reviewer]);
      const code = codeBy('the coder') as { files: Array<{ path: string; content: string }> };
      const reviewTurns: FakeRequest[] = [];
      fake.setResponder((req) => {
        if (req.body?.['tool_choice'] && (req.body['tool_choice'] as { name?: string }).name === 'submit_coder_output') return { toolInput: code };
        reviewTurns.push(req);
        switch (reviewTurns.length) {
          case 1:
            return { toolCalls: [{ name: 'list_files', input: {} }] };
          case 2:
            return { toolCalls: [{ name: 'read_file', input: { path: 'files/src/server.mjs' } }, { name: 'read_file', input: { path: '../../../etc/passwd' } }] };
          case 3:
            return { toolCalls: [{ name: 'http_request', input: { method: 'POST', url: hookUrl, body: { reviewed: true } } }] };
          default:
            return { toolInput: { verdict: 'approve', findings: [], summary: 'read the server and it is fine' } };
        }
      });
      const workflow = compileWorkflow({
        name: 'builtin-tools',
        agents: ['coder', 'reviewer'],
        phases: [
          { name: 'implementation', agent: 'coder', timeout: 60, retries: 0 },
          { name: 'review', agent: 'reviewer', timeout: 60, retries: 0, depends_on: ['implementation'], tools: ['list_files', 'read_file', 'http_request'] },
        ],
      });
      const { runId, result, events } = await run(workflow);
      expect(result.status).toBe('completed');
      expect(reviewTurns).toHaveLength(4);
      // The coder's files reached the reviewer by reference: paths and sizes, not their text.
      const prompt = (messagesOf(reviewTurns[0])[0]?.content as Block[]).map((b) => String(b['text'])).join('\n');
      expect(prompt).not.toContain('createServer(async (req, res)');
      expect(prompt).toContain('read it with read_file \\"files/src/server.mjs\\"');
      const listed = String(lastBlocks(reviewTurns[1])[0]?.['content']);
      for (const f of code.files) expect(listed).toContain(`"path":"files/${f.path}"`);
      const [read, escape] = lastBlocks(reviewTurns[2]);
      expect(String(read?.['content'])).toContain('createServer(async (req, res)');
      expect(read?.['is_error']).toBeUndefined();
      expect(escape?.['is_error']).toBe(true);
      expect(String(escape?.['content'])).toContain('TOOL_NOT_ALLOWED');
      // http_request: one POST, keyed <run>.<phase>.<iteration>.<call>.
      const httpEvent = events.find((e) => e.type === 'tool_call' && e.tool === 'http_request') as { call: number } | undefined;
      expect(seen).toEqual([`${runId}.review.1.${httpEvent?.call}`]);
      expect(events.filter((e) => e.type === 'tool_call').map((e) => (e as { tool: string; status: string }).status)).toEqual(['ok', 'ok', 'error', 'ok']);
    } finally {
      await new Promise<void>((resolve) => hook.close(() => resolve()));
    }
  });
});

describe('a tool call is a side effect', () => {
  it('a phase with tools taken from the pool\'s memory of the run checks the stored run before it works: the run cancelled after the job was taken makes no model call and no tool call, and the job ends without an attempt', async () => {
    const seen: string[] = [];
    const hook = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/notify`;
    // Commits the cancel and stops before carrying out its effects (no cancel is published, no job
    // removed), as a canceller that died after its commit: only the check before the work can tell the pool.
    const canceller = stoppedBeforeEffects(conn, prefix);
    const events = new QueueEvents(agentQueueName('reviewer'), { connection: { url }, prefix });
    const reviewQueue = new Queue(agentQueueName('reviewer'), { connection: conn.redis, prefix });
    const getVersion = RunStore.prototype.getVersion;
    try {
      await events.waitUntilReady();
      // One pool serves both roles, so the review job is taken from its own commit of the implementation.
      await startPool([coder, reviewer]);
      const reviewTurns: FakeRequest[] = [];
      fake.setResponder((req) => {
        if (req.body?.['tool_choice'] && (req.body['tool_choice'] as { name?: string }).name === 'submit_coder_output') return { toolInput: codeBy('the coder') };
        reviewTurns.push(req);
        return reviewTurns.length === 1
          ? { toolCalls: [{ name: 'http_request', input: { method: 'POST', url: hookUrl, body: { reviewed: true } } }] }
          : { toolInput: { verdict: 'approve', findings: [], summary: 'fine' } };
      });
      // The run is cancelled between the review job's take and the pool's read of the stored version.
      let cancelled = false;
      RunStore.prototype.getVersion = async function (this: RunStore, runId: string) {
        if (!cancelled) {
          cancelled = true;
          await canceller.apply(runId, { type: 'cancel_requested', at: Date.now(), reason: 'cancelled in the test' }).catch(() => undefined);
        }
        return getVersion.call(this, runId);
      };
      const workflow = compileWorkflow({
        name: 'tool-after-cancel',
        agents: ['coder', 'reviewer'],
        phases: [
          { name: 'implementation', agent: 'coder', timeout: 60, retries: 0 },
          { name: 'review', agent: 'reviewer', timeout: 60, retries: 1, depends_on: ['implementation'], tools: ['http_request'] },
        ],
      });
      const runId = await conn.client.submit({ workflow, requirements: 'Build a todo API', provider: 'anthropic' });
      // The commit that queues the review adds its job with the state.
      await waitForRunEvent({ redis: conn.redis, prefix }, runId, (e) => e.type === 'phase_queued' && e.phase === 'review', { what: 'the review to be queued' });
      const job = await reviewQueue.getJob(phaseJobId(runId, 'review', 1));
      // The job ends at once, done and not retried: nothing of its attempt was worked or committed.
      const finished: unknown = await job!.waitUntilFinished(events);
      expect(cancelled).toBe(true);
      expect(finished).toEqual({ reported: false, attempt: 1 });
      const { state } = await conn.store.getRun(runId);
      expect(state.status).toBe('cancelled');
      // Neither the model nor the tool was called for the review.
      expect(reviewTurns).toHaveLength(0);
      expect(seen).toEqual([]);
      const recorded = await runEvents(conn.store, runId);
      expect(recorded.filter((e) => e.type === 'tool_call')).toEqual([]);
      expect(recorded.filter((e) => 'phase' in e && e.phase === 'review' && e.type !== 'phase_queued' && e.type !== 'phase_cancelled')).toEqual([]);
    } finally {
      RunStore.prototype.getVersion = getVersion;
      await events.close();
      await reviewQueue.close();
      await canceller.close();
      await new Promise<void>((resolve) => hook.close(() => resolve()));
    }
  });
});

describe('user tools of FLEET_TOOL_MODULES', () => {
  it('are offered with their JSON Schema parameters; input that does not match comes back as an is_error result, valid input runs the handler', async () => {
    const upper = fileURLToPath(new URL('./support/tools/upper-tool.ts', import.meta.url));
    await startPool([coder], settings({ modules: [upper] }));
    fake.enqueue(
      { toolCalls: [{ name: 'upper', input: { text: '' } }] },
      { toolCalls: [{ name: 'upper', input: { text: 'shout' } }] },
      { toolInput: codeBy('the coder') },
    );
    const workflow = compileWorkflow({ name: 'user-tool', agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder', timeout: 60, retries: 0, tools: ['upper'] }] });
    const { result } = await run(workflow);
    expect(result.status).toBe('completed');
    const offered = ((fake.requests[0]?.body?.['tools'] ?? []) as Array<{ name: string; input_schema: unknown }>).find((t) => t.name === 'upper');
    expect(offered?.input_schema).toMatchObject({ type: 'object', required: ['text'] });
    const [refused] = lastBlocks(fake.requests[1]);
    expect(refused?.['is_error']).toBe(true);
    expect(String(refused?.['content'])).toContain('TOOL_INPUT_INVALID');
    const [ran] = lastBlocks(fake.requests[2]);
    expect(ran?.['is_error']).toBeUndefined();
    expect(String(ran?.['content'])).toContain('{"text":"SHOUT"}');
  });
});

describe('schema repairs as tool blocks', () => {
  it('a rejected reply goes back as its tool_use block with the problems as an is_error tool_result; used-up repairs fail the attempt as a retryable OUTPUT_INVALID and a fresh attempt succeeds', async () => {
    await startPool([coder]);
    const bad = { files: [], notes: 'nothing yet' };
    // Attempt 1: the first reply and both repairs fail validation; attempt 2 answers.
    fake.enqueue({ toolInput: bad }, { toolInput: bad }, { toolInput: bad }, { toolInput: codeBy('attempt 2') });
    const workflow = compileWorkflow({
      name: 'repairs',
      agents: ['coder'],
      phases: [{ name: 'implementation', agent: 'coder', timeout: 60, retries: 1, retry_delay: 0 }],
    });
    const { result, events } = await run(workflow);
    expect(fake.requests).toHaveLength(4);
    const repair = fake.requests[1];
    const msgs = messagesOf(repair);
    expect(msgs).toHaveLength(3);
    const use = (msgs[1]?.content as Block[])[0];
    expect(msgs[1]?.role).toBe('assistant');
    expect(use).toMatchObject({ type: 'tool_use', name: 'submit_coder_output', input: bad });
    expect(String(use?.['id'])).toMatch(/^toolu_/);
    const [res] = msgs[2]?.content as Block[];
    expect(res).toMatchObject({ type: 'tool_result', tool_use_id: use?.['id'], is_error: true });
    expect(String(res?.['content'])).toContain('That tool input is not valid');
    expect(String(res?.['content'])).toContain('files');
    expect(messagesOf(fake.requests[2])).toHaveLength(5);
    // Attempt 1 used up its repairs and was retried (OUTPUT_INVALID is retryable then): a fresh conversation.
    const retry = events.find((e) => e.type === 'phase_retry') as { error: { code: string; retryable: boolean } } | undefined;
    expect(retry?.error).toMatchObject({ code: 'OUTPUT_INVALID', retryable: true });
    expect(messagesOf(fake.requests[3])).toHaveLength(1);
    expect(result.status).toBe('completed');
    expect(result.results.implementation).toEqual(codeBy('attempt 2'));
  });
});

describe('a role that declares tools', () => {
  it("a role file's tools and max_turns apply to every phase it serves, without naming them in the workflow", async () => {
    const auditor = customRole(
      parseRoleDefinition({
        name: 'auditor',
        description: 'Audits the artifacts.',
        instructions: 'List the artifacts, then report.',
        output_schema: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } } },
        tools: ['list_files'],
        max_turns: 2,
      }),
    );
    await startPool([auditor]);
    fake.setResponder(() => ({ toolCalls: [{ name: 'list_files', input: {} }] }));
    const workflow = compileWorkflow({ name: 'role-tools', agents: ['auditor'], phases: [{ name: 'audit', agent: 'auditor', timeout: 30, retries: 0 }] });
    const { result } = await run(workflow);
    expect(toolNames(fake.requests[0])).toEqual(['submit_auditor_output', 'list_files']);
    expect(result.phases[0]?.error).toMatchObject({ code: 'MAX_TURNS_EXCEEDED', details: { max_turns: 2 } });
    expect(fake.requests).toHaveLength(2);
  });

  it('a phase naming a tool that does not exist fails with UNKNOWN_TOOL listing what exists, before any model call', async () => {
    await startPool([coder]);
    const workflow = compileWorkflow({ name: 'unknown-tool', agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder', timeout: 30, retries: 0, tools: ['read_fiel'] }] });
    const { result } = await run(workflow);
    expect(result.phases[0]?.error?.code).toBe('UNKNOWN_TOOL');
    expect(result.phases[0]?.error?.message).toContain('"read_fiel"');
    expect(result.phases[0]?.error?.message).toContain('read_file');
    expect(fake.requests).toHaveLength(0);
  });
});

describe('the offline model', () => {
  it('runs a phase with tools as it would without them: it never calls a tool, and no MCP server is started', async () => {
    pool = await startAgentPool({ redisUrl: url, prefix, roles: [coder], llm: createLlmClient(loadConfig({}), [coder]), onError: () => undefined, toolSettings: settings() });
    const workflow = compileWorkflow({
      name: 'offline-tools',
      agents: ['coder'],
      mcp_servers: [{ name: 'files', command: process.execPath, args: [STDIO_SERVER] }],
      phases: [{ name: 'implementation', agent: 'coder', timeout: 30, retries: 0, tools: ['files', 'read_file'] }],
    });
    const { result, events } = await run(workflow);
    expect(result.status).toBe('completed');
    expect((result.results.implementation as { notes: string }).notes).toContain('[offline model');
    expect(events.filter((e) => e.type === 'tool_call')).toHaveLength(0);
  });
});
