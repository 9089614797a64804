import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { SpanKind, SpanStatusCode, context, metrics, trace } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type HistogramMetricData, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { TracerProvider as BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { FleetError } from '../errors.js';
import { withSpan } from './trace.js';
import { costUsd } from '../llm/prices.js';
import { tracedLlmClient } from './traced-llm.js';
import type { LlmClient, LlmRequest, LlmResponse } from '../llm/types.js';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const reader = new TestReader();
const meterProvider = new MeterProvider({ readers: [reader] });

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
});
afterEach(() => exporter.reset());
afterAll(async () => {
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
  trace.disable();
  metrics.disable();
  context.disable();
});

const request = (): LlmRequest => ({
  role: 'planner',
  system: 'You plan. SECRET-SYSTEM',
  messages: [{ role: 'user', content: 'Plan a todo API. SECRET-USER' }],
  tool: { name: 'submit_plan', description: 'Submit the plan.', inputSchema: { type: 'object' } },
  maxTokens: 2048,
  signal: new AbortController().signal,
  inputs: {},
});

const reply: LlmResponse = {
  output: { tasks: ['a'] },
  usage: { input_tokens: 100, output_tokens: 40, cache_read_input_tokens: 30, cache_creation_input_tokens: 5 },
  model: 'claude-sonnet-4-5-20250929',
  id: 'msg_123',
  stopReason: 'tool_use',
};

function fakeClient(answer: () => Promise<LlmResponse>): LlmClient {
  return { provider: 'anthropic', model: 'claude-sonnet-4-5', generate: answer };
}

function only(name: string): ReadableSpan {
  const spans = exporter.getFinishedSpans().filter((s) => s.name === name);
  expect(spans, `spans named ${name}`).toHaveLength(1);
  return spans[0] as ReadableSpan;
}

async function metricData(name: string) {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
}

