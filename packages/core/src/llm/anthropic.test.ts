/**
 * AnthropicLlmClient through the real SDK against a local server that speaks the Messages API.
 */
import { describe, expect, it } from 'vitest';

import { startFakeAnthropic } from '../../../../test/support/fake-anthropic.js';
import type { FakeAnthropic } from '../../../../test/support/fake-anthropic.js';
import { FleetError } from '../errors.js';
import { AnthropicLlmClient } from './anthropic.js';
import type { AnthropicClientOptions } from './anthropic.js';
import type { LlmRequest } from './types.js';

const API_KEY = 'sk-ant-test-4f1c2d9e8b7a';
const MODEL = 'claude-sonnet-5-5';
const TOOL = {
  name: 'submit_plan',
  description: 'Submit the plan.',
  inputSchema: {
    type: 'object',
    properties: { steps: { type: 'array', items: { type: 'string' } } },
    required: ['steps'],
    additionalProperties: false,
  },
};

function llmFor(fake: FakeAnthropic, options: Partial<AnthropicClientOptions> = {}): AnthropicLlmClient {
  return new AnthropicLlmClient({ apiKey: API_KEY, baseURL: fake.url, model: MODEL, maxRetries: 0, ...options });
}

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    role: 'planner',
    system: 'You plan small CLIs.',
    messages: [{ role: 'user', content: 'Plan a todo CLI.' }],
    tool: TOOL,
    maxTokens: 1024,
    signal: AbortSignal.timeout(5_000),
    inputs: {},
    ...overrides,
  };
}

/** The FleetError a promise rejects with; fails the test when it resolves or throws something else. */
async function failureOf(promise: Promise<unknown>): Promise<FleetError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FleetError)) throw new Error(`expected a FleetError, got ${String(err)}`);
  return err;
}

