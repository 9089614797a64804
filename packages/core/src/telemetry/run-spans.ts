/**
 * Run and phase spans that begin in one process and end in another.
 *
 * A run's `invoke_workflow <workflow>` span and each `phase <name>` span last as long as the run or the
 * phase, and the process that enqueues a phase (the manager, or the worker that finished the phase
 * before it) is rarely the one that sees it end. So neither is held in memory: when a run starts or a
 * phase is queued, only its identity is chosen ({@link beginSpanRef}) and stored in the run state;
 * children (the `send` producer span, and through the job's W3C context the worker's spans) are
 * parented to that identity. Whichever process commits the end emits the whole span at once with its
 * recorded start time, under the stored ids ({@link emitRunSpan}, {@link emitPhaseSpan}). A crash or a
 * restart between the two loses nothing: the identity is in Redis.
 *
 * Emitting under a chosen span id needs the SDK's id generator to take it: `startTelemetry` installs
 * {@link fleetIdGenerator}, which hands out the forced ids during {@link emitRunSpan}/{@link emitPhaseSpan}
 * and random ones otherwise. With another SDK set up by the application, spans are still emitted, but
 * under fresh ids (their children then point at a parent id that never arrives).
 *
 * Sampling: the identity inherits the sampled flag of its parent (the submitter's context for a run,
 * the run for a phase); a run with no parent is sampled. The SDK's sampler still decides at emission.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  diag,
  isSpanContextValid,
  trace,
  type Attributes,
  type Context,
  type Link,
  type SpanContext,
} from '@opentelemetry/api';
import { FleetAttributes, GenAiAttributes, GenAiOperationNames, messagingAttributes } from './attributes.js';
import { extractTraceContext, getTracer, injectTraceContext } from './trace.js';
import type { SpanRef } from '../scheduler/types.js';

export type { SpanRef };

let forced: { traceId?: string | undefined; spanId: string } | undefined;

const idBytes = Buffer.allocUnsafe(16);

/**
 * `bytes` random bytes as lowercase hex, never all zeros (the invalid id of the W3C spec). Math.random,
 * as the SDK's own RandomIdGenerator: ids must be unique, not secret, and a CSPRNG call per span
 * costs more than the span.
 */
function randomHex(bytes: number): string {
  for (;;) {
    let any = 0;
    for (let i = 0; i < bytes; i += 4) {
      const word = (Math.random() * 2 ** 32) >>> 0;
      idBytes.writeUInt32BE(word, i);
      any |= word;
    }
    if (any !== 0) return idBytes.toString('hex', 0, bytes);
  }
}

/**
 * The SDK id generator AgentFleet installs (`NodeSDK({ idGenerator })`): random W3C ids, except while
 * a begun span is being emitted under its stored ids.
 */
export const fleetIdGenerator = {
  generateTraceId(): string {
    return forced?.traceId ?? randomHex(16);
  },
  generateSpanId(): string {
    return forced?.spanId ?? randomHex(8);
  },
};

/**
 * Choose the identity of a span that begins now under `parent` (a stored {@link SpanRef}, or a W3C
 * carrier such as the submitter's `traceparent`). Writes nothing and exports nothing, and needs no SDK
 * in this process: a run started by a client without one still gets its identity, and the processes
 * that end its phases (with an SDK) emit the spans under it.
 */
export function beginSpanRef(parent: SpanRef | Record<string, string> | undefined): SpanRef {
  const parentSc = spanContextOf(parent);
  return {
    trace_id: parentSc ? parentSc.traceId : randomHex(16),
    span_id: randomHex(8),
    flags: parentSc ? parentSc.traceFlags : TraceFlags.SAMPLED,
  };
}

