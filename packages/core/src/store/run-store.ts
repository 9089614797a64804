/**
 * The Redis run store: each run's record, state, shared context and event stream.
 *
 * Keys (all under the fleet prefix, so one Redis Cluster hash tag holds a whole fleet):
 * - `<p>:run:<id>`          hash: `meta` (JSON {@link RunMeta}), `state` (JSON {@link RunState}),
 *                           `version` (the fencing token), `result` (JSON {@link RunResult}, once finished);
 *                           every JSON document here and in the outbox is written and read by
 *                           ./run-codec.ts (snake_case, layout version `v`)
 * - `<p>:run:<id>:context`  hash: phase name → that phase's output (JSON): the shared context
 * - `<p>:run:<id>:events`   stream of run events (`type`, `data` JSON), read by the CLI and SSE
 * - `<p>:runs`              sorted set of run ids by creation time (ms)
 * - `<p>:runs:active`       set of runs not yet finished
 * - `<p>:archive:pending`   sorted set of finished runs the archive has yet to write (score: when due, ms)
 * - `<p>:settings`          hash of fleet-wide retention settings (see ./retention.ts)
 * - `<p>:deadlines`         sorted set of deadlines: member `[runId, phase, iteration]` (JSON), score
 *                           the epoch ms at which the manager checks on that phase iteration
 * - `<p>:run:<id>:outbox`   hash: committed version → {@link OutboxEntry} (JSON), the effects of that
 *                           commit still to carry out (the run's start, jobs to add, cancels, child
 *                           runs, follow-ups); the create is the first commit (version 0, `start_run`)
 * - `<p>:outbox`            sorted set of runs with a pending outbox, score: the oldest entry's commit
 *                           time (epoch ms); the manager reconciles a run whose outbox outlives a lease
 *
 * Writes are fenced: {@link RunStore.apply} reads the state and its version, lets a pure function
 * decide, then commits with a Lua script only if the version is unchanged, retrying otherwise. Two
 * managers (or two reports processed at once) can never both apply on the same version.
 */
import type { Redis } from 'ioredis';
import { FleetError, type SerializedFleetError } from '../errors.js';
import { luaCommand } from './lua-command.js';
import { ARCHIVED_LUA, CLAIM_ARCHIVE_LUA, HOLD_RUN_LUA, PURGE_RUN_LUA } from './retention.js';
import { commandError, storeCommand } from './commands.js';
import { MAX_INLINE_OUTPUT_BYTES } from '../queues/contracts.js';
import { buildRunResult, type RunMeta, type RunResult } from '../result.js';
import type { Decision, RunEvent, RunState, SchedulerAction } from '../scheduler/types.js';
import { decodeOutboxEntry, decodeRunEvent, decodeRunMeta, decodeRunResult, decodeRunState, encodeOutboxEntry, encodeRunMeta, encodeRunResult, encodeRunState, type DecisionEffect, type OutboxEntry } from './run-codec.js';

/**
 * Read a run (`meta` too unless ARGV[1] is '0') and its whole shared context in one call:
 * `{meta|false, state|false, result|false, field, value, field, value, …}`.
 *
 * A script, not MULTI/EXEC: the script costs Redis a copy of what it returns into Lua strings (Redis's
 * Lua hashes every string it makes, about 1.2 µs a KiB), but ioredis builds a `Pipeline` for every
 * MULTI and copies onto it each script defined on the connection: with BullMQ's 64, 24–34 µs of the
 * caller's CPU a read, more than the script costs Redis (bench/README.md, 2026-12-07).
 */
const READ_RUN_LUA = `
local fields = ARGV[1] == '0' and {'state', 'result'} or {'meta', 'state', 'result'}
local run = redis.call('HMGET', KEYS[1], unpack(fields))
if ARGV[1] == '0' then table.insert(run, 1, false) end
local context = redis.call('HGETALL', KEYS[2])
for _, v in ipairs(context) do table.insert(run, v) end
return run
`;

/** A run's first event, written by the commit that creates it. */
function runCreatedEvent(meta: RunMeta): { type: 'run_created'; at: number; workflow: string; version: string; links?: RunMeta['links'] } {
  return { type: 'run_created', at: meta.created_at, workflow: meta.workflow.name, version: meta.workflow.version, ...(meta.links ? { links: meta.links } : {}) };
}

/**
 * A finished run's result is stored without its phase outputs (`results`), which the shared context
 * already holds: the stored JSON names the phases whose outputs it left out under this field, and
 * every read puts them back from the context, so each output is stored once.
 */
const RESULTS_IN_CONTEXT = 'results_in_context';

/** The commit's run events argument: a JSON array of `[type, event JSON]`. */
function runEventsArgument(events: ReadonlyArray<{ type: string }>): string {
  return events.length > 0 ? JSON.stringify(events.map((e) => [e.type, JSON.stringify(e)])) : '[]';
}

/** The result as the run hash stores it: `results` left to the context (see {@link RESULTS_IN_CONTEXT}). */
function storedResult(result: RunResult): string {
  const phases = Object.keys(result.results);
  if (phases.length === 0) return encodeRunResult(result);
  return encodeRunResult({ ...result, results: {}, [RESULTS_IN_CONTEXT]: phases });
}

/** A stored result, with the phases whose outputs are to come from the context (none when it holds them itself). */
function parseStoredResult(runId: string, raw: string): { result: RunResult; fromContext: string[] } {
  const parsed = decodeRunResult(runId, raw);
  const fromContext = parsed[RESULTS_IN_CONTEXT] ?? [];
  delete parsed[RESULTS_IN_CONTEXT];
  return { result: parsed, fromContext };
}

