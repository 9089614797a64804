/**
 * The agent pools: the worker host (`worker-host.ts`) configured with one BullMQ worker per agent
 * role, each taking phase jobs from its role's queue, running the role against the LLM, and committing the outcome to the run (`RunDriver`: the output,
 * the next decision and the next phase jobs in one fenced write, then the effects left in the outbox).
 *
 * Delivery is at least once (BullMQ); exactly-once *results* come from the run's version fence: the
 * first accepted completion of a phase iteration wins and later ones (a zombie attempt, a stalled
 * job taken twice) are refused.
 */
import {
  FleetAttributes,
  GenAiAttributes,
  genAiProviderName,
  GenAiOperationNames,
  unrecoverableJob,
  withSpan,
  RedisRateLimiter,
  PhaseOutputWriter,
  tighterBudget,
  raisedBudget,
  BudgetLedger,
  BatchPending,
  BATCH_PRICE_FACTOR,
  MODEL_PRICES,
  MAX_BATCH_TIMEOUT_S,
  isBatchWait,
  DEFAULT_INPUT_FILES_INLINE_MAX_BYTES,
  type ModelPrice,
  type PhaseDefinition,
  type RateLimits,
  type FleetLogger,
  type LlmClient,
  type PhaseJobData,
  type PhaseJobResult,
} from '@agentfleet/core';
import {
  type RunDriver,
  BatchStore,
  batchCallKey,
} from '@agentfleet/core/internal';
import { SpanKind } from '@opentelemetry/api';
import { DelayedError, Worker, type Job } from 'bullmq';
import type { AgentRole } from './roles/role.js';
import { ToolJournal } from '@agentfleet/core/internal';
import { openAgentToolbox, type AgentToolbox } from './tools/agent-toolbox.js';
import { createToolRegistry, type ToolRegistry } from './tools/registry.js';
import { loadToolSettings, type ToolSettings } from './tools/settings.js';
import type { FleetTool } from './tools/tool.js';
import { writeFileTool } from './tools/write-file.js';
import { CommitFailure, attemptError, attemptSignal, failAttempt, withPhaseJob } from './phase-job.js';
import { createWorkerHost, type HostedJob, type WorkerHostSettings } from './worker-host.js';
import { buildRoleInput, splitOutput } from './role-input.js';
import { billedUsage, redisResultCache, runRole, type CallGate, type ToolCallInfo } from './run-role.js';
import { BudgetWait, budgetGate, rateLimitGate, RateLimitDeferral } from './gates.js';

export interface AgentPoolOptions extends WorkerHostSettings {
  /** Roles this pool serves; one BullMQ worker each. */
  roles: AgentRole[];
  llm: LlmClient;
  /** Output token cap per LLM call. @defaultValue 8192 */
  maxTokens?: number;
  /** The client for a role (per-role provider and model, see `createRoleLlmClients`). @defaultValue `llm` for every role */
  llmFor?: ((role: string) => LlmClient) | undefined;
  /**
   * Fleet-wide limits per provider and model (requests, input and output tokens per window), kept in
   * Redis and shared with every pool on the prefix. @defaultValue none (no limiter)
   */
  rateLimits?: RateLimits | undefined;
  /** Price table for `cost_usd` and budgets. @defaultValue MODEL_PRICES */
  prices?: Readonly<Record<string, ModelPrice>> | undefined;
  /**
   * Settings of the tools agents call inside their turn (allowed hosts, artifacts directory, user
   * tool modules, allowed MCP commands). @defaultValue `loadToolSettings()` (the environment)
   */
  toolSettings?: ToolSettings | undefined;
  /** Tools agents may call besides the built-ins and `toolSettings.modules` (tests, embedding). */
  tools?: FleetTool[] | undefined;
  /** Put tool call arguments on `execute_tool` spans and `tool_call` run events (`FLEET_TRACE_CONTENT`). @defaultValue false */
  traceContent?: boolean | undefined;
  /**
   * How long a batch-mode call that looks for the batch a dead take may have submitted waits before
   * it looks again, ms (`FLEET_BATCH_POLL_MS`). @defaultValue 30000
   */
  batchPollMs?: number | undefined;
  /**
   * The most bytes of input files a phase with `input_files: auto` gets inline; above it they go by
   * reference (`FLEET_INPUT_FILES_INLINE_MAX_BYTES`). @defaultValue 49152
   */
  inputFilesInlineMaxBytes?: number | undefined;
}

