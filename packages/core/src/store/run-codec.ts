/**
 * The one codec for what the run store keeps as JSON in a run's hash (`<p>:run:<id>`): `meta`
 * ({@link RunMeta}), `state` ({@link RunState}), `result` ({@link RunResult}), and the entries of the
 * run's outbox (`<p>:run:<id>:outbox`, {@link OutboxEntry}); and the run events of its stream
 * (`<p>:run:<id>:events`), checked for their type and time.
 *
 * Stored documents are snake_case and carry `v`, the layout's version ({@link RUN_RECORD_VERSION}).
 * In memory the types stay as the scheduler and the driver use them (the state camelCase); the codec
 * maps between the two, field by field, so user data inside (phase names as keys, event data,
 * prompts, outputs) is never renamed.
 *
 * Layouts:
 * - version 1 (no `v`): meta, result and outbox snake_case; the state camelCase (`totalRetries`,
 *   `createdAt`, a phase's `queuedAt`, …). Read, never written.
 * - version 2: every document snake_case (`total_retries`, `created_at`, a phase's `queued_at`, …).
 *
 * Lua scripts read `state.status` (and search `meta` for `"name":` and words): names the same in
 * both layouts.
 *
 * A document read that does not fit its layout is refused with a {@link FleetError} `INTERNAL`
 * (not retryable) naming the run, the document and the field, e.g.
 * `run "r1": stored state is malformed at phases.plan.status: Invalid option: …`. Writing checks
 * only what the store's scripts and readers branch on (statuses, the version, effect types), with the
 * same error: the rest was typed by this process's code, and a whole zod pass on every commit cost
 * more than the commit's script.
 */
import { z } from 'zod';
import { FleetError } from '../errors.js';
import type { RunMeta, RunResult } from '../result.js';
import type { PhaseState, RunState, SchedulerAction } from '../scheduler/types.js';

/**
 * An effect a commit leaves to carry out after it (see ../engine/driver.ts, `RunDriver.reconcile`):
 * the actions of a decision, and `start_run`, the effect of the run's create (its first commit):
 * admit the run against its concurrency key and commit its `run_started`.
 */
export type OutboxEffect = DecisionEffect | { type: 'start_run' };

/** The actions of a decision that go into its commit's outbox. */
export type DecisionEffect = Extract<SchedulerAction, { type: 'enqueue_phase' | 'cancel_phase' | 'start_child_run' | 'finish_run' | 'start_fallback' | 'release_concurrency' }>;

/** What one commit left to carry out, stored under the version it committed. */
export interface OutboxEntry {
  /** The version the commit wrote. */
  version: number;
  /** When it was committed, epoch ms. */
  at: number;
  /**
   * The commit ids of the calls committed together here: a committer whose commit came back refused
   * (its own commit resent after a lost reply) carries out only its own entries, leaving the others
   * to their committers.
   */
  commits: string[];
  effects: OutboxEffect[];
}

/** The layout every document is written in. */
export const RUN_RECORD_VERSION = 2;

/** Which stored document of a run: names the document in errors. */
export type RunDocument = 'meta' | 'state' | 'result' | 'outbox entry' | 'event';

const usage = z.looseObject({
  input_tokens: z.number(),
  output_tokens: z.number(),
  cache_read_input_tokens: z.number().optional(),
  cache_creation_input_tokens: z.number().optional(),
  cost_usd: z.number().optional(),
  thinking_tokens: z.number().optional(),
});
const serializedError = z.looseObject({ code: z.string(), message: z.string(), category: z.string(), retryable: z.boolean() });
const runStatus = z.enum(['created', 'queued', 'active', 'waiting', 'completed', 'failed', 'cancelled']);
const phaseStatus = z.enum(['pending', 'queued', 'running', 'retrying', 'waiting', 'completed', 'failed', 'skipped', 'cancelled']);
const spanRef = z.looseObject({ trace_id: z.string(), span_id: z.string(), flags: z.number() });
const budgetRaise = z.looseObject({ usd: z.number(), tokens: z.number() });

/** The fields of `T` whose names have an upper-case letter: those stored under another name. */
type CamelFields<T> = { [K in keyof T & string]: K extends Lowercase<K> ? never : K }[keyof T & string];

/**
 * In-memory field → stored field, for the fields of {@link RunState} and {@link PhaseState} whose
 * names differ (every other field is stored under its own name). Total: a camelCase field added to
 * either type does not compile until it is named here. Nested values are snake_case or one word already.
 */
const STATE_FIELDS = {
  totalRetries: 'total_retries',
  createdAt: 'created_at',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  cancelReason: 'cancel_reason',
  budgetRaise: 'budget_raise',
} as const satisfies Record<CamelFields<RunState>, string>;
const PHASE_FIELDS = {
  queuedAt: 'queued_at',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  durationMs: 'duration_ms',
  cacheHit: 'cache_hit',
  waitingFor: 'waiting_for',
} as const satisfies Record<CamelFields<PhaseState>, string>;

