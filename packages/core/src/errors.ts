/**
 * One error-code table and the error classes for AgentFleet.
 *
 * Two tiers, after the Temporal TypeScript SDK:
 * - misuse of our own API (a bug in the caller) throws a plain `TypeError`/`Error`;
 * - everything that can cross a process boundary (a bad workflow, a provider failure, a phase that
 *   timed out) is a {@link FleetError} with a stable `code`, a `category` and JSON-safe `details`.
 *
 * Whether a failure is worth retrying is decided here, in {@link FLEET_ERROR_CODES}, and nowhere else.
 */

/** Who is to blame for an error: the user's input, our system, or the LLM provider. */
export type ErrorCategory = 'user' | 'system' | 'provider';

interface CodeSpec {
  readonly category: ErrorCategory;
  /** true when another attempt may succeed (timeouts, 429, 5xx, lost connections). */
  readonly retryable: boolean;
  /** What the code means, for docs and for `fleet` error output. */
  readonly summary: string;
}

/** The code table. Add a code here before throwing it anywhere. */
export const FLEET_ERROR_CODES = {
  INVALID_WORKFLOW: { category: 'user', retryable: false, summary: 'the workflow definition is not valid' },
  INVALID_INPUT: { category: 'user', retryable: false, summary: 'a request, flag or requirements text is not valid' },
  WORKFLOW_NOT_FOUND: { category: 'user', retryable: false, summary: 'no workflow with that name is registered' },
  RUN_NOT_FOUND: { category: 'user', retryable: false, summary: 'no run with that id exists' },
  REDIS_UNAVAILABLE: { category: 'system', retryable: true, summary: 'Redis could not be reached' },
  REDIS_OUT_OF_MEMORY: { category: 'system', retryable: true, summary: "Redis is full: its used memory is over maxmemory (policy noeviction), so it refuses writes" },
  PHASE_TIMEOUT: { category: 'system', retryable: true, summary: 'the phase did not finish within its timeout' },
  PHASE_WORKER_LOST: { category: 'system', retryable: true, summary: "the phase job's workers died or went silent more often than the queue's stall limit allows" },
  PHASE_CANCELLED: { category: 'system', retryable: false, summary: 'the phase was cancelled' },
  RETRIES_EXHAUSTED: { category: 'system', retryable: false, summary: 'the run used up max_total_retries' },
  OUTPUT_INVALID: { category: 'provider', retryable: false, summary: 'the model reply did not match the role output schema' },
  PROVIDER_RATE_LIMITED: { category: 'provider', retryable: true, summary: 'the provider answered 429 (rate limited)' },
  PROVIDER_OVERLOADED: { category: 'provider', retryable: true, summary: 'the provider is overloaded (529) or failing (5xx)' },
  PROVIDER_CONNECTION: { category: 'provider', retryable: true, summary: 'the connection to the provider failed or timed out' },
  PROVIDER_AUTH: { category: 'provider', retryable: false, summary: "the provider rejected the API key or its account (401, 402 billing, 403)" },
  PROVIDER_BAD_REQUEST: { category: 'provider', retryable: false, summary: 'the provider rejected the request (400, 404, 413, 422 and other 4xx)' },
  UNKNOWN_ROLE: { category: 'user', retryable: false, summary: 'no agent role with that name is registered in this pool' },
  MAX_ITERATIONS: { category: 'user', retryable: false, summary: 'a step action would run a phase more often than its max_iterations' },
  APPROVAL_REJECTED: { category: 'user', retryable: false, summary: 'an approval phase was rejected' },
  APPROVAL_TIMEOUT: { category: 'user', retryable: false, summary: 'nobody answered an approval phase within its timeout' },
  CHILD_RUN_FAILED: { category: 'system', retryable: false, summary: 'the workflow a phase ran as a child run did not complete' },
  INVALID_STATE: { category: 'user', retryable: false, summary: "the run's status does not allow that action" },
  // HTTP API, template registry, end actions:
  UNAUTHORIZED: { category: 'user', retryable: false, summary: 'no valid API key was given' },
  FORBIDDEN: { category: 'user', retryable: false, summary: "the API key's user type may not do that" },
  CONFLICT: { category: 'user', retryable: false, summary: 'the name is taken, or another run holds the conversation' },
  NOT_FOUND: { category: 'user', retryable: false, summary: 'no API key or permission grant matches' },
  TOO_MANY_STREAMS: { category: 'user', retryable: true, summary: 'the API key already holds as many open event streams as one key may' },
  STATE_SCHEMA_VIOLATION: { category: 'user', retryable: false, summary: "the run's final context does not match the workflow's state_schema" },
  END_ACTION_FAILED: { category: 'system', retryable: true, summary: 'the end action of a finished run failed (a webhook answered 408, 429 or 5xx, or could not be reached; other answers are not retried)' },
  // Tool phases:
  UNKNOWN_TOOL: { category: 'user', retryable: false, summary: 'no tool with that name is registered in the tools pool' },
  TOOL_INPUT_INVALID: { category: 'user', retryable: false, summary: "a tool phase's parameters do not match the tool's parameter schema" },
  TOOL_NOT_ALLOWED: { category: 'user', retryable: false, summary: 'a tool was asked to reach a host or path its settings do not allow' },
  TOOL_FAILED: { category: 'system', retryable: true, summary: 'a tool failed (a network error, or an HTTP 429/5xx answer)' },
  // Tool use inside an agent phase:
  MAX_TURNS_EXCEEDED: { category: 'user', retryable: false, summary: "an agent's tool loop used up max_turns model calls without submitting its output" },
  // Model spend and custom roles:
  BUDGET_EXCEEDED: { category: 'user', retryable: false, summary: "the phase would exceed the run's or the phase's token or cost budget" },
  ROLE_NOT_FOUND: { category: 'user', retryable: false, summary: 'no custom role with that name is registered' },
  SCHEDULE_NOT_FOUND: { category: 'user', retryable: false, summary: 'no schedule with that name exists' },
  EVENT_REJECTED: { category: 'system', retryable: false, summary: "deciding on an event threw: the event is refused for good and recorded on the run (event_rejected); the run goes on" },
  INTERNAL: { category: 'system', retryable: true, summary: 'an unexpected error' },
} as const satisfies Record<string, CodeSpec>;