/** Put the outputs of `phases` back into a stored result's `results`, in that order. */
function withResults(result: RunResult, phases: readonly string[], outputs: Record<string, unknown>): RunResult {
  for (const phase of phases) if (phase in outputs) result.results[phase] = outputs[phase];
  return result;
}

/** Runs whose parsed meta one {@link RunStore} keeps (a meta is a few KiB: the workflow definition and the requirements). */
const META_CACHE_SIZE = 1000;


/** One entry of a run's event stream. */
/**
 * Events appended beside the scheduler's (they change no state): a rate-limit wait, an end-action
 * attempt, a rerun started from this run, a fallback that could not start, a phase no pool serves.
 */
export type SideRunEvent =
  | { type: 'rate_limited'; at: number; phase: string; iteration: number; wait_ms: number; limit: string; model: string }
  | { type: 'end_action'; at: number; action: string; target?: string | null; attempt: number; outcome: string; [detail: string]: unknown }
  | { type: 'rerun_started'; at: number; new_run_id: string; from: string }
  | { type: 'fallback_failed'; at: number; workflow: string; error: string }
  | { type: 'fallback_started'; at: number; workflow: string; fallback_run_id: string }
  /** A phase is queued to a role no live pool serves (see engine/unserved-roles.ts). */
  | { type: 'role_unserved'; at: number; phase: string; iteration: number; role: string; message: string }
  /** A budgeted call waits for calls in flight of other phases to settle what they hold (see store/budget-ledger.ts). */
  | { type: 'budget_held'; at: number; phase: string; iteration: number; scope: string; limit: string; max: number; spent: number; reserved: number }
  /** An agent called a tool inside its turn (see store/tool-journal.ts); `arguments` only with FLEET_TRACE_CONTENT. */
  | ToolCallEvent
  /** A cancel that reached the manager after the run had finished (it lost the race to completion): nothing was cancelled. */
  | { type: 'cancel_ignored'; at: number; reason: string; status: string; message: string }
  /**
   * Deciding on an event threw (see engine/driver.ts): that event is refused for good and changed
   * nothing; `event` is its type, `phase` and `iteration` the phase it was about, when it names one.
   */
  | { type: 'event_rejected'; at: number; event: string; phase?: string | undefined; iteration?: number | undefined; error: SerializedFleetError };

/**
 * One tool call of an agent turn: the tool as the model named it, the call's number within the
 * phase iteration (its idempotency key is `<run>.<phase>.<iteration>.<call>`), how long it took (ms),
 * whether it failed, and the sizes of its input and result (bytes; the result's estimated tokens,
 * 4 characters a token, is what it adds to the next prompt).
 */
export interface ToolCallEvent {
  type: 'tool_call';
  at: number;
  phase: string;
  iteration: number;
  attempt: number;
  tool: string;
  call: number;
  duration_ms: number;
  status: 'ok' | 'error';
  input_bytes: number;
  result_bytes: number;
  result_tokens: number;
  error?: string | undefined;
  arguments?: unknown;
}

export interface StoredRunEvent {
  /** Redis stream id (`<ms>-<seq>`), usable as SSE `id` and `Last-Event-ID`. */
  id: string;
  event: RunEvent | SideRunEvent | { type: 'run_created'; at: number; workflow: string; version: string };
}

/** Everything stored about one run. */
export interface StoredRun {
  meta: RunMeta;
  state: RunState;
  result: RunResult | undefined;
}

type ApplyCommand = (...keysThenArgs: string[]) => Promise<number>;

/**
 * A phase job a commit adds itself (`apply-decision-7`), in the same atomic step as the state that
 * queues it: BullMQ's own add, with the job's priority computed in the script by the fair-priority
 * rule (../engine/fair-priority.ts). Its `enqueue_phase` effect is then left out of the outbox.
 */
export interface CommitPhaseJob {
  /** The `enqueue_phase` effect it carries out. */
  phase: string;
  iteration: number;
  /** The fairness zset `<p>:fair:<queue>:<key>` (../engine/fair-priority.ts `fairGroupKey`). */
  group: string;
  /** The queue's job key prefix `<p>:<queue>:` (BullMQ's `queue.toKey('')`). */
  jobKeyPrefix: string;
  jobId: string;
  /** The run priority's band: its first BullMQ priority and its width. */
  bandStart: number;
  bandWidth: number;
  /**
   * What the commit needs for BullMQ's `addPrioritizedJob-9`: its 9 keys, then the job's name,
   * timestamp (epoch ms), data JSON and options JSON without the priority
   * (../engine/phase-job.ts `phaseJobAddArguments`).
   */
  add: readonly string[];
}

type ClearOutboxCommand = (outboxKey: string, outboxesKey: string, runId: string, now: string, ...versions: string[]) => Promise<number>;

export type { DecisionEffect, OutboxEffect, OutboxEntry } from './run-codec.js';

/** Whether an action is carried out after the commit (the others are committed with it: deadlines). */
export function isOutboxEffect(action: SchedulerAction): action is DecisionEffect {
  return action.type !== 'await_event';
}

type ReadRunCommand = (runKey: string, contextKey: string, withMeta: string) => Promise<Array<string | null>>;

type ClaimCommand = (deadlinesKey: string, now: string, leaseUntil: string, limit: string) => Promise<string[]>;

type ScanIndexCommand = (indexKey: string, ...args: string[]) => Promise<Array<string | number>>;