/** The phase fields whose names are the same in memory and stored, with their schemas. */
const phaseCommon = {
  status: phaseStatus,
  iteration: z.number(),
  attempts: z.number(),
  error: serializedError.optional(),
  reason: z.string().optional(),
  usage,
  agent: z.string().optional(),
  model: z.string().optional(),
  feedback: z.looseObject({ from: z.string(), note: z.string().optional() }).optional(),
  batched: z.boolean().optional(),
  journal: z.looseObject({ iteration: z.number(), steps: z.number() }).optional(),
  span: spanRef.optional(),
};
const waitingFor = z.looseObject({ event: z.string() }).optional();

const phaseV1 = z.looseObject({
  ...phaseCommon,
  queuedAt: z.number().optional(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  durationMs: z.number().optional(),
  cacheHit: z.boolean().optional(),
  waitingFor,
});
const phaseV2 = z.looseObject({
  ...phaseCommon,
  queued_at: z.number().optional(),
  started_at: z.number().optional(),
  finished_at: z.number().optional(),
  duration_ms: z.number().optional(),
  cache_hit: z.boolean().optional(),
  waiting_for: waitingFor,
});

const stateCommon = {
  status: runStatus,
  version: z.number().int(),
  errors: z.array(z.looseObject({ phase: z.string(), error: serializedError })),
  usage,
  model: z.string().optional(),
  models: z.array(z.string()).optional(),
  events: z.array(z.looseObject({ type: z.string(), at: z.number() })),
  resumes: z.number(),
  span: spanRef.optional(),
};
const budgetRaises = z.looseObject({ run: budgetRaise.optional(), phases: z.record(z.string(), budgetRaise).optional() }).optional();

/** A state as version 1 wrote it: camelCase, no `v`. Decodes to the in-memory state as it is. */
const stateV1 = z.looseObject({
  ...stateCommon,
  v: z.undefined().optional(),
  totalRetries: z.number(),
  phases: z.record(z.string(), phaseV1),
  createdAt: z.number(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  cancelReason: z.string().optional(),
  budgetRaise: budgetRaises,
});

/** A state as version 2 stores it: snake_case. */
const stateV2 = z.looseObject({
  ...stateCommon,
  v: z.literal(2),
  total_retries: z.number(),
  phases: z.record(z.string(), phaseV2),
  created_at: z.number(),
  started_at: z.number().optional(),
  finished_at: z.number().optional(),
  cancel_reason: z.string().optional(),
  budget_raise: budgetRaises,
});

/**
 * Copy `from` with the fields of `names` (from → to) renamed; fields absent stay absent, the order
 * stays. A `for…in` over own keys (the documents are plain data) rather than `Object.entries`: this
 * runs on every commit and read, and the entry arrays cost half of it.
 */
function renamed(from: Record<string, unknown>, names: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in from) {
    if (!Object.hasOwn(from, key)) continue;
    const to = names[key];
    out[to === undefined ? key : to] = from[key];
  }
  return out;
}

const invert = (names: Readonly<Record<string, string>>): Record<string, string> => Object.fromEntries(Object.entries(names).map(([a, b]) => [b, a]));
const STATE_FIELDS_IN = invert(STATE_FIELDS);
const PHASE_FIELDS_IN = invert(PHASE_FIELDS);

/** Version 2 stored state → in-memory state (after {@link stateV2} checked it). */
function fromStoredState(stored: z.output<typeof stateV2>): RunState {
  const { v: _v, phases, ...rest } = stored;
  const state = renamed(rest, STATE_FIELDS_IN);
  const inMemory: Record<string, unknown> = {};
  for (const name of Object.keys(phases)) inMemory[name] = renamed(phases[name] as Record<string, unknown>, PHASE_FIELDS_IN);
  state.phases = inMemory;
  return state as unknown as RunState;
}

/** In-memory state → version 2 stored state (field names only: values are not copied). */
function toStoredState(state: RunState): Record<string, unknown> {
  const { phases, ...rest } = state;
  const stored: Record<string, unknown> = { v: RUN_RECORD_VERSION, ...renamed(rest, STATE_FIELDS) };
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(phases)) out[name] = renamed(phases[name] as unknown as Record<string, unknown>, PHASE_FIELDS);
  stored.phases = out;
  return stored;
}

/** A value a write is refused for: the field's value is not one of `allowed` (a bug in the writer). */
function checkOneOf(runId: string, doc: RunDocument, field: string, value: string, allowed: z.ZodEnum): void {
  if (!(allowed.options as readonly string[]).includes(value)) throw malformed(runId, doc, `${JSON.stringify(value)} is not one of ${allowed.options.join(', ')}`, field);
}

