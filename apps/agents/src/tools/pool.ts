/**
 * The tools pool: a BullMQ worker on the `agent-tools` queue that runs tool phases. For each job it
 * reads the run's context, renders every string of the phase's `parameters` with the run's templates,
 * validates them against the tool's schema, runs the tool under the phase timeout (an AbortSignal,
 * also aborted when the phase is cancelled), and commits the outcome to the run exactly as an agent
 * pool does: same fencing, retries, deadlines and `continue_on_error`.
 *
 * Spans: `process agent-tools` (consumer) with an `execute_tool <name>` child carrying
 * `gen_ai.operation.name = execute_tool` and `gen_ai.tool.name`.
 */
import {
  FleetAttributes,
  FleetError,
  GenAiAttributes,
  GenAiOperationNames,
  TOOLS_ROLE,
  renderTemplate,
  withSpan,
  type FleetLogger,
  type PhaseJobData,
  type PhaseJobResult,
  type TemplateContext,
} from '@agentfleet/core';
import { CommitFailure, attemptError, attemptSignal, failAttempt, withPhaseJob } from '../phase-job.js';
import { SpanKind } from '@opentelemetry/api';
import type { Job } from 'bullmq';
import { createWorkerHost, type HostedJob, type WorkerHostSettings } from '../worker-host.js';
import { createToolRegistry, type ToolRegistry } from './registry.js';
import { loadToolSettings, type ToolSettings } from './settings.js';
import type { FleetTool } from './tool.js';

export interface ToolPoolOptions extends WorkerHostSettings {
  /** Allowed hosts, artifacts directory, user modules. @defaultValue `loadToolSettings()` (the environment) */
  settings?: ToolSettings;
  /** Tools to add besides the built-ins and `settings.modules` (tests, embedding). */
  tools?: FleetTool[];
}

export interface ToolPool {
  /** Names of the tools this pool runs. */
  readonly tools: string[];
  /** Stop taking jobs, let jobs in flight finish (up to `graceMs`), close connections. */
  close(graceMs?: number): Promise<void>;
}

/** Every string inside `value` rendered with the run's templates (objects and arrays walked). */
export function renderParameters(value: unknown, ctx: TemplateContext): unknown {
  if (typeof value === 'string') return renderTemplate(value, ctx);
  if (Array.isArray(value)) return value.map((v) => renderParameters(v, ctx));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderParameters(v, ctx)]));
  return value;
}

/**
 * Start a tools pool in this process: the worker host (`worker-host.ts`) serving the `agent-tools` queue.
 *
 * @throws FleetError `INVALID_INPUT` when a user tool module cannot be loaded.
 * @example
 * const tools = await startToolPool({ redisUrl, prefix: '{fleet}' });
 * process.on('SIGTERM', () => void tools.close());
 */
export async function startToolPool(options: ToolPoolOptions): Promise<ToolPool> {
  const settings = options.settings ?? loadToolSettings();
  const registry = await createToolRegistry(settings.modules, options.tools ?? []);
  const host = createWorkerHost({ ...options, name: 'tools' });
  const { log } = host;
  await host.start([{ role: TOOLS_ROLE, process: (job, hosted) => processToolJob(job, hosted, { registry, settings, log }) }], {
    started: { message: 'tools pool started', fields: { tools: registry.names(), allowed_hosts: settings.allowedHosts } },
  });
  return {
    tools: registry.names(),
    close: (graceMs) => host.close(graceMs),
  };
}

interface ToolProcessContext {
  registry: ToolRegistry;
  settings: ToolSettings;
  log: FleetLogger;
}

/** Run one attempt of one tool phase iteration and report it. */
async function processToolJob(job: Job<PhaseJobData, PhaseJobResult>, hosted: HostedJob, ctx: ToolProcessContext): Promise<PhaseJobResult> {
  // A tool's call is its side effect, sent at once: the run is checked to still want the iteration first.
  return withPhaseJob(job, { ...hosted.phaseHost, checkBeforeWork: true }, async (phase) => {
    const { data, attempt, ref, meta, state, outputs } = phase;
      const def = meta.workflow.phases.find((p) => p.name === data.phase);
      const toolName = def?.tool ?? '(none)';
      const attemptSig = attemptSignal(data.timeout_ms, phase.cancel, hosted.clock);
      const signal = attemptSig.signal;
      try {
        if (!def || def.kind !== 'tool' || !def.tool) throw new FleetError('INVALID_WORKFLOW', `phase "${data.phase}" of run ${data.run_id} is not a tool phase, but it was queued for the tools pool`);
        const registered = ctx.registry.get(def.tool);
        if (!registered) {
          throw new FleetError('UNKNOWN_TOOL', `no tool "${def.tool}" in this tools pool; tools: ${ctx.registry.names().join(', ')}; register it with FLEET_TOOL_MODULES`);
        }
        const params = registered.validate(renderParameters(def.parameters ?? {}, { requirements: meta.requirements, variables: meta.variables, outputs, errors: state.errors }));
        const output = await withSpan(
          `${GenAiOperationNames.ExecuteTool} ${def.tool}`,
          {
            kind: SpanKind.INTERNAL,
            attributes: {
              [GenAiAttributes.OperationName]: GenAiOperationNames.ExecuteTool,
              [GenAiAttributes.ToolName]: def.tool,
              [FleetAttributes.RunId]: data.run_id,
              [FleetAttributes.PhaseName]: data.phase,
            },
          },
          async () => {
            const result: unknown = await registered.tool.handler(params, { signal, artifactsDir: ctx.settings.artifactsDir(data.run_id), runId: data.run_id, phase: data.phase, settings: ctx.settings });
            if (signal.aborted) throw signal.reason;
            return result;
          },
        );
        // The output travels as JSON: anything else (a Date, a Map) becomes what JSON makes of it.
        const json: unknown = JSON.parse(JSON.stringify(output ?? null));
        const reported = await phase.complete(json, { usage: { input_tokens: 0, output_tokens: 0 }, model: 'none' });
        ctx.log.info({ ...ref, attempt, tool: toolName, reported }, 'tool phase attempt completed');
        return { reported, attempt };
      } catch (err) {
        // The work succeeded and only its commit failed: no failed attempt, BullMQ retries the job.
        if (err instanceof CommitFailure) throw err;
        // An aborted attempt: the attempt signal tells a timeout from a cancellation (by the manager).
        const error = attemptError(err, attemptSig, 'TOOL_FAILED');
        return failAttempt(job, phase, error, { input_tokens: 0, output_tokens: 0 }, (willRetry) =>
          // A cancelled attempt was asked for (Ctrl-C, fleet cancel): news, not a warning.
          ctx.log[error.code === 'PHASE_CANCELLED' ? 'info' : 'warn']({ ...ref, attempt, tool: toolName, will_retry: willRetry, error: error.toJSON() }, 'tool phase attempt failed'),
        );
      } finally {
        attemptSig.dispose();
      }
  });
}
