/**
 * Analytics over runs per day and failures by error code: the shapes of `GET /api/analytics/daily`
 * and `GET /api/analytics/failures`, and their computation over run facts read from Redis (when no
 * archive is configured). The archive computes the same figures in SQL ({@link HistoryStore}); both
 * use the nearest-rank percentile, so the two agree on the same runs.
 */

/** What the analytics need of one run. */
export interface RunFact {
  workflow: string;
  status: string;
  /** Epoch ms. */
  createdAt: number;
  /** Time to complete, ms; for finished runs. */
  durationMs?: number | undefined;
  /** Input + output tokens; for finished runs. */
  tokens?: number | undefined;
  /** USD from the price table; for finished runs. */
  costUsd?: number | undefined;
  /** The code of the run's first error (`PHASE_TIMEOUT`, …), for failed runs. */
  errorCode?: string | null | undefined;
}

/** Which runs an analytics query covers; every field optional and combined with AND. */
export interface AnalyticsFilter {
  /** Only runs started by this key. */
  userId?: string | undefined;
  workflow?: string | undefined;
  /** Created at or after, epoch ms. */
  createdFrom?: number | undefined;
}

/** One UTC day of runs, by the day they were created. */
export interface DailyStats {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  runs: number;
  by_status: Record<string, number>;
  /** completed / finished runs of the day; null before any finished. */
  completion_rate: number | null;
  /** Nearest-rank median of the day's completed runs' time to complete, ms. */
  median_ms: number | null;
  /** Nearest-rank 95th percentile of the day's completed runs' time to complete, ms. */
  p95_ms: number | null;
  /** Input + output tokens of the day's finished runs. */
  tokens: number;
  /** USD of the day's finished runs. */
  cost_usd: number;
}

/** Failed runs that share the code of their first error. */
export interface FailureStats {
  /** A FleetError code (`PHASE_TIMEOUT`, `BUDGET_EXCEEDED`, …), or `UNKNOWN` when the run recorded none. */
  error_code: string;
  runs: number;
  /** Failed runs with this code, per workflow. */
  by_workflow: Record<string, number>;
  /** When the newest of them was created, ISO 8601. */
  last_created_at: string;
}

const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** `YYYY-MM-DD` of an epoch-ms instant, UTC. */
export function utcDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

/** Nearest-rank percentile of sorted values; null when there are none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] ?? null;
}

/** Rounded to 3 decimals, as every ratio and mean of the analytics is. */
export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** USD rounded to a millionth of a dollar. */
export function roundUsd(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

function matches(fact: RunFact, filter: AnalyticsFilter): boolean {
  return (filter.workflow === undefined || fact.workflow === filter.workflow) && (filter.createdFrom === undefined || fact.createdAt >= filter.createdFrom);
}

/** Runs per UTC day of creation, newest day first. Runs in flight count by status only. */
export function dailyStats(facts: Iterable<RunFact>, filter: AnalyticsFilter = {}): DailyStats[] {
  const days = new Map<string, { statuses: Record<string, number>; durations: number[]; tokens: number; cost: number }>();
  for (const f of facts) {
    if (!matches(f, filter)) continue;
    const day = utcDay(f.createdAt);
    let d = days.get(day);
    if (!d) {
      d = { statuses: {}, durations: [], tokens: 0, cost: 0 };
      days.set(day, d);
    }
    d.statuses[f.status] = (d.statuses[f.status] ?? 0) + 1;
    if (!FINISHED.has(f.status)) continue;
    if (f.status === 'completed' && f.durationMs !== undefined) d.durations.push(f.durationMs);
    d.tokens += f.tokens ?? 0;
    d.cost += f.costUsd ?? 0;
  }
  return [...days.entries()]
    .sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0))
    .map(([day, d]) => {
      const finished = (d.statuses.completed ?? 0) + (d.statuses.failed ?? 0) + (d.statuses.cancelled ?? 0);
      const sorted = d.durations.sort((a, b) => a - b);
      return {
        day,
        runs: Object.values(d.statuses).reduce((a, b) => a + b, 0),
        by_status: d.statuses,
        completion_rate: finished > 0 ? round3((d.statuses.completed ?? 0) / finished) : null,
        median_ms: percentile(sorted, 0.5),
        p95_ms: percentile(sorted, 0.95),
        tokens: d.tokens,
        cost_usd: roundUsd(d.cost),
      };
    });
}

/** Per workflow (the shape of `GET /api/analytics/workflows`), by workflow name. */
export interface WorkflowFactStats {
  workflow: string;
  runs: number;
  by_status: Record<string, number>;
  completion_rate: number | null;
  median_ms: number | null;
  p95_ms: number | null;
  /** Mean input + output tokens over the finished runs. */
  mean_tokens: number | null;
}

/** Per workflow, sorted by name: the same figures the archive computes in SQL (`workflowStats`). */
export function workflowStats(facts: Iterable<RunFact>): WorkflowFactStats[] {
  const byWorkflow = new Map<string, { statuses: Record<string, number>; durations: number[]; tokens: number[] }>();
  for (const f of facts) {
    let w = byWorkflow.get(f.workflow);
    if (!w) {
      w = { statuses: {}, durations: [], tokens: [] };
      byWorkflow.set(f.workflow, w);
    }
    w.statuses[f.status] = (w.statuses[f.status] ?? 0) + 1;
    if (f.status === 'completed' && f.durationMs !== undefined) w.durations.push(f.durationMs);
    if (f.tokens !== undefined) w.tokens.push(f.tokens);
  }
  return [...byWorkflow.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([workflow, w]) => {
      const finished = (w.statuses.completed ?? 0) + (w.statuses.failed ?? 0) + (w.statuses.cancelled ?? 0);
      const sorted = w.durations.sort((a, b) => a - b);
      return {
        workflow,
        runs: Object.values(w.statuses).reduce((a, b) => a + b, 0),
        by_status: w.statuses,
        completion_rate: finished > 0 ? round3((w.statuses.completed ?? 0) / finished) : null,
        median_ms: percentile(sorted, 0.5),
        p95_ms: percentile(sorted, 0.95),
        mean_tokens: w.tokens.length > 0 ? round3(w.tokens.reduce((a, b) => a + b, 0) / w.tokens.length) : null,
      };
    });
}

/** Failed runs grouped by the code of their first error, most frequent first (then by code). */
export function failureStats(facts: Iterable<RunFact>, filter: AnalyticsFilter = {}): FailureStats[] {
  const codes = new Map<string, { runs: number; byWorkflow: Record<string, number>; last: number }>();
  for (const f of facts) {
    if (f.status !== 'failed' || !matches(f, filter)) continue;
    const code = f.errorCode ?? 'UNKNOWN';
    let c = codes.get(code);
    if (!c) {
      c = { runs: 0, byWorkflow: {}, last: f.createdAt };
      codes.set(code, c);
    }
    c.runs++;
    c.byWorkflow[f.workflow] = (c.byWorkflow[f.workflow] ?? 0) + 1;
    c.last = Math.max(c.last, f.createdAt);
  }
  return [...codes.entries()]
    .sort(([a, x], [b, y]) => y.runs - x.runs || (a < b ? -1 : a > b ? 1 : 0))
    .map(([error_code, c]) => ({ error_code, runs: c.runs, by_workflow: c.byWorkflow, last_created_at: new Date(c.last).toISOString() }));
}
