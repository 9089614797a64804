/**
 * State, events and actions of the pure scheduler. Everything here is plain JSON, so it is stored in
 * Redis as is. Times are epoch milliseconds supplied by the shell (the scheduler never reads a clock).
 */
import type { SerializedFleetError } from '../errors.js';
import type { BudgetRaise } from '../workflow/budget.js';

/** The identity of a span begun but not yet emitted: stored with the run (plain JSON). */
export interface SpanRef {
  /** 32 lowercase hex digits. */
  trace_id: string;
  /** 16 lowercase hex digits. */
  span_id: string;
  /** W3C trace flags (1 = sampled). */
  flags: number;
}

/**
 * `created → active → completed | failed | cancelled`; a run over its concurrency key's limit goes
 * `created → queued → active` (it waits in the key's FIFO until one of the key's runs finishes).
 */
export type RunStatus = 'created' | 'queued' | 'active' | 'waiting' | 'completed' | 'failed' | 'cancelled';
/**
 * `pending → queued → running → completed | failed | skipped | cancelled`, with `retrying` between
 * attempts and `waiting` while the phase waits for an external event (an approval, answers).
 */
export type PhaseStatus = 'pending' | 'queued' | 'running' | 'retrying' | 'waiting' | 'completed' | 'failed' | 'skipped' | 'cancelled';

export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ['completed', 'failed', 'cancelled'];
export const TERMINAL_PHASE_STATUSES: readonly PhaseStatus[] = ['completed', 'failed', 'skipped', 'cancelled'];
export const IN_FLIGHT_PHASE_STATUSES: readonly PhaseStatus[] = ['queued', 'running', 'retrying'];

/**
 * Tokens, as the provider reports them (`input_tokens` excludes cached tokens), and their cost.
 * The cache counts and the cost are absent in states written before they were tracked (read as 0).
 */
export interface TokenUsage {
  input_tokens: number;
  output_tokens: number;
  /** Input tokens read from the provider's prompt cache. */
  cache_read_input_tokens?: number;
  /** Input tokens written to the provider's prompt cache. */
  cache_creation_input_tokens?: number;
  /** USD, from the price table (`FLEET_PRICES` over the built-in list prices). */
  cost_usd?: number;
  /** Of `output_tokens`, those the model spent thinking (`thinking: adaptive`), when the provider reports them. */
  thinking_tokens?: number;
}

/** Usage with every count present (0 when not reported), but thinking tokens only when reported. */
export type FullTokenUsage = Required<Omit<TokenUsage, 'thinking_tokens'>> & Pick<TokenUsage, 'thinking_tokens'>;

export interface PhaseState {
  status: PhaseStatus;
  /** 1-based count of times the phase was queued in this run (0 while pending). */
  iteration: number;
  /** Attempts started in the current iteration (1 on the first attempt). */
  attempts: number;
  queuedAt?: number;
  /** When the current iteration's first attempt started. */
  startedAt?: number;
  finishedAt?: number;
  /** finishedAt − startedAt of the last iteration, ms. */
  durationMs?: number;
  error?: SerializedFleetError;
  /** Why the phase was skipped or cancelled. */
  reason?: string;
  usage: TokenUsage;
  /** The role that ran (or runs) the current iteration, when chosen at run time (`agent_select`). */
  agent?: string;
  /** The last completion was served from the result cache. */
  cacheHit?: boolean;
  /** Model that answered the phase's last completion, as the worker reported it (absent for tool phases and child runs). */
  model?: string;
  /** What the next iteration should take into account: the phase that sent work back, and why. */
  feedback?: { from: string; note?: string; event?: { type: string; data: unknown } };
  /** While `waiting`: the event type that resumes it, and what was asked. */
  waitingFor?: { event: string; prompt?: unknown };
  /** The current iteration sent its model calls through the Message Batches API (`mode: batch`). */
  batched?: boolean;
  /**
   * The tool journal the phase's tool loop continues: set when an iteration pauses on its budget
   * (`phase_budget_wait`), so the iteration the raise starts replays that loop instead of starting a
   * new one; cleared when the phase completes or fails.
   */
  journal?: PhaseJournalRef;
  /** The current iteration's `phase <name>` span, chosen when it was queued (set by the shell, not the scheduler). */
  span?: SpanRef;
}

