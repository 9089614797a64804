/**
 * The Anthropic provider: one forced tool call per request through the official SDK
 * (`@anthropic-ai/sdk` 1.x, which sends `anthropic-version: 2026-10-21`), with every failure turned
 * into a {@link FleetError}.
 *
 * Messages API: https://docs.anthropic.com/en/api/messages
 * Errors and their HTTP statuses: https://docs.anthropic.com/en/api/errors
 */
import Anthropic, {
  AnthropicError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from '@anthropic-ai/sdk';
import type {
  ContentBlock,
  ContentBlockParam,
  Message,
  MessageCreateParamsNonStreaming,
  MessageParam,
  Tool,
  ToolUseBlock,
} from '@anthropic-ai/sdk/resources/messages';

import { AsyncLocalStorage } from 'node:async_hooks';

import { FLEET_ERROR_CODES, FleetError, abortError, toFleetError } from '../errors.js';
import type { FleetErrorCode } from '../errors.js';
import { generateInBatch } from './anthropic-batch.js';
import { parseRetryAfterMs, providerCodeForStatus } from './provider-errors.js';
import { redactError } from './redact.js';
import { strictJsonSchema } from './strict-schema.js';
import type { LlmClient, LlmMessage, LlmRequest, LlmResponse, LlmUsage, RateLimitInfo } from './types.js';

/** Options of {@link AnthropicLlmClient}. */
export interface AnthropicClientOptions {
  /**
   * Anthropic API key. The SDK sends it as `Authorization: Bearer <key>`. It is never logged and
   * never put into an error message or error details.
   */
  apiKey: string;
  /**
   * Base URL of the Messages API, without `/v1`, e.g. `http://127.0.0.1:40123` for a local fake.
   *
   * @defaultValue the `ANTHROPIC_BASE_URL` environment variable, else `https://api.anthropic.com`
   * (resolved by the SDK when the client is constructed)
   */
  baseURL?: string | undefined;
  /** Model every request goes to, e.g. `claude-sonnet-5-5`. */
  model: string;
  /**
   * How many times the SDK itself retries one call after a connection error, a timeout, a 408, 409,
   * 429 or 5xx (honouring `retry-after-ms` / `retry-after` and `x-should-retry`), before
   * {@link AnthropicLlmClient.generate} throws. `0` leaves every retry to the caller.
   *
   * @defaultValue 2
   */
  maxRetries?: number | undefined;
  /**
   * Timeout of one HTTP attempt, in milliseconds (the SDK's `timeout`). An attempt that runs out
   * is retried like a connection error; the last one throws `PROVIDER_CONNECTION`. To bound the
   * whole call, retries and their waits included, abort {@link LlmRequest.signal} instead.
   *
   * @defaultValue the SDK's non-streaming default: 10 minutes
   */
  timeoutMs?: number | undefined;
  /**
   * Test seam: awaited after the Message Batches API accepted a batch-mode call's batch and before
   * its id is recorded. A hook that never settles stands for a worker that dies at that point (the
   * crash window {@link generateInBatch} closes).
   */
  afterBatchSubmit?: ((batchId: string) => Promise<void>) | undefined;
}

/** Options after defaults and checks: what the client runs with. */
interface CompiledOptions {
  apiKey: string;
  baseURL: string | undefined;
  model: string;
  maxRetries: number;
  timeoutMs: number | undefined;
}

const DEFAULT_MAX_RETRIES = 2;

/** The `onSent` hook of the request being sent, for the client's fetch wrapper. */
const sentHooks = new AsyncLocalStorage<() => void>();
const MESSAGES_API_DOC = 'https://docs.anthropic.com/en/api/messages';

/**
 * {@link LlmClient} for the Anthropic Messages API.
 *
 * Each {@link generate} call is one `POST /v1/messages` with a single tool whose `input_schema` is
 * the role's output schema, and `tool_choice: {type: 'tool', name}` forcing the model to call it;
 * the tool call's `input` is the output. With {@link LlmRequest.tools} (a tool loop) those tools
 * follow the submit tool and `tool_choice` is `{type: 'any'}`: the model calls the submit tool (the
 * reply's output) or some of the others (the reply's `toolCalls`, without output); tool calls and
 * results in `messages` go out as `tool_use` and `tool_result` blocks (`is_error` on failures).
 * With `request.strict` the tool is sent with `strict: true`
 * and the schema's structured-output form (`strictJsonSchema`); with `request.thinking`
 * (`thinking: {type: 'adaptive'}`, which the API refuses with a forced tool) the output is asked for
 * with `output_config.format` instead and read from the reply's JSON text; `request.effort` is
 * `output_config.effort`. With `request.onDelta` (or `stream`) the reply streams and its
 * `text_delta`, `input_json_delta` and `thinking_delta` pieces go to `onDelta` as they arrive.
 *
 * `request.temperature` is not sent: API version `2026-10-21`, which this SDK speaks, rejects
 * `temperature`, `top_p` and `top_k` with 400 ("Extra inputs are not permitted"), whatever the value.
 *
 * Failures, all as {@link FleetError} (`retryable` comes from the code table):
 *
 * | Cause | Code |
 * | --- | --- |
 * | `request.signal` aborted with a `TimeoutError` reason (e.g. `AbortSignal.timeout`) | `PHASE_TIMEOUT` |
 * | `request.signal` aborted with any other reason | `PHASE_CANCELLED` (a `FleetError` reason is rethrown as is) |
 * | an HTTP error status | the code `providerCodeForStatus` gives every provider (429 `PROVIDER_RATE_LIMITED`, 5xx/529/409 `PROVIDER_OVERLOADED`, 408 `PROVIDER_CONNECTION`, 401/402/403 `PROVIDER_AUTH`, other 4xx `PROVIDER_BAD_REQUEST`); a retryable one with `retryAfterMs` (`details.retry_after_ms`) from `retry-after-ms` / `retry-after` |
 * | no connection, connection lost, {@link AnthropicClientOptions.timeoutMs} ran out | `PROVIDER_CONNECTION` |
 * | a request the SDK refuses to send | `PROVIDER_BAD_REQUEST` |
 * | a reply without a complete call of the tool | `OUTPUT_INVALID` |
 *
 * HTTP errors keep the provider's `error.message` in the message and carry `details`
 * `{ provider, model, status, error_type, request_id, retry_after_ms?, error_code? }`; an
 * `x-should-retry` response header overrides `retryable`. These errors are thrown after the SDK
 * used up {@link AnthropicClientOptions.maxRetries}.
 *
 * @see https://docs.anthropic.com/en/api/messages
 * @see https://docs.anthropic.com/en/docs/build-with-claude/tool-use
 *
 * @example
 * const llm = new AnthropicLlmClient({ apiKey: process.env.ANTHROPIC_API_KEY ?? '', model: 'claude-sonnet-5-5' });
 * const reply = await llm.generate({
 *   role: 'planner', system: 'You plan.', messages: [{ role: 'user', content: 'Plan a CLI.' }],
 *   tool: { name: 'submit_plan', description: 'Submit the plan.', inputSchema: { type: 'object', properties: {} } },
 *   maxTokens: 2048, signal: AbortSignal.timeout(60_000), inputs: {},
 * });
 */
export class AnthropicLlmClient implements LlmClient {
  readonly provider = 'anthropic';
  readonly model: string;
  readonly #options: CompiledOptions;
  readonly #afterBatchSubmit: ((batchId: string) => Promise<void>) | undefined;
  readonly #client: Anthropic;

  /**
   * @throws TypeError when `apiKey` or `model` is empty, `maxRetries` is not an integer ≥ 0 or
   * `timeoutMs` is not an integer > 0.
   */
  constructor(options: AnthropicClientOptions) {
    this.#options = compileOptions(options);
    this.#afterBatchSubmit = options.afterBatchSubmit;
    this.model = this.#options.model;
    this.#client = new Anthropic({
      apiKey: this.#options.apiKey,
      // Tells the request's `onSent` hook when its HTTP request goes out (see LlmRequest.onSent).
      fetch: (url: string | URL | Request, init?: RequestInit) => {
        sentHooks.getStore()?.();
        return fetch(url, init);
      },
      maxRetries: this.#options.maxRetries,
      // AgentFleet traces each call itself (`chat <model>`, see ../telemetry/traced-llm.ts): no SDK spans, which
      // would duplicate them, and no trace context sent to the provider.
      openTelemetry: { traces: false, propagation: false },
      ...(this.#options.baseURL === undefined ? {} : { baseURL: this.#options.baseURL }),
      ...(this.#options.timeoutMs === undefined ? {} : { timeout: this.#options.timeoutMs }),
    });
  }

  /**
   * Ask the model for one structured reply.
   *
   * @param request - `maxTokens` bounds output tokens; `signal` aborts the HTTP call, retries and
   * the waits between them included.
   * @returns the tool call's `input` as `output` (not yet validated against the role schema), token
   * usage (cache counts when the provider reports them), the answering model, the `msg_...` id and
   * the `stop_reason`.
   * @throws {@link FleetError} as listed on {@link AnthropicLlmClient}; `OUTPUT_INVALID` when the
   * reply has no call of `request.tool.name`, or was cut off at `max_tokens` (its tool input would
   * be incomplete).
   */
  async generate(request: LlmRequest): Promise<LlmResponse> {
    const params: MessageCreateParamsNonStreaming = {
      model: request.model ?? this.model,
      max_tokens: request.maxTokens,
      system: request.cacheSystem ? [{ type: 'text', text: request.system, cache_control: cacheControl(request.cacheTtl) }] : request.system,
      messages: request.messages.map((m) => toMessageParam(m, request.cacheTtl)),
      ...structuredOutputParams(request),
    };
    // A batch-mode phase sends the same request through the Message Batches API (./anthropic-batch.ts).
    if (request.batch) return generateInBatch(this.#client, params, request, {
        toResponse: (message) => this.responseFromMessage(message, request),
        codeForErrorType,
        toFleetError: (err) => redactError(this.#toFleetError(err, request.signal), this.#options.apiKey),
        ...(this.#afterBatchSubmit ? { afterSubmit: this.#afterBatchSubmit } : {}),
      });
    const hook = request.onSent;
    return hook ? sentHooks.run(hook, () => this.#send(params, request)) : this.#send(params, request);
  }

  /**
   * A Messages API `Message` as the reply to `request` (what {@link generate} returns for it).
   * @throws FleetError `OUTPUT_INVALID` as {@link generate} does.
   */
  responseFromMessage(message: Message, request: LlmRequest): LlmResponse {
    return this.#toResponse(message, request);
  }

  async #send(params: MessageCreateParamsNonStreaming, request: LlmRequest): Promise<LlmResponse> {
    let message: Message;
    let headers: Headers;
    try {
      if (request.stream || request.onDelta) {
        // Server-sent events; finalMessage() resolves only once the whole message arrived, and throws
        // on an `error` event or a dropped connection mid-stream: nothing partial ever comes back.
        // The deltas seen on the way go to `onDelta`, for display only.
        const stream = this.#client.messages.stream(params, { signal: request.signal });
        const onDelta = request.onDelta;
        if (onDelta) {
          stream.on('streamEvent', (event) => {
            if (event.type !== 'content_block_delta') return;
            const delta = event.delta;
            if (delta.type === 'text_delta') onDelta({ kind: params.output_config?.format ? 'tool_input' : 'text', text: delta.text });
            else if (delta.type === 'input_json_delta') onDelta({ kind: 'tool_input', text: delta.partial_json });
            else if (delta.type === 'thinking_delta') onDelta({ kind: 'thinking', text: delta.thinking });
          });
        }
        const [final, raw] = await Promise.all([stream.finalMessage(), stream.withResponse()]);
        message = final;
        headers = raw.response.headers;
      } else {
        const { data, response } = await this.#client.messages.create(params, { signal: request.signal }).withResponse();
        message = data;
        headers = response.headers;
      }
    } catch (err) {
      throw redactError(this.#toFleetError(err, request.signal), this.#options.apiKey);
    }
    const response = params.output_config?.format ? this.#toFormatResponse(message, request) : this.#toResponse(message, request);
    return { ...response, rateLimit: rateLimitInfo(headers) };
  }

  /** The reply to a request with `output_config.format`: its text is the JSON output. */
  #toFormatResponse(message: Message, request: LlmRequest): LlmResponse {
    const stopReason = message.stop_reason ?? 'unknown';
    const text = message.content.flatMap((block) => (block.type === 'text' ? [block.text] : [])).join('');
    const details = { provider: this.provider, model: message.model, id: message.id, stop_reason: stopReason };
    if (stopReason === 'max_tokens' || stopReason === 'refusal' || text === '') {
      throw new FleetError(
        'OUTPUT_INVALID',
        `anthropic: reply ${message.id} (stop_reason ${stopReason}) has no complete JSON output: ` +
          missingCallHint(stopReason, text !== '', message.content, request.tool.name, request.maxTokens),
        { details: { ...details, content_types: message.content.map((block) => block.type) } },
      );
    }
    let output: unknown;
    try {
      output = JSON.parse(text);
    } catch {
      throw new FleetError('OUTPUT_INVALID', `anthropic: reply ${message.id} under output_config.format is not JSON`, {
        details: { ...details, ...textPreview(message.content) },
      });
    }
    return { output, usage: toUsage(message.usage), model: message.model, id: message.id, stopReason: 'tool_use' };
  }

  #toResponse(message: Message, request: LlmRequest): LlmResponse {
    const toolName = request.tool.name;
    const stopReason = message.stop_reason ?? 'unknown';
    const call = message.content.find(
      (block): block is ToolUseBlock => block.type === 'tool_use' && block.name === toolName,
    );
    const offered = new Set((request.tools ?? []).map((t) => t.name));
    const toolCalls = message.content
      .filter((block): block is ToolUseBlock => block.type === 'tool_use' && offered.has(block.name))
      .map((block) => ({ id: block.id, name: block.name, input: block.input }));
    if (call === undefined && toolCalls.length > 0 && stopReason !== 'max_tokens') {
      return { output: undefined, toolCalls, usage: toUsage(message.usage), model: message.model, id: message.id, stopReason };
    }
    if (call === undefined || stopReason === 'max_tokens') {
      throw new FleetError(
        'OUTPUT_INVALID',
        `anthropic: reply ${message.id} (stop_reason ${stopReason}) has no complete call of tool "${toolName}": ` +
          missingCallHint(stopReason, call !== undefined, message.content, toolName, request.maxTokens),
        {
          details: {
            provider: this.provider,
            model: message.model,
            id: message.id,
            stop_reason: stopReason,
            content_types: message.content.map((block) => block.type),
            ...textPreview(message.content),
          },
        },
      );
    }
    return {
      output: call.input,
      submitCallId: call.id,
      usage: toUsage(message.usage),
      model: message.model,
      id: message.id,
      stopReason,
    };
  }

  #toFleetError(err: unknown, signal: AbortSignal): FleetError {
    if (signal.aborted) return abortError(signal, { what: 'anthropic: the call', cause: err, details: { provider: 'anthropic', model: this.model } });
    if (err instanceof FleetError) return err;
    const base = { provider: this.provider, model: this.model };
    if (err instanceof APIUserAbortError) {
      return new FleetError('PHASE_CANCELLED', 'anthropic: the request was aborted', { cause: err, details: base });
    }
    if (err instanceof APIConnectionTimeoutError) {
      const timeout = this.#options.timeoutMs === undefined ? 'the SDK default timeout' : `timeoutMs=${this.#options.timeoutMs}`;
      return new FleetError(
        'PROVIDER_CONNECTION',
        `anthropic: no reply within ${timeout} after ${this.#options.maxRetries + 1} attempt(s); raise timeoutMs or check the network`,
        { cause: err, details: { ...base, timeout_ms: this.#options.timeoutMs ?? null } },
      );
    }
    if (err instanceof APIConnectionError) {
      const reason = err.cause instanceof Error ? `${err.message} (${causeText(err.cause)})` : err.message;
      return new FleetError(
        'PROVIDER_CONNECTION',
        this.#redact(`anthropic: could not reach ${this.#client.baseURL}: ${reason}`),
        { cause: err, details: { ...base, base_url: this.#client.baseURL } },
      );
    }
    if (err instanceof APIError && typeof err.status === 'number') {
      return this.#statusError(err as APIError, err.status);
    }
    if (err instanceof APIError && typeof err.type === 'string') {
      // An `error` event in the middle of a stream (HTTP 200 already sent): map it by its error type.
      const code = codeForErrorType(err.type);
      return new FleetError(code, this.#redact(`anthropic: the stream failed mid-reply: ${err.type}: ${err.apiMessage ?? err.message}`), {
        cause: err,
        details: { ...base, error_type: err.type, mid_stream: true },
      });
    }
    if (err instanceof AnthropicError) {
      // Raised by the SDK before anything was sent, e.g. a max_tokens that needs streaming.
      return new FleetError('PROVIDER_BAD_REQUEST', this.#redact(`anthropic: request refused by the SDK: ${err.message}`), {
        cause: err,
        details: base,
      });
    }
    const fallback = toFleetError(err, 'INTERNAL');
    return new FleetError(fallback.code, this.#redact(`anthropic: ${fallback.message}`), { cause: err, details: base });
  }

  #statusError(err: APIError, status: number): FleetError {
    const headers = err.headers;
    const code = providerCodeForStatus(status);
    const retryAfterMs = FLEET_ERROR_CODES[code].retryable ? parseRetryAfterMs(headers) : undefined;
    const providerMessage = err.apiMessage ?? err.message;
    const shouldRetry = headers?.get('x-should-retry');
    const requestId = err.requestID ?? null;
    const details: Record<string, unknown> = {
      provider: this.provider,
      model: this.model,
      status,
      error_type: err.type ?? null,
      request_id: requestId,
      ...(retryAfterMs === undefined ? {} : { retry_after_ms: retryAfterMs }),
      ...(err.errorCode === null ? {} : { error_code: err.errorCode }),
    };
    const message =
      `anthropic: ${status}${err.type ? ` ${err.type}` : ''}: ${providerMessage}` +
      (requestId ? ` (request-id ${requestId})` : '') +
      statusHint(code, status, retryAfterMs);
    return new FleetError(code, this.#redact(message), {
      cause: err,
      details,
      retryAfterMs,
      ...(shouldRetry === 'true' ? { retryable: true } : shouldRetry === 'false' ? { retryable: false } : {}),
    });
  }

  /** Remove the API key from text that came back from the provider or the network. */
  #redact(text: string): string {
    return text.split(this.#options.apiKey).join('[redacted]');
  }
}

function compileOptions(options: AnthropicClientOptions): CompiledOptions {
  const { apiKey, model, baseURL, timeoutMs } = options;
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  if (typeof apiKey !== 'string' || apiKey.trim() === '') {
    throw new TypeError('AnthropicLlmClient: apiKey is empty; set ANTHROPIC_API_KEY');
  }
  if (typeof model !== 'string' || model.trim() === '') {
    throw new TypeError('AnthropicLlmClient: model is empty; name a model such as claude-sonnet-5-5');
  }
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new TypeError(`AnthropicLlmClient: maxRetries must be an integer >= 0, got ${String(maxRetries)}`);
  }
  if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs <= 0)) {
    throw new TypeError(`AnthropicLlmClient: timeoutMs must be an integer > 0 (milliseconds), got ${String(timeoutMs)}`);
  }
  return { apiKey, model, baseURL, maxRetries, timeoutMs };
}

