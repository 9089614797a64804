/**
 * AgentFleet's metrics: every instrument, its name, unit and attributes, and one small recording
 * function per place that records (the traced LLM client, the manager, the agent pool).
 *
 * Everything goes through `@opentelemetry/api`: with no MeterProvider registered (see
 * `startTelemetry`), instruments are no-ops. Instruments are looked up again whenever the global
 * MeterProvider changes, so a provider registered after this module loaded is used. Nothing here
 * throws into the application.
 *
 * | instrument | kind | unit | attributes |
 * | --- | --- | --- | --- |
 * | `gen_ai.client.token.usage` | histogram | `{token}` | `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.token.type` |
 * | `gen_ai.client.operation.duration` | histogram | `s` | the same but `gen_ai.token.type`, plus `error.type` on failure |
 * | `fleet.llm.cost` | counter | `USD` | `gen_ai.provider.name`, `gen_ai.request.model` |
 * | `fleet.phase.duration` | histogram | `s` | `fleet.workflow.name`, `fleet.phase.name`, `fleet.agent.role`, `fleet.phase.status` |
 * | `fleet.run.duration` | histogram | `s` | `fleet.workflow.name`, `fleet.run.status` |
 * | `fleet.phase.retries` | counter | `{retry}` | workflow, phase, role, `error.type` |
 * | `fleet.phase.failures` | counter | `{failure}` | workflow, phase, role, `error.type` |
 * | `fleet.phase.schedule_to_start` | histogram | `s` | `fleet.agent.role` |
 * | `fleet.queue.jobs` | gauge | `{job}` | `fleet.agent.role`, `fleet.queue.state` (`waiting`, `active`, `delayed`) |
 * | `fleet.queue.oldest_wait` | gauge | `s` | `fleet.agent.role` |
 *
 * @see https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/
 */
import { diag, metrics } from '@opentelemetry/api';
import type { Attributes, Counter, Histogram, Meter, MeterProvider, ObservableGauge } from '@opentelemetry/api';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import { metricsPollMsSetting } from '../config.js';
import { costUsd, type ModelPrice } from '../llm/prices.js';
import type { LlmUsage } from '../llm/types.js';
import { agentQueueName } from '../queues/contracts.js';
import { longestWaitingJob } from '../queues/longest-waiting.js';
import type { RunEvent, RunState } from '../scheduler/types.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { ErrorAttributes, FleetAttributes, GenAiAttributes, GenAiOperationNames } from './attributes.js';

/** Instrumentation scope of every AgentFleet instrument. */
export const METER_NAME = '@agentfleet/core';

/** Every metric name AgentFleet emits (OpenTelemetry names; Prometheus shows `.` as `_` plus unit suffixes). */
export const MetricNames = {
  /** Tokens per model call, by `gen_ai.token.type` (`input` includes cache reads and writes). */
  TokenUsage: 'gen_ai.client.token.usage',
  /** Duration of one model call, s. */
  OperationDuration: 'gen_ai.client.operation.duration',
  /** Cost of model calls, USD, from the fleet's price table (`FLEET_PRICES` over the built-in `llm/prices.ts`). */
  LlmCost: 'fleet.llm.cost',
  /** Duration of one phase iteration from its first attempt's start to its end, s. */
  PhaseDuration: 'fleet.phase.duration',
  /** Wall time of a run from start to finish, s. */
  RunDuration: 'fleet.run.duration',
  /** Phase attempts that failed and were retried. */
  PhaseRetries: 'fleet.phase.retries',
  /** Phases that failed for good, by error code. */
  PhaseFailures: 'fleet.phase.failures',
  /** Time a phase job waited in its queue before a worker took it (first attempts), s. */
  ScheduleToStart: 'fleet.phase.schedule_to_start',
  /** Jobs in an agent queue, by state. */
  QueueJobs: 'fleet.queue.jobs',
  /** Age of the oldest job waiting in an agent queue, s (0 when none waits). */
  QueueOldestWait: 'fleet.queue.oldest_wait',
  /** Per finished run: share of its prompt tokens read from the provider's prompt cache, 0..1. */
  RunPromptCacheHitRatio: 'fleet.run.prompt_cache.hit_ratio',
} as const;

