/**
 * The one place where model calls are traced and measured: {@link tracedLlmClient} wraps any
 * {@link LlmClient} so every `generate` call is a CLIENT span `chat <model>` with the GenAI
 * attributes, and feeds `gen_ai.client.*` and `fleet.llm.cost` metrics.
 *
 * @see https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/#inference
 */
import { SpanKind } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';

import { FleetAttributes, GenAiAttributes, GenAiOperationNames, GenAiProviderNames } from './attributes.js';
import { recordLlmCall, totalInputTokens } from './metrics.js';
import { errorType, withSpan } from './trace.js';
import type { ModelPrice } from '../llm/prices.js';
import type { LlmClient, LlmMessage, LlmRequest, LlmResponse } from '../llm/types.js';

/** Options of {@link tracedLlmClient}. */
export interface TracedLlmClientOptions {
  /**
   * Record the system prompt, the messages and the reply on the span (`gen_ai.system_instructions`,
   * `gen_ai.input.messages`, `gen_ai.output.messages`). Prompts hold user requirements and upstream
   * outputs, so this is off unless asked for. @defaultValue false (`FLEET_TRACE_CONTENT=true` turns it on in the CLI)
   */
  recordContent?: boolean | undefined;
  /**
   * The price table `fleet.llm.cost` is counted with: the one results and budgets use, so the metric
   * and a run's `cost_usd` agree (`FLEET_PRICES` over the built-in list prices, see `fleetPrices`).
   * @defaultValue MODEL_PRICES (the built-in list prices)
   */
  prices?: Readonly<Record<string, ModelPrice>> | undefined;
}

/** The `gen_ai.provider.name` of an {@link LlmClient.provider}: `offline` is AgentFleet's own model. */
export function genAiProviderName(provider: string): string {
  return provider === 'offline' ? GenAiProviderNames.Offline : provider;
}

/**
 * `client`, with every `generate` call traced and measured. The returned client has the same
 * `provider` and `model` and throws what `client` throws.
 *
 * The span `chat <model>` (kind CLIENT) is a child of the active span (in a worker:
 * `invoke_agent <role>`). At start it carries `gen_ai.operation.name=chat`, `gen_ai.provider.name`,
 * `gen_ai.request.model`, `gen_ai.request.max_tokens` (and `gen_ai.request.temperature` when set);
 * on success `gen_ai.response.id`, `gen_ai.response.model`, `gen_ai.response.finish_reasons`,
 * `gen_ai.usage.input_tokens` (input + cache read + cache creation, as the conventions count it),
 * `gen_ai.usage.output_tokens`, the two cache counts and `gen_ai.usage.reasoning.output_tokens`
 * (thinking) when the provider reported them (and `fleet.llm.strict` / `fleet.llm.effort` /
 * `fleet.llm.thinking` at start when the request asked for them); on failure
 * the exception, status ERROR and `error.type` (the FleetError code).
 *
 * @example
 * const llm = tracedLlmClient(new AnthropicLlmClient({ apiKey, model }), { recordContent: false });
 */
export function tracedLlmClient(client: LlmClient, options: TracedLlmClientOptions = {}): LlmClient {
  const provider = genAiProviderName(client.provider);
  const recordContent = options.recordContent ?? false;
  return {
    provider: client.provider,
    model: client.model,
    generate(request: LlmRequest): Promise<LlmResponse> {
      const attributes: Attributes = {
        [GenAiAttributes.OperationName]: GenAiOperationNames.Chat,
        [GenAiAttributes.ProviderName]: provider,
        [GenAiAttributes.RequestModel]: request.model ?? client.model,
        [GenAiAttributes.RequestMaxTokens]: request.maxTokens,
      };
      if (request.temperature !== undefined) attributes[GenAiAttributes.RequestTemperature] = request.temperature;
      if (request.strict) attributes[FleetAttributes.LlmStrict] = true;
      if (request.effort !== undefined) attributes[FleetAttributes.LlmEffort] = request.effort;
      if (request.thinking) attributes[FleetAttributes.LlmThinking] = true;
      if (client.provider === 'offline') attributes[FleetAttributes.Offline] = true;
      if (recordContent) Object.assign(attributes, inputContent(request));
      const started = performance.now();
      return withSpan(`${GenAiOperationNames.Chat} ${client.model}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
        let response: LlmResponse;
        try {
          response = await client.generate(request);
        } catch (err) {
          recordLlmCall({ provider, requestModel: client.model, durationS: (performance.now() - started) / 1000, errorType: errorType(err) });
          throw err;
        }
        const usage = response.usage;
        span.setAttributes({
          [GenAiAttributes.ResponseId]: response.id,
          [GenAiAttributes.ResponseModel]: response.model,
          [GenAiAttributes.ResponseFinishReasons]: [response.stopReason],
          [GenAiAttributes.UsageInputTokens]: totalInputTokens(usage),
          [GenAiAttributes.UsageOutputTokens]: usage.output_tokens,
          ...(usage.cache_read_input_tokens === undefined ? {} : { [GenAiAttributes.UsageCacheReadInputTokens]: usage.cache_read_input_tokens }),
          ...(usage.cache_creation_input_tokens === undefined
            ? {}
            : { [GenAiAttributes.UsageCacheCreationInputTokens]: usage.cache_creation_input_tokens }),
          ...(usage.thinking_tokens === undefined ? {} : { [GenAiAttributes.UsageReasoningOutputTokens]: usage.thinking_tokens }),
        });
        if (recordContent) span.setAttributes(outputContent(request, response));
        recordLlmCall({
          provider,
          requestModel: client.model,
          responseModel: response.model,
          usage,
          durationS: (performance.now() - started) / 1000,
          prices: options.prices,
        });
        return response;
      });
    },
  };
}

/** The request as GenAI content attributes (JSON strings, the conventions' structured form). */
function inputContent(request: LlmRequest): Attributes {
  return {
    [GenAiAttributes.SystemInstructions]: JSON.stringify([{ type: 'text', content: request.system }]),
    [GenAiAttributes.InputMessages]: JSON.stringify(
      request.messages.map((m) => ({ role: m.role, parts: messageParts(m) })),
    ),
  };
}

/**
 * A message as GenAI message parts: text, `tool_call` (id, name, arguments) and
 * `tool_call_response` (id, response). https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-input-messages.json
 */
function messageParts(m: LlmMessage): unknown[] {
  if (typeof m.content === 'string') return [{ type: 'text', content: m.content }];
  return m.content.map((b) => {
    switch (b.type) {
      case 'text':
        return { type: 'text', content: b.text };
      case 'tool_use':
        return { type: 'tool_call', id: b.id, name: b.name, arguments: b.input };
      case 'tool_result':
        return { type: 'tool_call_response', id: b.toolUseId, response: b.content };
    }
  });
}

/** The reply (the submit call, or the calls of other tools) as a GenAI content attribute. */
function outputContent(request: LlmRequest, response: LlmResponse): Attributes {
  const parts =
    response.toolCalls && response.toolCalls.length > 0
      ? response.toolCalls.map((c) => ({ type: 'tool_call', id: c.id, name: c.name, arguments: c.input }))
      : [{ type: 'tool_call', id: response.submitCallId ?? response.id, name: request.tool.name, arguments: response.output }];
  return { [GenAiAttributes.OutputMessages]: JSON.stringify([{ role: 'assistant', parts, finish_reason: response.stopReason }]) };
}