/** What {@link RunStore.scanIndex} looks for; every field optional, combined with AND. */
export interface RunIndexFilter {
  /** Labels (`<p>:run:<id>:labels` fields) that must equal these values exactly, e.g. `{ user_id: 'k1' }`. */
  labels?: Record<string, string>;
  /** Run status; a pre-filter (the caller checks the status it reads). */
  status?: string;
  /** Workflow name; a pre-filter. */
  workflow?: string;
  /** Lower-case ASCII words that must appear in the run's meta (its requirements); a pre-filter. */
  words?: string[];
  /** Lower-case start of a run id: a run whose id starts with it passes without `words`. */
  idPrefix?: string;
}

/** Where a walk of the run index is, newest first: after this run. */
export interface RunIndexPosition {
  runId: string;
  /** Its score: creation time, epoch ms. */
  createdAt: number;
}

/** One step of {@link RunStore.scanIndex}. */
export interface RunIndexScan {
  /** Runs that may match, newest first (pre-filtered: check each exactly). */
  runIds: string[];
  /** Index entries looked at. */
  looked: number;
  /** True when no entry is left within the bounds. */
  exhausted: boolean;
  /** The last entry looked at: the next step starts after it (undefined when none was looked at). */
  last: RunIndexPosition | undefined;
}

/** A phase iteration whose deadline is kept in the `<p>:deadlines` sorted set. */
export interface DeadlineRef {
  run_id: string;
  phase: string;
  iteration: number;
}

/** Deadline changes committed together with a decision. */
export interface DeadlineChanges {
  /** Set (or move) these deadlines; `at` is epoch ms. */
  set: Array<DeadlineRef & { at: number }>;
  remove: DeadlineRef[];
}

/** The sorted-set member of a deadline. */
export function deadlineMember(ref: DeadlineRef): string {
  return JSON.stringify([ref.run_id, ref.phase, ref.iteration]);
}

/** @returns undefined for a member this version did not write. */
export function parseDeadlineMember(member: string): DeadlineRef | undefined {
  try {
    const [run_id, phase, iteration] = JSON.parse(member) as unknown[];
    if (typeof run_id === 'string' && typeof phase === 'string' && typeof iteration === 'number') return { run_id, phase, iteration };
  } catch {
    // Not ours.
  }
  return undefined;
}

export class RunStore {
  private readonly applyScript: ApplyCommand;
  private readonly claimScript: ClaimCommand;
  private readonly clearOutboxScript: ClearOutboxCommand;
  private readonly readRunScript: ReadRunCommand;
  private readonly scanIndexScript: ScanIndexCommand;
  /** Parsed metas of recently read runs (insertion order: the oldest is dropped first). */
  private readonly metaCache = new Map<string, RunMeta>();

