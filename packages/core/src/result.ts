/**
 * The run result: the shape `fleet run --json` prints, `result.json` holds and the HTTP API serves.
 * snake_case, like the workflow format.
 */
import type { SerializedFleetError } from './errors.js';
import type { FullTokenUsage, RunState, RunStatus, TokenUsage } from './scheduler/types.js';
import type { Budget } from './workflow/budget.js';
import type { ConcurrencySpec } from './workflow/concurrency.js';
import type { WorkflowDefinition } from './workflow/definition.js';

export interface PhaseResult {
  name: string;
  agent: string;
  status: string;
  /** Attempts started in the phase's last iteration. */
  attempts: number;
  iterations: number;
  /** From the first attempt's start to the end, ms; null while not started. */
  duration_ms: number | null;
  usage: TokenUsage;
  error?: SerializedFleetError;
  reason?: string;
  /** The last completion reused a cached agent result (no tokens spent). */
  cache_hit?: boolean;
  /** Share of the phase's prompt tokens read from the provider's prompt cache, 0..1; null before any call. */
  prompt_cache_hit_rate: number | null;
  /** `batch` when the phase's last iteration sent its calls through the Message Batches API (half price). */
  mode?: 'batch';
  /**
   * Model that answered the phase's last completion, as its worker reported it (the role's model
   * under `FLEET_ROLE_MODELS`, or the phase's `model:`); absent until it completes, and for tool
   * phases and child-workflow phases.
   */
  model?: string;
}

export interface RunResult {
  run_id: string;
  workflow: { name: string; version: string };
  status: RunStatus;
  requirements: string;
  variables: Record<string, string>;
  created_at: string;
  finished_at: string | null;
  /** Wall time from start to finish (or to now while running), ms. */
  duration_ms: number;
  phases: PhaseResult[];
  completed_phases: string[];
  failed_phases: string[];
  skipped_phases: string[];
  /** Sum of phase durations / wall time: above 1 when independent phases ran in parallel. */
  parallel_speedup: number;
  /** Phase name → validated agent output (omitted when `output.include_agent_outputs` is false). */
  results: Record<string, unknown>;
  errors: Array<{ phase: string; error: SerializedFleetError }>;
  usage: TokenUsage;
  /**
   * Share of the run's prompt tokens read from the provider's prompt cache, 0..1:
   * cache reads / (uncached input + cache reads + cache writes). Null before any model call.
   */
  prompt_cache_hit_rate: number | null;
  /**
   * What the Message Batches API's discount saved, USD: batch phases paid half their list price, so
   * as much again as they cost. 0 without batch phases.
   */
  batch_savings_usd: number;
  /** Provider that answered: `anthropic`, or `offline` for the built-in offline model. */
  provider: string;
  /**
   * The run's main model: the one that answered the most phases (the first used on a tie); null
   * before any phase completed. Each phase's own is in `phases[].model`.
   */
  model: string | null;
  /** Every model that answered a phase of the run, in order of first use (several with `FLEET_ROLE_MODELS`). */
  models: string[];
  /** Where `fleet run` wrote the artifacts; null when none were written. */
  artifacts_dir: string | null;
  /** Links to related runs (rerun_of, fallback_of, fallback_run_id, parent, children). */
  links: Record<string, unknown>;
  /** While `waiting`: which phases wait for which event, and what they asked. */
  waiting_for: Array<{ phase: string; event: string; prompt?: unknown }>;
  /**
   * While the run goes: phases queued to a role no live pool serves, with what to start
   * (`FleetClient.result` fills it from the pools' heartbeats; absent when every queued phase is served).
   */
  unserved?: Array<{ phase: string; iteration: number; role: string; message: string }>;
  /** The run's concurrency key (rendered) and limit, when it has one (docs/concurrency-and-priority.md). */
  concurrency?: { key: string; limit: number | null };
  /** The run's priority, 1 (least urgent) .. 10 (most urgent), when the request or the workflow set one. */
  priority?: number;
}

/** Everything stored about a run besides its state: what was asked and with which definition. */
export interface RunMeta {
  run_id: string;
  workflow: WorkflowDefinition;
  requirements: string;
  variables: Record<string, string>;
  created_at: number;
  provider: string;
  /** W3C trace context of the submitter, so the run's trace joins the caller's. */
  trace: Record<string, string>;
  /** How this run relates to others. */
  links?: RunLinks;
  /** The request's budget (issue 8); the tighter of it and the workflow's `budget` applies. */
  budget?: Budget;
  /** `batch`: every agent phase of the run sends its calls through the Message Batches API (`fleet run --batch`). */
  call_mode?: 'batch';
  /** The run's concurrency key as rendered at submission, and its limit (the request's, else the workflow's). */
  concurrency?: ConcurrencySpec;
  /** The run's priority, 1 (least urgent) .. 10 (most urgent), when the request or the workflow set one. */
  priority?: number;
}

/** Links between runs: a rerun, a fallback, a child workflow run. */
export interface RunLinks {
  /** This run re-runs that run from a phase on. */
  rerun_of?: { run_id: string; from: string };
  /** This run is the fallback of that failed run. */
  fallback_of?: string;
  /** This run is a phase of that run. */
  parent?: { run_id: string; phase: string; iteration: number };
  /**
   * This run was started by that schedule, for that fire time (ISO 8601); `manual` when started by a
   * trigger (run now), `caught_up` when it stands for a fire missed while no manager ran.
   */
  schedule?: { name: string; fire_time: string; manual?: boolean; caught_up?: boolean };
}

/**
 * Build the result from stored parts. Pure.
 *
 * @param now - epoch ms used for `duration_ms` while the run is still going.
 */