/** Where a phase's tool loop is journaled (see store/tool-journal.ts). */
export interface PhaseJournalRef {
  /** The phase iteration whose journal (and idempotency keys `<run>.<phase>.<iteration>.<call>`) the loop uses. */
  iteration: number;
  /** Steps of that journal whose replies the run's usage already counts: replayed, never counted again. */
  steps: number;
}

/** A step action an agent's result asks for (or a workflow rule derives from it). */
export interface StepAction {
  type: 'continue' | 'repeat' | 'jump' | 'wait' | 'complete';
  target?: string;
  note?: string;
  /** For `wait`: the event type that resumes the run. @defaultValue `input` */
  event?: string;
  /** For `wait`: what the phase asks (questions), shown to whoever answers. */
  prompt?: unknown;
}

export interface RunState {
  status: RunStatus;
  /** Incremented by every accepted event; the store's optimistic-concurrency fence. */
  version: number;
  /** Retries granted so far across all phases (capped by `max_total_retries`). */
  totalRetries: number;
  phases: Record<string, PhaseState>;
  /** Permanent phase failures, in the order they happened. */
  errors: Array<{ phase: string; error: SerializedFleetError }>;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  usage: TokenUsage;
  /** Model that answered the phases (the last one reported). */
  model?: string;
  /** Every model that answered a phase of the run (cache hits aside), in order of first use. */
  models?: string[];
  cancelReason?: string;
  /** External events received, in order (`fleet event`, `POST /api/runs/:id/events`). */
  events: Array<{ type: string; data: unknown; at: number; id?: string }>;
  /** How many times the run was resumed after failing or being cancelled. */
  resumes: number;
  /** The run's `invoke_workflow` span, chosen when it started (set by the shell, not the scheduler). */
  span?: SpanRef;
  /** What `budget` events added to the run's budget and to phases' own budgets (absent: nothing). */
  budgetRaise?: { run?: BudgetRaise; phases?: Record<string, BudgetRaise> };
}

/**
 * What a phase that waits for its budget was about to do, shown as its `waiting_for.prompt`: the
 * budget that stopped it, what was spent against it, and the call it was about to make.
 */
export interface BudgetWaitPrompt {
  /** Which budget stopped the phase: the run's or the phase's own. */
  scope: 'run' | 'phase';
  /** The limit that would be passed: `max_cost_usd` or `max_tokens`. */
  limit: 'max_cost_usd' | 'max_tokens';
  /** The limit in force (raises included), USD or tokens. */
  max: number;
  /** Spent against it so far (settled calls), USD or tokens. */
  spent: number;
  /** Held by calls in flight of phases running at the same time, USD or tokens. */
  reserved: number;
  /** The call the phase was about to make. */
  call: { model: string; estimated_input_tokens: number; estimated_cost_usd: number };
  message: string;
}

