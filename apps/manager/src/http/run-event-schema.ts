/**
 * The messages of `GET /api/runs/{id}/events` (Server-Sent Events, https://html.spec.whatwg.org/multipage/server-sent-events.html)
 * as JSON Schema for the OpenAPI document: each message has `id` (the run event's stream id, for
 * `Last-Event-ID`), `event` (the run event's type) and `data` (the run event as one line of JSON).
 *
 * The table of event types is total over what the events stream can hold, so a new run event type
 * does not compile until it is described here.
 */
import { FLEET_ERROR_CODES, type StoredRunEvent } from '@agentfleet/core';
import { z } from 'zod';

/** Every event type a run's events stream can hold. */
type StreamEventType = StoredRunEvent['event']['type'];

const at = z.number().describe('when it happened, ms since the Unix epoch');
const FleetErrorBody = z
  .looseObject({
    code: z.enum(Object.keys(FLEET_ERROR_CODES) as [keyof typeof FLEET_ERROR_CODES, ...Array<keyof typeof FLEET_ERROR_CODES>]),
    message: z.string(),
    category: z.enum(['user', 'system', 'provider']),
    retryable: z.boolean(),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'FleetError', description: 'a failure as recorded on a run (code from the fleet error table)' });

/** The fields of each run event beside `type` and `at`, with what it means. */
const EVENT_FIELDS: Record<StreamEventType, { description: string; fields: z.ZodRawShape }> = {
  run_created: { description: 'the run was written', fields: { workflow: z.string(), version: z.string() } },
  run_started: { description: 'the run began', fields: {} },
  run_queued: {
    description: 'the run waits for a slot of its concurrency key (status `queued`); it starts when one of the key\'s runs finishes',
    fields: { key: z.string(), limit: z.number().int(), position: z.number().int().describe('1 = next to start') },
  },
  phase_queued: { description: "a phase's job was added to its role's queue", fields: { phase: z.string(), agent: z.string(), iteration: z.number().int() } },
  phase_started: { description: 'an agent worker took the phase job', fields: { phase: z.string(), agent: z.string(), iteration: z.number().int(), attempt: z.number().int() } },
  phase_waiting: { description: 'the phase waits for an external event (approval, answers, `budget` for a raise of a budget with `on_exceed: wait`, `batch` for its message batch)', fields: { phase: z.string(), event: z.string(), prompt: z.unknown().optional() } },
  step_action: {
    description: "an agent result steered the run (repeat, jump, wait, complete)",
    fields: { phase: z.string(), action: z.enum(['continue', 'repeat', 'jump', 'wait', 'complete']), target: z.string().optional(), note: z.string().optional() },
  },
  external_event: { description: 'an external event arrived (POST /api/runs/{id}/events)', fields: { event: z.string(), data: z.unknown() } },
  run_resumed: { description: 'a failed or cancelled run was resumed', fields: {} },
  phase_retry: {
    description: 'an attempt failed with a transient error; another follows after delay_ms',
    fields: { phase: z.string(), attempt: z.number().int(), error: FleetErrorBody, delay_ms: z.number().optional().describe('backoff before the next attempt, ms') },
  },
  phase_completed: {
    description: 'the phase completed',
    fields: { phase: z.string(), iteration: z.number().int(), attempt: z.number().int(), duration_ms: z.number(), cache_hit: z.boolean().optional() },
  },
  phase_failed: { description: 'the phase failed for good', fields: { phase: z.string(), error: FleetErrorBody } },
  phase_skipped: { description: 'the phase was skipped (condition false, or a dependency failed)', fields: { phase: z.string(), reason: z.string() } },
  phase_cancelled: { description: 'the phase was cancelled', fields: { phase: z.string(), reason: z.string() } },
  run_finished: {
    description: 'the run ended; the last message of the stream',
    fields: { status: z.enum(['completed', 'failed', 'cancelled']), duration_ms: z.number().describe('wall time of the run, ms') },
  },
  cancel_ignored: {
    description: 'a cancel reached the manager after the run had finished (it lost the race to completion): nothing was cancelled',
    fields: { reason: z.string(), status: z.string().describe('the status the run had finished with'), message: z.string() },
  },
  event_rejected: {
    description: 'deciding on an event threw: that event was refused for good and changed nothing (error EVENT_REJECTED); later events of the run are decided as usual',
    fields: {
      event: z.string().describe('the refused event\'s type (external_event, phase_completed, cancel_requested, …)'),
      phase: z.string().optional().describe('the phase the event was about, when it names one'),
      iteration: z.number().int().optional(),
      error: FleetErrorBody,
    },
  },
  tool_call: {
    description: 'an agent called a tool inside its turn (arguments only with FLEET_TRACE_CONTENT)',
    fields: {
      phase: z.string(),
      iteration: z.number().int(),
      attempt: z.number().int(),
      tool: z.string(),
      call: z.number().int().describe('the call number within the phase iteration (idempotency key `<run>.<phase>.<iteration>.<call>`)'),
      duration_ms: z.number(),
      status: z.enum(['ok', 'error']),
      input_bytes: z.number().int(),
      result_bytes: z.number().int(),
      result_tokens: z.number().int().describe('estimated tokens the result adds to the next prompt (4 characters a token)'),
      error: z.string().optional(),
      arguments: z.unknown().optional(),
    },
  },
  budget_held: {
    description: "a budgeted model call waits for other phases' calls in flight to settle what they hold of a budget (reservations; see docs/spending.md)",
    fields: {
      phase: z.string(),
      iteration: z.number().int(),
      scope: z.string().describe('the budget: `run`, or `phase:<name>` for a phase\'s own'),
      limit: z.string().describe('`max_cost_usd` or `max_tokens`'),
      max: z.number().describe('the limit in force (raises included), USD or tokens'),
      spent: z.number().describe('settled spend against it, USD or tokens'),
      reserved: z.number().describe('held by calls in flight, USD or tokens'),
    },
  },
  rate_limited: {
    description: 'a phase waits for the provider rate limit',
    fields: { phase: z.string(), iteration: z.number().int(), wait_ms: z.number(), limit: z.string(), model: z.string() },
  },
  end_action: {
    description: "an attempt of the finished run's end action (webhook, workflow, tool call)",
    fields: { action: z.string(), target: z.string().nullable().optional(), attempt: z.number().int(), outcome: z.string() },
  },
  rerun_started: { description: 'a re-run of this run started', fields: { new_run_id: z.string(), from: z.string() } },
  fallback_failed: { description: "the workflow's fallback workflow could not start", fields: { workflow: z.string(), error: z.string() } },
  fallback_started: { description: "the workflow's fallback workflow started", fields: { workflow: z.string(), fallback_run_id: z.string() } },
  role_unserved: {
    description: 'a phase is queued to a role no live agent pool serves',
    fields: { phase: z.string(), iteration: z.number().int(), role: z.string(), message: z.string() },
  },
};

