/**
 * Pattern mining over run history (pure): the sequences of steps (agent roles and tools, in the order
 * their phases started) that recur across runs, with how often they succeed and how long they take.
 *
 * - A step is labelled `agent:<role>`, `tool:<name>`, `workflow:<name>` or `approval`.
 * - A sequence is a run of consecutive steps, `minLength` to `maxLength` long.
 * - **frequency**: the number of runs in which the sequence occurs (a run counts once, at its first
 *   occurrence); **success rate**: the share of those occurrences whose every step completed;
 *   **mean duration**: the mean, over those occurrences, of the summed step durations (ms).
 * - Only sequences with `frequency ≥ minFrequency` and `success rate ≥ minSuccessRate` are reported.
 *   With `closed` (default), a sequence is left out when a longer reported sequence contains it with
 *   the same frequency: it never occurs without the longer one, which says more.
 */
import { FleetError } from '../errors.js';
import type { PhaseDefinition } from '../workflow/definition.js';

/** One phase attempt as history records it. */
export interface HistoryStep {
  /** `agent:planner`, `tool:http_request`, `workflow:<name>` or `approval`. */
  label: string;
  /** The phase's name in its run. */
  phase: string;
  status: 'completed' | 'failed' | 'cancelled';
  /** From the phase's first attempt start to its end, ms. */
  durationMs: number;
  /** The phase definition that ran (used to turn a pattern into a workflow). */
  definition?: PhaseDefinition | undefined;
}

/** One finished run: its steps in the order they started. */
export interface HistoryRun {
  runId: string;
  workflow: string;
  status: string;
  steps: HistoryStep[];
  /** The workflow's declared variable defaults. */
  variables?: Record<string, string> | undefined;
}

/** Thresholds of {@link minePatterns}. */
export interface MiningOptions {
  /** Runs a sequence must occur in. @defaultValue 3 */
  minFrequency?: number;
  /** Share of occurrences whose every step completed, in [0, 1]. @defaultValue 0.8 */
  minSuccessRate?: number;
  /** Longest sequence considered (steps). @defaultValue 5 */
  maxLength?: number;
  /** Shortest sequence considered (steps). @defaultValue 2 */
  minLength?: number;
  /** Leave out sequences a longer reported one contains with the same frequency. @defaultValue true */
  closed?: boolean;
}

/** A recurring sequence. */
export interface SequencePattern {
  /** Step labels, in order. */
  steps: string[];
  /** Runs it occurs in. */
  frequency: number;
  /** Occurrences whose every step completed. */
  successes: number;
  /** successes / frequency. */
  successRate: number;
  /** Mean summed step duration of the occurrences, ms. */
  meanDurationMs: number;
  /** Runs it occurs in, in history order. */
  runIds: string[];
  /** The first successful occurrence (else the first one): run index into the history and step index. */
  example: { run: number; start: number };
}

/** Check thresholds and fill defaults. @throws FleetError `INVALID_INPUT` naming the option. */
export function miningOptions(o: MiningOptions = {}): Required<MiningOptions> {
  const out = { minFrequency: o.minFrequency ?? 3, minSuccessRate: o.minSuccessRate ?? 0.8, maxLength: o.maxLength ?? 5, minLength: o.minLength ?? 2, closed: o.closed ?? true };
  if (!Number.isInteger(out.minFrequency) || out.minFrequency < 1) throw new FleetError('INVALID_INPUT', `--min-frequency must be a whole number ≥ 1, got ${out.minFrequency}`);
  if (!(out.minSuccessRate >= 0 && out.minSuccessRate <= 1)) throw new FleetError('INVALID_INPUT', `--min-success-rate must be between 0 and 1, got ${out.minSuccessRate}`);
  if (!Number.isInteger(out.minLength) || out.minLength < 1) throw new FleetError('INVALID_INPUT', `--min-length must be a whole number ≥ 1, got ${out.minLength}`);
  if (!Number.isInteger(out.maxLength) || out.maxLength < out.minLength || out.maxLength > 50) {
    throw new FleetError('INVALID_INPUT', `--max-length must be a whole number from ${out.minLength} (the minimum length) to 50, got ${out.maxLength}`);
  }
  return out;
}

/**
 * Find the recurring sequences of a history.
 *
 * @returns patterns by frequency (highest first), then length (longest first), then success rate,
 *   then labels.
 * @throws FleetError `INVALID_INPUT` for thresholds out of range.
 */
export function minePatterns(history: readonly HistoryRun[], options: MiningOptions = {}): SequencePattern[] {
  const o = miningOptions(options);
  interface Agg {
    steps: string[];
    frequency: number;
    successes: number;
    totalMs: number;
    runIds: string[];
    example: { run: number; start: number; ok: boolean };
  }
  const aggs = new Map<string, Agg>();
  history.forEach((run, r) => {
    const labels = run.steps.map((s) => s.label);
    const seen = new Set<string>();
    for (let start = 0; start < labels.length; start++) {
      for (let len = o.minLength; len <= o.maxLength && start + len <= labels.length; len++) {
        const steps = labels.slice(start, start + len);
        const key = steps.join('\u0000');
        if (seen.has(key)) continue;
        seen.add(key);
        const window = run.steps.slice(start, start + len);
        const ok = window.every((s) => s.status === 'completed');
        const ms = window.reduce((sum, s) => sum + s.durationMs, 0);
        let agg = aggs.get(key);
        if (!agg) {
          agg = { steps, frequency: 0, successes: 0, totalMs: 0, runIds: [], example: { run: r, start, ok } };
          aggs.set(key, agg);
        }
        agg.frequency += 1;
        agg.successes += ok ? 1 : 0;
        agg.totalMs += ms;
        agg.runIds.push(run.runId);
        if (ok && !agg.example.ok) agg.example = { run: r, start, ok };
      }
    }
  });
  let kept: SequencePattern[] = [];
  for (const a of aggs.values()) {
    const successRate = a.successes / a.frequency;
    if (a.frequency < o.minFrequency || successRate < o.minSuccessRate) continue;
    kept.push({
      steps: a.steps,
      frequency: a.frequency,
      successes: a.successes,
      successRate,
      meanDurationMs: Math.round(a.totalMs / a.frequency),
      runIds: a.runIds,
      example: { run: a.example.run, start: a.example.start },
    });
  }
  if (o.closed) {
    kept = kept.filter((p) => !kept.some((q) => q.steps.length > p.steps.length && q.frequency === p.frequency && containsRun(q.steps, p.steps)));
  }
  return kept.sort(
    (a, b) => b.frequency - a.frequency || b.steps.length - a.steps.length || b.successRate - a.successRate || a.steps.join(' ').localeCompare(b.steps.join(' ')),
  );
}

/** Whether `inner` occurs in `outer` as consecutive items. */
function containsRun(outer: readonly string[], inner: readonly string[]): boolean {
  for (let i = 0; i + inner.length <= outer.length; i++) {
    if (inner.every((s, j) => outer[i + j] === s)) return true;
  }
  return false;
}
