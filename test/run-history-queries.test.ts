/**
 * Listing and analytics over 50,000 archived runs (bulk-inserted into the real PostgreSQL, a schema of
 * this file): every page of `GET /api/runs`, walked with its cursor, and `GET /api/analytics/workflows`
 * equal a full computation over all rows in this process.
 */
import { openHistoryStore, startHttpApi, type HistoryStore, type HttpApi } from '@agentfleet/manager';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from './support/http-api.js';
import { createTestSchema, dropSchema, pgUrl, schemaClient } from './support/postgres.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const RUNS = 50_000;
const STATUSES = ['completed', 'completed', 'completed', 'failed', 'cancelled'];
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'omega'];
const BASE = Date.parse('2026-01-01T00:00:00Z');

interface Row {
  run_id: string;
  status: string;
  workflow_name: string;
  user_id: string;
  requirements: string;
  created_at: number;
  duration_ms: number;
  tokens: number;
  cost_usd: number;
  error_code: string | null;
}

let schema: string;
let history: HistoryStore;
let sql: pg.Client;
let api: HttpApi;
const prefix = uniquePrefix('history-queries');
let all: Row[];

beforeAll(async () => {
  schema = await createTestSchema('history_queries');
  history = await openHistoryStore({ url: pgUrl(), schema });
  sql = await schemaClient(schema);
  // One bulk insert; values are fixed functions of i, so a rerun inserts the same history.
  await sql.query(
    // 50,000 runs 37 s apart span about three weeks of days; failed runs carry one of three error codes or none.
    `INSERT INTO runs (run_id, status, workflow_name, workflow_version, requirements, user_id, created_at, finished_at, duration_ms, input_tokens, output_tokens, cost_usd, error_code, result)
     SELECT 'run-' || lpad(i::text, 6, '0'),
            ($2::text[])[1 + i % 5], 'wf-' || (i % 4), '1', 'build item ' || (i % 100) || ' with ' || ($3::text[])[1 + (i / 7) % 5],
            'user-' || (i % 13), to_timestamp($4::double precision / 1000) + i * interval '37 seconds',
            to_timestamp($4::double precision / 1000) + i * interval '37 seconds' + ((i * 7919) % 100000) * interval '1 millisecond',
            (i * 7919) % 100000, (i * 31) % 5000, (i * 17) % 3000, ((i * 13) % 1000) / 10000.0,
            CASE WHEN i % 5 = 3 THEN ($5::text[])[1 + i % 4] END, '{}'::jsonb
     FROM generate_series(1, $1::int) AS i`,
    [RUNS, STATUSES, WORDS, BASE, ['PHASE_TIMEOUT', 'BUDGET_EXCEEDED', 'PROVIDER_AUTH', null]],
  );
  const { rows } = await sql.query<{ run_id: string; status: string; workflow_name: string; user_id: string; requirements: string; created_at: Date; duration_ms: string; tokens: string; cost_usd: number; error_code: string | null }>(
    'SELECT run_id, status, workflow_name, user_id, requirements, created_at, duration_ms, input_tokens + output_tokens AS tokens, cost_usd, error_code FROM runs',
  );
  all = rows.map((r) => ({ ...r, created_at: r.created_at.getTime(), duration_ms: Number(r.duration_ms), tokens: Number(r.tokens) }));
  api = await startHttpApi({ redisUrl: redisUrl(), prefix, port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], history, bullBoard: false });
}, 120_000);

afterAll(async () => {
  await api?.close();
  await sql?.end();
  await history?.close();
  if (schema) await dropSchema(schema);
  await cleanupPrefix(redisUrl(), prefix);
});

async function get<T>(path: string): Promise<T> {
  const res = await fetch(api.url + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

/** Every page of a listing, following `next_cursor`. */
async function walk(query: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: Array<{ run_id: string }>; next_cursor: string | null } = await get(`/api/runs?limit=500&${query}${cursor ? `&cursor=${cursor}` : ''}`);
    ids.push(...page.items.map((i) => i.run_id));
    cursor = page.next_cursor;
  } while (cursor);
  return ids;
}

function expected(filter: (r: Row) => boolean): string[] {
  return all
    .filter(filter)
    .sort((a, b) => b.created_at - a.created_at || (a.run_id < b.run_id ? 1 : -1))
    .map((r) => r.run_id);
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1] ?? null;
}