/** A cache breakpoint; with `ttl` (`1h`) the prefix is kept that long (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching). */
function cacheControl(ttl: '5m' | '1h' | undefined): { type: 'ephemeral'; ttl?: '5m' | '1h' } {
  return ttl ? { type: 'ephemeral', ttl } : { type: 'ephemeral' };
}

/**
 * A message as the SDK takes it: text blocks marked `cache` carry a `cache_control` breakpoint
 * (kept `cacheTtl` long), tool calls become `tool_use` blocks and their results `tool_result` blocks
 * (`is_error` when the call failed). https://docs.anthropic.com/en/docs/build-with-claude/tool-use
 */
function toMessageParam(message: LlmMessage, cacheTtl?: '5m' | '1h'): MessageParam {
  if (typeof message.content === 'string') return { role: message.role, content: message.content };
  return {
    role: message.role,
    content: message.content.map((block): ContentBlockParam => {
      switch (block.type) {
        case 'text':
          return { type: 'text', text: block.text, ...(block.cache ? { cache_control: cacheControl(cacheTtl) } : {}) };
        case 'tool_use':
          return { type: 'tool_use', id: block.id, name: block.name, input: block.input };
        case 'tool_result':
          return { type: 'tool_result', tool_use_id: block.toolUseId, content: block.content, ...(block.isError ? { is_error: true } : {}) };
      }
    }),
  };
}

