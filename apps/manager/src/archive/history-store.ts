/**
 * The run archive in PostgreSQL (`FLEET_HISTORY_URL`): finished runs with their result, phases,
 * attempts, usage, events and outputs, written once per run id (a repeat overwrites the same rows),
 * and the reads the HTTP API needs when Redis no longer holds a run.
 *
 * Every statement is parameterised; the schema comes from migrations in `apps/manager/migrations`
 * (node-pg-migrate), applied by {@link openHistoryStore}.
 */
import { fileURLToPath } from 'node:url';
import type { HistoryRun, RunResult, StoredRunEvent } from '@agentfleet/core';
import { FleetError } from '@agentfleet/core';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { roundUsd, round3, type AnalyticsFilter, type DailyStats, type FailureStats } from './run-analytics.js';

/** Where the migrations are, from `src/archive` and `dist/archive` alike. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface HistoryStoreOptions {
  /** `postgres://…` (`FLEET_HISTORY_URL`). */
  url: string;
  /** Schema holding the archive's tables (`FLEET_HISTORY_SCHEMA`), created when missing. @defaultValue `public` */
  schema?: string;
  /** Connections kept open. @defaultValue 4 */
  poolSize?: number;
}

/** A finished run as the archive stores it. */
export interface ArchivedRun {
  result: RunResult;
  labels: Record<string, unknown>;
  events: StoredRunEvent[];
  /** The run as pattern mining sees it (its steps with their definitions), when it is known. */
  history?: HistoryRun | undefined;
}

/** Filters of {@link HistoryStore.list}; all optional and combined with AND. */
export interface RunListFilter {
  status?: string | undefined;
  workflow?: string | undefined;
  userId?: string | undefined;
  conversationId?: string | undefined;
  /** Only runs started by this schedule (the `schedule` label). */
  schedule?: string | undefined;
  /** Created at or after, epoch ms. */
  createdFrom?: number | undefined;
  /** Created before, epoch ms. */
  createdTo?: number | undefined;
  /** Words that must all appear in the requirements; one word also matches the start of a run id. */
  text?: string | undefined;
  /** Only runs older than this (created_at, run_id) position: the cursor of the previous page. */
  before?: { createdAt: number; runId: string } | undefined;
}

/** One row of a run list. */
export interface ArchivedRunSummary {
  run_id: string;
  status: RunResult['status'];
  workflow: { name: string; version: string };
  created_at: string;
  finished_at: string | null;
  user_id: string | null;
  conversation_id: string | null;
  template: string | null;
}

/** Per workflow over the whole archive (the shape of `GET /api/analytics/workflows`). */
export interface WorkflowStats {
  workflow: string;
  runs: number;
  by_status: Record<string, number>;
  /** completed / finished runs; null before any finished. */
  completion_rate: number | null;
  /** Nearest-rank median of completed runs' time to complete, ms. */
  median_ms: number | null;
  /** Nearest-rank 95th percentile of completed runs' time to complete, ms. */
  p95_ms: number | null;
  /** Mean input+output tokens per finished run. */
  mean_tokens: number | null;
}