/** Something that happened to a run: the scheduler's input. */
export type SchedulerEvent =
  /**
   * Before a run's create (a rerun): these phases start `completed`, their outputs reused from an
   * earlier run (the creator copies the outputs into the new run's context). Accepted only while the
   * run is `created`; it queues nothing.
   */
  | { type: 'outputs_reused'; at: number; phases: readonly string[] }
  | { type: 'run_started'; at: number }
  | { type: 'phase_started'; at: number; phase: string; iteration: number; attempt: number; agent?: string | undefined }
  | {
      type: 'phase_completed';
      at: number;
      phase: string;
      iteration: number;
      attempt: number;
      usage: TokenUsage;
      model: string;
      /** A step action the agent asked for in its output (`step_action`). */
      action?: StepAction | undefined;
      cacheHit?: boolean | undefined;
      /** When the attempt started (its own `phase_started` report may arrive later, or never). */
      startedAt?: number | undefined;
      agent?: string | undefined;
    }
  | {
      type: 'phase_attempt_failed';
      at: number;
      phase: string;
      iteration: number;
      attempt: number;
      error: SerializedFleetError;
      /** The worker will try again (transient error and attempts left), unless the run's cap forbids it. */
      willRetry: boolean;
      /** The backoff scheduled before the next attempt, ms, when `willRetry`. */
      retryDelayMs?: number | undefined;
      usage: TokenUsage;
      /** When the attempt started. */
      startedAt?: number | undefined;
      agent?: string | undefined;
    }
  /**
   * The attempt's next model call would pass a budget whose `on_exceed` is `wait`: the phase waits
   * for a `budget` event (`waitingFor.event` `budget`), then runs again as a new iteration (which
   * continues the attempt's tool loop from its journal).
   */
  | {
      type: 'phase_budget_wait';
      at: number;
      phase: string;
      iteration: number;
      attempt: number;
      /** Tokens the attempt billed before it stopped (calls made before the one refused). */
      usage: TokenUsage;
      prompt: BudgetWaitPrompt;
      /** The attempt's tool loop, when it has one: the raise continues it from there. */
      journal?: PhaseJournalRef | undefined;
      startedAt?: number | undefined;
      agent?: string | undefined;
    }
  /**
   * The attempt's model call went into a message batch (`mode: batch`): the phase shows as waiting
   * for it (`waitingFor.event` `batch`) while its job is put back; the same attempt goes on, and
   * reports its outcome as usual, once the batch has ended.
   */
  | {
      type: 'phase_batch_waiting';
      at: number;
      phase: string;
      iteration: number;
      attempt: number;
      batch: { batch_id: string; submitted_at: number; timeout_at: number };
      startedAt?: number | undefined;
      agent?: string | undefined;
    }
  /**
   * The child run of a `workflow:` phase iteration finished (`childRunId`). Accepted only while that
   * iteration is in flight and the phase is a `workflow:` phase. `completed`: the phase completes
   * (attempt 1) with the child's output (the shell carries it, as for `phase_completed`); `failed` or
   * `cancelled`: the phase fails with `error` (no retry; `continue_on_error` applies). `usage` (the
   * child's tokens) is added to the phase's and the run's; `model` (absent or `none`: the child made
   * no model call) becomes the run's model.
   */
  | {
      type: 'child_run_finished';
      at: number;
      phase: string;
      iteration: number;
      childRunId: string;
      status: 'completed' | 'failed' | 'cancelled';
      usage: TokenUsage;
      model?: string | undefined;
      /** Why the child did not complete (`CHILD_RUN_FAILED`); required unless `status` is `completed`. */
      error?: SerializedFleetError | undefined;
    }
  /** The manager-side deadline of a phase iteration passed (a worker died without a word). */
  | { type: 'phase_deadline'; at: number; phase: string; iteration: number }
  | { type: 'cancel_requested'; at: number; reason: string }
  /** An external event (an approval, answers to questions, anything a waiting phase asked for). */
  | { type: 'external_event'; at: number; event: string; data: unknown; /** Dedupes redeliveries and client retries. */ id?: string | undefined }
  /** Continue a failed or cancelled run from where it stopped, keeping completed phases. */
  | { type: 'resume_requested'; at: number };

