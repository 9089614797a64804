/**
 * @agentfleet/core: the domain of AgentFleet. No process, no HTTP.
 */
export {
  FLEET_ERROR_CODES,
  FleetError,
  abortError,
  formatIssues,
  toFleetError,
  type AbortErrorOptions,
  type ErrorCategory,
  type FleetErrorCode,
  type FleetErrorOptions,
  type SerializedFleetError,
  type ValidationIssue,
} from './errors.js';
export { DEFAULT_MODEL, SETTINGS_SCHEMA, loadConfig, parseDuration, redactRedisUrl, type FleetConfig } from './config.js';
export { TestClock, settledWithin, systemClock, type Clock } from './clock.js';
export { renderConfigurationReference } from './config-reference.js';

export { compileWorkflow, checkWorkflowGraph, normalizeRoleName, templateStrings, TOOLS_ROLE } from './workflow/compile.js';
export { downstreamOf, upstreamOf } from './workflow/graph.js';
export type { AgentSelect, ConditionSpec, PhaseDefinition, PhaseDependency, PhaseKind, StepActionRule, StepActionType, WorkflowDefinition } from './workflow/definition.js';
export { evaluateCondition, parseExpression, ConditionSyntaxError, type Condition } from './workflow/condition.js';
export { renderTemplate } from './workflow/template.js';
export { parsePath, resolvePath, type PathRef, type TemplateContext } from './workflow/context.js';
export { NAME_PATTERN, WorkflowFileSchema, type WorkflowFile, type WorkflowFileInput } from './workflow/schema.js';
export { parseWorkflowText } from './workflow/parse.js';
export { BUILTIN_WORKFLOWS_DIR, listBuiltinWorkflows, loadBuiltinWorkflow, loadWorkflowFile, resolveWorkflow } from './registry/workflow-files.js';

export { BATCH_WAIT_EVENT, STATE_SCHEMA_ERROR_PHASE, decide, initialRunState, isBatchWait, isTerminalRun, needsOutputs, type DecideContext } from './scheduler/decide.js';
export { phaseDeadlineAfterMs } from './scheduler/deadlines.js';
export { decideBatch, type BatchContext, type BatchDecision, type BatchEntry } from './scheduler/decide-batch.js';
export {
  IN_FLIGHT_PHASE_STATUSES,
  TERMINAL_PHASE_STATUSES,
  TERMINAL_RUN_STATUSES,
  type Decision,
  type DecideInputs,
  type PhaseDeadline,
  type PhaseState,
  type PhaseStatus,
  type RunEvent,
  type RunEventType,
  type RunState,
  type RunStatus,
  type SchedulerAction,
  type SchedulerEvent,
  type StepAction,
  type TokenUsage,
  type FullTokenUsage,
  type BudgetWaitPrompt,
  type PhaseJournalRef,
} from './scheduler/types.js';

export type { StoredRunEvent } from './store/run-store.js';
export { DEFAULT_RUN_RETENTION_MS, RUN_KEY_SUFFIXES } from './store/retention.js';
export {
  PHASE_OUTPUT_MAXLEN,
  PHASE_OUTPUT_TTL_MS,
  PhaseOutputWriter,
  parsePhaseOutputEntries,
  phaseOutputKey,
  readPhaseOutput,
  type PhaseOutputDelta,
  type PhaseOutputRef,
  type PhaseOutputWriterOptions,
  type StoredPhaseOutputDelta,
} from './store/phase-output.js';
export { readRoleQueueStats, type RoleQueueStats } from './engine/role-queue-stats.js';
export { UNSERVED_GRACE_MS, reportUnservedPhases, servedRoles, unservedMessage, unservedPhases, type UnservedPhase } from './engine/unserved-roles.js';
export { closestName, didYouMean } from './did-you-mean.js';
export { buildRunResult, type PhaseResult, type RunLinks, type RunMeta, type RunResult } from './result.js';
export {
  MAX_EVENT_DATA_BYTES,
  MAX_EVENT_DATA_DEPTH,
  MAX_VARIABLES,
  MAX_VARIABLE_BYTES,
  MAX_VARIABLES_TOTAL_BYTES,
  MAX_WORKFLOW_BYTES,
  jsonDepth,
  validateEventData,
  validateVariableLimits,
} from './limits.js';
export { FleetClient, MAX_REQUIREMENTS_BYTES, validateRequirements, validateVariables, type FleetClientOptions, type SubmitRunInput } from './client.js';
// Signed deliveries (webhooks out, triggers in) and idempotent submissions.
export {
  DEFAULT_SIGNATURE_TOLERANCE_S,
  DELIVERY_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  signPayload,
  signedHeaders,
  verifySignature,
  type SignatureCheck,
} from './signature.js';
export {
  IDEMPOTENCY_TTL_MS,
  IdempotencyStore,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  STALE_CLAIM_MS,
  submissionFingerprint,
  type IdempotencyClaim,
} from './store/idempotency.js';