export function buildRunResult(meta: RunMeta, state: RunState, outputs: Record<string, unknown>, now: number): RunResult {
  const phases: PhaseResult[] = meta.workflow.phases.map((def) => {
    const s = state.phases[def.name];
    const result: PhaseResult = {
      name: def.name,
      agent: def.agent,
      status: s?.status ?? 'pending',
      attempts: s?.attempts ?? 0,
      iterations: s?.iteration ?? 0,
      duration_ms: s?.durationMs ?? null,
      usage: fullUsage(s?.usage),
      prompt_cache_hit_rate: promptCacheHitRate(s?.usage),
    };
    if (s?.error && s.status !== 'completed') result.error = s.error;
    if (s?.reason) result.reason = s.reason;
    if (s?.agent && s.agent !== def.agent) result.agent = s.agent;
    if (s?.cacheHit) result.cache_hit = true;
    if (s?.batched) result.mode = 'batch';
    if (s?.model) result.model = s.model;
    return result;
  });
  const models = modelsUsed(state, phases);
  const start = state.startedAt ?? state.createdAt;
  const end = state.finishedAt ?? now;
  const wall = Math.max(0, end - start);
  const busy = phases.reduce((sum, p) => sum + (p.duration_ms ?? 0), 0);
  const byStatus = (status: string) => phases.filter((p) => p.status === status).map((p) => p.name);
  return {
    run_id: meta.run_id,
    workflow: { name: meta.workflow.name, version: meta.workflow.version },
    status: state.status,
    requirements: meta.requirements,
    variables: meta.variables,
    created_at: new Date(state.createdAt).toISOString(),
    finished_at: state.finishedAt === undefined ? null : new Date(state.finishedAt).toISOString(),
    duration_ms: wall,
    phases,
    completed_phases: byStatus('completed'),
    failed_phases: byStatus('failed'),
    skipped_phases: byStatus('skipped'),
    parallel_speedup: wall > 0 ? Math.round((busy / wall) * 100) / 100 : 0,
    results: meta.workflow.output.includeAgentOutputs ? inDefinitionOrder(meta, outputs) : {},
    errors: state.errors,
    usage: fullUsage(state.usage),
    prompt_cache_hit_rate: promptCacheHitRate(state.usage),
    batch_savings_usd: phases.reduce((sum, p) => sum + (p.mode === 'batch' ? (p.usage.cost_usd ?? 0) : 0), 0),
    provider: meta.provider,
    model: mainModel(models, phases) ?? state.model ?? null,
    models,
    artifacts_dir: null,
    links: { ...(meta.links ?? {}) },
    waiting_for: meta.workflow.phases.flatMap((def) => {
      const w = state.phases[def.name]?.waitingFor;
      return w && state.phases[def.name]?.status === 'waiting' ? [{ phase: def.name, ...w }] : [];
    }),
    ...(meta.concurrency ? { concurrency: { key: meta.concurrency.key, limit: meta.concurrency.limit ?? null } } : {}),
    ...(meta.priority !== undefined ? { priority: meta.priority } : {}),
  };
}

/**
 * Share of prompt tokens read from the provider's prompt cache: cache reads / (uncached input +
 * cache reads + cache writes), rounded to 4 decimals; null when no prompt token was billed.
 */
export function promptCacheHitRate(usage: TokenUsage | undefined): number | null {
  const read = usage?.cache_read_input_tokens ?? 0;
  const prompt = (usage?.input_tokens ?? 0) + read + (usage?.cache_creation_input_tokens ?? 0);
  return prompt > 0 ? Math.round((read / prompt) * 10_000) / 10_000 : null;
}

/**
 * Every model used, in order of first use: the state's list, else (states written before it was
 * kept) the phases' models, else the last model reported.
 */
function modelsUsed(state: RunState, phases: readonly PhaseResult[]): string[] {
  if (state.models && state.models.length > 0) return [...state.models];
  const seen = [...new Set(phases.flatMap((p) => (p.model ? [p.model] : [])))];
  return seen.length > 0 ? seen : state.model ? [state.model] : [];
}

/** The model that answered the most phases; the first in `models` on a tie; undefined when no phase says. */
function mainModel(models: readonly string[], phases: readonly PhaseResult[]): string | undefined {
  let best: { model: string; count: number } | undefined;
  for (const model of models) {
    const count = phases.filter((p) => p.model === model).length;
    if (count > 0 && (!best || count > best.count)) best = { model, count };
  }
  return best?.model;
}

/** Outputs keyed in the workflow's phase order (Redis hashes have no order). */
function inDefinitionOrder(meta: RunMeta, outputs: Record<string, unknown>): Record<string, unknown> {
  const ordered: Record<string, unknown> = {};
  for (const phase of meta.workflow.phases) if (phase.name in outputs) ordered[phase.name] = outputs[phase.name];
  return ordered;
}

/**
 * Usage with every field present (states written before cache counts and cost were tracked lack
 * them): tokens as summed, cost in USD rounded to a millionth of a dollar.
 */
export function fullUsage(usage: TokenUsage | undefined): FullTokenUsage {
  return {
    input_tokens: usage?.input_tokens ?? 0,
    output_tokens: usage?.output_tokens ?? 0,
    cache_read_input_tokens: usage?.cache_read_input_tokens ?? 0,
    cache_creation_input_tokens: usage?.cache_creation_input_tokens ?? 0,
    cost_usd: Math.round((usage?.cost_usd ?? 0) * 1e6) / 1e6,
    ...(usage?.thinking_tokens ? { thinking_tokens: usage.thinking_tokens } : {}),
  };
}