/**
 * The checks a state gets before it is written: the fields the store's scripts and every reader
 * branch on (the run's `status`, the `version` fence, each phase's `status` and `iteration`). The
 * whole layout is checked when the state is read back ({@link decodeRunState}); checking all of it
 * on every commit as well cost more than the commit's own script (a zod pass over the whole state).
 */
function checkWritable(runId: string, state: RunState): void {
  checkOneOf(runId, 'state', 'status', state.status, runStatus);
  if (!Number.isInteger(state.version)) throw malformed(runId, 'state', `version ${JSON.stringify(state.version)} is not an integer`, 'version');
  if (typeof state.phases !== 'object' || state.phases === null) throw malformed(runId, 'state', 'phases is not an object', 'phases');
  for (const name of Object.keys(state.phases)) {
    const phase = state.phases[name] as PhaseState;
    checkOneOf(runId, 'state', `phases.${name}.status`, phase.status, phaseStatus);
    if (typeof phase.iteration !== 'number') throw malformed(runId, 'state', `iteration ${JSON.stringify(phase.iteration)} is not a number`, `phases.${name}.iteration`);
  }
}

const workflowHead = z.looseObject({ name: z.string(), version: z.string(), phases: z.array(z.looseObject({ name: z.string() })) });

/** Meta, same layout in versions 1 and 2 (snake_case; `v` from version 2). */
const metaStored = z.looseObject({
  v: z.literal(2).optional(),
  run_id: z.string(),
  workflow: workflowHead,
  requirements: z.string(),
  variables: z.record(z.string(), z.string()),
  created_at: z.number(),
  provider: z.string(),
  trace: z.record(z.string(), z.string()),
});

/**
 * A finished run's result, same layout in versions 1 and 2 (`v` from version 2). The store may add
 * `results_in_context` (the phases whose outputs it left to the shared context): kept as is here.
 */
const resultStored = z.looseObject({
  v: z.literal(2).optional(),
  run_id: z.string(),
  workflow: z.looseObject({ name: z.string(), version: z.string() }),
  status: runStatus,
  created_at: z.string(),
  finished_at: z.string().nullable(),
  duration_ms: z.number(),
  phases: z.array(z.looseObject({ name: z.string() })),
  results: z.record(z.string(), z.unknown()),
  errors: z.array(z.looseObject({ phase: z.string(), error: serializedError })),
  usage,
  results_in_context: z.array(z.string()).optional(),
});

const effectTypes = z.enum(['start_run', 'enqueue_phase', 'cancel_phase', 'start_child_run', 'finish_run', 'start_fallback', 'release_concurrency']);
const outboxStored = z.looseObject({
  v: z.literal(2).optional(),
  version: z.number().int(),
  at: z.number(),
  commits: z.array(z.string()),
  effects: z.array(z.looseObject({ type: effectTypes })),
});

/** The error for a stored document that does not fit its layout. */
/** Which document, as errors name it: the document, and for an event its stream entry id. */
type DocRef = RunDocument | { doc: 'event'; streamId: string };

function malformed(runId: string, ref: DocRef, detail: string, field?: string): FleetError {
  const doc = typeof ref === 'string' ? ref : ref.doc;
  const name = typeof ref === 'string' ? ref : `${ref.doc} ${ref.streamId}`;
  return new FleetError('INTERNAL', `run "${runId}": stored ${name} is malformed${field ? ` at ${field}` : ''}: ${detail}`, {
    retryable: false,
    details: { run_id: runId, document: doc, ...(typeof ref === 'string' ? {} : { stream_id: ref.streamId }), ...(field ? { field } : {}) },
  });
}

function fromIssues(runId: string, ref: DocRef, error: z.ZodError): FleetError {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
  return malformed(runId, ref, issue?.message ?? error.message, field);
}

function parseJson(runId: string, ref: DocRef, raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw malformed(runId, ref, `not JSON (${(err as Error).message})`);
  }
}

/** The stored layout version of a parsed document: 1 when it has no `v`. */
function layoutOf(runId: string, doc: RunDocument, value: unknown): number {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(runId, doc, 'not a JSON object');
  const v = (value as { v?: unknown }).v;
  if (v === undefined) return 1;
  if (v === RUN_RECORD_VERSION) return v;
  throw malformed(runId, doc, `layout version ${JSON.stringify(v)} is not one this version reads (none or ${RUN_RECORD_VERSION}): written by a newer AgentFleet?`, 'v');
}

/**
 * Check a parsed document against its stored layout: a value that does not fit (a bug in a writer or
 * a record changed by hand, never user input) is an `INTERNAL` error naming the run and the field
 * instead of a bare ZodError. Returns the document without its `v`.
 */
