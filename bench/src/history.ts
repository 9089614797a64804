/**
 * Run archive benchmark (`node bench/dist/history.js`, after `tsc -b && tsc -p bench`): archive write
 * throughput (runs/s, each with 4 phases and 24 events, 4 writers), then list and analytics latency
 * (p50/p99) over ARCHIVE_BENCH_ROWS archived runs (default 100,000, bulk-inserted). Needs PostgreSQL
 * at FLEET_HISTORY_URL (default postgres://postgres@127.0.0.1:5432/test); uses and drops its own schema.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RunResult, StoredRunEvent } from '@agentfleet/core';
import { openHistoryStore } from '@agentfleet/manager';
import pg from 'pg';

const url = process.env.FLEET_HISTORY_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const rows = Number(process.env.ARCHIVE_BENCH_ROWS ?? 100_000);
const writes = Number(process.env.ARCHIVE_BENCH_WRITES ?? 2000);

function quantile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}

async function timed(n: number, fn: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: Math.round(quantile(ms, 0.5) * 100) / 100, p99: Math.round(quantile(ms, 0.99) * 100) / 100 };
}

function syntheticRun(i: number): { result: RunResult; events: StoredRunEvent[] } {
  const phases = ['plan', 'design', 'code', 'review'];
  const usage = { input_tokens: 1200, output_tokens: 800 };
  const result = {
    run_id: `bench-${i}`, workflow: { name: 'software-team', version: '1' }, status: 'completed', requirements: `build item ${i} with a todo list`,
    variables: {}, created_at: new Date().toISOString(), finished_at: new Date().toISOString(), duration_ms: 1000 + (i % 500),
    phases: phases.map((name) => ({ name, agent: name, status: 'completed', attempts: 1, iterations: 1, duration_ms: 250, usage })),
    completed_phases: phases, failed_phases: [], skipped_phases: [], parallel_speedup: 1,
    results: Object.fromEntries(phases.map((p) => [p, { summary: 'x'.repeat(2000) }])), errors: [], usage, provider: 'offline', model: null,
    artifacts_dir: null, links: {}, waiting_for: [],
  } as unknown as RunResult;
  const events = Array.from({ length: 24 }, (_, k) => ({ id: `${Date.now()}-${k}`, event: { type: 'phase_start', at: Date.now(), phase: phases[k % 4] } })) as unknown as StoredRunEvent[];
  return { result, events };
}

const schema = `bench_history_${randomBytes(4).toString('hex')}`;
const history = await openHistoryStore({ url, schema, poolSize: 4 });
const sql = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
await sql.connect();
try {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < writes) {
        const { result, events } = syntheticRun(next++);
        await history.write({ result, labels: { user_id: 'bench' }, events });
      }
    }),
  );
  const writeSeconds = (performance.now() - t0) / 1000;
  await sql.query(
    `INSERT INTO runs (run_id, status, workflow_name, workflow_version, requirements, user_id, created_at, finished_at, duration_ms, input_tokens, output_tokens, result)
     SELECT 'row-' || i, (ARRAY['completed','completed','failed','cancelled'])[1 + i % 4], 'wf-' || (i % 8), '1', 'build item ' || (i % 1000),
            'user-' || (i % 50), now() - i * interval '1 second', now() - i * interval '1 second', (i * 7919) % 100000, i % 5000, i % 3000, '{}'::jsonb
     FROM generate_series(1, $1::int) AS i`,
    [rows],
  );
  await sql.query('ANALYZE runs');
  const list = await timed(200, (i) => history.list({ status: 'failed', workflow: `wf-${i % 8}` }, 50));
  const listText = await timed(100, (i) => history.list({ text: `${i % 1000}` }, 50));
  const stats = await timed(20, () => history.workflowStats());
  console.log(JSON.stringify({ archive_writes: writes, archive_runs_per_s: Math.round(writes / writeSeconds), archived_rows: rows + writes, list_ms: list, list_text_ms: listText, analytics_ms: stats }, null, 2));
} finally {
  await sql.query(`DROP SCHEMA ${schema} CASCADE`);
  await sql.end();
  await history.close();
}
