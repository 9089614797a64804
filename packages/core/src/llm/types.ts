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

/**
 * A tool call the model made (an assistant message): `id` is the provider's call id (`toolu_…`),
 * which the {@link LlmToolResultBlock} answering it names.
 *
 * @see https://docs.anthropic.com/en/docs/build-with-claude/tool-use#handling-tool-use-and-tool-result-content-blocks
 */
export interface LlmToolUseBlock {
  type: 'tool_use';
  id: string;
  name: string;
  input: unknown;
}

/**
 * The result of one tool call (a user message): `toolUseId` is the `id` of the call it answers,
 * `content` the result as text, `isError` true when the call failed (or its input was refused), so
 * the model can correct itself.
 */
export interface LlmToolResultBlock {
  type: 'tool_result';
  toolUseId: string;
  content: string;
  isError?: boolean | undefined;
}

/** A block of a message's content. */
export type LlmContentBlock = LlmTextBlock | LlmToolUseBlock | LlmToolResultBlock;

/**
 * One message of the conversation: plain text, or blocks (text with cache breakpoints; the
 * assistant's tool calls; the user's tool results).
 */
export interface LlmMessage {
  role: 'user' | 'assistant';
  content: string | LlmContentBlock[];
}

/** The text of one block: text as is, a tool call as `name(input JSON)`, a tool result as its content. */
export function blockText(block: LlmContentBlock): string {
  switch (block.type) {
    case 'text':
      return block.text;
    case 'tool_use':
      return `${block.name}(${JSON.stringify(block.input)})`;
    case 'tool_result':
      return block.content;
  }
}

/** The text of a message, its blocks joined by blank lines. */
export function messageText(message: LlmMessage): string {
  return typeof message.content === 'string' ? message.content : message.content.map(blockText).join('\n\n');
}

/** A tool the model may call besides the submit tool (built-in, user or MCP tool). */
export interface LlmToolDefinition {
  /** `^[a-zA-Z0-9_-]{1,64}$`, unique within the request. */
  name: string;
  description: string;
  /** JSON Schema of the tool's input (an object). */
  inputSchema: Record<string, unknown>;
}

/** A call of one of {@link LlmRequest.tools} in a reply. */
export interface LlmToolCall {
  /** The provider's call id, to answer with a {@link LlmToolResultBlock}. */
  id: string;
  name: string;
  /** The call's input, unvalidated. */
  input: unknown;
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
   * How long the provider keeps the cacheable prefixes (Anthropic `cache_control.ttl`): `1h` costs
   * 2× input per token written instead of 1.25×. @defaultValue the provider's, 5 minutes
   */
  cacheTtl?: '5m' | '1h' | undefined;
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
  /**
   * The submit tool: the one call that ends the turn; its input is the structured output. Without
   * {@link tools} the model is forced to call it (`tool_choice: {type: 'tool'}`).
   */
  tool: {
    name: string;
    description: string;
    /** JSON Schema (draft 2020-12 subset accepted by the provider) of the output. */
    inputSchema: Record<string, unknown>;
  };
  /**
   * Further tools the model may call before it submits (a tool loop). When non-empty the model must
   * call some tool (Anthropic `tool_choice: {type: 'any'}`, OpenAI `tool_choice: 'required'`), the
   * submit tool or one of these; a reply that calls only these comes back with
   * {@link LlmResponse.toolCalls} and no output. Offline providers never call them. @defaultValue none
   */
  tools?: readonly LlmToolDefinition[] | undefined;
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
   * Send this call through the provider's batch API (half price, results within hours): the call
   * throws `BatchPending` until its batch has ended. Providers without one call directly.
   */
  batch?: BatchCall | undefined;
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
  /** The part of `cache_creation_input_tokens` written with a 1-hour TTL (priced at 2× input). */
  cache_creation_1h_input_tokens?: number;
  /** Billed at the Message Batches API's discount (half price). */
  batch?: boolean;
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
  /**
   * The submit tool call's input: the role output, still unvalidated. `undefined` when the reply
   * called only other tools ({@link toolCalls}).
   */
  output: unknown;
  /** The submit tool call's id (`toolu_…`), to answer it with a tool result (a schema repair). */
  submitCallId?: string | undefined;
  /**
   * The reply's calls of {@link LlmRequest.tools}, in order, when it did not call the submit tool.
   * Absent or empty when it did (a submit call ends the turn; other calls beside it are ignored).
   */
  toolCalls?: LlmToolCall[] | undefined;
  usage: LlmUsage;
  /** Model that answered, as the provider names it. */
  model: string;
  /** Provider's reply id (`msg_...`), for tracing. */
  id: string;
  /** Why generation stopped (`tool_use`, `end_turn`, `max_tokens`, …). */
  stopReason: string;
  /** Rate-limit state from the reply's headers, when the provider sends it. */
  rateLimit?: RateLimitInfo | undefined;
  /**
   * A batch result handed out before (the attempt is replayed after its job came back): billed once,
   * when it was first handed out, so budgets do not count it again.
   */
  replayed?: boolean | undefined;
}

/**
 * A call sent through a provider's batch API (Anthropic Message Batches), known by a key that is
 * stable across retakes of the same attempt (`<run>.<phase>.<iteration>.<attempt>.<call>`), so a
 * worker that takes the job again finds the batch it submitted instead of submitting a second one.
 */
export interface BatchCall {
  key: string;
  /** How long the call may wait for its batch, ms (`batch_timeout`); then it fails with `PHASE_TIMEOUT`. */
  timeoutMs: number;
  records: BatchRecordStore;
  /** What the open-batch index needs to resume the phase (run, phase, iteration, attempt, role queue). */
  owner: { run_id: string; phase: string; iteration: number; attempt: number; role: string };
  /**
   * How long a take waits before it looks again for a batch an earlier take may have submitted
   * (batches that might be it are still in progress), ms. @defaultValue 30000
   */
  recheckMs?: number | undefined;
}

/** One submitted batch request, as stored per attempt and call. */
export interface BatchRecord {
  batch_id: string;
  /** The request's `custom_id` within its batch. */
  custom_id: string;
  /** Epoch ms. */
  submitted_at: number;
  /** Epoch ms after which the call gives up (`submitted_at` + batch timeout). */
  timeout_at: number;
}

/**
 * What a call was about to submit, recorded before it asks the Batches API: a take that finds an
 * intent but no {@link BatchRecord} may have died after the API accepted the batch, and looks for it.
 */
export interface BatchIntent {
  /** The request's `custom_id` the batch would carry. */
  custom_id: string;
  /** When the call was about to submit, epoch ms (the worker's clock). */
  at: number;
}

/** Where batch ids are kept durably (the run's Redis keys; see store/batch-store.ts). */
export interface BatchRecordStore {
  /** The batch already submitted under `key`, if any. */
  get(key: string): Promise<BatchRecord | undefined>;
  /**
   * Record the intent to submit under `key`, unless one is recorded: returns the intent that
   * stands, `fresh` when it is this one (no earlier take got as far).
   */
  intend(key: string, intent: BatchIntent): Promise<BatchIntent & { fresh: boolean }>;
  /** Replace the intent under `key` (a take about to submit again, having found no batch of the last one). */
  reintend(key: string, intent: BatchIntent): Promise<void>;
  /** Record a submitted batch; the first record for a key stands and is returned. */
  put(key: string, record: BatchRecord, owner: BatchCall['owner']): Promise<BatchRecord>;
  /** The result of `key` is handed out; true the first time (it is billed then), false on a replay. */
  deliver(key: string, record: BatchRecord): Promise<boolean>;
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
