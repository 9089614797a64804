/**
 * A provider for servers that speak OpenAI's Chat Completions API: local models (Ollama, vLLM,
 * llama.cpp's server, LM Studio) and hosted ones, through the official `openai` SDK.
 *
 * Structured output is a forced function call (`tools: [{type: 'function', …}]`,
 * `tool_choice: {type: 'function', function: {name}}`), whose JSON `arguments` are the output.
 * Usage: `prompt_tokens` minus `prompt_tokens_details.cached_tokens` as input, the cached ones as
 * cache reads, `completion_tokens` as output. Errors map onto the same codes as the Anthropic client.
 *
 * API: https://platform.openai.com/docs/api-reference/chat/create
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';

import { FLEET_ERROR_CODES, FleetError, abortError, toFleetError } from '../errors.js';
import { parseRetryAfterMs, providerCodeForStatus } from './provider-errors.js';
import { redactError } from './redact.js';
import { strictJsonSchema } from './strict-schema.js';
import { messageText, type LlmClient, type LlmMessage, type LlmRequest, type LlmResponse } from './types.js';

/** Options of {@link OpenAiCompatibleLlmClient}. */
export interface OpenAiCompatibleClientOptions {
  /** Base URL including `/v1`, e.g. `http://127.0.0.1:11434/v1` (Ollama) or `http://127.0.0.1:8000/v1` (vLLM). */
  baseURL: string;
  /** API key; local servers accept any non-empty value. @defaultValue `'not-needed'` */
  apiKey?: string | undefined;
  /** Model name as the server knows it, e.g. `qwen3:8b`. */
  model: string;
  /** Timeout of one HTTP attempt, ms. @defaultValue the SDK's: 10 minutes */
  timeoutMs?: number | undefined;
}

/**
 * {@link LlmClient} for OpenAI-compatible servers. The SDK's own retries are off: BullMQ attempts
 * with AgentFleet's backoff are the one retry policy, as for Anthropic.
 *
 * @throws (from `generate`) FleetError: `PHASE_TIMEOUT` / `PHASE_CANCELLED` when the signal aborted,
 *   the code `providerCodeForStatus` gives an HTTP error status (as for every provider:
 *   `PROVIDER_RATE_LIMITED` 429 with `retryAfterMs`, `PROVIDER_OVERLOADED` 5xx/409,
 *   `PROVIDER_CONNECTION` 408, `PROVIDER_AUTH` 401/402/403, `PROVIDER_BAD_REQUEST` other 4xx),
 *   `PROVIDER_CONNECTION` when the server cannot be reached,
 *   `OUTPUT_INVALID` (no call of the function, or arguments that are not JSON).
 *
 * @example
 * const llm = new OpenAiCompatibleLlmClient({ baseURL: 'http://127.0.0.1:11434/v1', model: 'qwen3:8b' });
 */
export class OpenAiCompatibleLlmClient implements LlmClient {
  readonly provider = 'openai-compatible';
  readonly model: string;
  readonly #client: OpenAI;
  readonly #apiKey: string;