/** The W3C `traceparent` header value (version 00) naming `ref` as the parent. Source: W3C Trace Context §3.2. */
export function traceparentOf(ref: SpanRef): string {
  return `00-${ref.trace_id}-${ref.span_id}-${(ref.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * The trace carrier to put in job data under `ref`: the active context injected through the global
 * propagator (inside a `send` span, that span), or, when this process has none (no SDK), `ref`'s own
 * W3C `traceparent`, so the receiver's spans still join the run's trace.
 * @param ctx - @defaultValue the active context
 */
export function carrierUnder(ref: SpanRef | undefined, ctx?: Context): Record<string, string> {
  const carrier = injectTraceContext(ctx);
  return Object.keys(carrier).length === 0 && ref ? { traceparent: traceparentOf(ref) } : carrier;
}

function spanContextOf(parent: SpanRef | Record<string, string> | undefined): SpanContext | undefined {
  if (!parent) return undefined;
  if (isSpanRef(parent)) return { traceId: parent.trace_id, spanId: parent.span_id, traceFlags: parent.flags, isRemote: true };
  const sc = trace.getSpanContext(extractTraceContext(parent));
  if (sc && isSpanContextValid(sc)) return sc;
  // No propagator in this process (no SDK): read a W3C `traceparent` directly.
  const m = TRACEPARENT.exec(parent.traceparent ?? '');
  if (!m) return undefined;
  const parsed = { traceId: m[1] as string, spanId: m[2] as string, traceFlags: parseInt(m[3] as string, 16), isRemote: true };
  return isSpanContextValid(parsed) ? parsed : undefined;
}

/**
 * The trace carrier a caller hands in: an incoming W3C `traceparent` (with its `tracestate`), from
 * the headers of an HTTP request or from the `TRACEPARENT` / `TRACESTATE` environment variables of a
 * command (the OpenTelemetry environment-carrier convention). Stored as the run's trace, it makes the
 * caller's span the parent of the run's span. A missing or malformed `traceparent` (not version 00,
 * an all-zero id) gives `{}`, so the run starts a trace of its own.
 * @param traceparent - the header or variable value; for a repeated header, the first value.
 */
export function incomingTraceCarrier(
  traceparent: string | readonly string[] | undefined,
  tracestate?: string | readonly string[],
): Record<string, string> {
  const parent = (typeof traceparent === 'string' ? traceparent : traceparent?.[0])?.trim().toLowerCase();
  const m = TRACEPARENT.exec(parent ?? '');
  if (parent === undefined || !m || !isSpanContextValid({ traceId: m[1] as string, spanId: m[2] as string, traceFlags: 0 })) return {};
  const state = typeof tracestate === 'string' ? tracestate : tracestate?.join(',');
  return state !== undefined && state.trim() !== '' ? { traceparent: parent, tracestate: state.trim() } : { traceparent: parent };
}

/** A version-00 `traceparent`: trace id, parent span id, flags (W3C Trace Context §3.2.2). */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function isSpanRef(value: SpanRef | Record<string, string>): value is SpanRef {
  return typeof value.trace_id === 'string' && typeof value.span_id === 'string';
}

/** A context whose (remote, non-recording) span is `ref`: the parent to start children under. */
export function contextOfSpanRef(ref: SpanRef | undefined): Context {
  if (!ref) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: ref.trace_id, spanId: ref.span_id, traceFlags: ref.flags, isRemote: true });
}

/** Emit, already ended, a span begun with {@link beginSpanRef}, under its stored ids. */
function emit(
  ref: SpanRef,
  name: string,
  parent: Context,
  start: number,
  end: number,
  attributes: Attributes,
  links: Link[],
  error?: string,
  kind: SpanKind = SpanKind.INTERNAL,
): void {
  try {
    // The trace id comes from the parent when it has one; a root takes the forced one.
    forced = { traceId: ref.trace_id, spanId: ref.span_id };
    let span;
    try {
      span = getTracer().startSpan(name, { kind, startTime: start, attributes, links }, parent);
    } finally {
      forced = undefined;
    }
    if (span.spanContext().spanId !== ref.span_id && span.isRecording()) {
      diag.debug(`agentfleet: span "${name}" was emitted under a new id (the SDK does not use fleetIdGenerator)`);
    }
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    span.end(Math.max(start, end));
  } catch (err) {
    diag.warn(`agentfleet: could not emit span "${name}"`, err);
  }
}

/** What {@link emitRunSpan} needs of a run. */
export interface RunSpanInput {
  runId: string;
  workflow: string;
  version: string;
  /** The submitter's W3C carrier: the run span's parent. */
  parent: Record<string, string> | undefined;
  ref: SpanRef;
  /** Epoch ms. */
  start: number;
  end: number;
  status: 'completed' | 'failed' | 'cancelled';
}

/** Emit a finished run's `invoke_workflow <workflow>` span (status ERROR unless it completed). */
export function emitRunSpan(input: RunSpanInput): void {
  const parent = input.parent && Object.keys(input.parent).length > 0 ? extractTraceContext(input.parent) : ROOT_CONTEXT;
  emit(
    input.ref,
    `${GenAiOperationNames.InvokeWorkflow} ${input.workflow}`,
    parent,
    input.start,
    input.end,
    {
      [GenAiAttributes.OperationName]: GenAiOperationNames.InvokeWorkflow,
      [GenAiAttributes.WorkflowName]: input.workflow,
      [FleetAttributes.RunId]: input.runId,
      [FleetAttributes.WorkflowName]: input.workflow,
      [FleetAttributes.WorkflowVersion]: input.version,
    },
    [],
    input.status === 'completed' ? undefined : `run ${input.status}`,
  );
}

/** What {@link emitPhaseSpan} needs of a phase iteration. */
export interface PhaseSpanInput {
  runId: string;
  run: SpanRef;
  ref: SpanRef;
  phase: string;
  iteration: number;
  role: string;
  /** Epoch ms: queued, ended. */
  start: number;
  end: number;
  /** The latest spans of the phases it depends on (fan-in links), by phase name. */
  dependencies: Record<string, SpanRef>;
  /** The attempt that completed it. */
  attempt?: number | undefined;
  /** Set when the phase failed: the span's status message. */
  error?: string | undefined;
}

/** Emit an ended phase iteration's `phase <name>` span, a child of the run span, linked to its dependencies' spans. */
export function emitPhaseSpan(input: PhaseSpanInput): void {
  const links: Link[] = Object.entries(input.dependencies).map(([phase, ref]) => ({
    context: { traceId: ref.trace_id, spanId: ref.span_id, traceFlags: ref.flags, isRemote: true },
    attributes: { [FleetAttributes.PhaseName]: phase },
  }));
  emit(
    input.ref,
    `phase ${input.phase}`,
    contextOfSpanRef(input.run),
    input.start,
    input.end,
    {
      [FleetAttributes.RunId]: input.runId,
      [FleetAttributes.PhaseName]: input.phase,
      [FleetAttributes.PhaseIteration]: input.iteration,
      [FleetAttributes.AgentRole]: input.role,
      ...(input.attempt !== undefined ? { [FleetAttributes.PhaseAttempt]: input.attempt } : {}),
    },
    links,
    input.error,
  );
}

/** What {@link emitSendSpan} needs of a phase job a commit added. */
export interface SendSpanInput {
  runId: string;
  phase: string;
  /** The phase iteration's span: the send span's parent. */
  phaseSpan: SpanRef | undefined;
  /** The send span's own identity, chosen before the commit (its context is in the job data). */
  ref: SpanRef;
  /** The role queue's name, e.g. `agent-coder`. */
  queue: string;
  jobId: string;
  /** Epoch ms: the commit sent, its reply received. */
  start: number;
  end: number;
}

/**
 * The attributes of a phase job's `send <queue>` producer span: the OpenTelemetry messaging semantic
 * conventions' (`messaging.*`, operation `send`, name `add`) and the run and phase.
 */
export function sendSpanAttributes(queue: string, jobId: string, runId: string, phase: string): Attributes {
  return {
    ...messagingAttributes({ operationType: 'send', operationName: 'add', destination: queue, messageId: jobId }),
    [FleetAttributes.RunId]: runId,
    [FleetAttributes.PhaseName]: phase,
  };
}

/**
 * Emit the `send <queue>` producer span of a phase job added by a commit: a child of the phase span,
 * the parent of the worker's `process <queue>` spans (through the job data's trace context).
 * Messaging attributes per the OpenTelemetry messaging semantic conventions. For a commit whose
 * reply was lost (it landed, its resend was refused as a duplicate) the committer emits them once it
 * finds the try's phase span identities in the stored state (../engine/driver.ts `landedWith`).
 */
export function emitSendSpan(input: SendSpanInput): void {
  emit(
    input.ref,
    `send ${input.queue}`,
    contextOfSpanRef(input.phaseSpan),
    input.start,
    input.end,
    sendSpanAttributes(input.queue, input.jobId, input.runId, input.phase),
    [],
    undefined,
    SpanKind.PRODUCER,
  );
}

/**
 * The trace context to put in the data of a phase job whose send span is `sendRef` (emitted later
 * with {@link emitSendSpan}): `sendRef` through the global propagator; in a process without one (no
 * SDK, so no send span is recorded), the phase span's `traceparent`, so the worker's spans still join
 * the run's trace.
 */
export function sendCarrier(phaseSpan: SpanRef | undefined, sendRef: SpanRef): Record<string, string> {
  return carrierUnder(phaseSpan, contextOfSpanRef(sendRef));
}
