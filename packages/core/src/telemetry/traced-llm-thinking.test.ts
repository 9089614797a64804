import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, trace } from '@opentelemetry/api';
import { TracerProvider as BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tracedLlmClient } from './traced-llm.js';
import type { LlmClient, LlmRequest } from '../llm/types.js';

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
});
afterAll(async () => {
  await tracerProvider.shutdown();
  trace.disable();
  context.disable();
});

describe('tracedLlmClient: structured outputs, effort and thinking', () => {
  it('records strict, effort and thinking on the chat span, and the thinking tokens as gen_ai.usage.reasoning.output_tokens', async () => {
    const inner: LlmClient = {
      provider: 'anthropic',
      model: 'claude-sonnet-5-5',
      generate: () => Promise.resolve({ output: {}, usage: { input_tokens: 10, output_tokens: 90, thinking_tokens: 60 }, model: 'claude-sonnet-5-5', id: 'msg_1', stopReason: 'tool_use' }),
    };
    const request: LlmRequest = {
      role: 'planner',
      system: 's',
      messages: [{ role: 'user', content: 'u' }],
      tool: { name: 't', description: 'd', inputSchema: { type: 'object' } },
      maxTokens: 1024,
      signal: new AbortController().signal,
      inputs: {},
      strict: true,
      effort: 'high',
      thinking: true,
    };
    await tracedLlmClient(inner).generate(request);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'chat claude-sonnet-5-5');
    expect(span?.attributes).toMatchObject({
      'fleet.llm.strict': true,
      'fleet.llm.effort': 'high',
      'fleet.llm.thinking': true,
      'gen_ai.usage.output_tokens': 90,
      'gen_ai.usage.reasoning.output_tokens': 60,
    });
  });
});