/** Bucket boundaries the GenAI conventions advise for `gen_ai.client.token.usage`. */
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/** Bucket boundaries the GenAI conventions advise for `gen_ai.client.operation.duration` (s). */
const LLM_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
/** Phases and runs take seconds to many minutes (s). */
const PHASE_DURATION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
/** Queue waits, from instant to a backlog of minutes (s). */
const WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

interface Instruments {
  readonly meter: Meter;
  readonly tokenUsage: Histogram;
  readonly operationDuration: Histogram;
  readonly cost: Counter;
  readonly phaseDuration: Histogram;
  readonly runDuration: Histogram;
  readonly retries: Counter;
  readonly failures: Counter;
  readonly scheduleToStart: Histogram;
  readonly promptCacheHitRatio: Histogram;
}

let cached: { provider: MeterProvider; instruments: Instruments } | undefined;

function create(meter: Meter): Instruments {
  return {
    meter,
    tokenUsage: meter.createHistogram(MetricNames.TokenUsage, {
      description: 'Number of input and output tokens used per model call',
      unit: '{token}',
      advice: { explicitBucketBoundaries: TOKEN_BUCKETS },
    }),
    operationDuration: meter.createHistogram(MetricNames.OperationDuration, {
      description: 'Duration of one model call',
      unit: 's',
      advice: { explicitBucketBoundaries: LLM_DURATION_BUCKETS },
    }),
    cost: meter.createCounter(MetricNames.LlmCost, { description: 'Cost of model calls at list prices', unit: 'USD' }),
    phaseDuration: meter.createHistogram(MetricNames.PhaseDuration, {
      description: 'Duration of a phase iteration, from its first attempt start to its end',
      unit: 's',
      advice: { explicitBucketBoundaries: PHASE_DURATION_BUCKETS },
    }),
    runDuration: meter.createHistogram(MetricNames.RunDuration, {
      description: 'Wall time of a run from start to finish',
      unit: 's',
      advice: { explicitBucketBoundaries: PHASE_DURATION_BUCKETS },
    }),
    retries: meter.createCounter(MetricNames.PhaseRetries, { description: 'Phase attempts that failed and were retried', unit: '{retry}' }),
    failures: meter.createCounter(MetricNames.PhaseFailures, { description: 'Phases that failed for good', unit: '{failure}' }),
    scheduleToStart: meter.createHistogram(MetricNames.ScheduleToStart, {
      description: 'Time a phase job waited in its queue before a worker took it (first attempts)',
      unit: 's',
      advice: { explicitBucketBoundaries: WAIT_BUCKETS },
    }),
    promptCacheHitRatio: meter.createHistogram(MetricNames.RunPromptCacheHitRatio, {
      description: "Share of a finished run's prompt tokens read from the provider's prompt cache",
      unit: '1',
      advice: { explicitBucketBoundaries: [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99] },
    }),
  };
}

/** The instruments on the current global MeterProvider (re-created when it changes). */
function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (cached?.provider !== provider) cached = { provider, instruments: create(provider.getMeter(METER_NAME)) };
  return cached.instruments;
}

/** Run `fn`, logging instead of throwing: telemetry never fails the application. */
function safely(what: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    diag.warn(`agentfleet: could not record ${what}`, err);
  }
}

/** One model call, as {@link recordLlmCall} takes it. */
export interface LlmCallRecord {
  /** `gen_ai.provider.name` value. */
  provider: string;
  requestModel: string;
  /** Absent when the call failed. */
  responseModel?: string | undefined;
  /** Absent when the call failed. */
  usage?: LlmUsage | undefined;
  /** Wall time of the call, s. */
  durationS: number;
  /** `error.type` of a failed call. */
  errorType?: string | undefined;
  /** The price table `fleet.llm.cost` is counted with. @defaultValue MODEL_PRICES */
  prices?: Readonly<Record<string, ModelPrice>> | undefined;
}

/**
 * Record one model call: `gen_ai.client.operation.duration`, and on success
 * `gen_ai.client.token.usage` (input = input + cache read + cache creation, and output) and
 * `fleet.llm.cost`.
 */