function checked<S extends z.ZodType<{ v?: unknown }>>(runId: string, doc: RunDocument, schema: S, value: unknown): Omit<z.output<S>, 'v'> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw fromIssues(runId, doc, parsed.error);
  const { v: _v, ...rest } = parsed.data;
  return rest;
}

/**
 * Decode a run's stored state (either layout).
 * @throws FleetError `INTERNAL` (not retryable) naming the run and the field when it does not fit.
 */
export function decodeRunState(runId: string, raw: string): RunState {
  const value = parseJson(runId, 'state', raw);
  if (layoutOf(runId, 'state', value) === 1) {
    return checked(runId, 'state', stateV1, value) as unknown as RunState;
  }
  const parsed = stateV2.safeParse(value);
  if (!parsed.success) throw fromIssues(runId, 'state', parsed.error);
  return fromStoredState(parsed.data);
}

/**
 * A run state as stored (JSON, layout {@link RUN_RECORD_VERSION}).
 * @throws FleetError `INTERNAL` naming `runId` and the field when a status, the version or a phase's
 *   iteration does not fit the layout (the rest is checked when it is read back).
 */
export function encodeRunState(state: RunState, runId = '(not named)'): string {
  checkWritable(runId, state);
  return JSON.stringify(toStoredState(state));
}

/**
 * Decode a run's stored meta.
 * @throws FleetError `INTERNAL` (not retryable) naming the run and the field when it does not fit.
 */
export function decodeRunMeta(runId: string, raw: string): RunMeta {
  const value = parseJson(runId, 'meta', raw);
  layoutOf(runId, 'meta', value);
  return checked(runId, 'meta', metaStored, value) as unknown as RunMeta;
}

/**
 * A run meta as stored (JSON, layout {@link RUN_RECORD_VERSION}). Written once per run, by the typed
 * code that built it; checked when read ({@link decodeRunMeta}).
 */
export function encodeRunMeta(meta: RunMeta): string {
  return JSON.stringify({ v: RUN_RECORD_VERSION, ...meta });
}

/**
 * Decode a run's stored result, with `results_in_context` when the store left phase outputs to the context.
 * @throws FleetError `INTERNAL` (not retryable) naming the run and the field when it does not fit.
 */
export function decodeRunResult(runId: string, raw: string): RunResult & { results_in_context?: string[] } {
  const value = parseJson(runId, 'result', raw);
  layoutOf(runId, 'result', value);
  return checked(runId, 'result', resultStored, value) as unknown as RunResult & { results_in_context?: string[] };
}

/**
 * A run result as stored (JSON, layout {@link RUN_RECORD_VERSION}); `results_in_context` kept when set.
 * @throws FleetError `INTERNAL` naming the run when its `status` is not a run status (the rest is
 *   checked when read, {@link decodeRunResult}).
 */
export function encodeRunResult(result: RunResult & { results_in_context?: string[] }): string {
  checkOneOf(result.run_id, 'result', 'status', result.status, runStatus);
  return JSON.stringify({ v: RUN_RECORD_VERSION, ...result });
}

/**
 * Decode one entry of a run's outbox.
 * @throws FleetError `INTERNAL` (not retryable) naming the run and the field when it does not fit.
 */
export function decodeOutboxEntry(runId: string, raw: string): OutboxEntry {
  const value = parseJson(runId, 'outbox entry', raw);
  layoutOf(runId, 'outbox entry', value);
  return checked(runId, 'outbox entry', outboxStored, value) as unknown as OutboxEntry;
}

/**
 * An outbox entry as stored (JSON, layout {@link RUN_RECORD_VERSION}).
 * @throws FleetError `INTERNAL` naming `runId` when an effect's type is not one the reconciler carries out.
 */
export function encodeOutboxEntry(entry: OutboxEntry, runId = '(not named)'): string {
  entry.effects.forEach((effect, i) => checkOneOf(runId, 'outbox entry', `effects.${i}.type`, effect.type, effectTypes));
  return JSON.stringify({ v: RUN_RECORD_VERSION, ...entry });
}

/**
 * A run event (`<p>:run:<id>:events`, field `data`) is stored as the API serves it: snake_case, with
 * no layout version (its type names its fields; the manager's run-event-schema.ts describes each).
 * Checked here for what every reader relies on: an object with a string `type` and a number `at`.
 */
const storedEvent = z.looseObject({ type: z.string(), at: z.number() });

/**
 * Decode one stored run event.
 * @param streamId - its stream entry id, named in the error.
 * @throws FleetError `INTERNAL` (not retryable) naming the run, the entry and the field when it does not fit.
 */
export function decodeRunEvent<E extends { type: string; at: number }>(runId: string, streamId: string, raw: string): E {
  const ref = { doc: 'event', streamId } as const;
  const parsed = storedEvent.safeParse(parseJson(runId, ref, raw));
  if (!parsed.success) throw fromIssues(runId, ref, parsed.error);
  return parsed.data as E;
}