export type FleetErrorCode = keyof typeof FLEET_ERROR_CODES;

/** JSON-safe error shape, as stored in run state, job data and results. */
export interface SerializedFleetError {
  code: FleetErrorCode;
  message: string;
  category: ErrorCategory;
  retryable: boolean;
  details?: Record<string, unknown> | undefined;
}

export interface FleetErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  /** Override the table's retryable flag (e.g. a 5xx the provider marked `x-should-retry: false`). */
  retryable?: boolean;
  /**
   * The least time before another attempt, ms (a provider's `retry-after`, see `parseRetryAfterMs`).
   * Kept on the error as {@link FleetError.retryAfterMs} and in `details.retry_after_ms`, the form it
   * takes on the wire. @defaultValue `details.retry_after_ms` when it is a number ≥ 0, else none
   */
  retryAfterMs?: number | undefined;
}

/**
 * A failure that may cross a process boundary.
 *
 * Build one with `new FleetError(code, message)` (retryable as the code table says) or with a
 * factory that states the retry decision: {@link FleetError.retryable}, {@link FleetError.nonRetryable},
 * {@link FleetError.retryAfter} (after Temporal's `ApplicationFailure.retryable` / `.nonRetryable`
 * and Inngest's `RetryAfterError`).
 *
 * @example
 * throw new FleetError('INVALID_WORKFLOW', 'phase "design": depends_on "plan" is not a phase; use one of: planning');
 * throw FleetError.retryAfter('PROVIDER_RATE_LIMITED', 'anthropic: 429 rate_limit_error: slow down', 2000);
 */
export class FleetError extends Error {
  override readonly name = 'FleetError';
  readonly code: FleetErrorCode;
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;
  /** The least time before another attempt, ms; undefined when the failure names none. Backoff never waits less. */
  readonly retryAfterMs: number | undefined;

  constructor(code: FleetErrorCode, message: string, options: FleetErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const spec: CodeSpec = FLEET_ERROR_CODES[code];
    this.code = code;
    this.category = spec.category;
    this.retryable = options.retryable ?? spec.retryable;
    const retryAfterMs = validDelay(options.retryAfterMs) ?? validDelay(options.details?.retry_after_ms);
    this.retryAfterMs = retryAfterMs;
    this.details = retryAfterMs === undefined || options.details?.retry_after_ms === retryAfterMs ? options.details : { ...options.details, retry_after_ms: retryAfterMs };
  }