export interface AgentPool {
  readonly roles: string[];
  /**
   * Stop taking jobs, let jobs in flight finish (up to `graceMs`, ms), then close connections. Resolves
   * within about `graceMs` even when Redis is unreachable; jobs still running then are abandoned (their
   * locks expire and another worker takes them over), so the caller should exit the process.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Start the worker pools for `options.roles` in this process.
 *
 * @example
 * const pool = await startAgentPool({ redisUrl, prefix: '{fleet}', roles: [planner, coder], llm });
 * process.on('SIGTERM', () => void pool.close());
 */
export async function startAgentPool(options: AgentPoolOptions): Promise<AgentPool> {
  const host = createWorkerHost({ ...options, name: 'agents' });
  const { redis, driver, log } = host;
  const limits = options.rateLimits;
  const limiter = limits && (limits.requests || limits.inputTokens || limits.outputTokens) ? new RedisRateLimiter(redis, options.prefix, limits) : undefined;
  const ledger = new BudgetLedger(redis, options.prefix);
  const batches = new BatchStore(redis, options.prefix);
  const toolSettings = options.toolSettings ?? loadToolSettings();
  // User tool modules are imported when a phase first needs a tool, not at start.
  let registry: Promise<ToolRegistry> | undefined;
  const toolRegistry = (): Promise<ToolRegistry> => (registry ??= createToolRegistry(toolSettings.modules, options.tools ?? []));

  await host.start(
    options.roles.map((role) => ({
      role: role.name,
      process: (job, hosted) =>
        processPhaseJob(job, hosted, {
          role,
          driver,
          llm: options.llmFor?.(role.name) ?? options.llm,
          roleModel: options.llmFor ? undefined : role.model,
          maxTokens: options.maxTokens ?? 8192,
          log,
          limiter,
          prices: options.prices,
          ledger,
          batches,
          toolSettings,
          toolRegistry,
          traceContent: options.traceContent === true,
          batchPollMs: options.batchPollMs,
          inputFilesInlineMaxBytes: options.inputFilesInlineMaxBytes ?? DEFAULT_INPUT_FILES_INLINE_MAX_BYTES,
        }),
    })),
    { rateLimited: limiter !== undefined, started: { message: 'agent pool started', fields: { provider: options.llm.provider, model: options.llm.model } } },
  );

  return {
    roles: options.roles.map((r) => r.name),
    close: (graceMs) => host.close(graceMs),
  };
}

interface ProcessContext {
  role: AgentRole;
  driver: RunDriver;
  llm: LlmClient;
  /** The role's model to ask for per call, when `llm` is not already the role's own client. */
  roleModel: string | undefined;
  maxTokens: number;
  log: FleetLogger;
  limiter: RedisRateLimiter | undefined;
  prices: Readonly<Record<string, ModelPrice>> | undefined;
  /** What budgeted calls of every phase hold and spent (reservations). */
  ledger: BudgetLedger;
  /** Batch ids of batch-mode calls, per attempt and call, and the index of open batches. */
  batches: BatchStore;
  toolSettings: ToolSettings;
  toolRegistry: () => Promise<ToolRegistry>;
  traceContent: boolean;
  batchPollMs: number | undefined;
  inputFilesInlineMaxBytes: number;
}

/** Run one attempt of one phase iteration. */
async function processPhaseJob(job: Job<PhaseJobData, PhaseJobResult>, hosted: HostedJob, ctx: ProcessContext): Promise<PhaseJobResult> {
  const { token } = hosted;
  const store = ctx.driver.store;
  return withPhaseJob(job, hosted.phaseHost, async (phase) => {
    const { data, attempt, ref, meta, state, outputs } = phase;
      const phaseDef = meta.workflow.phases.find((p) => p.name === data.phase);
      const phaseState = state.phases[data.phase];
      if (!phaseDef || !phaseState) throw unrecoverableJob('INVALID_INPUT', `run ${data.run_id} has no phase "${data.phase}"`);
      const input = buildRoleInput(meta, state, phaseDef, outputs);

      // The offline model never calls tools: its phases run as they would without them.
      const offline = ctx.llm.provider === 'offline';
      // How the files of its inputs reach the model: by reference, the phase reads them with read_file.
      const inputFiles = offline ? 'inline' : inputFilesFor(phaseDef, [outputs[data.phase], input.previous, ...input.upstream.map((u) => u.output)], ctx.inputFilesInlineMaxBytes);
      const toolNames = offline ? [] : [...new Set([...(ctx.role.tools ?? []), ...(phaseDef.tools ?? []), ...(inputFiles === 'reference' ? ['list_files', 'read_file'] : [])])];
      const roleServers = offline ? [] : (ctx.role.mcpServers ?? []);
      // A phase resumed after a budget wait continues the journal of the iteration that paused: the
      // calls it made are replayed (same idempotency keys), the replies it was billed for not counted twice.
      const journalRef = phaseState.journal ?? { iteration: data.iteration, steps: 0 };
      const journal = toolNames.length > 0 || roleServers.length > 0 ? new ToolJournal(store.redis, store.prefix, data.run_id, data.phase, journalRef.iteration) : undefined;
      // A tool call is a side effect: none for an iteration the run ended while this job waited.
      if (journal && !(await phase.confirmCurrent())) return { reported: false, attempt };
      const attemptSig = attemptSignal(data.timeout_ms, phase.cancel, hosted.clock);
      const signal = attemptSig.signal;
      let toolbox: AgentToolbox | undefined;
      try {
        if (journal) {
          toolbox = await openAgentToolbox({
            names: toolNames,
            roleServers,
            workflowServers: meta.workflow.mcpServers ?? [],
            registry: await ctx.toolRegistry(),
            settings: ctx.toolSettings,
            runId: data.run_id,
            phase: data.phase,
            signal,
            connectTimeoutMs: data.timeout_ms,
          });
          // What the model may read: the upstream files and its own from an earlier iteration, in the artifacts directory.
          if (toolbox?.definitions.some((t) => t.name === 'read_file')) await saveInputFiles([outputs[data.phase], input.previous, ...input.upstream.map((u) => u.output)], ctx.toolSettings, data.run_id, signal);
        }
        const result = await withSpan(
          `${GenAiOperationNames.InvokeAgent} ${ctx.role.name}`,
          {
            kind: SpanKind.INTERNAL,
            attributes: {
              [GenAiAttributes.OperationName]: GenAiOperationNames.InvokeAgent,
              [GenAiAttributes.AgentName]: ctx.role.name,
              [GenAiAttributes.ProviderName]: genAiProviderName(ctx.llm.provider),
              [GenAiAttributes.RequestModel]: ctx.llm.model,
              [FleetAttributes.Offline]: ctx.llm.provider === 'offline',
            },
          },
          async (span) => {
            const cache = data.cache_ttl_ms > 0 ? redisResultCache(store.redis, store.prefix, data.cache_ttl_ms) : undefined;
            // Batches are Anthropic's: other providers answer batch-mode phases directly.
            const batchMode = (phaseDef.mode === 'batch' || meta.call_mode === 'batch') && ctx.llm.provider === 'anthropic';
            // Budgets hold and count batch calls at the Batches API's price.
            const prices = batchMode ? batchPrices(ctx.prices ?? MODEL_PRICES) : ctx.prices;
            const gates: CallGate[] = [];
            const budget = budgetGate(
              [
                {
                  name: 'the run',
                  budget: raisedBudget(tighterBudget(meta.workflow.budget, meta.budget), state.budgetRaise?.run),
                  spent: state.usage,
                  where: "the workflow's budget or the request's (fleet run --max-cost-usd / --max-tokens-budget, POST /api/runs budget)",
                  ledgerScope: 'run',
                },
                {
                  name: `phase "${data.phase}"`,
                  budget: raisedBudget(phaseDef.budget, state.budgetRaise?.phases?.[data.phase]),
                  spent: phaseState.usage,
                  where: `phases[${data.phase}].budget`,
                  ledgerScope: `phase:${data.phase}`,
                },
              ],
              prices,
              // A reservation outlives a dead holder by its attempt's timeout and a minute at most.
              {
                ledger: ctx.ledger,
                runId: data.run_id,
                holdMs: data.timeout_ms + 60_000,
                onHeld: (held) =>
                  void store.appendEvent(data.run_id, { type: 'budget_held', at: Date.now(), phase: data.phase, iteration: data.iteration, ...held }).catch(() => undefined),
                ...(batchMode ? { sentBefore: async (c: { index: number }) => (await ctx.batches.get(batchCallKey(data.run_id, data.phase, data.iteration, attempt, c.index))) !== undefined } : {}),
              },
            );
            if (budget) gates.push(budget);
            // The Messages API's rate limits do not apply to batches (they have their own queue).
            if (ctx.limiter && !batchMode) gates.push(rateLimitGate(ctx.limiter));
            // The output as it is written, for clients following the run (display only, never the result).
            const written = new PhaseOutputWriter(store.redis, store.prefix, { ...ref, attempt }, {
              onError: (err) => ctx.log.debug({ ...ref, attempt, err: (err as Error).message }, 'phase output delta not written'),
            });
            const r = await runRole(ctx.role, ctx.llm, input, {
              signal,
              maxTokens: ctx.maxTokens,
              cache,
              gates,
              prices: ctx.prices,
              stream: ctx.role.stream === true,
              // The phase's `model:` first; else the role's own model, unless the role's client (llmFor) already is on it.
              model: data.model ?? ctx.roleModel,
              promptCacheTtl: phaseDef.promptCacheTtl,
              ...(batchMode
                ? {
                    batch: {
                      keyFor: (n: number) => batchCallKey(data.run_id, data.phase, data.iteration, attempt, n),
                      timeoutMs: phaseDef.batchTimeoutMs ?? MAX_BATCH_TIMEOUT_S * 1000,
                      records: ctx.batches,
                      owner: { run_id: data.run_id, phase: data.phase, iteration: data.iteration, attempt, role: ctx.role.name },
                      recheckMs: ctx.batchPollMs,
                    },
                  }
                : {}),
              maxTurns: phaseDef.maxTurns ?? ctx.role.maxTurns,
              filesByReference: inputFiles === 'reference',
              ...(toolbox
                ? {
                    tools: {
                      toolbox,
                      journal,
                      keyPrefix: `${data.run_id}.${data.phase}.${journalRef.iteration}`,
                      countedSteps: journalRef.steps,
                      callTimeoutMs: data.timeout_ms,
                      recordContent: ctx.traceContent,
                      onToolCall: (call: ToolCallInfo) =>
                        store
                          .appendEvent(data.run_id, {
                            type: 'tool_call',
                            at: Date.now(),
                            phase: data.phase,
                            iteration: data.iteration,
                            attempt,
                            tool: call.tool,
                            call: call.call,
                            duration_ms: call.durationMs,
                            status: call.isError ? 'error' : 'ok',
                            input_bytes: call.inputBytes,
                            result_bytes: call.resultBytes,
                            result_tokens: call.resultTokens,
                            ...(call.isError ? { error: call.content.slice(0, 500) } : {}),
                            ...(ctx.traceContent ? { arguments: call.input } : {}),
                          })
                          .then(() => undefined),
                    },
                  }
                : {}),
              onDelta: (delta) => written.push(delta),
            }).finally(() => written.flush());
            span.setAttribute(FleetAttributes.CacheHit, r.cacheHit);
            if (r.thinkingTokens !== undefined) span.setAttribute(GenAiAttributes.UsageReasoningOutputTokens, r.thinkingTokens);
            span.setAttributes({
              [GenAiAttributes.ResponseModel]: r.model,
              [GenAiAttributes.UsageInputTokens]: r.usage.input_tokens + (r.usage.cache_read_input_tokens ?? 0) + (r.usage.cache_creation_input_tokens ?? 0),
              [GenAiAttributes.UsageOutputTokens]: r.usage.output_tokens,
            });
            return r;
          },
        );
        const { output, action } = splitOutput(ctx.role, result.output, input);
        const reported = await phase.complete(output, { usage: result.usage, model: result.model, action, cacheHit: result.cacheHit });
        ctx.log.info({ ...ref, attempt, model: result.model, usage: result.usage, input_files: inputFiles, reported }, 'phase attempt completed');
        return { reported, attempt };
      } catch (err) {
        // The work succeeded and only its commit failed: no failed attempt, BullMQ retries the job.
        if (err instanceof CommitFailure) throw err;
        if (err instanceof BatchPending) {
          // The call is in a message batch: show the phase waiting for it (once per batch) and put the
          // job back until the batch's timeout; the manager's batch poller brings it back as soon as
          // the batch has ended. The worker's slot is free meanwhile.
          const shown = isBatchWait(phaseState) && (phaseState.waitingFor?.prompt as { batch_id?: string } | undefined)?.batch_id === err.record.batch_id;
          if (!shown) {
            const reported = await phase.commit({
              type: 'phase_batch_waiting',
              at: Date.now(),
              phase: data.phase,
              iteration: data.iteration,
              attempt,
              batch: { batch_id: err.record.batch_id, submitted_at: err.record.submitted_at, timeout_at: err.record.timeout_at },
              startedAt: phase.started,
              agent: ctx.role.name,
            });
            if (!reported) return { reported: false, attempt };
          }
          ctx.log.info({ ...ref, attempt, batch_id: err.record.batch_id, submitted: err.submitted, ...(err.recheckAt !== undefined ? { looking: true } : {}) }, 'phase waits for its message batch');
          // Looking for the batch a dead take may have submitted: back at the next look (nobody else
          // knows that batch to bring the job back), else when the batch's timeout passes.
          await job.moveToDelayed(Math.min(err.recheckAt ?? Infinity, err.record.timeout_at + 1000), token);
          throw new DelayedError();
        }
        if (err instanceof BudgetWait) {
          // The next call would pass a budget that waits: the phase waits for a `budget` event, and
          // the job ends here (its slot is free); the raise runs the phase again as a new iteration,
          // which continues this tool loop: every step journaled so far is counted by this commit.
          const journaled = journal ? await journal.next() : undefined;
          const reported = await phase.commit({
            type: 'phase_budget_wait',
            at: Date.now(),
            phase: data.phase,
            iteration: data.iteration,
            attempt,
            usage: billedUsage(err),
            prompt: err.prompt,
            ...(journaled !== undefined ? { journal: { iteration: journalRef.iteration, steps: journaled } } : {}),
            startedAt: phase.started,
            agent: ctx.role.name,
          });
          ctx.log.info({ ...ref, attempt, reported, waiting_for: err.prompt }, 'phase waits for its budget');
          return { reported, attempt };
        }
        if (err instanceof RateLimitDeferral) {
          // Over the fleet-wide limit before any call: hold the queue and put the job back, no attempt
          // burnt. The hold is short (BullMQ keeps the last hold set on the queue, so a long one would
          // also stop jobs that fit sooner); the job asks the limiter again when it comes back.
          const windowMs = ctx.limiter?.windowMs ?? 60_000;
          await hosted.rateLimit(Math.min(err.waitMs, Math.max(50, Math.min(1000, Math.round(windowMs / 20)))));
          // One `rate_limited` event per job and window, not one per re-check.
          const fresh = await store.redis.set(`${store.prefix}:ratelimit:event:${job.id ?? ''}`, '1', 'PX', windowMs, 'NX').catch(() => null);
          if (fresh) {
            await store
              .appendEvent(data.run_id, { type: 'rate_limited', at: Date.now(), phase: data.phase, iteration: data.iteration, wait_ms: err.waitMs, limit: err.limit, model: err.model })
              .catch(() => undefined);
          }
          ctx.log.info({ ...ref, wait_ms: err.waitMs, limit: err.limit, model: err.model }, 'rate limited: job waits');
          throw Worker.RateLimitError();
        }
        // A failure that is committed below: the next attempt starts a fresh tool loop (the tool calls
        // already made keep their journaled numbers, so no idempotency key is reused).
        await journal?.close().catch(() => undefined);
        // An aborted attempt: the attempt signal tells a timeout from a cancellation (by the manager).
        const error = attemptError(err, attemptSig);
        return failAttempt(job, phase, error, billedUsage(err), (willRetry) =>
          // A cancelled attempt was asked for (Ctrl-C, fleet cancel): news, not a warning.
          ctx.log[error.code === 'PHASE_CANCELLED' ? 'info' : 'warn']({ ...ref, attempt, will_retry: willRetry, error: error.toJSON() }, 'phase attempt failed'),
        );
      } finally {
        attemptSig.dispose();
        await toolbox?.close();
      }
  });
}

/**
 * How the files of a phase's inputs reach the model: the phase's `input_files`, with `auto` decided
 * by the bytes of the files in `outputs` (a path counted once, the last version) against
 * `inlineMaxBytes`; without `input_files`, by reference exactly when the phase offers `read_file`.
 */
export function inputFilesFor(phase: Pick<PhaseDefinition, 'inputFiles' | 'tools'>, outputs: readonly unknown[], inlineMaxBytes: number): 'inline' | 'reference' {
  const mode = phase.inputFiles;
  if (mode === 'inline' || mode === 'reference') return mode;
  if (mode === undefined) return phase.tools?.includes('read_file') ? 'reference' : 'inline';
  const sizes = new Map<string, number>();
  for (const output of outputs) {
    const files = (output as { files?: unknown } | null | undefined)?.files;
    if (!Array.isArray(files)) continue;
    for (const f of files as Array<{ path?: unknown; content?: unknown }>) {
      if (typeof f.path === 'string' && typeof f.content === 'string') sizes.set(f.path, Buffer.byteLength(f.content));
    }
  }
  let total = 0;
  for (const bytes of sizes.values()) total += bytes;
  return total > inlineMaxBytes ? 'reference' : 'inline';
}

/** A price table at the Message Batches API's discount ({@link BATCH_PRICE_FACTOR}). */
function batchPrices(table: Readonly<Record<string, ModelPrice>>): Readonly<Record<string, ModelPrice>> {
  const f = BATCH_PRICE_FACTOR;
  return Object.fromEntries(
    Object.entries(table).map(([model, p]) => [
      model,
      { inputPerMTok: p.inputPerMTok * f, outputPerMTok: p.outputPerMTok * f, cacheWritePerMTok: p.cacheWritePerMTok * f, cacheReadPerMTok: p.cacheReadPerMTok * f, cacheWrite1hPerMTok: (p.cacheWrite1hPerMTok ?? p.inputPerMTok * 2) * f },
    ]),
  );
}

/**
 * Write the files of `outputs` shaped like the coder's (`files: [{path, content}]`: the phase's own
 * output of an earlier iteration, the upstream outputs) under `files/` in the run's artifacts
 * directory, with `write_file`'s path rules, so `read_file` finds them. Later outputs overwrite
 * earlier ones (the upstream's are the newest).
 */
async function saveInputFiles(outputs: readonly unknown[], settings: ToolSettings, runId: string, signal: AbortSignal): Promise<void> {
  for (const output of outputs) {
    const files = (output as { files?: unknown } | null)?.files;
    if (!Array.isArray(files)) continue;
    for (const f of files as Array<{ path?: unknown; content?: unknown }>) {
      if (typeof f.path !== 'string' || typeof f.content !== 'string') continue;
      await writeFileTool.handler(
        { path: `files/${f.path}`, content: f.content, mode: 'overwrite' },
        { signal, artifactsDir: settings.artifactsDir(runId), runId, phase: '', settings },
      );
    }
  }
}