  /**
   * @param redis - a connection for ordinary commands (not one used for blocking reads).
   * @param prefix - the fleet's key prefix, e.g. `{fleet}`.
   */
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.applyScript = storeCommand<ApplyCommand>(redis, 'applyDecision');
    this.claimScript = storeCommand<ClaimCommand>(redis, 'claimDue');
    this.clearOutboxScript = storeCommand<ClearOutboxCommand>(redis, 'clearOutbox');
    this.readRunScript = luaCommand<ReadRunCommand>(redis, 'fleetReadRun', 2, READ_RUN_LUA);
    this.scanIndexScript = storeCommand<ScanIndexCommand>(redis, 'scanRunIndex');
  }

  runKey(id: string): string {
    return `${this.prefix}:run:${id}`;
  }
  contextKey(id: string): string {
    return `${this.prefix}:run:${id}:context`;
  }
  eventsKey(id: string): string {
    return `${this.prefix}:run:${id}:events`;
  }
  get indexKey(): string {
    return `${this.prefix}:runs`;
  }
  get activeKey(): string {
    return `${this.prefix}:runs:active`;
  }
  get deadlinesKey(): string {
    return `${this.prefix}:deadlines`;
  }
  outboxKey(id: string): string {
    return `${this.prefix}:run:${id}:outbox`;
  }
  get outboxesKey(): string {
    return `${this.prefix}:outbox`;
  }

  /**
   * Write a new run (status `created`), its first event, any outputs it starts with (a rerun or a
   * fallback carries earlier outputs), and its start as the outbox entry of this first commit
   * (version `state.version`, effect `start_run`, aged from `meta.created_at`). The creator carries
   * the start out itself (`RunDriver.startCreated`); should it die first, the manager's reconcile of
   * outboxes older than a lease does. For a run that must be admitted before it starts (a concurrency
   * limit); one without is created together with its start (`RunDriver.createStarted`). Both are the
   * commit script's create mode.
   *
   * @returns false when a run with that id already exists (nothing is written): deterministic run
   *   ids (child runs, fallbacks) make a repeated create a no-op.
   */
  async createRun(meta: RunMeta, state: RunState, outputs: Record<string, unknown>): Promise<boolean> {
    const id = meta.run_id;
    const contextArgs = Object.entries(outputs).map(([phase, value]) => [phase, JSON.stringify(value ?? null)]);
    const entry: OutboxEntry = { version: state.version, at: meta.created_at, commits: [], effects: [{ type: 'start_run' }] };
    // The commit script in its create mode, with the first state as the decision and no job: a crash
    // can never leave a run with a record but no state, or no way to start it.
    const code = await this.applyScript(
      this.runKey(id),
      this.contextKey(id),
      this.eventsKey(id),
      this.activeKey,
      this.deadlinesKey,
      this.outboxKey(id),
      this.outboxesKey,
      String(state.version),
      String(state.version),
      encodeRunState(state, id),
      '',
      id,
      'create',
      encodeOutboxEntry(entry, id),
      String(meta.created_at),
      String(contextArgs.length),
      runEventsArgument([runCreatedEvent(meta)]),
      '[]',
      '[]',
      '[]',
      '[]',
      '0',
      ...contextArgs.flat(),
      encodeRunMeta(meta),
      String(meta.created_at),
      this.indexKey,
    );
    return code === 1;
  }

  /**
   * @returns the run; its `meta` may be shared with other callers (a run's meta never changes once
   *   written, so it is cached per store, up to {@link META_CACHE_SIZE} runs): do not mutate it.
   * @throws FleetError `RUN_NOT_FOUND`
   */
  async getRun(id: string): Promise<StoredRun> {
    const cached = this.metaCache.get(id);
    let run: StoredRun & { fromContext: string[] };
    if (cached) {
      const [state, result] = await this.redis.hmget(this.runKey(id), 'state', 'result');
      run = this.parseRun(id, cached, null, state ?? null, result ?? null);
    } else {
      const [meta, state, result] = await this.redis.hmget(this.runKey(id), 'meta', 'state', 'result');
      run = this.parseRun(id, undefined, meta ?? null, state ?? null, result ?? null);
    }
    const { fromContext, ...stored } = run;
    // A finished run's outputs are read from the shared context, where they are stored once.
    if (stored.result && fromContext.length > 0) withResults(stored.result, fromContext, await this.getOutputs(id, fromContext));
    return stored;
  }

  /**
   * The run and its shared context's phase outputs, read in one call: what a worker needs to start a phase.
   * @throws FleetError `RUN_NOT_FOUND`
   */
  async getRunWithOutputs(id: string): Promise<StoredRun & { outputs: Record<string, unknown> }> {
    const cached = this.metaCache.get(id);
    const reply = await this.readRunScript(this.runKey(id), this.contextKey(id), cached ? '0' : '1');
    const { fromContext, ...run } = this.parseRun(id, cached, reply[0] ?? null, reply[1] ?? null, reply[2] ?? null);
    const outputs: Record<string, unknown> = {};
    for (let i = 3; i + 1 < reply.length; i += 2) outputs[reply[i] as string] = JSON.parse(reply[i + 1] as string);
    // A copy: the caller gets the result and the outputs as separate values.
    if (run.result && fromContext.length > 0) withResults(run.result, fromContext, structuredClone(Object.fromEntries(fromContext.filter((p) => p in outputs).map((p) => [p, outputs[p]]))));
    return { ...run, outputs };
  }

  /**
   * Many runs' meta and state in one round trip, and their stored results with `withResult`; for
   * lists and analytics. A result read here holds in `results` only the outputs it stored itself
   * (the others are in the run's shared context: {@link getRun} puts them back).
   *
   * @returns one entry per id, in order; undefined for a run that is gone.
   * @throws FleetError `INTERNAL` when a stored record is malformed (naming the run and the field).
   */
  async readRuns(ids: readonly string[], options: { withResult?: boolean } = {}): Promise<Array<StoredRun | undefined>> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) {
      if (this.metaCache.has(id)) pipe.hmget(this.runKey(id), 'state', 'result');
      else pipe.hmget(this.runKey(id), 'state', 'result', 'meta');
    }
    const replies = (await pipe.exec()) ?? [];
    return ids.map((id, i) => {
      const [err, value] = replies[i] ?? [null, undefined];
      if (err) throw err;
      const [state, result, meta] = (value as Array<string | null> | undefined) ?? [];
      const cached = this.metaCache.get(id);
      if (!state || (!cached && !meta)) return undefined;
      // Not kept in the meta cache: a list of many runs would push out the runs being driven.
      const { fromContext: _fromContext, ...run } = this.parseRun(id, cached, meta ?? null, state, options.withResult ? (result ?? null) : null, false);
      return run;
    });
  }

  /**
   * Many runs' states in one round trip (the smallest read that tells whether and when each finished).
   * @returns one entry per id, in order; undefined for a run that is gone.
   * @throws FleetError `INTERNAL` when a stored state is malformed (naming the run and the field).
   */
  async readRunStates(ids: readonly string[]): Promise<Array<RunState | undefined>> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(this.runKey(id), 'state');
    const replies = (await pipe.exec()) ?? [];
    return ids.map((id, i) => {
      const [err, raw] = replies[i] ?? [null, undefined];
      if (err) throw err;
      return typeof raw === 'string' ? decodeRunState(id, raw) : undefined;
    });
  }

  private parseRun(id: string, cached: RunMeta | undefined, meta: string | null, state: string | null, result: string | null, cache = true): StoredRun & { fromContext: string[] } {
    if (!state || (!cached && !meta)) {
      this.metaCache.delete(id);
      throw new FleetError('RUN_NOT_FOUND', `no run "${id}"; list runs with \`fleet status\``);
    }
    let parsed = cached;
    if (!parsed) {
      parsed = decodeRunMeta(id, meta as string);
      if (cache) {
        if (this.metaCache.size >= META_CACHE_SIZE) this.metaCache.delete(this.metaCache.keys().next().value as string);
        this.metaCache.set(id, parsed);
      }
    }
    const stored = result ? parseStoredResult(id, result) : undefined;
    return { meta: parsed, state: decodeRunState(id, state), result: stored?.result, fromContext: stored?.fromContext ?? [] };
  }

  /**
   * The run's version (the fencing token), or undefined when there is no such run: one small read that
   * tells whether a copy of the run is still current.
   */
  async getVersion(id: string): Promise<number | undefined> {
    const v = await this.redis.hget(this.runKey(id), 'version');
    return v === null ? undefined : Number(v);
  }

  /** The shared context's phase outputs; only `phases` when given. */
  async getOutputs(id: string, phases?: readonly string[]): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    if (phases) {
      if (phases.length === 0) return out;
      const values = await this.redis.hmget(this.contextKey(id), ...phases);
      phases.forEach((phase, i) => {
        const v = values[i];
        if (v != null) out[phase] = JSON.parse(v);
      });
      return out;
    }
    const all = await this.redis.hgetall(this.contextKey(id));
    for (const [phase, v] of Object.entries(all)) out[phase] = JSON.parse(v);
    return out;
  }

  /** The run's result: the stored one once finished, else built from the current state. */
  async getResult(id: string, now = Date.now()): Promise<RunResult> {
    const run = await this.getRun(id);
    const result = run.result ?? buildRunResult(run.meta, run.state, await this.getOutputs(id), now);
    const links = await this.getLinks(id);
    if (Object.keys(links).length > 0) result.links = { ...result.links, ...links };
    return result;
  }

  /**
   * Apply one event to a run, fenced by the run's version.
   *
   * @param reduce - from the stored meta, state and (when `loadOutputs`) the shared context's
   *   phase outputs, with `output` already merged in, to a {@link Decision}; called again on every
   *   try, so it may read inputs (queue depths) first but writes nothing.
   * @param options.output - a phase output to write into the shared context if the decision is accepted.
   * @param options.loadOutputs - read the shared context before deciding (conditions, step-action rules).
   * @returns the committed decision (`accepted: false` when the event was refused and nothing changed).
   * @throws FleetError `RUN_NOT_FOUND`; `INTERNAL` after 100 lost races in a row.
   */
  async apply(
    id: string,
    reduce: (meta: RunMeta, state: RunState, outputs: Record<string, unknown>) => Decision | Promise<Decision>,
    options: {
      output?: { phase: string; value: unknown } | undefined;
      loadOutputs?: boolean | ((meta: RunMeta) => boolean);
      /** The commit's clock, epoch ms: the result's times and the outbox's age. @defaultValue `Date.now` */
      now?: () => number;
      /**
       * The run as the caller last read it (with the shared context's outputs, when it read them all):
       * the first try decides on it without reading. A stale one costs a retry, never a wrong commit:
       * the outputs change only with the version.
       */
      known?: (Pick<StoredRun, 'meta' | 'state'> & { outputs?: Record<string, unknown> | undefined }) | undefined;
      /** Ids of the calls this commit carries, recorded in its outbox entry ({@link OutboxEntry.commits}). */
      commitIds?: readonly string[] | undefined;
      /** Deadline changes to commit with the decision (computed per try). */
      deadlines?: ((meta: RunMeta, before: RunState, decision: Decision) => DeadlineChanges) | undefined;
      /**
       * Phase jobs the decision ends (computed per try), as `[fairness zset key, job id]`: dropped from
       * their fairness group's count with the commit (../engine/fair-priority.ts).
       */
      jobsEnded?: ((meta: RunMeta, before: RunState, decision: Decision) => Array<readonly [string, string]>) | undefined;
      /**
       * The decision's phase jobs for the commit to add (computed per try): each carries out the
       * decision's `enqueue_phase` effect of its phase iteration, which is then not put in the outbox.
       * Without it, every `enqueue_phase` effect goes to the outbox for the caller to carry out.
       */
      phaseJobs?: ((meta: RunMeta, decision: Decision) => readonly CommitPhaseJob[]) | undefined;
      /**
       * Effects with nothing to carry out for this run (a finish with neither a parent to report to
       * nor an end action): left out of the outbox, so a commit whose only effect is one leaves no entry.
       */
      nothingToDo?: ((meta: RunMeta, effect: DecisionEffect) => boolean) | undefined;
      /**
       * Committed versions of earlier outbox entries this commit carries out (a run's start, the
       * create's entry, carried out by the `run_started` commit): dropped with the commit, when it lands.
       */
      carriesOut?: readonly number[] | undefined;
      /**
       * The run does not exist yet: `known` is its meta and first state, with the outputs it starts
       * with (a rerun's, a fallback's), and the commit creates it together with the decision (its
       * start), in one step: the run's record, index entries, first event (`run_created`) and
       * context, then the decision as any commit writes it. Nothing is written, and `created` is
       * false, when a run with that id exists (deterministic ids make a repeated create a no-op).
       */
      create?: boolean | undefined;
    } = {},
  ): Promise<{
    decision: Decision;
    meta: RunMeta;
    result: RunResult | undefined;
    before: RunState;
    /** With `create`: whether this commit created the run (false: one with its id existed). */
    created?: boolean | undefined;
    /** The shared context's outputs as of the committed version, when the decision saw all of them. */
    outputs?: Record<string, unknown> | undefined;
    /** The effects this commit left in the run's outbox, when it left any. */
    outbox?: OutboxEntry | undefined;
  }> {
    const { output, create } = options;
    const now = options.now ?? Date.now;
    let known = options.known;
    if (create && !known) throw new Error('RunStore.apply: a create needs the run as `known` (its meta, first state and outputs)');
    for (let tries = 0; tries < 100; tries++) {
      const decidedOnKnown = known !== undefined;
      const { meta, state } = known ?? (await this.getRun(id));
      const knownOutputs = known?.outputs;
      known = undefined;
      const load = typeof options.loadOutputs === 'function' ? options.loadOutputs(meta) : options.loadOutputs === true;
      let outputs: Record<string, unknown> | undefined = knownOutputs ? { ...knownOutputs } : load ? await this.getOutputs(id) : undefined;
      if (outputs && output) outputs[output.phase] = output.value;
      const decision = await reduce(meta, state, outputs ?? (output ? { [output.phase]: output.value } : {}));
      if (!decision.accepted) {
        // The fence checks acceptances only: a refusal decided on a state the caller remembered may
        // be stale (the event may fit what was committed since), so it is decided again on a read.
        if (decidedOnKnown && !create) continue;
        return { decision, meta, result: undefined, before: state, ...(create ? { created: false } : {}) };
      }
      // A create writes the outputs the run starts with; any other commit only what it adds.
      const writes: Record<string, unknown> = { ...(create ? knownOutputs : {}), ...(output ? { [output.phase]: output.value } : {}), ...decision.outputs };
      let result: RunResult | undefined;
      if (decision.actions.some((a) => a.type === 'finish_run')) {
        outputs ??= await this.getOutputs(id);
        Object.assign(outputs, writes);
        result = buildRunResult(meta, decision.state, outputs, now());
      }
      const contextArgs = Object.entries(writes).map(([phase, value]) => [phase, JSON.stringify(value ?? null)] as const);
      const deadlines = options.deadlines?.(meta, state, decision) ?? { set: [], remove: [] };
      const ended = options.jobsEnded?.(meta, state, decision) ?? [];
      const committedAt = now();
      const jobs = options.phaseJobs?.(meta, decision) ?? [];
      const added = (e: DecisionEffect) => e.type === 'enqueue_phase' && jobs.some((j) => j.phase === e.phase && j.iteration === e.iteration);
      const effects = decision.actions.filter(isOutboxEffect).filter((e) => !added(e) && options.nothingToDo?.(meta, e) !== true);
      const entry: OutboxEntry | undefined = effects.length > 0 ? { version: decision.state.version, at: committedAt, commits: [...(options.commitIds ?? [])], effects } : undefined;
      const code = await this.applyScript(
        this.runKey(id),
        this.contextKey(id),
        this.eventsKey(id),
        this.activeKey,
        this.deadlinesKey,
        this.outboxKey(id),
        this.outboxesKey,
        String(state.version),
        String(decision.state.version),
        encodeRunState(decision.state, id),
        result ? storedResult(result) : '',
        id,
        create ? 'create' : decision.reopened ? '1' : '0',
        entry ? encodeOutboxEntry(entry, id) : '',
        String(committedAt),
        String(contextArgs.length),
        runEventsArgument(create ? [runCreatedEvent(meta), ...decision.events] : decision.events),
        deadlines.set.length > 0 ? JSON.stringify(deadlines.set.map((d) => [String(d.at), deadlineMember(d)])) : '[]',
        deadlines.remove.length > 0 ? JSON.stringify(deadlines.remove.map(deadlineMember)) : '[]',
        ended.length > 0 ? JSON.stringify(ended) : '[]',
        options.carriesOut && options.carriesOut.length > 0 ? JSON.stringify(options.carriesOut.map(String)) : '[]',
        String(jobs.length),
        ...jobs.flatMap((j) => [j.group, j.jobKeyPrefix, j.jobId, String(j.bandStart), String(j.bandWidth), ...j.add]),
        ...contextArgs.flat(),
        ...(create ? [encodeRunMeta(meta), String(meta.created_at), this.indexKey] : []),
      );
      const failure = commandError('applyDecision', code, id);
      if (failure) throw failure;
      if (code === 1) {
        // As a reader would get them: the values written, back from their JSON.
        const written = outputs ? Object.fromEntries(contextArgs.map(([phase, json]) => [phase, JSON.parse(json)])) : undefined;
        return { decision, meta, result, before: state, outputs: outputs ? { ...outputs, ...written } : undefined, outbox: entry, ...(create ? { created: true } : {}) };
      }
      if (create) {
        // A run with the id exists (this very create, landed unseen, when its reply was lost and
        // ioredis sent it again): nothing written. `before` is the stored run, which tells the caller
        // whether it holds this try's phase jobs.
        const stored = await this.getRun(id).catch(() => undefined);
        return { decision: { ...decision, accepted: false, actions: [], events: [], outputs: {} }, meta: stored?.meta ?? meta, result: undefined, before: stored?.state ?? state, created: false };
      }
      // Another writer committed first: decide again on the fresh state.
    }
    throw new FleetError('INTERNAL', `run "${id}": could not apply an event after 100 concurrent-update retries`);
  }

  /**
   * Keep a phase output too large for a report until the manager takes it (7 days at most).
   * @returns the key to send as `output_ref`.
   */
  async stageOutput(id: string, phase: string, iteration: number, attempt: number, value: unknown): Promise<string> {
    const key = `${this.runKey(id)}:staged:${phase}.${iteration}.${attempt}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    await this.redis.set(key, JSON.stringify(value ?? null), 'PX', 7 * 24 * 3600 * 1000);
    return key;
  }

  /**
   * What a `phase_completed` report carries for `value`: the output itself when its JSON is at most
   * {@link MAX_INLINE_OUTPUT_BYTES}, else a reference to it staged here.
   */
  async outputForReport(id: string, phase: string, iteration: number, attempt: number, value: unknown): Promise<{ output: unknown } | { output_ref: string }> {
    if (Buffer.byteLength(JSON.stringify(value ?? null)) <= MAX_INLINE_OUTPUT_BYTES) return { output: value };
    return { output_ref: await this.stageOutput(id, phase, iteration, attempt, value) };
  }

  /**
   * Read a staged output.
   * @throws FleetError `INTERNAL` (retryable) when it is gone or the key is not this run's.
   */
  async readStagedOutput(id: string, key: string): Promise<unknown> {
    if (!key.startsWith(`${this.runKey(id)}:staged:`)) throw new FleetError('INTERNAL', `output_ref ${key} does not belong to run ${id}`, { retryable: false });
    const raw = await this.redis.get(key);
    if (raw === null) throw new FleetError('INTERNAL', `the staged output ${key} is gone (expired or already taken)`);
    return JSON.parse(raw) as unknown;
  }

  /** Append an event to a run's stream outside the scheduler (end actions, links). */
  async appendEvent(id: string, event: SideRunEvent): Promise<string> {
    return (await this.redis.xadd(this.eventsKey(id), '*', 'type', event.type, 'data', JSON.stringify(event))) ?? '';
  }

  /**
   * Read run events after `afterId` (exclusive; `0` for all).
   *
   * @param blocking - a connection reserved for blocking reads when `blockMs` > 0.
   * @param blockMs - wait up to this long for new events, ms; 0 returns at once.
   */
  async readEvents(id: string, afterId = '0', blockMs = 0, blocking?: Redis): Promise<StoredRunEvent[]> {
    const client = blockMs > 0 ? blocking : this.redis;
    if (!client) throw new TypeError('readEvents: pass a dedicated connection for blocking reads');
    const reply =
      blockMs > 0
        ? await client.xread('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', this.eventsKey(id), afterId)
        : await client.xread('COUNT', 500, 'STREAMS', this.eventsKey(id), afterId);
    if (!reply) return [];
    return reply.flatMap(([, entries]) => this.eventsOf(id, entries));
  }

  /**
   * The run events of stream entries of `<p>:run:<id>:events` as XREAD, XRANGE or XREVRANGE return
   * them, in the order given; entries without `data` are skipped.
   * @throws FleetError `INTERNAL` (not retryable) naming the run and the entry when one is malformed.
   */
  eventsOf(id: string, entries: ReadonlyArray<[string, string[]]>): StoredRunEvent[] {
    const out: StoredRunEvent[] = [];
    for (const [entryId, fields] of entries) {
      const dataIndex = fields.indexOf('data');
      const data = dataIndex >= 0 ? fields[dataIndex + 1] : undefined;
      if (data) out.push({ id: entryId, event: decodeRunEvent<StoredRunEvent['event']>(id, entryId, data) });
    }
    return out;
  }

  /**
   * Record a link to another run on this one (`fallback_run_id`, `reruns`, `children`): `reruns`
   * and `children` accumulate; `fallback_run_id` is one id. Shown in the result's `links`.
   */
  async addLink(id: string, key: string, value: string): Promise<void> {
    await this.redis.rpush(`${this.runKey(id)}:links:${key}`, value);
  }

  async getLinks(id: string): Promise<{ fallback_run_id?: string; reruns?: string[]; children?: string[] }> {
    const out: { fallback_run_id?: string; reruns?: string[]; children?: string[] } = {};
    for (const key of ['fallback_run_id', 'reruns', 'children'] as const) {
      const values = await this.redis.lrange(`${this.runKey(id)}:links:${key}`, 0, -1);
      if (values.length === 0) continue;
      // A run has at most one fallback: its id, not a list (the first recorded, should two managers race).
      if (key === 'fallback_run_id') out.fallback_run_id = values[0];
      else out[key] = values;
    }
    return out;
  }

  /**
   * Take the deadlines due by `now` (epoch ms), at most `limit`: each is leased until `leaseUntil`
   * (it comes due again then unless the taker settles it first).
   */
  async claimDueDeadlines(now: number, leaseUntil: number, limit = 100): Promise<DeadlineRef[]> {
    const members = await this.claimScript(this.deadlinesKey, String(now), String(leaseUntil), String(limit));
    const refs: DeadlineRef[] = [];
    for (const m of members) {
      const ref = parseDeadlineMember(m);
      if (ref) refs.push(ref);
      else await this.redis.zrem(this.deadlinesKey, m);
    }
    return refs;
  }

  /**
   * Set a phase iteration's deadline to `at` (epoch ms).
   * @param mode - `NX`: only if it has none; `XX`: only if it still has one (a settled deadline stays gone).
   */
  async setDeadline(ref: DeadlineRef, at: number, mode: 'NX' | 'XX'): Promise<void> {
    if (mode === 'NX') await this.redis.zadd(this.deadlinesKey, 'NX', at, deadlineMember(ref));
    else await this.redis.zadd(this.deadlinesKey, 'XX', at, deadlineMember(ref));
  }

  async removeDeadline(ref: DeadlineRef): Promise<void> {
    await this.redis.zrem(this.deadlinesKey, deadlineMember(ref));
  }

  /** The run's outbox: what its commits left to carry out, oldest first. */
  async readOutbox(id: string): Promise<OutboxEntry[]> {
    const raw = await this.redis.hvals(this.outboxKey(id));
    return raw.map((v) => decodeOutboxEntry(id, v)).sort((a, b) => a.version - b.version);
  }

  /**
   * Drop the outbox entries of `versions` (carried out). Entries written meanwhile stay.
   * @returns how many entries are left.
   */
  async clearOutbox(id: string, versions: readonly number[], now = Date.now()): Promise<number> {
    if (versions.length === 0) return (await this.redis.hlen(this.outboxKey(id)));
    return this.clearOutboxScript(this.outboxKey(id), this.outboxesKey, id, String(now), ...versions.map(String));
  }

  /**
   * Take up to `limit` runs whose outbox was written at `olderThan` (epoch ms) or before: their
   * committer died or failed before carrying it out. Each is leased until `leaseUntil`.
   */
  async claimStaleOutboxes(olderThan: number, leaseUntil: number, limit = 100): Promise<string[]> {
    return this.claimScript(this.outboxesKey, String(olderThan), String(leaseUntil), String(limit));
  }

  get settingsKey(): string {
    return `${this.prefix}:settings`;
  }
  get archivePendingKey(): string {
    return `${this.prefix}:archive:pending`;
  }

  /**
   * Write the fleet-wide retention settings every committer reads (the manager does, at start).
   * @param retentionMs - how long a finished run's keys stay, ms; 0 keeps them.
   * @param archive - whether a finished run waits for its archive write before it gets its expiry.
   */
  async writeRetentionSettings(retentionMs: number, archive: boolean): Promise<void> {
    await this.redis.hset(this.settingsKey, 'run_retention_ms', String(retentionMs), 'archive', archive ? '1' : '0');
  }

  /**
   * Keep `heldId` while `holderId` is open (a child run for its parent, a run for its rerun): any
   * expiry it has is removed, and it gets one again when the holder finishes.
   */
  async holdRun(heldId: string, holderId: string): Promise<void> {
    await this.redis.eval(HOLD_RUN_LUA, 1, this.runKey(heldId), this.prefix, heldId, holderId);
  }

  /**
   * Mark a run as written to the archive: it leaves the pending set and gets its expiry (unless held).
   * @returns true when the expiry was set.
   */
  async markArchived(id: string): Promise<boolean> {
    return ((await this.redis.eval(ARCHIVED_LUA, 1, this.runKey(id), this.prefix, id)) as number) === 1;
  }

  /** Take up to `limit` runs due for the archive at `now` (epoch ms), each leased until `leaseUntil`. */
  async claimArchivePending(now: number, leaseUntil: number, limit = 100): Promise<string[]> {
    return (await this.redis.eval(CLAIM_ARCHIVE_LUA, 1, this.archivePendingKey, String(now), String(leaseUntil), String(limit))) as string[];
  }

  /**
   * Delete a run from Redis: every key, its index entries and its archive wait.
   * @returns true when the run's record existed.
   */
  async purgeRun(id: string): Promise<boolean> {
    this.metaCache.delete(id);
    return ((await this.redis.eval(PURGE_RUN_LUA, 1, this.runKey(id), this.prefix, id)) as number) === 1;
  }

  /**
   * Drop index entries (`<p>:runs`) of runs whose keys expired. Only runs created more than
   * `retentionMs` ago can have expired (a run expires `retentionMs` after it finished), so those are
   * looked at, oldest first, in batches of `batch`; runs still held (waiting, or kept by another
   * run) are stepped over, not looked at again in this call.
   *
   * @param retentionMs - the fleet's run retention, ms (`FLEET_RUN_RETENTION`); 0 or less: runs
   *   never expire and nothing is looked at.
   * @param now - epoch ms.
   * @returns how many entries were dropped.
   */
  async pruneIndex(retentionMs: number, now = Date.now(), batch = 1000): Promise<number> {
    if (retentionMs <= 0) return 0;
    const max = String(now - retentionMs);
    let dropped = 0;
    for (let offset = 0; ; ) {
      const ids = await this.redis.zrangebyscore(this.indexKey, '-inf', max, 'LIMIT', offset, batch);
      if (ids.length === 0) return dropped;
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.exists(this.runKey(id));
      const exists = (await pipe.exec()) ?? [];
      const gone = ids.filter((_, i) => exists[i]?.[1] === 0);
      if (gone.length > 0) await this.redis.zrem(this.indexKey, ...gone);
      dropped += gone.length;
      // The runs still there keep their places: the next batch starts after them.
      offset += ids.length - gone.length;
      if (ids.length < batch) return dropped;
    }
  }

  /** Ids of runs with a pending outbox (what their commits left to carry out), oldest first. */
  async pendingOutboxRunIds(): Promise<string[]> {
    return this.redis.zrange(this.outboxesKey, '0', '-1');
  }

  /** Ids of runs not yet finished. */
  async activeRunIds(): Promise<string[]> {
    return this.redis.smembers(this.activeKey);
  }

  /**
   * One step of a walk of the run index (`<p>:runs`), newest first, in Redis (`scan-run-index-1.lua`):
   * from `after` (or the newest run within the bounds), look at up to `look` entries and return the
   * runs that may match `filter`, at most `want`.
   *
   * @param bounds - creation times, epoch ms: `before` excluded, `from` included.
   */
  async scanIndex(options: {
    after?: RunIndexPosition | undefined;
    bounds?: { before?: number | undefined; from?: number | undefined };
    look: number;
    want: number;
    filter: RunIndexFilter;
  }): Promise<RunIndexScan> {
    const { after, bounds = {}, filter } = options;
    const json = JSON.stringify({
      ...(filter.labels && Object.keys(filter.labels).length > 0 ? { labels: filter.labels } : {}),
      ...(filter.status !== undefined ? { status: filter.status } : {}),
      ...(filter.workflow !== undefined ? { workflow: filter.workflow } : {}),
      ...(filter.words && filter.words.length > 0 ? { words: filter.words } : {}),
      ...(filter.idPrefix !== undefined ? { id_prefix: filter.idPrefix } : {}),
    });
    const reply = await this.scanIndexScript(
      this.indexKey,
      this.prefix,
      after?.runId ?? '',
      after ? String(after.createdAt) : '',
      bounds.before === undefined ? '' : String(bounds.before),
      '1',
      bounds.from === undefined ? '' : String(bounds.from),
      String(options.look),
      String(options.want),
      json,
    );
    const [looked, exhausted, lastId, lastScore, ...runIds] = reply;
    return {
      runIds: runIds.map(String),
      looked: Number(looked),
      exhausted: Number(exhausted) === 1,
      last: typeof lastId === 'string' && lastId !== '' ? { runId: lastId, createdAt: Number(lastScore) } : undefined,
    };
  }

  /** Most recent run ids first. */
  async recentRunIds(limit = 20): Promise<string[]> {
    return this.redis.zrevrange(this.indexKey, 0, limit - 1);
  }
}