/** What the HTTP API and the archiver use of the archive. */
export interface HistoryStore {
  /** Write (or overwrite) a finished run, in one transaction. */
  write(run: ArchivedRun): Promise<void>;
  /** @returns the archived result, or undefined when the archive has no such run. */
  get(runId: string): Promise<{ result: RunResult; labels: Record<string, unknown> } | undefined>;
  /** Events of an archived run, in stream order. */
  events(runId: string): Promise<StoredRunEvent[]>;
  /** Newest first, at most `limit`. */
  list(filter: RunListFilter, limit: number): Promise<ArchivedRunSummary[]>;
  /** Delete runs; @returns how many existed. */
  delete(runIds: readonly string[]): Promise<number>;
  /** Ids of runs finished before `finishedBefore` (epoch ms), optionally of one status, at most `limit`. */
  finishedBefore(finishedBefore: number, status: string | undefined, limit: number): Promise<string[]>;
  /** Analytics per workflow over every archived run, or only those started by the key `userId` when given. */
  workflowStats(userId?: string): Promise<WorkflowStats[]>;
  /**
   * The newest `limit` archived runs that recorded their steps, oldest first, as pattern mining reads
   * them (`fleet patterns`).
   */
  runHistory(limit: number): Promise<HistoryRun[]>;
  /** Archived runs per UTC day of creation, newest day first (see {@link dailyStats}). */
  dailyStats(filter: AnalyticsFilter): Promise<DailyStats[]>;
  /** Archived failed runs by the code of their first error, most frequent first (see {@link failureStats}). */
  failureStats(filter: AnalyticsFilter): Promise<FailureStats[]>;
  close(): Promise<void>;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Connect, apply pending migrations (under an advisory lock, so managers starting together apply them
 * once) and return the store.
 *
 * @throws FleetError `INVALID_INPUT` for a bad schema name; `INTERNAL` naming the URL's host when
 *   PostgreSQL does not answer or a migration fails.
 */
export async function openHistoryStore(options: HistoryStoreOptions): Promise<HistoryStore> {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new FleetError('INVALID_INPUT', `FLEET_HISTORY_SCHEMA: "${schema}" is not a lower-case SQL identifier such as agentfleet`);
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 4, options: `-c search_path=${schema}` });
  // An idle connection that breaks (PostgreSQL restarted) is dropped by the pool; the next query reconnects.
  pool.on('error', () => undefined);
  const migrationClient = await pool.connect().catch((err: unknown) => {
    void pool.end();
    throw new FleetError('INTERNAL', `the run archive (FLEET_HISTORY_URL, host ${hostOf(options.url)}) does not answer: ${(err as Error).message}; start PostgreSQL or unset FLEET_HISTORY_URL`, { cause: err });
  });
  try {
    await runner({
      dbClient: migrationClient,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: 'fleet_migrations',
      schema,
      createSchema: true,
      log: () => undefined,
    });
  } catch (err) {
    migrationClient.release();
    await pool.end();
    throw new FleetError('INTERNAL', `the run archive's migrations failed: ${(err as Error).message}`, { cause: err });
  }
  migrationClient.release();
  return new PgHistoryStore(pool);
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(unparseable URL)';
  }
}

class PgHistoryStore implements HistoryStore {
  constructor(private readonly pool: pg.Pool) {}

