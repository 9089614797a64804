/**
 * The OpenAI-compatible provider through the real `openai` SDK against a local server that speaks
 * the Chat Completions API (as Ollama, vLLM and llama.cpp's server do).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { OpenAiCompatibleLlmClient } from './openai-compatible.js';
import type { LlmRequest } from './types.js';

type Handler = (body: Record<string, unknown>, res: ServerResponse) => void;
const handlers: Handler[] = [];
const bodies: Array<Record<string, unknown>> = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const body = JSON.parse(raw) as Record<string, unknown>;
    bodies.push(body);
    const handler = handlers.shift();
    if (handler) handler(body, res);
    else res.writeHead(500).end('{"error":{"message":"no reply scripted"}}');
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

const json = (res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(payload));
const completion = (args: string, finish = 'tool_calls') => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'qwen3:8b',
  choices: [{ index: 0, finish_reason: finish, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'submit_planner_output', arguments: args } }] } }],
  usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150, prompt_tokens_details: { cached_tokens: 20 } },
});
const request = (signal: AbortSignal = AbortSignal.timeout(5000)): LlmRequest => ({
  role: 'planner',
  system: 'You plan.',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Plan a CLI.', cache: true }, { type: 'text', text: 'Answer now.' }] }],
  tool: { name: 'submit_planner_output', description: 'Submit the plan.', inputSchema: { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'] } },
  maxTokens: 256,
  temperature: 0.2,
  signal,
  inputs: {},
});

describe('OpenAiCompatibleLlmClient', () => {
  it('forces the function call and returns its arguments with usage (cached prompt tokens as cache reads)', async () => {
    handlers.push((_b, res) => json(res, 200, completion('{"summary":"ok"}')));
    const llm = new OpenAiCompatibleLlmClient({ baseURL, model: 'qwen3:8b' });
    const reply = await llm.generate(request());
    expect(reply).toMatchObject({ output: { summary: 'ok' }, usage: { input_tokens: 100, output_tokens: 30, cache_read_input_tokens: 20 }, model: 'qwen3:8b', stopReason: 'tool_use' });
    const body = bodies.at(-1);
    expect(body).toMatchObject({ model: 'qwen3:8b', max_tokens: 256, temperature: 0.2, tool_choice: { type: 'function', function: { name: 'submit_planner_output' } } });
    expect(body?.messages).toEqual([{ role: 'system', content: 'You plan.' }, { role: 'user', content: 'Plan a CLI.\n\nAnswer now.' }]);
  });

  it('maps 429 with retry-after, a cut-off reply, and the phase timeout onto FleetError codes', async () => {
    const llm = new OpenAiCompatibleLlmClient({ baseURL, model: 'qwen3:8b' });
    handlers.push((_b, res) => json(res, 429, { error: { message: 'slow down', type: 'rate_limit' } }, { 'retry-after': '2' }));
    const limited = await llm.generate(request()).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(FleetError);
    expect(limited).toMatchObject({ code: 'PROVIDER_RATE_LIMITED', retryable: true, details: { retry_after_ms: 2000 } });

    handlers.push((_b, res) => json(res, 200, completion('{"summ', 'length')));
    await expect(llm.generate(request())).rejects.toMatchObject({ code: 'OUTPUT_INVALID', details: { stop_reason: 'max_tokens' } });

    handlers.push(() => undefined); // never answers
    await expect(llm.generate(request(AbortSignal.timeout(200)))).rejects.toMatchObject({ code: 'PHASE_TIMEOUT' });
  });
});

describe('tool loops over Chat Completions', () => {
  it('offers the extra tools with tool_choice "required", returns their calls, and sends tool calls and results back as assistant tool_calls and tool messages', async () => {
    handlers.push((_body, res) =>
      json(res, 200, {
        ...completion('{}'),
        choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_7', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.txt"}' } }] } }],
      }),
    );
    const llm = new OpenAiCompatibleLlmClient({ baseURL, model: 'qwen3:8b' });
    const tools = [{ name: 'read_file', description: 'Read a file.', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } }];
    const first = await llm.generate({ ...request(), tools });
    expect(first.output).toBeUndefined();
    expect(first.toolCalls).toEqual([{ id: 'call_7', name: 'read_file', input: { path: 'a.txt' } }]);
    const sent = bodies.at(-1) as { tools: Array<{ function: { name: string } }>; tool_choice: unknown };
    expect(sent.tools.map((t) => t.function.name)).toEqual(['submit_planner_output', 'read_file']);
    expect(sent.tool_choice).toBe('required');

    handlers.push((_body, res) => json(res, 200, completion('{"summary":"done"}')));
    const second = await llm.generate({
      ...request(),
      tools,
      messages: [
        ...request().messages,
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_7', name: 'read_file', input: { path: 'a.txt' } }] },
        { role: 'user', content: [{ type: 'tool_result', toolUseId: 'call_7', content: 'no such file', isError: true }] },
      ],
    });
    expect(second.output).toEqual({ summary: 'done' });
    expect(second.submitCallId).toBe('call_1');
    const messages = (bodies.at(-1) as { messages: unknown[] }).messages;
    expect(messages.slice(2)).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_7', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.txt"}' } }] },
      { role: 'tool', tool_call_id: 'call_7', content: 'Error: no such file' },
    ]);
  });
});
