/**
 * The run archive (real PostgreSQL) lists the runs of a schedule by their `schedule` label, so
 * `GET /api/runs?schedule=` and `fleet status --schedule` find runs that left Redis too.
 */
import { buildRunResult, compileWorkflow, initialRunState, type RunMeta } from '@agentfleet/core';
import { openHistoryStore, type HistoryStore } from '@agentfleet/manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSchema, dropSchema, pgUrl } from './support/postgres.js';

let schema: string;
let history: HistoryStore;

beforeAll(async () => {
  schema = await createTestSchema('schedules_archive');
  history = await openHistoryStore({ url: pgUrl(), schema });
}, 60_000);
afterAll(async () => {
  await history?.close();
  if (schema) await dropSchema(schema);
});

function archived(runId: string, labels: Record<string, unknown>, createdAt: number) {
  const workflow = compileWorkflow({ name: 'sign-off', agents: ['planner'], phases: [{ name: 'sign_off', type: 'approval', timeout: 60 }] });
  const meta: RunMeta = { run_id: runId, workflow, requirements: 'nightly', variables: {}, created_at: createdAt, provider: 'offline', trace: {} };
  const state = { ...initialRunState(workflow, createdAt), status: 'completed' as const, finishedAt: createdAt + 1000 };
  return { result: buildRunResult(meta, state, {}, createdAt + 1000), labels, events: [] };
}

describe('archived runs of a schedule', () => {
  it('are listed by the schedule label', async () => {
    const t = Date.parse('2026-12-01T01:00:00Z');
    await history.write(archived('nightly-1', { schedule: 'nightly', schedule_fire_time: new Date(t).toISOString(), user_id: 'cli' }, t));
    await history.write(archived('nightly-2', { schedule: 'nightly', schedule_fire_time: new Date(t + 86_400_000).toISOString(), user_id: 'cli' }, t + 86_400_000));
    await history.write(archived('other', { schedule: 'hourly', user_id: 'cli' }, t + 1000));
    await history.write(archived('by-hand', { user_id: 'cli' }, t + 2000));
    expect((await history.list({ schedule: 'nightly' }, 10)).map((r) => r.run_id)).toEqual(['nightly-2', 'nightly-1']);
    expect((await history.list({ schedule: 'hourly' }, 10)).map((r) => r.run_id)).toEqual(['other']);
    expect((await history.list({ schedule: 'weekly' }, 10)).map((r) => r.run_id)).toEqual([]);
    expect((await history.get('nightly-1'))?.labels.schedule).toBe('nightly');
  });
});
