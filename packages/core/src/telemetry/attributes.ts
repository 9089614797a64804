/**
 * Every span and metric attribute name AgentFleet emits, in one place.
 *
 * Names follow the OpenTelemetry semantic conventions where one exists (`gen_ai.*`, `messaging.*`,
 * `error.type`); everything specific to AgentFleet lives under `fleet.*`.
 *
 * The `gen_ai.*` and `messaging.*` names are incubating (experimental) in
 * `@opentelemetry/semantic-conventions`, whose README asks users to copy incubating names rather than
 * import them, because they may change in a minor release. They are copied here as literals from
 * version 1.45.0 (its `incubating` entry); a unit test (`trace.test.ts`) checks them against the
 * installed package so drift shows up as a failing test, not as silently renamed attributes.
 *
 * @see https://opentelemetry.io/docs/specs/semconv/gen-ai/
 * @see https://opentelemetry.io/docs/specs/semconv/messaging/
 */

import type { Attributes } from '@opentelemetry/api';

/**
 * GenAI semantic conventions: attributes of a model call (`chat`), an agent invocation
 * (`invoke_agent`) or a workflow invocation (`invoke_workflow`).
 *
 * @see https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/
 */
export const GenAiAttributes = {
  /** What was asked of the model: one of {@link GenAiOperationNames}. */
  OperationName: 'gen_ai.operation.name',
  /** Who served it: one of {@link GenAiProviderNames}. Replaces the deprecated `gen_ai.system`. */
  ProviderName: 'gen_ai.provider.name',
  /** The model name asked for, e.g. `claude-sonnet-4-5`. */
  RequestModel: 'gen_ai.request.model',
  /** `max_tokens` sent with the request (tokens). */
  RequestMaxTokens: 'gen_ai.request.max_tokens',
  /** `temperature` sent with the request. */
  RequestTemperature: 'gen_ai.request.temperature',
  /** The provider's id for the response (the Messages API `id`). */
  ResponseId: 'gen_ai.response.id',
  /** The model that actually answered, as the provider reports it. */
  ResponseModel: 'gen_ai.response.model',
  /** Why the model stopped (string[]), e.g. `['end_turn']`, `['max_tokens']`. */
  ResponseFinishReasons: 'gen_ai.response.finish_reasons',
  /** Input tokens, including cached ones (tokens). */
  UsageInputTokens: 'gen_ai.usage.input_tokens',
  /** Output tokens (tokens). */
  UsageOutputTokens: 'gen_ai.usage.output_tokens',
  /** Input tokens served from the provider's prompt cache; included in input_tokens (tokens). */
  UsageCacheReadInputTokens: 'gen_ai.usage.cache_read.input_tokens',
  /** Input tokens written to the provider's prompt cache; included in input_tokens (tokens). */
  UsageCacheCreationInputTokens: 'gen_ai.usage.cache_creation.input_tokens',
  /** Output tokens spent on reasoning (extended or adaptive thinking); included in output_tokens (tokens). */
  UsageReasoningOutputTokens: 'gen_ai.usage.reasoning.output_tokens',
  /** Human-readable agent name; we use the agent role (`planner`, `coder`, …). */
  AgentName: 'gen_ai.agent.name',
  /** Human-readable workflow name; we use the workflow template name. */
  WorkflowName: 'gen_ai.workflow.name',
  /** Name of the tool a tool phase runs (`execute_tool` spans), e.g. `http_request`. */
  ToolName: 'gen_ai.tool.name',
  /** The provider's id of a tool call inside an agent turn (`toolu_…`). */
  ToolCallId: 'gen_ai.tool.call.id',
  /** `function` (run by the worker) or `extension` (an MCP server's tool). */
  ToolType: 'gen_ai.tool.type',
  /** A tool call's arguments (JSON). Recorded only when `FLEET_TRACE_CONTENT=true`. */
  ToolCallArguments: 'gen_ai.tool.call.arguments',
  /** A tool call's result as the model received it. Recorded only when `FLEET_TRACE_CONTENT=true`. */
  ToolCallResult: 'gen_ai.tool.call.result',
  /**
   * The system prompt (JSON `[{type:'text', content}]`). Recorded only when `FLEET_TRACE_CONTENT=true`:
   * prompts may hold user data.
   */
  SystemInstructions: 'gen_ai.system_instructions',
  /** The chat history sent (JSON `[{role, parts:[{type:'text', content}]}]`); only with `FLEET_TRACE_CONTENT=true`. */
  InputMessages: 'gen_ai.input.messages',
  /** The model's reply (JSON `[{role:'assistant', parts, finish_reason}]`); only with `FLEET_TRACE_CONTENT=true`. */
  OutputMessages: 'gen_ai.output.messages',
  /** Metric attribute of `gen_ai.client.token.usage`: `input` or `output`. */
  TokenType: 'gen_ai.token.type',
} as const;