/** What the shell must do after committing the new state. */
export type SchedulerAction =
  /** Add the phase's job; `agent` is set when the scheduler chose the role, absent to let the shell balance load. */
  | { type: 'enqueue_phase'; phase: string; iteration: number; agent?: string }
  /** Start the phase's child workflow run. */
  | { type: 'start_child_run'; phase: string; iteration: number; workflow: string }
  /** A phase now waits for an external event; fail or settle it after `timeoutMs` (a deadline). */
  | { type: 'await_event'; phase: string; iteration: number; event: string; timeoutMs: number }
  | { type: 'cancel_phase'; phase: string; iteration: number }
  | { type: 'finish_run'; status: 'completed' | 'failed' | 'cancelled' }
  /** The run failed and the workflow names a fallback: start it on the same requirements. */
  | { type: 'start_fallback'; workflow: string }
  /**
   * The run finished: free its slot of concurrency key `key` and start the key's next queued runs
   * (up to `limit` active). Added by the shell (the driver) to the decision that finishes a run with a
   * concurrency limit, so it is in the same commit's outbox; `version` is that commit's.
   */
  | { type: 'release_concurrency'; key: string; limit: number; version: number };

/** An append-only record of what happened, as users see it in the events stream. */
export type RunEvent =
  | { type: 'run_started'; at: number }
  /** The run waits behind its concurrency key's limit; `position` is its 1-based place in the key's FIFO. */
  | { type: 'run_queued'; at: number; key: string; limit: number; position: number }
  | { type: 'phase_queued'; at: number; phase: string; agent: string; iteration: number }
  | { type: 'phase_started'; at: number; phase: string; agent: string; iteration: number; attempt: number }
  | { type: 'phase_waiting'; at: number; phase: string; event: string; prompt?: unknown }
  | { type: 'step_action'; at: number; phase: string; action: StepAction['type']; target?: string; note?: string }
  | { type: 'external_event'; at: number; event: string; data: unknown }
  | { type: 'run_resumed'; at: number }
  /** `delay_ms`: the backoff scheduled before the next attempt, ms (absent in events written before it was recorded). */
  | { type: 'phase_retry'; at: number; phase: string; attempt: number; error: SerializedFleetError; delay_ms?: number }
  | { type: 'phase_completed'; at: number; phase: string; iteration: number; attempt: number; duration_ms: number; cache_hit?: boolean }
  | { type: 'phase_failed'; at: number; phase: string; error: SerializedFleetError }
  | { type: 'phase_skipped'; at: number; phase: string; reason: string }
  | { type: 'phase_cancelled'; at: number; phase: string; reason: string }
  | { type: 'run_finished'; at: number; status: 'completed' | 'failed' | 'cancelled'; duration_ms: number };

export type RunEventType = RunEvent['type'];

/** The scheduler's answer to one event. */
export interface Decision {
  /** false when the event was stale or duplicate (fenced off); `state` is then unchanged. */
  accepted: boolean;
  state: RunState;
  actions: SchedulerAction[];
  events: RunEvent[];
  /**
   * Outputs to write into the shared context: the scheduler's own (approval decisions), and the
   * outputs of accepted phase completions (added by the shell that commits them).
   */
  outputs: Record<string, unknown>;
  /** The run was finished and is open again (resume): the stored result must go. */
  reopened: boolean;
  /**
   * Phase deadlines the decision sets, as durations from the commit (absent: none). The shell turns
   * each into an absolute time with its clock when it commits; deadlines of iterations that ended are
   * removed by the shell from the state before and after.
   */
  deadlines?: PhaseDeadline[] | undefined;
}

/** A phase iteration's deadline, `after_ms` (ms, ≥ 0) after the commit that sets it. */
export interface PhaseDeadline {
  phase: string;
  iteration: number;
  after_ms: number;
}

/**
 * What the shell reads before deciding and passes to the scheduler, besides the run's context
 * (which never reads Redis or a clock itself).
 */
export interface DecideInputs {
  /**
   * Role → jobs waiting in its queue (waiting, prioritized and delayed), for the roles that
   * `load_balanced` phases choose among. Absent: such a phase's enqueue names no role (the shell
   * picks one when it adds the job).
   */
  queueDepths?: Record<string, number> | undefined;
  /** Grace added to phase deadlines, ms. @defaultValue {@link DEFAULT_DEADLINE_GRACE_MS} (./deadlines.ts) */
  deadlineGraceMs?: number | undefined;
}