// Every test is bounded well under 10 s; the slowest waits out one 1 s retry-after.
describe('AnthropicLlmClient', { timeout: 10_000 }, () => {
  it('returns the forced tool call input, usage, model, id and stop reason', async () => {
    await using fake = await startFakeAnthropic({ apiKey: API_KEY });
    fake.enqueue({
      toolInput: { steps: ['parse args', 'store todos'] },
      usage: { input_tokens: 120, output_tokens: 34, cache_read_input_tokens: 100, cache_creation_input_tokens: 7 },
    });

    const reply = await llmFor(fake).generate(request());

    expect(reply.output).toEqual({ steps: ['parse args', 'store todos'] });
    expect(reply.usage).toEqual({
      input_tokens: 120,
      output_tokens: 34,
      cache_read_input_tokens: 100,
      cache_creation_input_tokens: 7,
    });
    expect(reply.model).toBe(MODEL);
    expect(reply.id).toMatch(/^msg_/);
    expect(reply.stopReason).toBe('tool_use');
  });

  it('sends one tool with the input schema, forces it with tool_choice, and sends no temperature', async () => {
    await using fake = await startFakeAnthropic({ apiKey: API_KEY });
    fake.enqueue({ toolInput: { steps: [] } });

    // temperature is set on purpose: API version 2026-10-21 rejects it, so it must not be sent.
    await llmFor(fake).generate(request({ temperature: 0.2 }));

    expect(fake.requests).toHaveLength(1);
    const received = fake.requests[0];
    expect(received?.method).toBe('POST');
    expect(received?.path).toBe('/v1/messages');
    expect(received?.body).toEqual({
      model: MODEL,
      max_tokens: 1024,
      system: 'You plan small CLIs.',
      messages: [{ role: 'user', content: 'Plan a todo CLI.' }],
      tools: [{ name: TOOL.name, description: TOOL.description, input_schema: TOOL.inputSchema }],
      tool_choice: { type: 'tool', name: TOOL.name },
    });
    expect(received?.headers['authorization']).toBe(`Bearer ${API_KEY}`);
    expect(received?.headers['anthropic-version']).toBe('2026-10-21');
  });

  it('lets the SDK retry a 429 with retry-after and succeed on the second request', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue(
      { status: 429, errorType: 'rate_limit_error', message: 'Number of requests has exceeded your rate limit', headers: { 'retry-after': '1' } },
      { toolInput: { steps: ['ok'] } },
    );

    const reply = await llmFor(fake, { maxRetries: 1 }).generate(request());

    expect(reply.output).toEqual({ steps: ['ok'] });
    expect(fake.requests).toHaveLength(2);
    const [first, second] = fake.requests;
    // The second request is the SDK's retry of the first (how long it waits for retry-after is the SDK's own, not timed here).
    expect(first!.headers['x-stainless-retry-count']).toBe('0');
    expect(second!.headers['x-stainless-retry-count']).toBe('1');
  });

  it('maps a 429 to PROVIDER_RATE_LIMITED with retry_after_ms, preferring retry-after-ms', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({
      status: 429,
      errorType: 'rate_limit_error',
      message: 'Number of request tokens has exceeded your per-minute rate limit',
      headers: { 'retry-after': '3', 'retry-after-ms': '2500', 'anthropic-ratelimit-requests-remaining': '0' },
    });

    const err = await failureOf(llmFor(fake).generate(request()));

    expect(err.code).toBe('PROVIDER_RATE_LIMITED');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('per-minute rate limit');
    expect(err.details).toMatchObject({ status: 429, error_type: 'rate_limit_error', retry_after_ms: 2500 });
    expect(err.details?.['request_id']).toMatch(/^req_/);
    expect(fake.requests).toHaveLength(1);
  });

  it('maps a 401 to PROVIDER_AUTH, not retryable, without the API key in the error', async () => {
    await using fake = await startFakeAnthropic({ apiKey: 'sk-ant-the-right-key' });

    const err = await failureOf(llmFor(fake, { maxRetries: 2 }).generate(request()));

    expect(err.code).toBe('PROVIDER_AUTH');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('invalid x-api-key');
    expect(JSON.stringify(err.toJSON())).not.toContain(API_KEY);
    expect(fake.requests).toHaveLength(1); // the SDK does not retry a 401
  });

  it('redacts the API key when the provider echoes it back', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ status: 403, errorType: 'permission_error', message: `key ${API_KEY} may not use ${MODEL}` });

    const err = await failureOf(llmFor(fake).generate(request()));

    expect(err.code).toBe('PROVIDER_AUTH');
    expect(err.message).toContain('[redacted]');
    expect(JSON.stringify(err.toJSON())).not.toContain(API_KEY);
  });

  it("maps a 400 to PROVIDER_BAD_REQUEST with the provider's message and status", async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ status: 400, errorType: 'invalid_request_error', message: 'tools.0.input_schema: JSON schema is invalid' });

    const err = await failureOf(llmFor(fake, { maxRetries: 2 }).generate(request()));

    expect(err.code).toBe('PROVIDER_BAD_REQUEST');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('tools.0.input_schema: JSON schema is invalid');
    expect(err.details).toMatchObject({ status: 400, error_type: 'invalid_request_error' });
    expect(fake.requests).toHaveLength(1);
  });

  it('maps a 529 to PROVIDER_OVERLOADED, retryable', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ status: 529, errorType: 'overloaded_error', message: 'Overloaded' });

    const err = await failureOf(llmFor(fake, { maxRetries: 0 }).generate(request()));

    expect(err.code).toBe('PROVIDER_OVERLOADED');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('Overloaded');
    expect(err.details).toMatchObject({ status: 529, error_type: 'overloaded_error' });
    expect(fake.requests).toHaveLength(1);
  });

  it('lets x-should-retry: false make a 5xx not retryable', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ status: 500, errorType: 'api_error', message: 'Internal server error', headers: { 'x-should-retry': 'false' } });

    const err = await failureOf(llmFor(fake, { maxRetries: 2 }).generate(request()));

    expect(err.code).toBe('PROVIDER_OVERLOADED');
    expect(err.retryable).toBe(false);
    expect(fake.requests).toHaveLength(1);
  });

  it('throws PHASE_TIMEOUT when the signal times out, and the abort closes the HTTP request', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ hang: true });
    const err = await failureOf(llmFor(fake, { maxRetries: 2 }).generate(request({ signal: AbortSignal.timeout(300) })));

    expect(err.code).toBe('PHASE_TIMEOUT');
    expect(err.retryable).toBe(true);
    await fake.waitForAborted(1, 30_000);
    expect(fake.aborted).toBe(1);
    expect(fake.requests).toHaveLength(1);
  });

  it('throws PHASE_CANCELLED when the signal is aborted for another reason', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ hang: true });
    const controller = new AbortController();
    const pending = llmFor(fake).generate(request({ signal: controller.signal }));
    await fake.waitForRequests(1);

    controller.abort();
    const err = await failureOf(pending);

    expect(err.code).toBe('PHASE_CANCELLED');
    expect(err.retryable).toBe(false);
    await fake.waitForAborted(1, 30_000);
  });

  it('rethrows a FleetError that is the abort reason', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ delayMs: 5_000, then: { toolInput: {} } });
    const controller = new AbortController();
    const reason = new FleetError('PHASE_TIMEOUT', 'phase "plan" timed out after 300 ms');
    const pending = llmFor(fake).generate(request({ signal: controller.signal }));
    await fake.waitForRequests(1);

    controller.abort(reason);

    expect(await failureOf(pending)).toBe(reason);
  });

  it('sends nothing when the signal has already timed out', async () => {
    await using fake = await startFakeAnthropic();
    const signal = AbortSignal.abort(new DOMException('phase deadline passed', 'TimeoutError'));

    const err = await failureOf(llmFor(fake).generate(request({ signal })));

    expect(err.code).toBe('PHASE_TIMEOUT');
    expect(fake.requests).toHaveLength(0);
  });

  it('maps the SDK per-request timeout to PROVIDER_CONNECTION', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ hang: true });

    const err = await failureOf(llmFor(fake, { timeoutMs: 200 }).generate(request()));

    expect(err.code).toBe('PROVIDER_CONNECTION');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('timeoutMs=200');
    await fake.waitForAborted(1, 30_000);
  });

  it('maps a refused connection to PROVIDER_CONNECTION', async () => {
    const fake = await startFakeAnthropic();
    await fake.close();

    const err = await failureOf(llmFor(fake).generate(request()));

    expect(err.code).toBe('PROVIDER_CONNECTION');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(fake.url);
  });

  it('throws OUTPUT_INVALID naming the stop reason when the reply has no tool call', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ text: 'Here is the plan: 1. parse args' });

    const err = await failureOf(llmFor(fake).generate(request()));

    expect(err.code).toBe('OUTPUT_INVALID');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('stop_reason end_turn');
    expect(err.message).toContain('support forced tool use');
    expect(err.details).toMatchObject({ stop_reason: 'end_turn', content_types: ['text'], text: 'Here is the plan: 1. parse args' });
  });

  it('throws OUTPUT_INVALID when the tool call was cut off at max_tokens', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ toolInput: { steps: ['par'] }, stopReason: 'max_tokens' });

    const err = await failureOf(llmFor(fake).generate(request({ maxTokens: 16 })));

    expect(err.code).toBe('OUTPUT_INVALID');
    expect(err.message).toContain('max_tokens=16');
    expect(err.message).toContain('input is incomplete');
  });
});

