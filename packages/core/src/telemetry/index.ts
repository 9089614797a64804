/**
 * Telemetry for AgentFleet: attribute names, the span helper, trace-context propagation for job data,
 * and starting/stopping the OpenTelemetry SDK.
 */

export {
  ERROR_TYPE_OTHER,
  ErrorAttributes,
  FleetAttributes,
  GenAiAttributes,
  GenAiOperationNames,
  GenAiProviderNames,
  MESSAGING_SYSTEM_BULLMQ,
  MessagingAttributes,
  MessagingOperationTypes,
  messagingAttributes,
} from './attributes.js';
export type {
  AttributeName,
  GenAiOperationName,
  GenAiProviderName,
  MessagingAttributesInput,
  MessagingOperationType,
} from './attributes.js';

export {
  METER_NAME,
  MetricNames,
  observeQueues,
  recordJobStart,
  recordLlmCall,
  recordRunEvents,
  totalInputTokens,
} from './metrics.js';
export type { JobTimes, LlmCallRecord, ObserveQueuesOptions, QueueObserver } from './metrics.js';

export { createLogger, setDefaultLogLevel, setLogFormat } from './logger.js';
export { createRepeatLimiter, repeatKey } from './repeat-limit.js';
export type { RepeatLimiter, RepeatVerdict } from './repeat-limit.js';
export type { FleetLogger, LogFormat, LoggerOptions } from './logger.js';
export { evictionPolicyWarning, humanLogLine, humanStderr, routeConsoleWarnings } from './human-log.js';

export {
  TRACER_NAME,
  errorType,
  extractTraceContext,
  getTracer,
  injectTraceContext,
  recordSpanError,
  withSpan,
} from './trace.js';
export type { WithSpanOptions } from './trace.js';

export { beginSpanRef, contextOfSpanRef, incomingTraceCarrier, emitPhaseSpan, emitRunSpan, fleetIdGenerator, carrierUnder, traceparentOf } from './run-spans.js';
export type { PhaseSpanInput, RunSpanInput, SpanRef } from './run-spans.js';