  async write({ result, labels, events, history }: ArchivedRun): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const usage = result.usage;
      await client.query(
        `INSERT INTO runs (run_id, status, workflow_name, workflow_version, requirements, user_id, conversation_id, template, parent_run_id,
                           created_at, finished_at, duration_ms, input_tokens, output_tokens, cost_usd, error_code, result, labels, steps, archived_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, now())
         ON CONFLICT (run_id) DO UPDATE SET status = EXCLUDED.status, finished_at = EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms,
           input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens, cost_usd = EXCLUDED.cost_usd,
           error_code = EXCLUDED.error_code, result = EXCLUDED.result, labels = EXCLUDED.labels, steps = coalesce(EXCLUDED.steps, runs.steps), archived_at = now()`,
        [
          result.run_id,
          result.status,
          result.workflow.name,
          result.workflow.version,
          result.requirements,
          str(labels.user_id),
          str(labels.conversation_id),
          str(labels.template),
          str(labels.parent_run_id),
          result.created_at,
          result.finished_at,
          result.duration_ms,
          usage.input_tokens,
          usage.output_tokens,
          usage.cost_usd ?? null,
          result.errors[0]?.error.code ?? null,
          JSON.stringify(result),
          JSON.stringify(labels),
          history ? JSON.stringify({ steps: history.steps, variables: history.variables ?? null }) : null,
        ],
      );
      await client.query('DELETE FROM run_phases WHERE run_id = $1', [result.run_id]);
      const phases = result.phases.map((p) => ({
        name: p.name,
        agent: p.agent,
        status: p.status,
        attempts: p.attempts,
        iterations: p.iterations,
        duration_ms: p.duration_ms,
        input_tokens: p.usage.input_tokens,
        output_tokens: p.usage.output_tokens,
        error_code: p.error?.code ?? null,
        output: result.results[p.name] ?? null,
      }));
      await client.query(
        `INSERT INTO run_phases (run_id, name, agent, status, attempts, iterations, duration_ms, input_tokens, output_tokens, error_code, output)
         SELECT $1, name, agent, status, attempts, iterations, duration_ms, input_tokens, output_tokens, error_code, output
         FROM jsonb_to_recordset($2::jsonb) AS p(name text, agent text, status text, attempts int, iterations int, duration_ms bigint,
                                                input_tokens bigint, output_tokens bigint, error_code text, output jsonb)`,
        [result.run_id, JSON.stringify(phases)],
      );
      await client.query('DELETE FROM run_events WHERE run_id = $1', [result.run_id]);
      const rows = events.map((e, seq) => ({ stream_id: e.id, seq, type: e.event.type, at: typeof e.event.at === 'number' ? new Date(e.event.at).toISOString() : null, data: e.event }));
      await client.query(
        `INSERT INTO run_events (run_id, stream_id, seq, type, at, data)
         SELECT $1, stream_id, seq, type, at, data FROM jsonb_to_recordset($2::jsonb) AS e(stream_id text, seq int, type text, at timestamptz, data jsonb)`,
        [result.run_id, JSON.stringify(rows)],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async get(runId: string): Promise<{ result: RunResult; labels: Record<string, unknown> } | undefined> {
    const { rows } = await this.pool.query<{ result: RunResult; labels: Record<string, unknown> }>('SELECT result, labels FROM runs WHERE run_id = $1', [runId]);
    return rows[0];
  }

  async events(runId: string): Promise<StoredRunEvent[]> {
    const { rows } = await this.pool.query<{ stream_id: string; data: StoredRunEvent['event'] }>('SELECT stream_id, data FROM run_events WHERE run_id = $1 ORDER BY seq', [runId]);
    return rows.map((r) => ({ id: r.stream_id, event: r.data }));
  }

  async list(filter: RunListFilter, limit: number): Promise<ArchivedRunSummary[]> {
    // Each condition is a fixed fragment with its own parameter: values never enter the SQL text.
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (fragment: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(fragment(`$${params.length}`));
    };
    if (filter.status !== undefined) add((n) => `status = ${n}`, filter.status);
    if (filter.workflow !== undefined) add((n) => `workflow_name = ${n}`, filter.workflow);
    if (filter.userId !== undefined) add((n) => `user_id = ${n}`, filter.userId);
    if (filter.conversationId !== undefined) add((n) => `conversation_id = ${n}`, filter.conversationId);
    if (filter.schedule !== undefined) add((n) => `labels->>'schedule' = ${n}`, filter.schedule);
    if (filter.createdFrom !== undefined) add((n) => `created_at >= ${n}`, new Date(filter.createdFrom));
    if (filter.createdTo !== undefined) add((n) => `created_at < ${n}`, new Date(filter.createdTo));
    if (filter.text !== undefined) {
      // One word may also be the start of a run id (as the Redis side matches it).
      const word = filter.text.trim();
      if (/^\S+$/.test(word)) {
        params.push(filter.text, word.toLowerCase());
        where.push(`(to_tsvector('simple', requirements) @@ plainto_tsquery('simple', $${params.length - 1}) OR starts_with(lower(run_id), $${params.length}))`);
      } else {
        add((n) => `to_tsvector('simple', requirements) @@ plainto_tsquery('simple', ${n})`, filter.text);
      }
    }
    if (filter.before !== undefined) {
      params.push(new Date(filter.before.createdAt), filter.before.runId);
      where.push(`(created_at, run_id) < ($${params.length - 1}, $${params.length})`);
    }
    params.push(limit);
    const { rows } = await this.pool.query<{
      run_id: string; status: RunResult['status']; workflow_name: string; workflow_version: string; created_at: Date; finished_at: Date | null;
      user_id: string | null; conversation_id: string | null; template: string | null;
    }>(
      `SELECT run_id, status, workflow_name, workflow_version, created_at, finished_at, user_id, conversation_id, template FROM runs
       ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, run_id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({
      run_id: r.run_id,
      status: r.status,
      workflow: { name: r.workflow_name, version: r.workflow_version },
      created_at: r.created_at.toISOString(),
      finished_at: r.finished_at ? r.finished_at.toISOString() : null,
      user_id: r.user_id,
      conversation_id: r.conversation_id,
      template: r.template,
    }));
  }

  async delete(runIds: readonly string[]): Promise<number> {
    if (runIds.length === 0) return 0;
    const { rowCount } = await this.pool.query('DELETE FROM runs WHERE run_id = ANY($1::text[])', [runIds]);
    return rowCount ?? 0;
  }

  async finishedBefore(finishedBefore: number, status: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ run_id: string }>(
      'SELECT run_id FROM runs WHERE finished_at < $1 AND ($2::text IS NULL OR status = $2) ORDER BY finished_at LIMIT $3',
      [new Date(finishedBefore), status ?? null, limit],
    );
    return rows.map((r) => r.run_id);
  }

  async workflowStats(userId?: string): Promise<WorkflowStats[]> {
    // percentile_disc is the nearest-rank percentile: the first value whose cumulative share reaches p.
    const { rows } = await this.pool.query<{ workflow: string; runs: string; by_status: Record<string, string>; median: string | null; p95: string | null; tokens: string | null }>(
      `WITH scoped AS (SELECT * FROM runs WHERE $1::text IS NULL OR user_id = $1::text),
            per_status AS (SELECT workflow_name, status, count(*) AS n FROM scoped GROUP BY workflow_name, status),
            per_workflow AS (
              SELECT workflow_name, count(*) AS runs,
                     percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE status = 'completed') AS median,
                     percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE status = 'completed') AS p95,
                     avg(input_tokens + output_tokens) AS tokens
              FROM scoped GROUP BY workflow_name)
       SELECT w.workflow_name AS workflow, w.runs, w.median, w.p95, w.tokens,
              (SELECT jsonb_object_agg(status, n) FROM per_status s WHERE s.workflow_name = w.workflow_name) AS by_status
       FROM per_workflow w ORDER BY w.workflow_name`,
      [userId ?? null],
    );
    return rows.map((r) => {
      const byStatus = Object.fromEntries(Object.entries(r.by_status ?? {}).map(([k, v]) => [k, Number(v)]));
      const finished = (byStatus.completed ?? 0) + (byStatus.failed ?? 0) + (byStatus.cancelled ?? 0);
      return {
        workflow: r.workflow,
        runs: Number(r.runs),
        by_status: byStatus,
        completion_rate: finished > 0 ? round3((byStatus.completed ?? 0) / finished) : null,
        median_ms: r.median === null ? null : Number(r.median),
        p95_ms: r.p95 === null ? null : Number(r.p95),
        mean_tokens: r.tokens === null ? null : round3(Number(r.tokens)),
      };
    });
  }

  async runHistory(limit: number): Promise<HistoryRun[]> {
    const { rows } = await this.pool.query<{ run_id: string; workflow_name: string; status: string; steps: { steps: HistoryRun['steps']; variables: HistoryRun['variables'] | null } }>(
      'SELECT run_id, workflow_name, status, steps FROM runs WHERE steps IS NOT NULL ORDER BY created_at DESC, run_id DESC LIMIT $1',
      [limit],
    );
    return rows.reverse().map((r) => ({
      runId: r.run_id,
      workflow: r.workflow_name,
      status: r.status,
      steps: r.steps.steps,
      ...(r.steps.variables ? { variables: r.steps.variables } : {}),
    }));
  }

  async dailyStats(filter: AnalyticsFilter): Promise<DailyStats[]> {
    const { rows } = await this.pool.query<{ day: string; runs: string; by_status: Record<string, string>; median: string | null; p95: string | null; tokens: string; cost: number }>(
      `WITH scoped AS (
              SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, status, duration_ms,
                     input_tokens + output_tokens AS tokens, coalesce(cost_usd, 0) AS cost
              FROM runs ${ANALYTICS_WHERE}),
            per_day AS (
              SELECT day, count(*) AS runs,
                     percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE status = 'completed') AS median,
                     percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE status = 'completed') AS p95,
                     sum(tokens) AS tokens, sum(cost) AS cost
              FROM scoped GROUP BY day),
            per_status AS (
              SELECT day, jsonb_object_agg(status, n) AS by_status
              FROM (SELECT day, status, count(*) AS n FROM scoped GROUP BY day, status) s GROUP BY day)
       SELECT d.day, d.runs, d.median, d.p95, d.tokens, d.cost, s.by_status
       FROM per_day d JOIN per_status s USING (day) ORDER BY d.day DESC`,
      analyticsParams(filter),
    );
    return rows.map((r) => {
      const byStatus = Object.fromEntries(Object.entries(r.by_status).map(([k, v]) => [k, Number(v)]));
      const finished = (byStatus.completed ?? 0) + (byStatus.failed ?? 0) + (byStatus.cancelled ?? 0);
      return {
        day: r.day,
        runs: Number(r.runs),
        by_status: byStatus,
        completion_rate: finished > 0 ? round3((byStatus.completed ?? 0) / finished) : null,
        median_ms: r.median === null ? null : Number(r.median),
        p95_ms: r.p95 === null ? null : Number(r.p95),
        tokens: Number(r.tokens),
        cost_usd: roundUsd(Number(r.cost)),
      };
    });
  }

  async failureStats(filter: AnalyticsFilter): Promise<FailureStats[]> {
    const { rows } = await this.pool.query<{ error_code: string; runs: string; by_workflow: Record<string, string>; last: Date }>(
      `WITH per_workflow AS (
              SELECT coalesce(error_code, 'UNKNOWN') AS error_code, workflow_name, count(*) AS n, max(created_at) AS last
              FROM runs ${ANALYTICS_WHERE} AND status = 'failed' GROUP BY 1, 2)
       SELECT error_code, sum(n) AS runs, max(last) AS last, jsonb_object_agg(workflow_name, n) AS by_workflow
       FROM per_workflow GROUP BY error_code ORDER BY sum(n) DESC, error_code COLLATE "C"`,
      analyticsParams(filter),
    );
    return rows.map((r) => ({
      error_code: r.error_code,
      runs: Number(r.runs),
      by_workflow: Object.fromEntries(Object.entries(r.by_workflow).map(([k, v]) => [k, Number(v)])),
      last_created_at: r.last.toISOString(),
    }));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The WHERE clause of an {@link AnalyticsFilter}, over `$1` user, `$2` workflow, `$3` created from. */
const ANALYTICS_WHERE = `WHERE ($1::text IS NULL OR user_id = $1::text) AND ($2::text IS NULL OR workflow_name = $2::text)
                AND ($3::timestamptz IS NULL OR created_at >= $3::timestamptz)`;

function analyticsParams(filter: AnalyticsFilter): unknown[] {
  return [filter.userId ?? null, filter.workflow ?? null, filter.createdFrom === undefined ? null : new Date(filter.createdFrom)];
}


function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
