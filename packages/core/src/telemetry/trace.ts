/**
 * The one span helper ({@link withSpan}) and W3C trace-context propagation for job data.
 *
 * Everything here goes through `@opentelemetry/api`: with no SDK started (see `startTelemetry`) the
 * API is a no-op, spans cost next to nothing and {@link injectTraceContext} returns `{}`.
 * Nothing here throws into the application because of telemetry.
 */

import { createRequire } from 'node:module';

import {
  ROOT_CONTEXT,
  SpanStatusCode,
  context,
  diag,
  propagation,
  trace,
} from '@opentelemetry/api';
import type { Attributes, Context, Link, Span, SpanKind, SpanOptions, Tracer } from '@opentelemetry/api';

import { ERROR_TYPE_OTHER, ErrorAttributes } from './attributes.js';

/** Instrumentation scope name of every span AgentFleet creates. */
export const TRACER_NAME = '@agentfleet/core';

let tracerVersion: string | undefined | null = null;

/** The version of `@agentfleet/core`, read once from its package.json; undefined when unreadable. */
function readTracerVersion(): string | undefined {
  if (tracerVersion !== null) return tracerVersion;
  tracerVersion = undefined;
  try {
    // src/telemetry/trace.ts and dist/telemetry/trace.js both sit two levels below package.json.
    const pkg: unknown = createRequire(import.meta.url)('../../package.json');
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') {
      tracerVersion = pkg.version;
    }
  } catch {
    // No version on the instrumentation scope; not worth failing for.
  }
  return tracerVersion;
}

/**
 * The tracer for AgentFleet spans (scope `@agentfleet/core` at the package version).
 *
 * Looked up from the global provider on every call (the SDK caches tracers), so a tracer is never held
 * past a `shutdown()` and a later `startTelemetry`.
 */
export function getTracer(): Tracer {
  return trace.getTracer(TRACER_NAME, readTracerVersion());
}

/** true when some tracer provider is already registered with the API (by another SDK, or a test). */
export function tracerProviderRegistered(): boolean {
  const provider: unknown = trace.getTracerProvider();
  const proxy = provider as { getDelegateTracer?: (name: string) => unknown };
  // The API's global is a ProxyTracerProvider; it has a delegate only once a provider is registered.
  return typeof proxy.getDelegateTracer === 'function' ? proxy.getDelegateTracer(TRACER_NAME) !== undefined : true;
}

/** Options of {@link withSpan}. */
export interface WithSpanOptions {
  /** @defaultValue `SpanKind.INTERNAL` */
  kind?: SpanKind | undefined;
  /** Attributes known when the span starts; names from `./attributes.ts`. */
  attributes?: Attributes | undefined;
  /**
   * The context to start the span in: its span becomes the parent. Pass {@link extractTraceContext}'s
   * result to continue a trace from job data, or `ROOT_CONTEXT` to force a new trace.
   * @defaultValue the active context
   */
  parent?: Context | undefined;
  /** Links to other spans, e.g. the producer span of a job when the consumer span starts a new trace. */
  links?: Link[] | undefined;
}

/**
 * The `error.type` for a thrown value: its `code` when that is a non-empty string (every `FleetError`,
 * Node.js system errors), else the constructor name of an `Error`, else `_OTHER`.
 */
export function errorType(err: unknown): string {
  try {
    if (typeof err === 'object' && err !== null) {
      const code: unknown = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code !== '') return code;
      if (err instanceof Error) return err.constructor.name || err.name || 'Error';
    }
  } catch {
    // A throwing getter on the error; fall through.
  }
  return ERROR_TYPE_OTHER;
}

/**
 * Mark a span as failed by `err`: record the exception (an `exception` event with type, message and
 * stack), set status ERROR with the error message, and set `error.type` (see {@link errorType}).
 * Never throws. Does not end the span.
 */
export function recordSpanError(span: Span, err: unknown): void {
  try {
    const message = err instanceof Error ? err.message : String(err);
    span.recordException(err instanceof Error ? err : message);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
    span.setAttribute(ErrorAttributes.Type, errorType(err));
  } catch (telemetryError) {
    diag.warn('agentfleet: could not record an error on a span', telemetryError);
  }
}

/**
 * Run `fn` inside a new active span named `name`, and end the span when `fn` settles.
 *
 * The span's parent is the span of `options.parent` when given, else the active span. Spans that
 * `fn` starts (directly or through awaited calls) become its children. When `fn` throws or rejects,
 * the error is recorded on the span ({@link recordSpanError}) and rethrown unchanged. On success the
 * status is left unset, as the conventions ask, unless `fn` set it.
 *
 * @param name - the span name, e.g. `invoke_agent coder` or `send {fleet}:coder`.
 * @returns what `fn` returns.
 * @throws whatever `fn` throws; never an error of its own.
 *
 * @example
 * const result = await withSpan(`invoke_agent ${role}`, {
 *   kind: SpanKind.CONSUMER,
 *   parent: extractTraceContext(job.data.traceContext),
 *   attributes: { [GenAiAttributes.OperationName]: 'invoke_agent', [FleetAttributes.RunId]: runId },
 * }, async (span) => {
 *   const reply = await llm.complete(request);
 *   span.setAttribute(GenAiAttributes.UsageOutputTokens, reply.usage.outputTokens);
 *   return reply;
 * });
 */
export async function withSpan<T>(
  name: string,
  options: WithSpanOptions,
  fn: (span: Span) => Promise<T> | T,
): Promise<T> {
  const spanOptions: SpanOptions = {};
  if (options.kind !== undefined) spanOptions.kind = options.kind;
  if (options.attributes !== undefined) spanOptions.attributes = options.attributes;
  if (options.links !== undefined) spanOptions.links = options.links;
  const parent = options.parent ?? context.active();

  return getTracer().startActiveSpan(name, spanOptions, parent, async (span): Promise<T> => {
    try {
      return await fn(span);
    } catch (err) {
      recordSpanError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * The trace context of `ctx` as a string map (W3C `traceparent`, and `tracestate` when there is one),
 * to carry inside job data. Returns `{}` when no SDK is started or `ctx` holds no span.
 *
 * @param ctx - @defaultValue the active context
 */
export function injectTraceContext(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  try {
    propagation.inject(ctx, carrier);
  } catch (err) {
    diag.warn('agentfleet: could not inject trace context', err);
    return {};
  }
  return carrier;
}

/**
 * The context described by a carrier from {@link injectTraceContext}, to pass as `parent` to
 * {@link withSpan}. Built on `ROOT_CONTEXT`, not the active context, so a job without a carrier (or
 * with a malformed one) starts a new trace rather than nesting under whatever span happens to be
 * active. Never throws; anything that is not a valid carrier yields `ROOT_CONTEXT`.
 */
export function extractTraceContext(carrier: Record<string, string> | undefined): Context {
  if (typeof carrier !== 'object' || carrier === null) return ROOT_CONTEXT;
  try {
    return propagation.extract(ROOT_CONTEXT, carrier);
  } catch (err) {
    diag.warn('agentfleet: could not extract trace context', err);
    return ROOT_CONTEXT;
  }
}