/** Values of `gen_ai.operation.name` that AgentFleet emits. */
export const GenAiOperationNames = {
  /** One model call (a Messages API request). */
  Chat: 'chat',
  /** One agent working on one phase. */
  InvokeAgent: 'invoke_agent',
  /** One run of a workflow. */
  InvokeWorkflow: 'invoke_workflow',
  /** One tool call (a tool phase's attempt). */
  ExecuteTool: 'execute_tool',
} as const;

/** Values of `gen_ai.provider.name` that AgentFleet emits. */
export const GenAiProviderNames = {
  /** The Anthropic API (well-known value in the conventions). */
  Anthropic: 'anthropic',
  /**
   * AgentFleet's built-in deterministic offline model (a custom value, as the conventions allow for
   * providers they do not list). Spans answered by it also carry `fleet.offline = true`.
   */
  Offline: 'agentfleet.offline',
} as const;

/**
 * Messaging semantic conventions, for spans around BullMQ jobs: `send` when the manager enqueues a
 * phase, `process` when an agent works on it.
 *
 * @see https://opentelemetry.io/docs/specs/semconv/messaging/messaging-spans/
 */
export const MessagingAttributes = {
  /**
   * The messaging system. Current name, replacing `messaging.system` (see {@link MessagingAttributes.System}).
   * Value: {@link MESSAGING_SYSTEM_BULLMQ}.
   */
  SystemName: 'messaging.system.name',
  /**
   * The messaging system, under its older name. Deprecated in semantic conventions 1.45 in favour of
   * `messaging.system.name`, but still the key many backends group by; set both (as
   * {@link messagingAttributes} does) until backends catch up.
   */
  System: 'messaging.system',
  /** The queue name, e.g. `{fleet}:coder`. */
  DestinationName: 'messaging.destination.name',
  /** Kind of operation: one of {@link MessagingOperationTypes}. */
  OperationType: 'messaging.operation.type',
  /** The system-specific operation name, e.g. `add`, `process`. */
  OperationName: 'messaging.operation.name',
  /** The job id, e.g. `<runId>.<phase>.<iteration>`. */
  MessageId: 'messaging.message.id',
} as const;

/** `messaging.system(.name)` value for BullMQ. Not a well-known value; custom values are allowed. */
export const MESSAGING_SYSTEM_BULLMQ = 'bullmq';

/** Values of `messaging.operation.type`. */
export const MessagingOperationTypes = {
  /** A message is sent to a destination (the manager adds a job). */
  Send: 'send',
  /** A message is processed by a consumer (an agent works on a job). */
  Process: 'process',
  /** A consumer pulls a message. */
  Receive: 'receive',
  /** A message is settled: completed, failed, moved (ack/nack). */
  Settle: 'settle',
} as const;

/** General attributes that are not owned by one domain. */
export const ErrorAttributes = {
  /**
   * The class of error a span ended with: the `FleetError` `code` (e.g. `PHASE_TIMEOUT`), a
   * Node.js system error code (e.g. `ECONNREFUSED`), else the error's constructor name.
   */
  Type: 'error.type',
} as const;

/** `error.type` when nothing better is known (a thrown non-Error value), as the conventions define. */
export const ERROR_TYPE_OTHER = '_OTHER';