  /** @throws TypeError when `baseURL` or `model` is empty. */
  constructor(options: OpenAiCompatibleClientOptions) {
    if (!options.baseURL) throw new TypeError('OpenAiCompatibleLlmClient: baseURL is empty; set FLEET_OPENAI_BASE_URL');
    if (!options.model) throw new TypeError('OpenAiCompatibleLlmClient: model is empty; set FLEET_MODEL');
    this.model = options.model;
    this.#apiKey = options.apiKey ?? 'not-needed';
    this.#client = new OpenAI({
      apiKey: this.#apiKey,
      baseURL: options.baseURL,
      maxRetries: 0,
      ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
    });
  }

  /**
   * Ask for one structured reply: a forced call of `request.tool.name` (with other tools, any
   * call: `tool_choice: 'required'`), the submit function sent with `strict: true` and the
   * compatible schema when `request.strict` is set and the schema can be made compatible for
   * OpenAI (every property required; see `strictJsonSchema`), else without `strict` (a server that
   * ignores `strict` is covered by the caller's validation and repair). With `onDelta` (or
   * `stream`) the reply streams and the submit function's partial arguments go to `onDelta`.
   *
   * @throws FleetError as listed on the class.
   */
  async generate(request: LlmRequest): Promise<LlmResponse> {
    const model = request.model ?? this.model;
    const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: request.system }, ...request.messages.flatMap(toChatMessages)];
    const extra = request.tools ?? [];
    const strict = request.strict ? strictJsonSchema(request.tool.inputSchema, 'openai') : undefined;
    const submit = {
      type: 'function' as const,
      function: {
        name: request.tool.name,
        description: request.tool.description,
        parameters: strict?.compatible ? strict.schema : request.tool.inputSchema,
        ...(strict?.compatible ? { strict: true } : {}),
      },
    };
    const params: ChatCompletionCreateParamsNonStreaming = {
      model,
      messages,
      max_tokens: request.maxTokens,
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      tools: [submit, ...extra.map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description, parameters: t.inputSchema } }))],
      // With other tools the model must call one of them or the submit function.
      tool_choice: extra.length > 0 ? 'required' : { type: 'function', function: { name: request.tool.name } },
    };
    let reply: Reply;
    try {
      reply = request.stream || request.onDelta ? await this.#streamed(params, request) : await this.#whole(params, request);
    } catch (err) {
      throw redactError(this.#toFleetError(err, request.signal, model), this.#apiKey);
    }
    const call = reply.calls.find((c) => c.name === request.tool.name);
    const finish = reply.finish;
    const details = { provider: this.provider, model: reply.model, id: reply.id, stop_reason: finish };
    const offered = new Set(extra.map((t) => t.name));
    const toolCalls = reply.calls.flatMap((c) => (offered.has(c.name) ? [{ id: c.id, name: c.name, input: parseArguments(c.arguments) }] : []));
    if (!call && toolCalls.length > 0 && finish !== 'length') {
      return { output: undefined, toolCalls, usage: chatUsage(reply.usage), model: reply.model || model, id: reply.id, stopReason: 'tool_use' };
    }
    if (!call || finish === 'length') {
      throw new FleetError(
        'OUTPUT_INVALID',
        `openai-compatible: reply ${reply.id} (finish_reason ${finish}) has no complete call of function "${request.tool.name}"` +
          (finish === 'length' ? `: cut off at max_tokens=${request.maxTokens}; raise it` : '; check that the model supports forced tool calls (tool_choice)'),
        { details: finish === 'length' ? { ...details, stop_reason: 'max_tokens' } : details },
      );
    }
    let output: unknown;
    try {
      output = JSON.parse(call.arguments);
    } catch {
      throw new FleetError('OUTPUT_INVALID', `openai-compatible: the arguments of "${request.tool.name}" are not JSON`, {
        details: { ...details, arguments: call.arguments.slice(0, 500) },
      });
    }
    return {
      output,
      submitCallId: call.id,
      usage: chatUsage(reply.usage),
      model: reply.model || model,
      id: reply.id,
      stopReason: finish === 'tool_calls' || finish === 'stop' ? 'tool_use' : finish,
    };
  }

  async #whole(params: ChatCompletionCreateParamsNonStreaming, request: LlmRequest): Promise<Reply> {
    const completion: ChatCompletion = await this.#client.chat.completions.create(params, { signal: request.signal });
    const choice = completion.choices[0];
    return {
      id: completion.id,
      model: completion.model,
      finish: choice?.finish_reason ?? 'unknown',
      calls: (choice?.message.tool_calls ?? []).flatMap((c) => (c.type === 'function' ? [{ id: c.id, name: c.function.name, arguments: c.function.arguments }] : [])),
      usage: completion.usage,
    };
  }

  /** The reply streamed (`stream: true`, usage in the last chunk): each call's arguments are concatenated as they come, the submit function's told to `onDelta`. */
  async #streamed(params: ChatCompletionCreateParamsNonStreaming, request: LlmRequest): Promise<Reply> {
    const stream = await this.#client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }, { signal: request.signal });
    const reply: Reply = { id: '', model: '', finish: 'unknown', calls: [], usage: undefined };
    const byIndex = new Map<number, { id: string; name: string; arguments: string }>();
    for await (const chunk of stream) {
      reply.id ||= chunk.id;
      reply.model ||= chunk.model;
      if (chunk.usage) reply.usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      for (const piece of choice.delta.tool_calls ?? []) {
        let call = byIndex.get(piece.index);
        if (!call) {
          call = { id: piece.id ?? '', name: '', arguments: '' };
          byIndex.set(piece.index, call);
          reply.calls.push(call);
        }
        if (piece.id) call.id = piece.id;
        if (piece.function?.name) call.name = piece.function.name;
        const text = piece.function?.arguments;
        if (!text) continue;
        call.arguments += text;
        if (call.name === request.tool.name) request.onDelta?.({ kind: 'tool_input', text });
      }
      if (choice.delta.content) request.onDelta?.({ kind: 'text', text: choice.delta.content });
      if (choice.finish_reason) reply.finish = choice.finish_reason;
    }
    return reply;
  }

  #toFleetError(err: unknown, signal: AbortSignal, model: string): FleetError {
    if (signal.aborted) return abortError(signal, { what: 'openai-compatible: the call', cause: err, details: { provider: this.provider, model } });
    const base = { provider: this.provider, model };
    const redact = (text: string) => text.split(this.#apiKey).join('[redacted]');
    if (err instanceof APIUserAbortError) return new FleetError('PHASE_CANCELLED', 'openai-compatible: the request was aborted', { cause: err, details: base });
    if (err instanceof APIConnectionTimeoutError || err instanceof APIConnectionError) {
      return new FleetError('PROVIDER_CONNECTION', redact(`openai-compatible: could not reach ${this.#client.baseURL}: ${err.message}`), { cause: err, details: { ...base, base_url: this.#client.baseURL } });
    }
    if (err instanceof APIError && typeof err.status === 'number') {
      const status = err.status;
      const code = providerCodeForStatus(status);
      const retryAfterMs = FLEET_ERROR_CODES[code].retryable ? parseRetryAfterMs(err.headers as Headers | undefined) : undefined;
      return new FleetError(code, redact(`openai-compatible: ${status}: ${err.message}`), { cause: err, retryAfterMs, details: { ...base, status } });
    }
    const fallback = toFleetError(err, 'INTERNAL');
    return new FleetError(fallback.code, redact(`openai-compatible: ${fallback.message}`), { cause: err, details: base });
  }
}

/** Usage of a completion: cached prompt tokens as cache reads, the rest as input; reasoning tokens as thinking tokens. */
function chatUsage(usage: CompletionUsage | null | undefined): LlmResponse['usage'] {
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? 0;
  const reasoning = usage?.completion_tokens_details?.reasoning_tokens;
  return {
    input_tokens: Math.max(0, (usage?.prompt_tokens ?? 0) - cached),
    output_tokens: usage?.completion_tokens ?? 0,
    ...(cached > 0 ? { cache_read_input_tokens: cached } : {}),
    ...(typeof reasoning === 'number' && reasoning > 0 ? { thinking_tokens: reasoning } : {}),
  };
}

/** One reply, streamed or whole. */
interface Reply {
  id: string;
  model: string;
  finish: string;
  /** The function calls, their JSON arguments as text. */
  calls: Array<{ id: string; name: string; arguments: string }>;
  usage: CompletionUsage | undefined | null;
}

/** A tool call's JSON arguments; text that is not JSON is passed on as is (the tool's validation refuses it). */
function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * One of our messages as Chat Completions messages: an assistant's tool calls become `tool_calls`,
 * each tool result a `tool` message (an error result says so in its text: the API has no error flag).
 * https://platform.openai.com/docs/guides/function-calling
 */
function toChatMessages(m: LlmMessage): ChatCompletionMessageParam[] {
  if (typeof m.content === 'string') return [{ role: m.role, content: m.content }];
  const text = m.content.filter((b) => b.type === 'text').map((b) => b.text).join('\n\n');
  if (m.role === 'assistant') {
    const calls = m.content.flatMap((b) => (b.type === 'tool_use' ? [{ id: b.id, type: 'function' as const, function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }] : []));
    return [{ role: 'assistant', content: text || null, ...(calls.length > 0 ? { tool_calls: calls } : {}) }];
  }
  const out: ChatCompletionMessageParam[] = m.content.flatMap((b): ChatCompletionMessageParam[] =>
    b.type === 'tool_result' ? [{ role: 'tool', tool_call_id: b.toolUseId, content: b.isError ? `Error: ${b.content}` : b.content }] : [],
  );
  if (text) out.push({ role: 'user', content: text });
  return out.length > 0 ? out : [{ role: 'user', content: messageText(m) }];
}
