/**
 * The OpenAI-compatible provider's strict function tool and streamed arguments, through the real
 * `openai` SDK against a local server that speaks the Chat Completions API and streams chunks.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenAiCompatibleLlmClient } from './openai-compatible.js';
import type { LlmDelta, LlmRequest } from './types.js';

const bodies: Array<Record<string, unknown>> = [];
let reply: (body: Record<string, unknown>, res: ServerResponse) => void = (_b, res) => res.writeHead(500).end();
const server = createServer((req, res) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const body = JSON.parse(raw) as Record<string, unknown>;
    bodies.push(body);
    reply(body, res);
  });
});
let baseURL = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** The parts of a Chat Completions request body these tests look at. */
interface SentBody {
  stream?: boolean;
  stream_options?: unknown;
  tools: Array<{ function: { strict?: boolean; parameters: { properties: Record<string, { minLength?: number }> } } }>;
}

const ARGS = JSON.stringify({ summary: 'A todo CLI', steps: ['parse', 'store'] });

/** Chat Completions chunks: the function's name first, its arguments in pieces, then usage. */
function streamChunks(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const chunk = (delta: Record<string, unknown>, finish: string | null = null, usage: unknown = null) =>
    res.write(`data: ${JSON.stringify({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'qwen3:8b', choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`);
  chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'submit_planner_output', arguments: '' } }] });
  for (let i = 0; i < ARGS.length; i += 7) chunk({ tool_calls: [{ index: 0, function: { arguments: ARGS.slice(i, i + 7) } }] });
  chunk({}, 'tool_calls');
  chunk({}, null, { prompt_tokens: 50, completion_tokens: 20, total_tokens: 70, completion_tokens_details: { reasoning_tokens: 5 } });
  res.end('data: [DONE]\n\n');
}

const request = (overrides: Partial<LlmRequest> = {}): LlmRequest => ({
  role: 'planner',
  system: 'You plan.',
  messages: [{ role: 'user', content: 'Plan a CLI.' }],
  tool: {
    name: 'submit_planner_output',
    description: 'Submit the plan.',
    inputSchema: { type: 'object', properties: { summary: { type: 'string', minLength: 1 }, steps: { type: 'array', items: { type: 'string' } } }, required: ['summary', 'steps'] },
  },
  maxTokens: 256,
  signal: AbortSignal.timeout(5000),
  inputs: {},
  ...overrides,
});

describe('OpenAiCompatibleLlmClient strict and streaming', () => {
  it('sends a strict function with the compatible schema, and streams its arguments to onDelta', async () => {
    reply = (_b, res) => streamChunks(res);
    const llm = new OpenAiCompatibleLlmClient({ baseURL, model: 'qwen3:8b' });
    const deltas: LlmDelta[] = [];
    const result = await llm.generate(request({ strict: true, onDelta: (d) => deltas.push(d) }));
    expect(result.output).toEqual(JSON.parse(ARGS));
    expect(result.usage).toEqual({ input_tokens: 50, output_tokens: 20, thinking_tokens: 5 });
    expect(result.stopReason).toBe('tool_use');
    expect(deltas.map((d) => d.text).join('')).toBe(ARGS);
    expect(deltas.length).toBeGreaterThan(1);
    const body = bodies.at(-1) as unknown as SentBody;
    expect(body.stream).toBe(true);
    expect(body.stream_options).toEqual({ include_usage: true });
    expect(body.tools[0]?.function.strict).toBe(true);
    expect(body.tools[0]?.function.parameters).toEqual({
      type: 'object',
      properties: { summary: { type: 'string' }, steps: { type: 'array', items: { type: 'string' } } },
      required: ['summary', 'steps'],
      additionalProperties: false,
    });
  });

  it('sends no strict when the schema has an optional property (OpenAI strict requires every property), leaving it to the repair loop', async () => {
    reply = (_b, res) => streamChunks(res);
    const llm = new OpenAiCompatibleLlmClient({ baseURL, model: 'qwen3:8b' });
    const base = request();
    await llm.generate({ ...base, strict: true, stream: true, tool: { ...base.tool, inputSchema: { ...base.tool.inputSchema, required: ['summary'] } } });
    const body = bodies.at(-1) as unknown as SentBody;
    expect(body.tools[0]?.function).not.toHaveProperty('strict');
    expect(body.tools[0]?.function.parameters.properties['summary']?.minLength).toBe(1);
  });
});
