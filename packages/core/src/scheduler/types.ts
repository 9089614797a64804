/**
 * State, events and actions of the pure scheduler. Everything here is plain JSON, so it is stored in
 * Redis as is. Times are epoch milliseconds supplied by the shell (the scheduler never reads a clock).
 */
import type { SerializedFleetError } from '../errors.js';

/** `created → active → completed | failed | cancelled`. */
export type RunStatus = 'created' | 'active' | 'waiting' | 'completed' | 'failed' | 'cancelled';
/** `pending → queued → running → completed | failed | skipped | cancelled`, with `retrying` between attempts. */
export type PhaseStatus = 'pending' | 'queued' | 'running' | 'retrying' | 'completed' | 'failed' | 'skipped' | 'cancelled';

export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ['completed', 'failed', 'cancelled'];
export const TERMINAL_PHASE_STATUSES: readonly PhaseStatus[] = ['completed', 'failed', 'skipped', 'cancelled'];
export const IN_FLIGHT_PHASE_STATUSES: readonly PhaseStatus[] = ['queued', 'running', 'retrying'];

/** Tokens, as the provider reports them. */
export interface TokenUsage {
  input_tokens: number;
  output_tokens: number;
}

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
  cancelReason?: string;
}

/** Something that happened to a run: the scheduler's input. */
export type SchedulerEvent =
  | { type: 'run_started'; at: number }
  | { type: 'phase_started'; at: number; phase: string; iteration: number; attempt: number }
  | {
      type: 'phase_completed';
      at: number;
      phase: string;
      iteration: number;
      attempt: number;
      usage: TokenUsage;
      model: string;
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
      usage: TokenUsage;
    }
  /** The manager-side deadline of a phase iteration passed (a worker died without a word). */
  | { type: 'phase_deadline'; at: number; phase: string; iteration: number }
  | { type: 'cancel_requested'; at: number; reason: string };

/** What the shell must do after committing the new state. */
export type SchedulerAction =
  | { type: 'enqueue_phase'; phase: string; iteration: number }
  | { type: 'cancel_phase'; phase: string; iteration: number }
  | { type: 'finish_run'; status: 'completed' | 'failed' | 'cancelled' };

/** An append-only record of what happened, as users see it in the events stream. */
export type RunEvent =
  | { type: 'run_started'; at: number }
  | { type: 'phase_queued'; at: number; phase: string; agent: string; iteration: number }
  | { type: 'phase_started'; at: number; phase: string; agent: string; iteration: number; attempt: number }
  | { type: 'phase_retry'; at: number; phase: string; attempt: number; error: SerializedFleetError }
  | { type: 'phase_completed'; at: number; phase: string; iteration: number; attempt: number; duration_ms: number }
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
}