/** Every `event` name of the stream: the run event types, plus `error` when reading the stream fails. */
export const RUN_EVENT_STREAM_EVENTS = [...(Object.keys(EVENT_FIELDS) as StreamEventType[]), 'error'] as const;

const RunEvent = z
  .discriminatedUnion(
    'type',
    (Object.entries(EVENT_FIELDS) as Array<[StreamEventType, (typeof EVENT_FIELDS)[StreamEventType]]>).map(([type, { description, fields }]) =>
      z.looseObject({ type: z.literal(type), at, ...fields }).describe(description),
    ) as unknown as [z.ZodObject, ...z.ZodObject[]],
  )
  .meta({ id: 'RunEvent', description: "one record of a run's events stream" });

/** One SSE message of the events stream, as the OpenAPI schema of `text/event-stream`. */
export const RunEventMessage = z
  .object({
    id: z.string().regex(/^\d+-\d+$/).describe('stream id of the event; send it back as `Last-Event-ID` to resume after it'),
    event: z.enum(RUN_EVENT_STREAM_EVENTS).describe('the run event type (`error`: the stream could not be read; data `{message}`)'),
    data: RunEvent.describe('the run event, as one line of JSON'),
  })
  .meta({
    id: 'RunEventMessage',
    description:
      'One Server-Sent Events message (`id:`, `event:`, `data:` lines, then a blank line). The stream opens with `retry: 2000`, sends a `: keep-alive` comment while idle, and ends after `run_finished`.',
  });