/** The `anthropic-ratelimit-*` response headers; see https://docs.anthropic.com/en/api/rate-limits#response-headers */
export function rateLimitInfo(headers: Headers): RateLimitInfo | undefined {
  const num = (name: string): number | undefined => {
    const value = headers.get(`anthropic-ratelimit-${name}`);
    if (value === null || value.trim() === '') return undefined;
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  };
  const at = (name: string): number | undefined => {
    const value = headers.get(`anthropic-ratelimit-${name}`);
    if (value === null) return undefined;
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  };
  const info: RateLimitInfo = {
    requestsLimit: num('requests-limit'),
    requestsRemaining: num('requests-remaining'),
    requestsResetAt: at('requests-reset'),
    inputTokensLimit: num('input-tokens-limit'),
    inputTokensRemaining: num('input-tokens-remaining'),
    inputTokensResetAt: at('input-tokens-reset'),
    outputTokensLimit: num('output-tokens-limit'),
    outputTokensRemaining: num('output-tokens-remaining'),
    outputTokensResetAt: at('output-tokens-reset'),
  };
  return Object.values(info).some((v) => v !== undefined) ? info : undefined;
}

/** `error.type` of an error body (or a mid-stream `error` event) to code. */
function codeForErrorType(type: string): FleetErrorCode {
  switch (type) {
    case 'rate_limit_error':
      return 'PROVIDER_RATE_LIMITED';
    case 'overloaded_error':
    case 'api_error':
      return 'PROVIDER_OVERLOADED';
    case 'timeout_error':
      return 'PROVIDER_CONNECTION';
    case 'authentication_error':
    case 'permission_error':
    case 'billing_error':
      return 'PROVIDER_AUTH';
    default:
      return 'PROVIDER_BAD_REQUEST';
  }
}

