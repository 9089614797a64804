import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { TracerProvider as BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { ATTR_ERROR_TYPE, ERROR_TYPE_VALUE_OTHER } from '@opentelemetry/semantic-conventions';
import * as incubating from '@opentelemetry/semantic-conventions/incubating';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { FleetError } from '../errors.js';
import { incomingTraceCarrier } from './run-spans.js';
import {
  ERROR_TYPE_OTHER,
  ErrorAttributes,
  FleetAttributes,
  GenAiAttributes,
  GenAiOperationNames,
  GenAiProviderNames,
  MessagingAttributes,
  MessagingOperationTypes,
  messagingAttributes,
} from './attributes.js';
import { TRACER_NAME, errorType, extractTraceContext, injectTraceContext, withSpan } from './trace.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
});

afterEach(() => {
  exporter.reset();
});

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

function finished(name: string): ReadableSpan {
  const matches = exporter.getFinishedSpans().filter((s) => s.name === name);
  if (matches.length !== 1) {
    const names = exporter.getFinishedSpans().map((s) => s.name);
    throw new Error(`expected one finished span "${name}", found ${matches.length} among [${names.join(', ')}]`);
  }
  return matches[0] as ReadableSpan;
}

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

describe('withSpan', () => {
  it('nests a span started inside another under it, in the same trace, and returns what fn returns', async () => {
    const result = await withSpan('parent', { attributes: { [FleetAttributes.RunId]: 'run-1' } }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return withSpan('child', { kind: SpanKind.CLIENT }, () => Promise.resolve(42));
    });

    expect(result).toBe(42);
    const parent = finished('parent');
    const child = finished('child');
    expect(child.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(parentOf(child)).toBe(parent.spanContext().spanId);
    expect(parentOf(parent)).toBeUndefined();
    expect(parent.attributes[FleetAttributes.RunId]).toBe('run-1');
    expect(parent.kind).toBe(SpanKind.INTERNAL);
    expect(child.kind).toBe(SpanKind.CLIENT);
    // Success leaves the status unset, as the conventions ask of instrumentation.
    expect(parent.status.code).toBe(SpanStatusCode.UNSET);
    expect(parent.instrumentationScope.name).toBe(TRACER_NAME);
    expect(parent.instrumentationScope.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('keeps concurrent siblings apart: each child lands under its own parent', async () => {
    await Promise.all(
      ['a', 'b'].map((id) =>
        withSpan(`parent-${id}`, {}, async () => {
          await new Promise((resolve) => setTimeout(resolve, id === 'a' ? 5 : 1));
          await withSpan(`child-${id}`, {}, async () => {});
        }),
      ),
    );
    for (const id of ['a', 'b']) {
      expect(parentOf(finished(`child-${id}`))).toBe(finished(`parent-${id}`).spanContext().spanId);
    }
  });

  it('records a FleetError: exception event, ERROR status with the message, error.type = code; rethrows it', async () => {
    const thrown = new FleetError('PHASE_TIMEOUT', 'phase "code" did not finish within 30 s');
    const seen = await withSpan('failing', {}, () => Promise.reject(thrown)).catch((err: unknown) => err);

    expect(seen).toBe(thrown);
    const span = finished('failing');
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'phase "code" did not finish within 30 s' });
    expect(span.attributes[ErrorAttributes.Type]).toBe('PHASE_TIMEOUT');
    const exception = span.events.find((e) => e.name === 'exception');
    expect(exception?.attributes?.['exception.message']).toBe('phase "code" did not finish within 30 s');
    expect(exception?.attributes?.['exception.stacktrace']).toContain('trace.test.ts');
    expect(span.ended).toBe(true);
  });

  it('records a synchronous throw of a plain Error with its constructor name as error.type', async () => {
    await expect(
      withSpan('sync-throw', {}, () => {
        throw new RangeError('too far');
      }),
    ).rejects.toThrow('too far');
    const span = finished('sync-throw');
    expect(span.attributes[ErrorAttributes.Type]).toBe('RangeError');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('records a thrown non-Error as _OTHER with its string form as the message', async () => {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a non-Error rejection is the case under test
    await expect(withSpan('odd-throw', {}, () => Promise.reject('just a string'))).rejects.toBe('just a string');
    const span = finished('odd-throw');
    expect(span.attributes[ErrorAttributes.Type]).toBe(ERROR_TYPE_OTHER);
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'just a string' });
  });

  it('starts under `parent` when given, not under the active span; ROOT_CONTEXT starts a new trace', async () => {
    await withSpan('elsewhere', {}, async (elsewhere) => {
      const elsewhereContext = trace.setSpan(ROOT_CONTEXT, elsewhere);
      await withSpan('active', {}, async () => {
        await withSpan('explicit', { parent: elsewhereContext }, async () => {});
        await withSpan('fresh', { parent: ROOT_CONTEXT }, async () => {});
      });
    });
    expect(parentOf(finished('explicit'))).toBe(finished('elsewhere').spanContext().spanId);
    expect(parentOf(finished('fresh'))).toBeUndefined();
    expect(finished('fresh').spanContext().traceId).not.toBe(finished('active').spanContext().traceId);
  });

  it('passes links through', async () => {
    const linked = await withSpan('producer', {}, (span) => Promise.resolve(span.spanContext()));
    await withSpan('consumer', { parent: ROOT_CONTEXT, links: [{ context: linked }] }, async () => {});
    const consumer = finished('consumer');
    expect(consumer.links).toHaveLength(1);
    expect(consumer.links[0]?.context.spanId).toBe(linked.spanId);
  });
});

describe('errorType', () => {
  it('prefers a string code, then the constructor name, then _OTHER', () => {
    expect(errorType(new FleetError('PROVIDER_RATE_LIMITED', '429'))).toBe('PROVIDER_RATE_LIMITED');
    expect(errorType(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(errorType(Object.assign(new TypeError('x'), { code: 42 }))).toBe('TypeError');
    expect(errorType(new (class CustomFailure extends Error {})('x'))).toBe('CustomFailure');
    expect(errorType(undefined)).toBe('_OTHER');
    expect(errorType({ message: 'not an error' })).toBe('_OTHER');
  });
});

describe('trace context propagation', () => {
  it('inject → JSON (job data) → extract continues the trace: same trace id, parent = the injecting span', async () => {
    let producerSpanId = '';
    const jobData = await withSpan('send', { kind: SpanKind.PRODUCER }, (span) => {
      producerSpanId = span.spanContext().spanId;
      return Promise.resolve(JSON.stringify({ phase: 'code', traceContext: injectTraceContext() }));
    });

    const parsed = JSON.parse(jobData) as { traceContext: Record<string, string> };
    const producer = finished('send');
    expect(parsed.traceContext.traceparent).toBe(`00-${producer.spanContext().traceId}-${producerSpanId}-01`);

    // The consumer side, with an unrelated span active: the carrier decides the parent.
    await withSpan('unrelated', {}, () =>
      withSpan('process', { kind: SpanKind.CONSUMER, parent: extractTraceContext(parsed.traceContext) }, async () => {}),
    );
    const consumer = finished('process');
    expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(parentOf(consumer)).toBe(producerSpanId);
    expect(consumer.parentSpanContext?.isRemote).toBe(true);
  });

  it('injects the given context rather than the active one', async () => {
    const other = await withSpan('other', {}, (span) => Promise.resolve(span.spanContext()));
    const carrier = await withSpan('active', {}, () =>
      Promise.resolve(injectTraceContext(trace.setSpanContext(ROOT_CONTEXT, other))),
    );
    expect(carrier.traceparent).toContain(other.spanId);
  });

  it('injects nothing outside a span', () => {
    expect(injectTraceContext(ROOT_CONTEXT)).toEqual({});
  });

  it('starts a new trace from a missing or malformed carrier', async () => {
    const carriers: unknown[] = [undefined, {}, { traceparent: 'garbage' }, { traceparent: 7 }, 'a string', null];
    await withSpan('active-while-extracting', {}, async () => {
      for (const [i, carrier] of carriers.entries()) {
        await withSpan(`from-${i}`, { parent: extractTraceContext(carrier as Record<string, string>) }, async () => {});
      }
    });
    for (const i of carriers.keys()) {
      expect(parentOf(finished(`from-${i}`))).toBeUndefined();
    }
  });

  it('returns {} when no propagator is registered (the API no-op)', async () => {
    propagation.disable();
    try {
      const carrier = await withSpan('no-propagator', {}, () => Promise.resolve(injectTraceContext()));
      expect(carrier).toEqual({});
    } finally {
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    }
  });
});

describe('attribute names', () => {
  it('match @opentelemetry/semantic-conventions (incubating) as installed', () => {
    const inc = incubating as unknown as Record<string, unknown>;
    const expected: Record<string, string> = {
      OperationName: 'ATTR_GEN_AI_OPERATION_NAME',
      ProviderName: 'ATTR_GEN_AI_PROVIDER_NAME',
      RequestModel: 'ATTR_GEN_AI_REQUEST_MODEL',
      RequestMaxTokens: 'ATTR_GEN_AI_REQUEST_MAX_TOKENS',
      RequestTemperature: 'ATTR_GEN_AI_REQUEST_TEMPERATURE',
      ResponseId: 'ATTR_GEN_AI_RESPONSE_ID',
      ResponseModel: 'ATTR_GEN_AI_RESPONSE_MODEL',
      ResponseFinishReasons: 'ATTR_GEN_AI_RESPONSE_FINISH_REASONS',
      UsageInputTokens: 'ATTR_GEN_AI_USAGE_INPUT_TOKENS',
      UsageOutputTokens: 'ATTR_GEN_AI_USAGE_OUTPUT_TOKENS',
      UsageCacheReadInputTokens: 'ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS',
      UsageCacheCreationInputTokens: 'ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS',
      UsageReasoningOutputTokens: 'ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS',
      AgentName: 'ATTR_GEN_AI_AGENT_NAME',
      WorkflowName: 'ATTR_GEN_AI_WORKFLOW_NAME',
      ToolName: 'ATTR_GEN_AI_TOOL_NAME',
      ToolCallId: 'ATTR_GEN_AI_TOOL_CALL_ID',
      ToolType: 'ATTR_GEN_AI_TOOL_TYPE',
      ToolCallArguments: 'ATTR_GEN_AI_TOOL_CALL_ARGUMENTS',
      ToolCallResult: 'ATTR_GEN_AI_TOOL_CALL_RESULT',
      SystemInstructions: 'ATTR_GEN_AI_SYSTEM_INSTRUCTIONS',
      InputMessages: 'ATTR_GEN_AI_INPUT_MESSAGES',
      OutputMessages: 'ATTR_GEN_AI_OUTPUT_MESSAGES',
      TokenType: 'ATTR_GEN_AI_TOKEN_TYPE',
    };
    expect(Object.keys(GenAiAttributes).sort()).toEqual(Object.keys(expected).sort());
    for (const [key, name] of Object.entries(GenAiAttributes)) {
      expect(name, key).toBe(inc[expected[key] as string]);
    }

    expect(MessagingAttributes.SystemName).toBe(inc.ATTR_MESSAGING_SYSTEM_NAME);
    expect(MessagingAttributes.System).toBe(inc.ATTR_MESSAGING_SYSTEM);
    expect(MessagingAttributes.DestinationName).toBe(inc.ATTR_MESSAGING_DESTINATION_NAME);
    expect(MessagingAttributes.OperationType).toBe(inc.ATTR_MESSAGING_OPERATION_TYPE);
    expect(MessagingAttributes.OperationName).toBe(inc.ATTR_MESSAGING_OPERATION_NAME);
    expect(MessagingAttributes.MessageId).toBe(inc.ATTR_MESSAGING_MESSAGE_ID);
    expect(MessagingOperationTypes.Send).toBe(inc.MESSAGING_OPERATION_TYPE_VALUE_SEND);
    expect(MessagingOperationTypes.Process).toBe(inc.MESSAGING_OPERATION_TYPE_VALUE_PROCESS);
    expect(MessagingOperationTypes.Receive).toBe(inc.MESSAGING_OPERATION_TYPE_VALUE_RECEIVE);
    expect(MessagingOperationTypes.Settle).toBe(inc.MESSAGING_OPERATION_TYPE_VALUE_SETTLE);
    expect(GenAiOperationNames.Chat).toBe(inc.GEN_AI_OPERATION_NAME_VALUE_CHAT);
    expect(GenAiOperationNames.InvokeAgent).toBe(inc.GEN_AI_OPERATION_NAME_VALUE_INVOKE_AGENT);
    expect(GenAiOperationNames.InvokeWorkflow).toBe(inc.GEN_AI_OPERATION_NAME_VALUE_INVOKE_WORKFLOW);
    expect(GenAiOperationNames.ExecuteTool).toBe(inc.GEN_AI_OPERATION_NAME_VALUE_EXECUTE_TOOL);
    expect(GenAiProviderNames.Anthropic).toBe(inc.GEN_AI_PROVIDER_NAME_VALUE_ANTHROPIC);
    expect(ErrorAttributes.Type).toBe(ATTR_ERROR_TYPE);
    expect(ERROR_TYPE_OTHER).toBe(ERROR_TYPE_VALUE_OTHER);
  });

  it('keeps our own names under fleet.* and unique', () => {
    const ours = Object.values(FleetAttributes);
    expect(ours.every((name) => name.startsWith('fleet.'))).toBe(true);
    expect(new Set(ours).size).toBe(ours.length);
  });

  it('messagingAttributes sets the system under both keys and omits an unknown message id', () => {
    expect(messagingAttributes({ operationType: 'send', operationName: 'add', destination: '{fleet}:coder' })).toEqual({
      'messaging.system.name': 'bullmq',
      'messaging.system': 'bullmq',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'add',
      'messaging.destination.name': '{fleet}:coder',
    });
    expect(
      messagingAttributes({ operationType: 'process', operationName: 'process', destination: 'q', messageId: 'run.code.0' })[
        'messaging.message.id'
      ],
    ).toBe('run.code.0');
  });
});

describe('incomingTraceCarrier', () => {
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it('keeps a valid traceparent (from a header, a repeated header or TRACEPARENT) with its tracestate', () => {
    expect(incomingTraceCarrier(traceparent)).toEqual({ traceparent });
    expect(incomingTraceCarrier(` ${traceparent.toUpperCase()} `, 'a=1')).toEqual({ traceparent, tracestate: 'a=1' });
    expect(incomingTraceCarrier([traceparent, 'ignored'], ['a=1', 'b=2'])).toEqual({ traceparent, tracestate: 'a=1,b=2' });
  });
  it('gives {} for a missing, malformed or all-zero traceparent, so the run starts its own trace', () => {
    expect(incomingTraceCarrier(undefined, 'a=1')).toEqual({});
    expect(incomingTraceCarrier('not a traceparent')).toEqual({});
    expect(incomingTraceCarrier('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({});
    expect(incomingTraceCarrier('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toEqual({});
    expect(incomingTraceCarrier('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01')).toEqual({});
  });
});
