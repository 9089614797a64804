/**
 * Structured outputs, effort, thinking and streamed deltas of AnthropicLlmClient, through the real
 * SDK against a local server that speaks the Messages API and honours `strict` like the API does
 * (it refuses a strict schema the grammar cannot compile, and a strict reply always matches).
 */
import { describe, expect, it } from 'vitest';

import { startFakeAnthropic } from '../../../../test/support/fake-anthropic.js';
import { AnthropicLlmClient } from './anthropic.js';
import type { LlmDelta, LlmRequest } from './types.js';

const TOOL = {
  name: 'submit_code',
  description: 'Submit the files.',
  // What zod derives for a coder-like output: constraints a strict grammar cannot take.
  inputSchema: {
    type: 'object',
    properties: {
      files: {
        type: 'array',
        minItems: 1,
        items: { type: 'object', properties: { path: { type: 'string', minLength: 1 }, content: { type: 'string' } }, required: ['path', 'content'] },
      },
    },
    required: ['files'],
  },
};
const OUTPUT = { files: [{ path: 'src/server.js', content: 'import http from "node:http";\nhttp.createServer().listen(3000);\n' }] };

interface JsonSchema {
  type?: string;
  additionalProperties?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  minLength?: number;
}
/** The parts of a Messages API request body these tests look at. */
interface SentBody {
  tools?: Array<{ name: string; strict?: boolean; input_schema: JsonSchema }>;
  tool_choice?: unknown;
  output_config?: { effort?: string; format?: { type: string; schema: JsonSchema } };
  thinking?: unknown;
}

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    role: 'coder',
    system: 'You write code.',
    messages: [{ role: 'user', content: 'Write a server.' }],
    tool: TOOL,
    maxTokens: 2048,
    signal: AbortSignal.timeout(10_000),
    inputs: {},
    ...overrides,
  };
}