describe('tracedLlmClient', () => {
  it('makes a CLIENT span "chat <model>" under the active span, with the GenAI request and response attributes', async () => {
    const llm = tracedLlmClient(fakeClient(() => Promise.resolve(reply)));
    expect(llm.provider).toBe('anthropic');
    expect(llm.model).toBe('claude-sonnet-4-5');
    const out = await withSpan('invoke_agent planner', {}, () => llm.generate(request()));
    expect(out).toBe(reply);

    const parent = only('invoke_agent planner');
    const chat = only('chat claude-sonnet-4-5');
    expect(chat.kind).toBe(SpanKind.CLIENT);
    expect(chat.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(chat.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(chat.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': 'claude-sonnet-4-5',
      'gen_ai.request.max_tokens': 2048,
      'gen_ai.response.id': 'msg_123',
      'gen_ai.response.model': 'claude-sonnet-4-5-20250929',
      'gen_ai.response.finish_reasons': ['tool_use'],
      // input + cache read + cache creation, as the conventions count input tokens
      'gen_ai.usage.input_tokens': 135,
      'gen_ai.usage.output_tokens': 40,
      'gen_ai.usage.cache_read.input_tokens': 30,
      'gen_ai.usage.cache_creation.input_tokens': 5,
    });
    expect(chat.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('records prompt and completion only when asked to', async () => {
    await tracedLlmClient(fakeClient(() => Promise.resolve(reply))).generate(request());
    const plain = JSON.stringify(only('chat claude-sonnet-4-5').attributes);
    expect(plain).not.toContain('SECRET');
    exporter.reset();

    await tracedLlmClient(fakeClient(() => Promise.resolve(reply)), { recordContent: true }).generate(request());
    const attrs = only('chat claude-sonnet-4-5').attributes;
    expect(attrs['gen_ai.system_instructions']).toContain('SECRET-SYSTEM');
    expect(JSON.parse(String(attrs['gen_ai.input.messages']))).toEqual([{ role: 'user', parts: [{ type: 'text', content: 'Plan a todo API. SECRET-USER' }] }]);
    expect(JSON.parse(String(attrs['gen_ai.output.messages']))).toMatchObject([
      { role: 'assistant', finish_reason: 'tool_use', parts: [{ type: 'tool_call', name: 'submit_plan', arguments: { tasks: ['a'] } }] },
    ]);
  });

  it('records a failed call on its span (exception, ERROR status, error.type = FleetError code) and rethrows it unchanged', async () => {
    const failure = new FleetError('PROVIDER_OVERLOADED', 'anthropic: 529 overloaded_error: Overloaded');
    const llm = tracedLlmClient(fakeClient(() => Promise.reject(failure)));
    await expect(llm.generate(request())).rejects.toBe(failure);
    const chat = only('chat claude-sonnet-4-5');
    expect(chat.status).toEqual({ code: SpanStatusCode.ERROR, message: failure.message });
    expect(chat.attributes['error.type']).toBe('PROVIDER_OVERLOADED');
    expect(chat.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('names the offline model agentfleet.offline and marks it fleet.offline', async () => {
    const offline: LlmClient = { provider: 'offline', model: 'agentfleet-offline-1', generate: () => Promise.resolve({ ...reply, model: 'agentfleet-offline-1', usage: { input_tokens: 3, output_tokens: 4 } }) };
    await tracedLlmClient(offline).generate(request());
    const chat = only('chat agentfleet-offline-1');
    expect(chat.attributes['gen_ai.provider.name']).toBe('agentfleet.offline');
    expect(chat.attributes['fleet.offline']).toBe(true);
    expect(chat.attributes['gen_ai.usage.cache_read.input_tokens']).toBeUndefined();
  });

  it('feeds gen_ai.client.token.usage, gen_ai.client.operation.duration and fleet.llm.cost', async () => {
    const before = await metricData('fleet.llm.cost');
    const costBefore = (before as SumMetricData | undefined)?.dataPoints.find((p) => p.attributes['gen_ai.request.model'] === 'claude-sonnet-4-5')?.value ?? 0;
    await tracedLlmClient(fakeClient(() => Promise.resolve(reply))).generate(request());

    const tokens = (await metricData('gen_ai.client.token.usage')) as HistogramMetricData;
    expect(tokens.descriptor.unit).toBe('{token}');
    const point = (type: string) =>
      tokens.dataPoints.find((p) => p.attributes['gen_ai.token.type'] === type && p.attributes['gen_ai.response.model'] === 'claude-sonnet-4-5-20250929');
    expect(point('input')?.value.max).toBe(135);
    expect(point('output')?.value.max).toBe(40);
    expect(point('input')?.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic', 'gen_ai.request.model': 'claude-sonnet-4-5' });

    const duration = (await metricData('gen_ai.client.operation.duration')) as HistogramMetricData;
    expect(duration.descriptor.unit).toBe('s');
    expect(duration.dataPoints.some((p) => p.attributes['error.type'] === 'PROVIDER_OVERLOADED')).toBe(true);

    const cost = (await metricData('fleet.llm.cost')) as SumMetricData;
    const costNow = cost.dataPoints.find((p) => p.attributes['gen_ai.request.model'] === 'claude-sonnet-4-5')?.value ?? 0;
    expect(costNow - costBefore).toBeCloseTo(costUsd('claude-sonnet-4-5-20250929', reply.usage), 12);
    // $3/MTok input, $3.75 cache write, $0.30 cache read, $15 output
    expect(costUsd('claude-sonnet-4-5-20250929', reply.usage)).toBeCloseTo((100 * 3 + 5 * 3.75 + 30 * 0.3 + 40 * 15) / 1e6, 12);
    expect(costUsd('agentfleet-offline-1', reply.usage)).toBe(0);
  });

  it('prices fleet.llm.cost with the price table it is given (FLEET_PRICES), as results and budgets are', async () => {
    const local: LlmClient = { provider: 'openai-compatible', model: 'qwen3:8b', generate: () => Promise.resolve({ ...reply, model: 'qwen3:8b' }) };
    const prices = { 'qwen3': { inputPerMTok: 1, outputPerMTok: 2, cacheWritePerMTok: 1, cacheReadPerMTok: 0.5 } };
    const costOf = async () => ((await metricData('fleet.llm.cost')) as SumMetricData).dataPoints.find((p) => p.attributes['gen_ai.request.model'] === 'qwen3:8b')?.value ?? 0;
    await tracedLlmClient(local, { prices }).generate(request());
    const priced = await costOf();
    // The built-in table has no price for a local model: it would count 0.
    expect(costUsd('qwen3:8b', reply.usage)).toBe(0);
    expect(priced).toBeCloseTo(costUsd('qwen3:8b', reply.usage, prices), 12);
    expect(priced).toBeCloseTo((100 * 1 + 5 * 1 + 30 * 0.5 + 40 * 2) / 1e6, 12);
  });
});
