/**
 * Analytics per day and failures by error code on Redis alone (no archive): runs that completed and
 * runs that failed on their budget, read back through `GET /api/analytics/daily`, `…/failures` and
 * `fleet analytics`, and equal to what the runs' own results say.
 */
import { createRedis, type RunResult } from '@agentfleet/core';
import type { DailyStats as Daily, FailureStats as Failure } from '@agentfleet/manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, ANALYST_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';
import { runCli } from './support/fleet.js';

let fx: ApiFixture;
const WORKFLOW = {
  name: 'analytics-wf',
  agents: ['planner'],
  phases: [{ name: 'plan', agent: 'planner', retries: 0 }],
};

beforeAll(async () => {
  fx = await startApiFixture('analytics');
  expect((await fx.call('POST', '/api/workflow-templates', { body: WORKFLOW })).status).toBe(201);
  expect((await fx.call('POST', '/api/permissions', { body: { user_type: 'analyst', template: 'analytics-wf' } })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

async function submit(key: string, budget?: Record<string, number>): Promise<string> {
  const res = await fx.call<{ run_id: string }>('POST', '/api/runs', { key, body: { requirements: 'Build a tiny todo API', template: 'analytics-wf', ...(budget ? { budget } : {}) } });
  expect(res.status).toBe(201);
  return res.body.run_id;
}

describe('analytics over time and by failure', () => {
  it('counts runs per day and failed runs by error code, per key', async () => {
    // Two runs that complete and one that fails at once: one token of budget cannot pay for a call.
    const ids = [await submit(ADMIN_KEY), await submit(ADMIN_KEY), await submit(ADMIN_KEY, { max_tokens: 1 }), await submit(ANALYST_KEY)];
    const blocking = createRedis(fx.fleet.url);
    const results: RunResult[] = [];
    try {
      for (const id of ids) results.push(await fx.fleet.client.follow(id, blocking, () => undefined));
    } finally {
      blocking.disconnect();
    }
    expect(results.map((r) => r.status)).toEqual(['completed', 'completed', 'failed', 'completed']);
    expect(results[2]?.errors[0]?.error.code).toBe('BUDGET_EXCEEDED');

    const daily = await fx.call<{ items: Daily[] }>('GET', '/api/analytics/daily?workflow=analytics-wf');
    expect(daily.status).toBe(200);
    // Expected per UTC day of creation, from the runs' own results (a run at midnight makes two days).
    const days = [...new Set(results.map((r) => r.created_at.slice(0, 10)))].sort().reverse();
    const today = days[0];
    expect(daily.body.items).toEqual(
      days.map((day) => {
        const of = results.filter((r) => r.created_at.slice(0, 10) === day);
        const durations = of.filter((r) => r.status === 'completed').map((r) => r.duration_ms).sort((a, b) => a - b);
        const byStatus: Record<string, number> = {};
        for (const r of of) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
        return {
          day,
          runs: of.length,
          by_status: byStatus,
          completion_rate: Math.round(((byStatus.completed ?? 0) / of.length) * 1000) / 1000,
          median_ms: durations[Math.max(1, Math.ceil(0.5 * durations.length)) - 1] ?? null,
          p95_ms: durations[Math.max(1, Math.ceil(0.95 * durations.length)) - 1] ?? null,
          tokens: of.reduce((n, r) => n + r.usage.input_tokens + r.usage.output_tokens, 0),
          cost_usd: 0,
        };
      }),
    );
    expect(daily.body.items.reduce((n, d) => n + d.runs, 0)).toBe(4);

    const failures = await fx.call<{ items: Failure[] }>('GET', '/api/analytics/failures?workflow=analytics-wf');
    expect(failures.body.items).toEqual([{ error_code: 'BUDGET_EXCEEDED', runs: 1, by_workflow: { 'analytics-wf': 1 }, last_created_at: results[2]?.created_at }]);

    // Another key sees only its own run, which did not fail.
    const own = await fx.call<{ items: Daily[] }>('GET', '/api/analytics/daily?workflow=analytics-wf', { key: ANALYST_KEY });
    expect(own.body.items.map((d) => [d.day, d.runs, d.by_status])).toEqual([[results[3]?.created_at.slice(0, 10), 1, { completed: 1 }]]);
    expect((await fx.call<{ items: Failure[] }>('GET', '/api/analytics/failures', { key: ANALYST_KEY })).body.items).toEqual([]);

    // Bad input names the field.
    const bad = await fx.call<{ error: { message: string } }>('GET', '/api/analytics/daily?days=0');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/days/);

    // The CLI prints the same figures from the API.
    const env = { FLEET_API_KEY: ADMIN_KEY };
    const cli = await runCli(['analytics', '--manager-url', fx.api.url, '--workflow', 'analytics-wf', '--json'], env);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual({ daily: daily.body.items, failures: failures.body.items });
    const text = await runCli(['analytics', '--manager-url', fx.api.url, '--workflow', 'analytics-wf'], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(today);
    expect(text.stdout).toMatch(/BUDGET_EXCEEDED\s+1/);
  }, 60_000);
});