export function recordLlmCall(call: LlmCallRecord): void {
  safely('an LLM call', () => {
    const m = instruments();
    const base: Attributes = {
      [GenAiAttributes.OperationName]: GenAiOperationNames.Chat,
      [GenAiAttributes.ProviderName]: call.provider,
      [GenAiAttributes.RequestModel]: call.requestModel,
    };
    if (call.responseModel !== undefined) base[GenAiAttributes.ResponseModel] = call.responseModel;
    m.operationDuration.record(call.durationS, call.errorType === undefined ? base : { ...base, [ErrorAttributes.Type]: call.errorType });
    if (call.usage === undefined) return;
    m.tokenUsage.record(totalInputTokens(call.usage), { ...base, [GenAiAttributes.TokenType]: 'input' });
    m.tokenUsage.record(call.usage.output_tokens, { ...base, [GenAiAttributes.TokenType]: 'output' });
    m.cost.add(costUsd(call.responseModel ?? call.requestModel, call.usage, call.prices), {
      [GenAiAttributes.ProviderName]: call.provider,
      [GenAiAttributes.RequestModel]: call.requestModel,
    });
  });
}

/** Input tokens as the GenAI conventions count them: uncached input + cache reads + cache writes. */
export function totalInputTokens(usage: LlmUsage): number {
  return usage.input_tokens + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0);
}

/**
 * Record what a committed scheduler decision tells: phase durations (completed and failed phases),
 * retries, permanent failures by error code, and the run's duration when it finished. Call once per
 * committed decision (the store's version fence makes that exactly once per event, whichever manager
 * applied it).
 */
export function recordRunEvents(workflow: WorkflowDefinition, state: RunState, events: readonly RunEvent[]): void {
  safely('run events', () => {
    const m = instruments();
    const phaseAttributes = (phase: string): Attributes => ({
      [FleetAttributes.WorkflowName]: workflow.name,
      [FleetAttributes.PhaseName]: phase,
      [FleetAttributes.AgentRole]: workflow.phases.find((p) => p.name === phase)?.agent ?? 'unknown',
    });
    for (const e of events) {
      switch (e.type) {
        case 'phase_completed':
          m.phaseDuration.record(e.duration_ms / 1000, { ...phaseAttributes(e.phase), [FleetAttributes.PhaseStatus]: 'completed' });
          break;
        case 'phase_failed': {
          const ms = state.phases[e.phase]?.durationMs;
          if (ms !== undefined) m.phaseDuration.record(ms / 1000, { ...phaseAttributes(e.phase), [FleetAttributes.PhaseStatus]: 'failed' });
          m.failures.add(1, { ...phaseAttributes(e.phase), [ErrorAttributes.Type]: e.error.code });
          break;
        }
        case 'phase_retry':
          m.retries.add(1, { ...phaseAttributes(e.phase), [ErrorAttributes.Type]: e.error.code });
          break;
        case 'run_finished':
          m.runDuration.record(e.duration_ms / 1000, { [FleetAttributes.WorkflowName]: workflow.name, [FleetAttributes.RunStatus]: e.status });
          {
            const read = state.usage.cache_read_input_tokens ?? 0;
            const prompt = state.usage.input_tokens + read + (state.usage.cache_creation_input_tokens ?? 0);
            if (prompt > 0) m.promptCacheHitRatio.record(read / prompt, { [FleetAttributes.WorkflowName]: workflow.name, [FleetAttributes.RunStatus]: e.status });
          }
          break;
        default:
          break;
      }
    }
  });
}

/** What {@link recordJobStart} reads of a BullMQ job. */
export interface JobTimes {
  /** When the job was added, epoch ms. */
  timestamp: number;
  /** Delay it was added with, ms. */
  delay?: number | undefined;
  /** Failed attempts so far: only first attempts (0) are recorded; retries wait on backoff by design. */
  attemptsMade: number;
}

/** Record `fleet.phase.schedule_to_start` for a job a worker just took (first attempts only). */
export function recordJobStart(role: string, job: JobTimes, now = Date.now()): void {
  if (job.attemptsMade > 0) return;
  safely('a job start', () => {
    const waited = Math.max(0, now - job.timestamp - (job.delay ?? 0)) / 1000;
    instruments().scheduleToStart.record(waited, { [FleetAttributes.AgentRole]: role });
  });
}

/** Options of {@link observeQueues}. */
export interface ObserveQueuesOptions {
  /** A connection for ordinary commands; not closed by the observer. */
  redis: Redis;
  /** The fleet's key prefix, e.g. `{fleet}`. */
  prefix: string;
  /** The roles whose queues to observe; called at every read, so the set may grow. */
  roles: () => Iterable<string> | Promise<Iterable<string>>;
  /**
   * Queue counts are read from Redis at most this often, ms; collections in between report the
   * cached values. @defaultValue `FLEET_METRICS_POLL_MS`, else 5000
   */
  pollMs?: number | undefined;
}