/** AgentFleet's own attributes. */
export const FleetAttributes = {
  /** The run id. */
  RunId: 'fleet.run.id',
  /** The workflow template name. */
  WorkflowName: 'fleet.workflow.name',
  /** The workflow template version. */
  WorkflowVersion: 'fleet.workflow.version',
  /** The phase name within the workflow. */
  PhaseName: 'fleet.phase.name',
  /** Which attempt of the phase this is, from 1 (BullMQ `attemptsMade + 1`). */
  PhaseAttempt: 'fleet.phase.attempt',
  /** Which iteration of the phase this is, from 0; grows on `repeat` and `jump` step actions. */
  PhaseIteration: 'fleet.phase.iteration',
  /** The agent role that served the phase (`planner`, `designer`, `coder`, `reviewer`, …). */
  AgentRole: 'fleet.agent.role',
  /** true when the agent result came from the result cache instead of a model call. */
  CacheHit: 'fleet.cache.hit',
  /** Estimated tokens a tool call's result adds to the next prompt (4 characters a token). */
  ToolResultTokens: 'fleet.tool.result_tokens',
  /** true when the built-in offline model answered instead of a real provider. */
  Offline: 'fleet.offline',
  /** true when the call asked for structured output guaranteed by the provider (`strict`). */
  LlmStrict: 'fleet.llm.strict',
  /** The effort asked for (`low` … `max`, Anthropic `output_config.effort`). */
  LlmEffort: 'fleet.llm.effort',
  /** true when the call let the model think (`thinking: {type: 'adaptive'}`). */
  LlmThinking: 'fleet.llm.thinking',
  /** How a phase attempt or iteration ended (metrics): `completed`, `failed`, `cancelled`, `skipped`. */
  PhaseStatus: 'fleet.phase.status',
  /** How a run ended (metrics): `completed`, `failed`, `cancelled`. */
  RunStatus: 'fleet.run.status',
  /** Which jobs of an agent queue a gauge counts (metrics): `waiting`, `active`, `delayed`. */
  QueueState: 'fleet.queue.state',
  /** The schedule a fire belongs to (metrics). */
  ScheduleName: 'fleet.schedule.name',
  /** What a schedule's fire did (metrics): `start`, `skipped`, `missed`. */
  ScheduleOutcome: 'fleet.schedule.outcome',
} as const;

type ValueOf<T> = T[keyof T];

/** Any attribute name defined in this file. */
export type AttributeName =
  | ValueOf<typeof GenAiAttributes>
  | ValueOf<typeof MessagingAttributes>
  | ValueOf<typeof ErrorAttributes>
  | ValueOf<typeof FleetAttributes>;

/** A `gen_ai.operation.name` value. */
export type GenAiOperationName = ValueOf<typeof GenAiOperationNames>;
/** A `gen_ai.provider.name` value. */
export type GenAiProviderName = ValueOf<typeof GenAiProviderNames>;
/** A `messaging.operation.type` value. */
export type MessagingOperationType = ValueOf<typeof MessagingOperationTypes>;

/** Input of {@link messagingAttributes}. */
export interface MessagingAttributesInput {
  /** `send` on the producer side, `process` on the consumer side. */
  operationType: MessagingOperationType;
  /** The BullMQ operation, e.g. `add`, `process`. */
  operationName: string;
  /** The queue name. */
  destination: string;
  /** The job id, when known. */
  messageId?: string | undefined;
}

/**
 * The messaging attributes of a span around one BullMQ operation, with the system set under both its
 * current and its deprecated key.
 *
 * @example
 * withSpan(`send ${queueName}`, { kind: SpanKind.PRODUCER, attributes: {
 *   ...messagingAttributes({ operationType: 'send', operationName: 'add', destination: queueName, messageId: jobId }),
 *   [FleetAttributes.RunId]: runId,
 * } }, async () => queue.add(...));
 */
export function messagingAttributes(input: MessagingAttributesInput): Attributes {
  const attributes: Attributes = {
    [MessagingAttributes.SystemName]: MESSAGING_SYSTEM_BULLMQ,
    [MessagingAttributes.System]: MESSAGING_SYSTEM_BULLMQ,
    [MessagingAttributes.OperationType]: input.operationType,
    [MessagingAttributes.OperationName]: input.operationName,
    [MessagingAttributes.DestinationName]: input.destination,
  };
  if (input.messageId !== undefined) attributes[MessagingAttributes.MessageId] = input.messageId;
  return attributes;
}
