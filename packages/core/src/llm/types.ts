/**
 * The one interface every LLM provider implements. Agent workers speak only this.
 *
 * Structured output is requested as a forced tool call: the provider is given one tool whose
 * `input_schema` is the JSON Schema of the role's zod output schema, and the tool call's input is
 * the output. (Anthropic Messages API, "tool use": https://docs.anthropic.com/en/docs/build-with-claude/tool-use)
 */

/** One message of the conversation, in the Messages API's plain-text form. */
export interface LlmMessage {
  role: 'user' | 'assistant';
  content: string;
}

/** A request for one structured reply. */
export interface LlmRequest {
  /** The agent role asking, e.g. `planner`. Offline providers answer per role. */
  role: string;
  /** System prompt: the role's standing instructions. */
  system: string;
  /** Conversation so far; the last message is the user's turn. */
  messages: LlmMessage[];
  /** The tool the model must call; its input is the structured output. */
  tool: {
    name: string;
    description: string;
    /** JSON Schema (draft 2020-12 subset accepted by the provider) of the output. */
    inputSchema: Record<string, unknown>;
  };
  /** Upper bound on output tokens for this call. */
  maxTokens: number;
  /** Sampling temperature, 0..1. */
  temperature?: number | undefined;
  /** Aborts the in-flight HTTP request (bound to the phase timeout and to cancellation). */
  signal: AbortSignal;
  /**
   * Structured inputs the prompt was rendered from (requirements, upstream outputs).
   * Real providers ignore this; the offline model answers from it.
   */
  inputs: Record<string, unknown>;
}

/** Token usage of one call, as the provider reports it. */
export interface LlmUsage {
  /** Input tokens not read from or written to the prompt cache. */
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

/** One structured reply. */
export interface LlmResponse {
  /** The tool call's input: the role output, still unvalidated. */
  output: unknown;
  usage: LlmUsage;
  /** Model that answered, as the provider names it. */
  model: string;
  /** Provider's reply id (`msg_...`), for tracing. */
  id: string;
  /** Why generation stopped (`tool_use`, `end_turn`, `max_tokens`, …). */
  stopReason: string;
}

/**
 * A provider of structured replies.
 *
 * Implementations throw {@link FleetError} with a `PROVIDER_*` code (or `PHASE_TIMEOUT` /
 * `PHASE_CANCELLED` when `signal` aborted the call), so callers decide retries from `retryable`.
 */
export interface LlmClient {
  /** Provider name as in OpenTelemetry `gen_ai.provider.name` (`anthropic`, `offline`). */
  readonly provider: string;
  /** The model requests go to. */
  readonly model: string;
  generate(request: LlmRequest): Promise<LlmResponse>;
}