describe('fake-anthropic', { timeout: 10_000 }, () => {
  const headers = { 'content-type': 'application/json', 'anthropic-version': '2026-10-21' };
  const body = { model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };

  it('answers 500 with x-should-retry: false when no reply is scripted', async () => {
    await using fake = await startFakeAnthropic();

    const res = await fetch(`${fake.url}/v1/messages`, { method: 'POST', headers, body: JSON.stringify(body) });

    expect(res.status).toBe(500);
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    expect(await res.json()).toMatchObject({
      type: 'error',
      error: { type: 'api_error', message: 'fake-anthropic: no reply scripted' },
    });
  });

  it('rejects temperature like API version 2026-10-21, before using the script', async () => {
    await using fake = await startFakeAnthropic();
    fake.enqueue({ text: 'unused' });

    const res = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ ...body, temperature: 1 }),
    });

    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: { type: 'invalid_request_error', message: 'temperature: Extra inputs are not permitted' },
    });
    fake.setResponder(() => ({ text: 'from the responder' }));
    const ok = await fetch(`${fake.url}/v1/messages`, { method: 'POST', headers, body: JSON.stringify(body) });
    expect(await ok.json()).toMatchObject({ type: 'message', content: [{ type: 'text', text: 'unused' }] });
  });
});

describe('tool loops', () => {
  const readFile = { name: 'read_file', description: 'Read a file.', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } };

  it('offers the submit tool first and the extra tools after it with tool_choice any, and returns calls of the extra tools without an output', async () => {
    await using fake = await startFakeAnthropic({ apiKey: API_KEY });
    fake.enqueue({ toolCalls: [{ name: 'read_file', input: { path: 'a.txt' } }, { name: 'read_file', input: { path: 'b.txt' } }] });
    const reply = await llmFor(fake).generate(request({ tools: [readFile] }));
    const body = fake.requests[0]?.body as { tools: Array<{ name: string }>; tool_choice: unknown };
    expect(body.tools.map((t) => t.name)).toEqual([request().tool.name, 'read_file']);
    expect(body.tool_choice).toEqual({ type: 'any' });
    expect(reply.output).toBeUndefined();
    expect(reply.toolCalls?.map((c) => c.input)).toEqual([{ path: 'a.txt' }, { path: 'b.txt' }]);
    expect(reply.toolCalls?.every((c) => c.id.startsWith('toolu_'))).toBe(true);
  });

  it('sends tool calls as tool_use blocks and their results as tool_result blocks, is_error on failures; the submit call ends the turn', async () => {
    await using fake = await startFakeAnthropic({ apiKey: API_KEY });
    fake.enqueue({ toolInput: { summary: 'done' } });
    const base = request({ tools: [readFile] });
    const reply = await llmFor(fake).generate({
      ...base,
      messages: [
        ...base.messages,
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'read_file', input: { path: 'a.txt' } }] },
        { role: 'user', content: [{ type: 'tool_result', toolUseId: 'toolu_1', content: 'no such file', isError: true }] },
      ],
    });
    expect(reply.output).toEqual({ summary: 'done' });
    expect(reply.submitCallId).toMatch(/^toolu_/);
    expect(reply.toolCalls).toBeUndefined();
    const messages = (fake.requests[0]?.body as { messages: unknown[] }).messages;
    expect(messages.slice(-2)).toEqual([
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'read_file', input: { path: 'a.txt' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'no such file', is_error: true }] },
    ]);
  });
});