function statusHint(code: FleetErrorCode, status: number, retryAfterMs: number | undefined): string {
  switch (code) {
    case 'PROVIDER_RATE_LIMITED':
      return retryAfterMs === undefined ? '; retry later' : `; retry after ${retryAfterMs} ms`;
    case 'PROVIDER_AUTH':
      return status === 402 ? '; check the billing of the API key\'s organization' : '; check ANTHROPIC_API_KEY and its permissions';
    case 'PROVIDER_BAD_REQUEST':
      return `; fix the request (see ${MESSAGES_API_DOC})`;
    default:
      return '';
  }
}

export function toUsage(usage: Message['usage']): LlmUsage {
  const oneHour = usage.cache_creation?.ephemeral_1h_input_tokens;
  return {
    ...(typeof oneHour === 'number' && oneHour > 0 ? { cache_creation_1h_input_tokens: oneHour } : {}),
    input_tokens: usage.input_tokens,
    output_tokens: usage.output_tokens,
    ...(typeof usage.cache_read_input_tokens === 'number' ? { cache_read_input_tokens: usage.cache_read_input_tokens } : {}),
    ...(typeof usage.cache_creation_input_tokens === 'number'
      ? { cache_creation_input_tokens: usage.cache_creation_input_tokens }
      : {}),
    ...(typeof usage.output_tokens_details?.thinking_tokens === 'number' ? { thinking_tokens: usage.output_tokens_details.thinking_tokens } : {}),
  };
}