export {
  JOB_SIZE_LIMITS,
  MANAGER_QUEUE,
  MAX_INLINE_OUTPUT_BYTES,
  ManagerJobDataSchema,
  PhaseJobDataSchema,
  PhaseJobResultSchema,
  StepActionSchema,
  agentQueueName,
  agentQueuesKey,
  phaseJobId,
  type ManagerJobData,
  type PhaseJobData,
  type PhaseJobResult,
} from './queues/contracts.js';
export { FLEET_BACKOFF, fleetBackoffDelay } from './queues/backoff.js';
export { finalJobError, toJobOutcome, unrecoverableJob, type JobOutcome } from './queues/job-outcome.js';
export { assertRedisReachable, createRedis, isRedisAuthFailure, isRedisOutOfMemory, pingRedis, redisNotAnsweringMessage, redisOutOfMemoryError } from './queues/connection.js';

export type { BatchCall, BatchIntent, BatchRecord, BatchRecordStore, LlmClient, LlmDelta, LlmEffort, LlmMessage, LlmRequest, LlmResponse, LlmTextBlock, LlmUsage, RateLimitInfo } from './llm/types.js';
export type { LlmContentBlock, LlmToolCall, LlmToolDefinition, LlmToolResultBlock, LlmToolUseBlock } from './llm/types.js';
export { LLM_EFFORTS, blockText, messageText } from './llm/types.js';
export { strictJsonSchema, type StrictSchemaResult, type StrictSchemaTarget } from './llm/strict-schema.js';
export { OFFLINE_MODEL, OfflineLlmClient, estimateTokens, type OfflineClientOptions, type OfflineResponder } from './llm/offline.js';
export { AnthropicLlmClient, type AnthropicClientOptions } from './llm/anthropic.js';
export { AnthropicBatches, BatchPending, createAnthropicBatches, type BatchStatus } from './llm/anthropic-batch.js';
export { sleep } from './llm/abort.js';
export { genAiProviderName, tracedLlmClient, type TracedLlmClientOptions } from './telemetry/traced-llm.js';
export { BATCH_PRICE_FACTOR, MODEL_PRICES, costUsd, modelPrice, type ModelPrice } from './llm/prices.js';
export { parseRetryAfterMs, providerCodeForStatus, type HeaderReader } from './llm/provider-errors.js';
export { BatchTimeoutSchema, CallModeSchema, MAX_BATCH_TIMEOUT_S, PromptCacheTtlSchema, type CallMode, type PromptCacheTtl } from './workflow/spending.js';
export { POOLS_KEY_SUFFIX, readPoolHeartbeats, startPoolHeartbeat, type PoolHeartbeat, type PoolHeartbeatHandle } from './queues/pool-heartbeat.js';

// Issue 4: workflow template registry, API keys and permissions, template fields.
export * from './registry/index.js';
export {
  END_ACTION_TYPES,
  compileStateSchema,
  stateSchemaIssues,
  type EndActionSpec,
  type EndActionType,
  type TemplateFields,
} from './workflow/template-fields.js';

export * from './telemetry/index.js';

// Issue 9: learning workflows from run history.
export * from './patterns/index.js';

// Issue 8: real agents at real cost (usage and cost, budgets, fleet-wide rate limits, providers).
export { fullUsage } from './result.js';
export { BUDGET_EVENT, BudgetRaiseSchema, BudgetSchema, compileBudget, raisedBudget, tighterBudget, type Budget, type BudgetFile, type BudgetRaise, type BudgetRaiseFile } from './workflow/budget.js';
export {
  AGENT_TOOL_NAME_PATTERN,
  AgentToolsSchema,
  DEFAULT_INPUT_FILES_INLINE_MAX_BYTES,
  DEFAULT_MAX_TURNS,
  InputFilesSchema,
  McpServerSchema,
  McpServersSchema,
  MaxTurnsSchema,
  compileMcpServers,
  type InputFilesMode,
  type McpServerFile,
  type McpServerSpec,
} from './workflow/agent-tools.js';
export { RedisRateLimiter, type RateLimitDecision, type RateLimits } from './llm/rate-limiter.js';
export { BudgetLedger, type LedgerReservation, type LedgerRequest, type LedgerScope } from './store/budget-ledger.js';
export { rateLimitInfo } from './llm/anthropic.js';
export { parsePrices, parseRoleEffort, parseRoleModels } from './config.js';
export { OpenAiCompatibleLlmClient, type OpenAiCompatibleClientOptions } from './llm/openai-compatible.js';
// Concurrency keys, fair sharing across keys and run priority (docs/concurrency-and-priority.md).
export {
  ConcurrencySchema,
  PrioritySchema,
  DEFAULT_RUN_PRIORITY,
  MAX_CONCURRENCY_LIMIT,
  MAX_CONCURRENCY_KEY_LENGTH,
  resolveConcurrency,
  validatePriority,
  type ConcurrencySpec,
} from './workflow/concurrency.js';
export { admitRun, concurrencyKeys, concurrencyState, releaseConcurrency, withConcurrencyRelease, type Admission, type ReleaseConcurrency } from './engine/concurrency.js';
export { BULLMQ_PRIORITY_LIMIT, PRIORITY_BAND_WIDTH, fairPriority, fairnessKey, priorityBandStart } from './engine/fair-priority.js';
export * from './schedules/index.js';
