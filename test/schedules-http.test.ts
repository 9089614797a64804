/**
 * Schedules over the HTTP API (a real manager and API on real Redis): a bad cron is answered with the
 * field and the fix, a schedule is added, listed, paused, resumed, triggered and removed, the run a
 * trigger starts carries the schedule's name and fire time, `GET /api/runs?schedule=` finds it, and
 * the OpenAPI document describes every schedule route.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYST_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

type Json = Record<string, unknown>;

let fx: ApiFixture;
beforeAll(async () => {
  fx = await startApiFixture('schedules-http');
  const template = {
    name: 'sign-off',
    description: 'waits for a sign-off',
    agents: ['planner'],
    phases: [{ name: 'sign_off', type: 'approval', timeout: 3600 }],
  };
  expect((await fx.call('POST', '/api/workflow-templates', { body: template })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

const nightly = { name: 'nightly-review', workflow: 'sign-off', cron: '0 2 * * *', tz: 'Europe/Berlin', requirements: 'Review the day', variables: { team: 'core' } };

describe('schedules over HTTP', () => {
  it('answers a bad cron, an unknown time zone and an unknown field with the field and the fix', async () => {
    const bad = await fx.call<{ error: { code: string; message: string; issues: Array<{ path: string; message: string }> } }>('POST', '/api/schedules', {
      body: { ...nightly, cron: '0 25 * * *', tz: 'Europe/Berlln' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_INPUT');
    const paths = bad.body.error.issues.map((i) => i.path);
    expect(paths).toEqual(['body.tz']);
    expect(bad.body.error.message).toContain('write e.g. UTC, Europe/Berlin');

    const cron = await fx.call<{ error: { issues: Array<{ path: string; message: string }> } }>('POST', '/api/schedules', { body: { ...nightly, cron: '0 25 * * *' } });
    expect(cron.status).toBe(400);
    expect(cron.body.error.issues[0]?.path).toBe('body.cron');
    expect(cron.body.error.issues[0]?.message).toMatch(/"0 25 \* \* \*" is not a cron expression .*write e\.g\. "0 2 \* \* \*"/);

    const fields = await fx.call<{ error: { issues: Array<{ path: string }> } }>('POST', '/api/schedules', { body: { ...nightly, cron: '0 2 * *' } });
    expect(fields.body.error.issues[0]).toMatchObject({ path: 'body.cron' });

    const unknown = await fx.call<{ error: { message: string } }>('POST', '/api/schedules', { body: { ...nightly, overlapp: 'skip' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('unknown field "overlapp" (did you mean "overlap"?)');

    const noWorkflow = await fx.call<{ error: { code: string } }>('POST', '/api/schedules', { body: { ...nightly, workflow: 'no-such-workflow' } });
    expect(noWorkflow.status).toBe(404);
    expect((await fx.call('POST', '/api/schedules', { key: ANALYST_KEY, body: nightly })).status).toBe(403);
  });

  it('adds, lists, pauses, resumes, triggers and removes a schedule; the triggered run carries its name and fire time', async () => {
    const added = await fx.call<Json>('POST', '/api/schedules', { body: nightly });
    expect(added.status).toBe(201);
    expect(added.headers.get('location')).toBe('/api/schedules/nightly-review');
    expect(added.body).toMatchObject({ name: 'nightly-review', cron: '0 2 * * *', tz: 'Europe/Berlin', overlap: 'skip', catch_up: 'latest', misfire_grace: '1m', status: 'active' });
    // 02:00 in Berlin is 00:00 or 01:00 UTC, depending on daylight saving time.
    expect(new Date(added.body.next_fire_at as string).getUTCHours()).toBeLessThanOrEqual(1);
    expect((await fx.call('POST', '/api/schedules', { body: nightly })).status).toBe(409);

    const list = await fx.call<{ items: Json[] }>('GET', '/api/schedules', { key: ANALYST_KEY });
    expect(list.body.items.map((s) => s.name)).toEqual(['nightly-review']);

    const paused = await fx.call<Json>('POST', '/api/schedules/nightly-review/pause');
    expect(paused.body).toMatchObject({ status: 'paused', next_fire_at: null });
    const resumed = await fx.call<Json>('POST', '/api/schedules/nightly-review/resume');
    expect(resumed.body.status).toBe('active');
    expect(resumed.body.next_fire_at).toBe(added.body.next_fire_at);

    const fired = await fx.call<Json & { run_id: string }>('POST', '/api/schedules/nightly-review/trigger');
    expect(fired.status).toBe(201);
    expect(fired.body).toMatchObject({ action: 'start', manual: true });
    expect(fired.headers.get('location')).toBe(`/api/runs/${fired.body.run_id}`);
    const run = await fx.call<Json>('GET', `/api/runs/${fired.body.run_id}`);
    expect(run.body).toMatchObject({ schedule: 'nightly-review', schedule_fire_time: new Date(fired.body.fire_time as number).toISOString(), variables: { team: 'core' } });
    expect((run.body.links as Json).schedule).toEqual({ name: 'nightly-review', fire_time: run.body.schedule_fire_time, manual: true });

    // The run waits for its sign-off, so a second trigger is skipped (overlap: skip).
    const second = await fx.call<Json>('POST', '/api/schedules/nightly-review/trigger');
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ action: 'skipped', previous_run_id: fired.body.run_id });

    const runs = await fx.call<{ items: Json[] }>('GET', '/api/runs?schedule=nightly-review');
    expect(runs.body.items.map((r) => r.run_id)).toEqual([fired.body.run_id]);
    expect(runs.body.items[0]?.schedule).toBe('nightly-review');
    expect((await fx.call<{ items: Json[] }>('GET', '/api/runs?schedule=another')).body.items).toEqual([]);

    const shown = await fx.call<Json & { runs: Json[]; fires: Json }>('GET', '/api/schedules/nightly-review');
    expect(shown.body.runs).toEqual([{ run_id: fired.body.run_id, fire_time: run.body.schedule_fire_time, status: 'waiting' }]);
    expect(shown.body.fires).toEqual({ start: 1, skipped: 1, missed: 0 });
    expect(shown.body.last_outcome).toBe('skipped');

    expect((await fx.call('DELETE', '/api/schedules/nightly-review')).body).toEqual({ name: 'nightly-review', removed: true });
    const gone = await fx.call<{ error: { code: string } }>('GET', '/api/schedules/nightly-review');
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('SCHEDULE_NOT_FOUND');
    // The run it started stays.
    expect((await fx.call('GET', `/api/runs/${fired.body.run_id}`)).status).toBe(200);
  });

  it('describes every schedule route in a valid OpenAPI document', async () => {
    const doc = await fx.call<{ paths: Record<string, Record<string, Json>> }>('GET', '/openapi.json', { key: null });
    const res = await new Validator().validate(doc.body);
    expect(res.errors ?? []).toEqual([]);
    for (const [path, method] of [
      ['/api/schedules', 'get'],
      ['/api/schedules', 'post'],
      ['/api/schedules/{name}', 'get'],
      ['/api/schedules/{name}', 'delete'],
      ['/api/schedules/{name}/pause', 'post'],
      ['/api/schedules/{name}/resume', 'post'],
      ['/api/schedules/{name}/trigger', 'post'],
    ] as const) {
      expect(doc.body.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    }
    const body = doc.body.paths['/api/schedules']?.post?.requestBody as { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
    expect(Object.keys(body.content['application/json']?.schema.properties ?? {})).toEqual(expect.arrayContaining(['cron', 'every', 'tz', 'overlap', 'catch_up', 'misfire_grace']));
    const query = (doc.body.paths['/api/runs']?.get?.parameters as Array<{ name: string }>).map((p) => p.name);
    expect(query).toContain('schedule');
  });
});