/**
 * How the request asks for its structured output, and with what effort and thinking:
 *
 * - without thinking, the submit tool forced with `tool_choice` (sent with `strict: true` and the
 *   compatible schema when `request.strict` and the schema can be made compatible), or with other
 *   tools (a tool loop) `tool_choice: {type: 'any'}`;
 * - with thinking (`thinking: {type: 'adaptive'}`), which the API refuses together with a forced
 *   tool, `output_config.format` with the JSON Schema when it is compatible and there are no other
 *   tools, else the tools with `tool_choice: auto` (the prompt asks for the call);
 * - `request.effort` as `output_config.effort`.
 *
 * @see https://platform.claude.com/docs/en/build-with-claude/structured-outputs
 * @see https://platform.claude.com/docs/en/agents-and-tools/tool-use/strict-tool-use
 */
function structuredOutputParams(request: LlmRequest): Pick<MessageCreateParamsNonStreaming, 'tools' | 'tool_choice' | 'output_config' | 'thinking'> {
  const strict = request.strict ? strictJsonSchema(request.tool.inputSchema, 'anthropic') : undefined;
  const schema = strict?.compatible ? strict.schema : request.tool.inputSchema;
  const effort = request.effort === undefined ? {} : { effort: request.effort };
  const extra = request.tools ?? [];
  const tools: Tool[] = [
    {
      name: request.tool.name,
      description: request.tool.description,
      input_schema: schema as Tool.InputSchema,
      ...(strict?.compatible ? { strict: true } : {}),
    },
    ...extra.map((t) => ({ name: t.name, description: t.description, input_schema: t.inputSchema as Tool.InputSchema })),
  ];
  const effortOnly = request.effort === undefined ? {} : { output_config: effort };
  if (request.thinking) {
    if (strict?.compatible && extra.length === 0) {
      return { thinking: { type: 'adaptive' }, output_config: { ...effort, format: { type: 'json_schema', schema } } };
    }
    return { thinking: { type: 'adaptive' }, tools, tool_choice: { type: 'auto' }, ...effortOnly };
  }
  // With other tools the model picks which to call, but must call one: the submit tool ends the turn.
  return { tools, tool_choice: extra.length > 0 ? { type: 'any' } : { type: 'tool', name: request.tool.name }, ...effortOnly };
}