  /** A failure another attempt may cure, whatever the code table says of `code`. */
  static retryable(code: FleetErrorCode, message: string, options: Omit<FleetErrorOptions, 'retryable'> = {}): FleetError {
    return new FleetError(code, message, { ...options, retryable: true });
  }

  /** A failure no further attempt will cure: the job fails at once, whatever the code table says of `code`. */
  static nonRetryable(code: FleetErrorCode, message: string, options: Omit<FleetErrorOptions, 'retryable'> = {}): FleetError {
    return new FleetError(code, message, { ...options, retryable: false });
  }

  /** A retryable failure whose next attempt must wait at least `retryAfterMs` ms (e.g. a 429's `retry-after`). */
  static retryAfter(code: FleetErrorCode, message: string, retryAfterMs: number, options: Omit<FleetErrorOptions, 'retryable' | 'retryAfterMs'> = {}): FleetError {
    return new FleetError(code, message, { ...options, retryable: true, retryAfterMs });
  }

  toJSON(): SerializedFleetError {
    return {
      code: this.code,
      message: this.message,
      category: this.category,
      retryable: this.retryable,
      ...(this.details ? { details: this.details } : {}),
    };
  }

  /** Rebuild an error that was serialized at a process boundary (`retryAfterMs` from `details.retry_after_ms`). */
  static fromJSON(data: SerializedFleetError): FleetError {
    return new FleetError(data.code, data.message, {
      retryable: data.retryable,
      ...(data.details ? { details: data.details } : {}),
    });
  }
}

/** `value` as a delay in ms (rounded) when it is a finite number ≥ 0; else undefined. */
function validDelay(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
}

/** Turn anything thrown into a {@link FleetError}, keeping the original as `cause`. */
export function toFleetError(err: unknown, fallback: FleetErrorCode = 'INTERNAL'): FleetError {
  if (err instanceof FleetError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FleetError(fallback, message, { cause: err });
}

/** What {@link abortError} is told besides the signal. */
export interface AbortErrorOptions {
  /** What was aborted, for the message, e.g. `anthropic: the call`. @defaultValue `'the call'` */
  what?: string | undefined;
  /**
   * Whether the abort was the timeout firing, when the caller knows (an attempt signal does):
   * it wins over the reason's name. @defaultValue the reason is a `TimeoutError` (as `AbortSignal.timeout` aborts)
   */
  timedOut?: boolean | undefined;
  /** The error the abort caused (an SDK's abort error), kept as `cause`. @defaultValue the reason */
  cause?: unknown;
  details?: Record<string, unknown> | undefined;
}

/**
 * The error for work that `signal` aborted, the one mapping of an abort to a code:
 * the reason itself when it is a {@link FleetError}; `PHASE_TIMEOUT` when the timeout fired
 * (`options.timedOut`, else a reason named `TimeoutError`); `PHASE_CANCELLED` otherwise (a cancel by
 * the manager, Ctrl-C, `fleet cancel`).
 *
 * @example
 * if (signal.aborted) throw abortError(signal, { what: 'anthropic: the call' });
 */
export function abortError(signal: Pick<AbortSignal, 'reason'>, options: AbortErrorOptions = {}): FleetError {
  const reason: unknown = signal.reason;
  if (reason instanceof FleetError) return reason;
  const what = options.what ?? 'the call';
  const cause = options.cause ?? reason;
  const extra = options.details ? { details: options.details } : {};
  const name = typeof reason === 'object' && reason !== null && 'name' in reason ? reason.name : undefined;
  if (options.timedOut ?? name === 'TimeoutError') {
    const why = reason instanceof Error && reason.message ? ` (${reason.message})` : '';
    return new FleetError('PHASE_TIMEOUT', `${what} was aborted: the phase timeout passed${why}`, { cause, ...extra });
  }
  const text = reason instanceof Error ? reason.message : typeof reason === 'string' && reason ? reason : 'cancelled';
  return new FleetError('PHASE_CANCELLED', `${what} was cancelled: ${text}`, { cause, ...extra });
}

/** One issue found while validating input: where it is, and what to do about it. */
export interface ValidationIssue {
  /** Dotted path into the input, e.g. `phases[2].depends_on[0]`. */
  path: string;
  message: string;
}

/** Format validation issues as one message, one issue per line. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('\n');
}