/** What {@link observeQueues} returns. */
export interface QueueObserver {
  /** Stop observing and close the queue handles (not the connection). */
  close(): Promise<void>;
}

interface QueueSample {
  waiting: number;
  active: number;
  delayed: number;
  oldestWaitS: number;
}

/**
 * Report the autoscaling signals of agent queues as observable gauges: `fleet.queue.jobs` by
 * `fleet.queue.state` (`waiting` includes prioritized jobs) and `fleet.queue.oldest_wait` (s), per
 * `fleet.agent.role`. Counts are read only when a reader collects (a Prometheus scrape, an OTLP
 * export), and at most every `pollMs`; a failed read keeps the last values.
 *
 * The gauges attach to the MeterProvider registered when this is called: start telemetry first.
 */
export function observeQueues(options: ObserveQueuesOptions): QueueObserver {
  const pollMs = options.pollMs ?? metricsPollMsSetting();
  const queues = new Map<string, Queue>();
  const samples = new Map<string, QueueSample>();
  let readAt = 0;
  let reading: Promise<void> | undefined;

  const queueFor = (role: string): Queue => {
    let q = queues.get(role);
    if (!q) {
      q = new Queue(agentQueueName(role), { connection: options.redis, prefix: options.prefix });
      q.on('error', () => undefined); // a failed read leaves the gauge out; unheard, BullMQ prints each error
      queues.set(role, q);
    }
    return q;
  };

  async function read(): Promise<void> {
    const now = Date.now();
    let roles: Iterable<string>;
    try {
      roles = await options.roles();
    } catch (err) {
      diag.warn('agentfleet: could not list the agent queues to observe', err);
      return;
    }
    await Promise.all(
      [...roles].map(async (role) => {
        try {
          const q = queueFor(role);
          const counts = await q.getJobCounts('wait', 'prioritized', 'active', 'delayed');
          const oldest = await longestWaitingJob(q);
          const readyAt = oldest ? Math.max(oldest.timestamp + (oldest.delay || 0), oldest.processedOn ?? 0) : now;
          samples.set(role, {
            waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0),
            active: counts.active ?? 0,
            delayed: counts.delayed ?? 0,
            oldestWaitS: Math.max(0, now - readyAt) / 1000,
          });
        } catch (err) {
          diag.warn(`agentfleet: could not read the counts of queue ${agentQueueName(role)}`, err);
        }
      }),
    );
    readAt = Date.now();
  }

  let meter: Meter | undefined;
  let jobs: ObservableGauge | undefined;
  let oldestWait: ObservableGauge | undefined;
  const callback = async (result: { observe(gauge: ObservableGauge, value: number, attributes?: Attributes): void }) => {
    if (!jobs || !oldestWait) return;
    if (Date.now() - readAt >= pollMs) {
      reading ??= read().finally(() => {
        reading = undefined;
      });
      await reading;
    }
    for (const [role, s] of samples) {
      const role_ = { [FleetAttributes.AgentRole]: role };
      result.observe(jobs, s.waiting, { ...role_, [FleetAttributes.QueueState]: 'waiting' });
      result.observe(jobs, s.active, { ...role_, [FleetAttributes.QueueState]: 'active' });
      result.observe(jobs, s.delayed, { ...role_, [FleetAttributes.QueueState]: 'delayed' });
      result.observe(oldestWait, s.oldestWaitS, role_);
    }
  };
  safely('queue gauges', () => {
    meter = instruments().meter;
    jobs = meter.createObservableGauge(MetricNames.QueueJobs, { description: 'Jobs in an agent queue, by state', unit: '{job}' });
    oldestWait = meter.createObservableGauge(MetricNames.QueueOldestWait, {
      description: 'Age of the oldest job waiting in an agent queue (0 when none waits)',
      unit: 's',
    });
    meter.addBatchObservableCallback(callback, [jobs, oldestWait]);
  });

  return {
    async close() {
      safely('queue gauges', () => {
        if (meter && jobs && oldestWait) meter.removeBatchObservableCallback(callback, [jobs, oldestWait]);
      });
      await reading?.catch(() => undefined);
      await Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined)));
    },
  };
}