/** What went wrong when the reply holds no complete tool call, and what to do about it. */
function missingCallHint(
  stopReason: string,
  hasCall: boolean,
  content: ContentBlock[],
  toolName: string,
  maxTokens: number,
): string {
  switch (stopReason) {
    case 'max_tokens':
      return `the reply was cut off at max_tokens=${maxTokens}${hasCall ? ', inside the tool call, so its input is incomplete' : ''}; raise the phase's max tokens`;
    case 'refusal':
      return 'the model refused to answer; change the role prompt or the inputs that triggered the refusal';
    case 'model_context_window_exceeded':
      return "the prompt and max_tokens exceed the model's context window; shorten the inputs or lower max tokens";
    default: {
      const called = content.filter((block) => block.type === 'tool_use').map((block) => block.name);
      if (called.length > 0) return `the model called ${called.map((n) => `"${n}"`).join(', ')} instead; check the tool name`;
      return (
        `the model answered without calling the tool although tool_choice forced "${toolName}"; ` +
        'check that the model and the endpoint (baseURL / ANTHROPIC_BASE_URL) support forced tool use'
      );
    }
  }
}

function textPreview(content: ContentBlock[]): { text?: string } {
  const text = content.flatMap((block) => (block.type === 'text' ? [block.text] : [])).join('\n');
  return text === '' ? {} : { text: text.length > 500 ? `${text.slice(0, 500)}…` : text };
}

function causeText(cause: Error): string {
  const inner = cause.cause instanceof Error ? `: ${cause.cause.message}` : '';
  return `${cause.message}${inner}`;
}