describe('AnthropicLlmClient structured outputs (real SDK, local Messages API)', () => {
  it('sends the submit tool with strict: true and a compatible schema, which a strict server accepts', async () => {
    await using fake = await startFakeAnthropic({ strict: 'honour' });
    fake.enqueue({ toolInput: OUTPUT });
    const llm = new AnthropicLlmClient({ apiKey: 'sk-ant-test', baseURL: fake.url, model: 'claude-sonnet-5-5', maxRetries: 0 });
    const reply = await llm.generate(request({ strict: true, effort: 'medium' }));
    expect(reply.output).toEqual(OUTPUT);
    const body = fake.requests[0]?.body as unknown as SentBody;
    expect(body.tools?.[0]?.strict).toBe(true);
    expect(body.tools?.[0]?.input_schema.additionalProperties).toBe(false);
    expect(body.tools?.[0]?.input_schema.properties?.['files']?.items?.additionalProperties).toBe(false);
    expect(body.tools?.[0]?.input_schema.properties?.['files']?.items?.properties?.['path']).toEqual({ type: 'string' });
    expect(body.tool_choice).toEqual({ type: 'tool', name: 'submit_code' });
    expect(body.output_config).toEqual({ effort: 'medium' });
    expect(body).not.toHaveProperty('thinking');
  });

  it('without strict, sends the schema as it is, and a strict server refuses that schema when marked strict', async () => {
    await using fake = await startFakeAnthropic({ strict: 'honour' });
    fake.enqueue({ toolInput: OUTPUT });
    const llm = new AnthropicLlmClient({ apiKey: 'sk-ant-test', baseURL: fake.url, model: 'claude-sonnet-5-5', maxRetries: 0 });
    await llm.generate(request());
    const body = fake.requests[0]?.body as unknown as SentBody;
    expect(body.tools?.[0]).not.toHaveProperty('strict');
    expect(body.tools?.[0]?.input_schema.properties?.['files']?.items?.properties?.['path']?.minLength).toBe(1);
    // The same schema marked strict by hand is what the transform exists for: the server says why it cannot take it.
    const res = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2026-10-21', 'x-api-key': 'k' },
      body: JSON.stringify({ ...body, tools: [{ ...body.tools?.[0], strict: true }] }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/additionalProperties|minLength/);
  });

  it('with thinking, asks for output_config.format (a forced tool is refused with thinking) and counts thinking tokens', async () => {
    await using fake = await startFakeAnthropic({ strict: 'honour' });
    fake.enqueue({ streamed: { toolInput: OUTPUT, thinking: 'First the server, then the listener.', thinkingTokens: 42, usage: { output_tokens: 120 } } });
    const llm = new AnthropicLlmClient({ apiKey: 'sk-ant-test', baseURL: fake.url, model: 'claude-sonnet-5-5', maxRetries: 0 });
    const deltas: LlmDelta[] = [];
    const reply = await llm.generate(request({ strict: true, thinking: true, effort: 'high', onDelta: (d) => deltas.push(d) }));
    expect(reply.output).toEqual(OUTPUT);
    expect(reply.usage.thinking_tokens).toBe(42);
    expect(reply.usage.output_tokens).toBe(120);
    const body = fake.requests[0]?.body as unknown as SentBody;
    expect(body.thinking).toEqual({ type: 'adaptive' });
    expect(body.output_config?.effort).toBe('high');
    expect(body.output_config?.format?.type).toBe('json_schema');
    expect(body.output_config?.format?.schema.additionalProperties).toBe(false);
    expect(body).not.toHaveProperty('tool_choice');
    expect(body).not.toHaveProperty('tools');
    expect(deltas.filter((d) => d.kind === 'thinking').map((d) => d.text).join('')).toBe('First the server, then the listener.');
    expect(deltas.filter((d) => d.kind === 'tool_input').map((d) => d.text).join('')).toBe(JSON.stringify(OUTPUT));
  });

  it('streams the tool input as partial JSON to onDelta while the reply is still being written', async () => {
    await using fake = await startFakeAnthropic();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    fake.enqueue({ streamed: { toolInput: OUTPUT, chunkSize: 10, holdAfterChunks: 2, release: released } });
    const llm = new AnthropicLlmClient({ apiKey: 'sk-ant-test', baseURL: fake.url, model: 'claude-sonnet-5-5', maxRetries: 0 });
    const deltas: LlmDelta[] = [];
    let settled = false;
    let firstTwo!: () => void;
    const gotTwo = new Promise<void>((resolve) => (firstTwo = resolve));
    const call = llm
      .generate(
        request({
          strict: true,
          onDelta: (d) => {
            deltas.push(d);
            if (deltas.length === 2) firstTwo();
          },
        }),
      )
      .finally(() => (settled = true));
    await gotTwo;
    const seenWhilePending = settled ? undefined : deltas.map((d) => d.text).join('');
    release();
    const reply = await call;
    expect(seenWhilePending).toBe(JSON.stringify(OUTPUT).slice(0, 20));
    expect(deltas.every((d) => d.kind === 'tool_input')).toBe(true);
    expect(deltas.map((d) => d.text).join('')).toBe(JSON.stringify(OUTPUT));
    expect(reply.output).toEqual(OUTPUT);
    expect(fake.requests[0]?.body?.['stream']).toBe(true);
  });

  it('a strict server gives the constrained reply, a server that ignores strict the free one', async () => {
    const free = { files: [{ path: 'a.js' }] };
    for (const mode of ['honour', 'ignore'] as const) {
      await using fake = await startFakeAnthropic({ strict: mode });
      fake.enqueue({ toolInput: free, constrained: OUTPUT });
      const llm = new AnthropicLlmClient({ apiKey: 'sk-ant-test', baseURL: fake.url, model: 'claude-sonnet-5-5', maxRetries: 0 });
      const reply = await llm.generate(request({ strict: true }));
      expect(reply.output).toEqual(mode === 'honour' ? OUTPUT : free);
    }
  });
});
