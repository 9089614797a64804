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
  PROVIDER_AUTH: { category: 'provider', retryable: false, summary: 'the provider rejected the API key (401/403)' },
  PROVIDER_BAD_REQUEST: { category: 'provider', retryable: false, summary: 'the provider rejected the request (400/404/413/422)' },
  UNKNOWN_ROLE: { category: 'user', retryable: false, summary: 'no agent role with that name is registered in this pool' },
  MAX_ITERATIONS: { category: 'user', retryable: false, summary: 'a step action would run a phase more often than its max_iterations' },
  APPROVAL_REJECTED: { category: 'user', retryable: false, summary: 'an approval phase was rejected' },
  APPROVAL_TIMEOUT: { category: 'user', retryable: false, summary: 'nobody answered an approval phase within its timeout' },
  CHILD_RUN_FAILED: { category: 'system', retryable: false, summary: 'the workflow a phase ran as a child run did not complete' },
  INVALID_STATE: { category: 'user', retryable: false, summary: "the run's status does not allow that action" },
  // HTTP API, template registry, end actions (issue 4):
  UNAUTHORIZED: { category: 'user', retryable: false, summary: 'no valid API key was given' },
  FORBIDDEN: { category: 'user', retryable: false, summary: "the API key's user type may not do that" },
  CONFLICT: { category: 'user', retryable: false, summary: 'the name is taken, or another run holds the conversation' },
  NOT_FOUND: { category: 'user', retryable: false, summary: 'no API key or permission grant matches' },
  TOO_MANY_STREAMS: { category: 'user', retryable: true, summary: 'the API key already holds as many open event streams as one key may' },
  STATE_SCHEMA_VIOLATION: { category: 'user', retryable: false, summary: "the run's final context does not match the workflow's state_schema" },
  END_ACTION_FAILED: { category: 'system', retryable: true, summary: 'the end action of a finished run failed' },
  // Tool phases (issue 9):
  UNKNOWN_TOOL: { category: 'user', retryable: false, summary: 'no tool with that name is registered in the tools pool' },
  TOOL_INPUT_INVALID: { category: 'user', retryable: false, summary: "a tool phase's parameters do not match the tool's parameter schema" },
  TOOL_NOT_ALLOWED: { category: 'user', retryable: false, summary: 'a tool was asked to reach a host or path its settings do not allow' },
  TOOL_FAILED: { category: 'system', retryable: true, summary: 'a tool failed (a network error, or an HTTP 429/5xx answer)' },
  // Tool use inside an agent phase:
  MAX_TURNS_EXCEEDED: { category: 'user', retryable: false, summary: "an agent's tool loop used up max_turns model calls without submitting its output" },
  // Model spend and custom roles (issue 8):
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
}

/**
 * A failure that may cross a process boundary.
 *
 * @example
 * throw new FleetError('INVALID_WORKFLOW', 'phase "design": depends_on "plan" is not a phase; use one of: planning');
 */
export class FleetError extends Error {
  override readonly name = 'FleetError';
  readonly code: FleetErrorCode;
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: FleetErrorCode, message: string, options: FleetErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const spec: CodeSpec = FLEET_ERROR_CODES[code];
    this.code = code;
    this.category = spec.category;
    this.retryable = options.retryable ?? spec.retryable;
    this.details = options.details;
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

  /** Rebuild an error that was serialized at a process boundary. */
  static fromJSON(data: SerializedFleetError): FleetError {
    return new FleetError(data.code, data.message, {
      retryable: data.retryable,
      ...(data.details ? { details: data.details } : {}),
    });
  }
}

/** Turn anything thrown into a {@link FleetError}, keeping the original as `cause`. */
export function toFleetError(err: unknown, fallback: FleetErrorCode = 'INTERNAL'): FleetError {
  if (err instanceof FleetError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FleetError(fallback, message, { cause: err });
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
