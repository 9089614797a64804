/**
 * The one interface every LLM provider implements. Agent workers speak only this.
 *
 * Structured output is requested as a forced tool call: the provider is given one tool whose
 * `input_schema` is the JSON Schema of the role's zod output schema, and the tool call's input is
 * the output. (Anthropic Messages API, "tool use": https://docs.anthropic.com/en/docs/build-with-claude/tool-use)
 */

/**
 * One text block of a message. `cache: true` ends a cacheable prefix there: the provider may cache
 * everything up to and including this block (Anthropic: a `cache_control: {type: 'ephemeral'}`
 * breakpoint; providers without prompt caching ignore it).
 */
export interface LlmTextBlock {
  type: 'text';
  text: string;
  cache?: boolean | undefined;
}

/** One message of the conversation: plain text, or text blocks (to mark cache breakpoints). */
export interface LlmMessage {
  role: 'user' | 'assistant';
  content: string | LlmTextBlock[];
}

/** The text of a message, its blocks joined by blank lines. */
export function messageText(message: LlmMessage): string {
  return typeof message.content === 'string' ? message.content : message.content.map((b) => b.text).join('\n\n');
}

/** A request for one structured reply. */
export interface LlmRequest {
  /** The agent role asking, e.g. `planner`. Offline providers answer per role. */
  role: string;
  /** System prompt: the role's standing instructions. */
  system: string;
  /** Mark the system prompt (and the tool definition before it) as a cacheable prefix. @defaultValue false */
  cacheSystem?: boolean | undefined;
  /**
   * Stream the reply (server-sent events) instead of waiting for one JSON body: for long outputs.
   * The result is the same; an error after the first bytes fails the whole call (nothing partial is
   * returned). Providers without streaming ignore it. @defaultValue false
   */
  stream?: boolean | undefined;
  /**
   * Called when the HTTP request actually goes out (after the SDK's preparation), so a rate limiter
   * can date the call as the provider will. Providers that cannot tell call it just before sending.
   */
  onSent?: (() => void) | undefined;
  /** Model for this call, overriding the client's default (a routing client picks the provider by it). */
  model?: string | undefined;
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
  /**
   * Ask the provider to guarantee that the output matches `tool.inputSchema` by construction
   * (Anthropic: `strict: true` on the tool, or `output_config.format` when thinking is on; OpenAI:
   * `strict: true` on the function). The schema must then be structured-output compatible (see
   * `strictJsonSchema`); constraints the grammar cannot express are still checked by the caller.
   * Providers without it ignore it. @defaultValue false
   */
  strict?: boolean | undefined;
  /**
   * How much effort the model puts into its reply (Anthropic `output_config.effort`). Providers
   * without it ignore it. @defaultValue the provider's (Anthropic: `high`)
   * @see https://platform.claude.com/docs/en/build-with-claude/effort
   */
  effort?: LlmEffort | undefined;
  /**
   * Let the model think before it answers (Anthropic `thinking: {type: 'adaptive'}`). The API
   * refuses a forced tool call with thinking on, so the reply's format is then asked for with
   * `output_config.format` instead of a forced tool. Thinking tokens count toward `maxTokens`.
   * @defaultValue false
   * @see https://platform.claude.com/docs/en/build-with-claude/adaptive-thinking
   */
  thinking?: boolean | undefined;
  /**
   * Told of each piece of the reply as it is written (the call streams when this is set). Pieces
   * are partial and may be followed by a failure: they are for display, never a result. Must not
   * throw; it is called synchronously from the stream's reader.
   */
  onDelta?: ((delta: LlmDelta) => void) | undefined;
  /** Aborts the in-flight HTTP request (bound to the phase timeout and to cancellation). */
  signal: AbortSignal;
  /**
   * Structured inputs the prompt was rendered from (requirements, upstream outputs).
   * Real providers ignore this; the offline model answers from it.
   */
  inputs: Record<string, unknown>;
}

/** Effort levels of Anthropic's `output_config.effort`. */
export type LlmEffort = 'low' | 'medium' | 'high' | 'xhigh' | 'max';

/** The effort levels, for validating settings. */
export const LLM_EFFORTS: readonly LlmEffort[] = ['low', 'medium', 'high', 'xhigh', 'max'];

/**
 * One piece of a reply being written: `text` (a text block), `tool_input` (the partial JSON of the
 * submit tool's input, or of the JSON reply under `output_config.format`) or `thinking`.
 */
export interface LlmDelta {
  kind: 'text' | 'tool_input' | 'thinking';
  text: string;
}

/** Token usage of one call, as the provider reports it. */
export interface LlmUsage {
  /** Input tokens not read from or written to the prompt cache. */
  input_tokens: number;
  /** Output tokens, thinking tokens included. */
  output_tokens: number;
  /** Of `output_tokens`, those spent thinking (Anthropic `output_tokens_details.thinking_tokens`), when reported. */
  thinking_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

/**
 * What the provider said about its rate limits in the reply's headers (Anthropic
 * `anthropic-ratelimit-*`): limits and what remains, per minute, and when each resets (epoch ms).
 */
export interface RateLimitInfo {
  requestsLimit?: number | undefined;
  requestsRemaining?: number | undefined;
  requestsResetAt?: number | undefined;
  inputTokensLimit?: number | undefined;
  inputTokensRemaining?: number | undefined;
  inputTokensResetAt?: number | undefined;
  outputTokensLimit?: number | undefined;
  outputTokensRemaining?: number | undefined;
  outputTokensResetAt?: number | undefined;
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
  /** Rate-limit state from the reply's headers, when the provider sends it. */
  rateLimit?: RateLimitInfo | undefined;
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
