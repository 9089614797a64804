/**
 * `fleet analytics [--days N] [--workflow W] [--json] [--manager-url URL]`: runs per UTC day (by status,
 * completion rate, p50/p95 time to complete, tokens, cost) and failed runs by error code, from the
 * manager's HTTP API (`GET /api/analytics/daily` and `…/failures`), over the archive when it has one.
 */
import { Option, type Command } from 'commander';
import type { DailyStats as Daily, FailureStats as Failure } from '@agentfleet/manager';
import { apiRequest } from '../api-client.js';
import { apiOptions, clientOptions } from './submit.js';

/** The report is the command's output: stdout. */
const out = (line: string) => process.stdout.write(line + '\n');
const seconds = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(1)}s`);

export function register(program: Command): void {
  apiOptions(
    program
      .command('analytics')
      .description('runs per day and failed runs by error code, from the manager HTTP API')
      .addOption(new Option('--days <n>', 'the last N UTC days, today included').default('30'))
      .option('--workflow <name>', 'only runs of this workflow')
      .option('--json', 'print {daily, failures} as JSON', false),
  ).action(async (opts: { days: string; workflow?: string; json: boolean; managerUrl: string; apiKey?: string }) => {
    const api = clientOptions(opts);
    const query = new URLSearchParams({ days: opts.days, ...(opts.workflow ? { workflow: opts.workflow } : {}) }).toString();
    const [daily, failures] = await Promise.all([
      apiRequest<{ items: Daily[] }>(api, 'GET', `/api/analytics/daily?${query}`),
      apiRequest<{ items: Failure[] }>(api, 'GET', `/api/analytics/failures?${query}`),
    ]);
    if (opts.json) {
      process.stdout.write(JSON.stringify({ daily: daily.items, failures: failures.items }, null, 2) + '\n');
      return;
    }
    out(`${'day'.padEnd(10)}  ${'runs'.padStart(6)}  ${'done'.padStart(5)}  ${'p50'.padStart(7)}  ${'p95'.padStart(7)}  ${'tokens'.padStart(10)}  ${'cost'.padStart(9)}  by status`);
    for (const d of daily.items) {
      const rate = d.completion_rate === null ? '—' : `${Math.round(d.completion_rate * 100)}%`;
      const statuses = Object.entries(d.by_status).map(([k, v]) => `${k} ${v}`).join(', ');
      out(`${d.day}  ${String(d.runs).padStart(6)}  ${rate.padStart(5)}  ${seconds(d.median_ms).padStart(7)}  ${seconds(d.p95_ms).padStart(7)}  ${String(d.tokens).padStart(10)}  ${`$${d.cost_usd.toFixed(4)}`.padStart(9)}  ${statuses}`);
    }
    if (daily.items.length === 0) out(`no runs in the last ${opts.days} day(s)`);
    out('');
    out(failures.items.length === 0 ? 'no failed runs' : 'failed runs by error code:');
    for (const f of failures.items) {
      const where = Object.entries(f.by_workflow).map(([k, v]) => `${k} ${v}`).join(', ');
      out(`  ${f.error_code.padEnd(24)} ${String(f.runs).padStart(6)}  ${where}`);
    }
  });
}