describe(`queries over ${RUNS} archived runs`, () => {
  it('filtered listings walked with the cursor equal a full computation', async () => {
    expect(await walk('status=failed&workflow=wf-2')).toEqual(expected((r) => r.status === 'failed' && r.workflow_name === 'wf-2'));
    expect(await walk('user_id=user-5&q=gamma')).toEqual(expected((r) => r.user_id === 'user-5' && r.requirements.split(' ').includes('gamma')));
    const from = BASE + 10_000_000;
    const to = BASE + 12_000_000;
    const range = `created_after=${new Date(from).toISOString()}&created_before=${new Date(to).toISOString()}&workflow=wf-1`;
    expect(await walk(range)).toEqual(expected((r) => r.created_at >= from && r.created_at < to && r.workflow_name === 'wf-1'));
    const first = await get<{ items: Array<{ run_id: string }>; has_more: boolean }>('/api/runs?limit=3');
    expect(first.items.map((i) => i.run_id)).toEqual(expected(() => true).slice(0, 3));
    expect(first.has_more).toBe(true);
  }, 120_000);

  it('analytics equal a full computation', async () => {
    const body = await get<{ items: Array<Record<string, unknown>>; runs_considered: number }>('/api/analytics/workflows');
    expect(body.runs_considered).toBe(RUNS);
    const round = (n: number) => Math.round(n * 1000) / 1000;
    const want = [...new Set(all.map((r) => r.workflow_name))].sort().map((workflow) => {
      const rows = all.filter((r) => r.workflow_name === workflow);
      const byStatus: Record<string, number> = {};
      for (const r of rows) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
      const durations = rows.filter((r) => r.status === 'completed').map((r) => r.duration_ms).sort((a, b) => a - b);
      return {
        workflow,
        runs: rows.length,
        by_status: byStatus,
        completion_rate: round((byStatus.completed ?? 0) / rows.length),
        median_ms: percentile(durations, 0.5),
        p95_ms: percentile(durations, 0.95),
        mean_tokens: round(rows.reduce((n, r) => n + r.tokens, 0) / rows.length),
      };
    });
    expect(body.items).toEqual(want);
  }, 60_000);

  it('analytics per day and failures by error code equal a full computation', async () => {
    const days = [...new Set(all.map((r) => new Date(r.created_at).toISOString().slice(0, 10)))].sort().reverse();
    expect(days.length).toBeGreaterThan(20);
    // Every day of the history (days=3660), of one workflow, for one user.
    const daily = await get<{ items: Array<Record<string, unknown>> }>('/api/analytics/daily?days=3660&workflow=wf-1');
    const rows = all.filter((r) => r.workflow_name === 'wf-1');
    expect(daily.items).toEqual(
      days.map((day) => {
        const of = rows.filter((r) => new Date(r.created_at).toISOString().slice(0, 10) === day);
        const byStatus: Record<string, number> = {};
        for (const r of of) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
        const durations = of.filter((r) => r.status === 'completed').map((r) => r.duration_ms).sort((a, b) => a - b);
        const finished = of.length;
        return {
          day,
          runs: of.length,
          by_status: byStatus,
          completion_rate: Math.round(((byStatus.completed ?? 0) / finished) * 1000) / 1000,
          median_ms: percentile(durations, 0.5),
          p95_ms: percentile(durations, 0.95),
          tokens: of.reduce((n, r) => n + r.tokens, 0),
          cost_usd: Math.round(of.reduce((n, r) => n + r.cost_usd, 0) * 1e6) / 1e6,
        };
      }).filter((d) => d.runs > 0),
    );

    const failures = await get<{ items: Array<Record<string, unknown>> }>('/api/analytics/failures?days=3660');
    const failed = all.filter((r) => r.status === 'failed');
    const codes = new Map<string, Row[]>();
    for (const r of failed) codes.set(r.error_code ?? 'UNKNOWN', [...(codes.get(r.error_code ?? 'UNKNOWN') ?? []), r]);
    expect(failures.items).toEqual(
      [...codes.entries()]
        .sort(([a, x], [b, y]) => y.length - x.length || (a < b ? -1 : 1))
        .map(([code, of]) => {
          const byWorkflow: Record<string, number> = {};
          for (const r of of) byWorkflow[r.workflow_name] = (byWorkflow[r.workflow_name] ?? 0) + 1;
          return { error_code: code, runs: of.length, by_workflow: byWorkflow, last_created_at: new Date(Math.max(...of.map((r) => r.created_at))).toISOString() };
        }),
    );
    expect(failures.items.map((f) => f.error_code)).toContain('UNKNOWN');
  }, 60_000);
});
