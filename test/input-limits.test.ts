/**
 * Input limits over the real HTTP API and a real fleet: an event, variables or a template that would
 * make the run's state too deep or too large is refused with 400 naming the limit, before anything
 * is written, and the run goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYST_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';
import { waitForRunEnd, waitForRunStatus } from './support/run-events.js';

type Json = Record<string, unknown> & { error?: { code: string; message: string } };
type RunJson = Json & { run_id: string; status: string; phases: Array<{ name: string; status: string }> };

let fx: ApiFixture;
beforeAll(async () => {
  fx = await startApiFixture('input-limits');
  const tpl = {
    name: 'limits-approval',
    description: 'waits for an approval',
    agents: ['planner'],
    phases: [
      { name: 'plan', agent: 'planner', timeout: 20, retries: 0 },
      { name: 'sign_off', type: 'approval', depends_on: ['plan'], timeout: 600 },
    ],
  };
  expect((await fx.call('POST', '/api/workflow-templates', { body: tpl })).status).toBe(201);
  expect((await fx.call('POST', '/api/permissions', { body: { user_type: 'analyst', template: 'limits-approval' } })).status).toBe(201);
});
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

/** `{"a":{"a":…{}}}` nested `depth` levels. */
function nested(depth: number): unknown {
  let v: unknown = {};
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

async function waitingRun(key: string): Promise<string> {
  const created = await fx.call<Json & { run_id: string }>('POST', '/api/runs', { key, body: { requirements: 'Build a tiny todo API', template: 'limits-approval' } });
  expect(created.status).toBe(201);
  const id = created.body.run_id;
  await waitForRunStatus(fx.fleet, id, 'waiting', { what: `run ${id} to wait for its approval` });
  return id;
}

async function finished(id: string): Promise<RunJson> {
  await waitForRunEnd(fx.fleet, id);
  return (await fx.call<RunJson>('GET', `/api/runs/${id}`)).body;
}

describe('events', () => {
  it('refuses event data nested 4,000 levels (8 KB) with 400 naming the depth limit; the run still takes its approval', async () => {
    const id = await waitingRun(ANALYST_KEY);
    const deep = await fx.call<Json>('POST', `/api/runs/${id}/events`, { key: ANALYST_KEY, body: { type: 'answers', data: nested(4000) } });
    expect(deep.status).toBe(400);
    expect(deep.body.error?.code).toBe('INVALID_INPUT');
    expect(deep.body.error?.message).toMatch(/data.*nested.*deeper than 32 levels/);
    // Deeper than JSON.stringify can write: sent as raw text.
    const n = 100_000;
    const deeper = await fetch(`${fx.api.url}/api/runs/${id}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ANALYST_KEY}` },
      body: `{"type":"answers","data":${'{"a":'.repeat(n)}{}${'}'.repeat(n)}}`,
    });
    expect(deeper.status).toBe(400);
    const big = await fx.call<Json>('POST', `/api/runs/${id}/events`, { key: ANALYST_KEY, body: { type: 'answers', data: { text: 'x'.repeat(70_000) } } });
    expect(big.status).toBe(400);
    expect(big.body.error?.message).toMatch(/body.data is \d+ bytes of JSON; the limit for event data is 65536 bytes/);
    const approve = await fx.call('POST', `/api/runs/${id}/events`, { key: ANALYST_KEY, body: { type: 'approval', data: { approved: true } } });
    expect(approve.status).toBe(202);
    expect((await finished(id)).status).toBe('completed');
  });
});

describe('variables', () => {
  it('refuses 5,000 variables and a 1.9 MB variable with 400 naming the limit', async () => {
    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`v${i}`, 'x']));
    const tooMany = await fx.call<Json>('POST', '/api/runs', { key: ANALYST_KEY, body: { requirements: 'Build it', template: 'limits-approval', variables: many } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error?.message).toMatch(/body.variables has 5000 entries; the limit is 100 variables/);
    const huge = await fx.call<Json>('POST', '/api/runs', { key: ANALYST_KEY, body: { requirements: 'Build it', template: 'limits-approval', variables: { notes: 'x'.repeat(1_900_000) } } });
    expect(huge.status).toBe(400);
    expect(huge.body.error?.message).toMatch(/body.variables.notes is 1900000 bytes; the limit for one variable is 16384 bytes/);
  });
});

describe('workflow variables', () => {
  it("refuses a template whose default variables pass a run's limits with 400 naming the limit", async () => {
    const variables = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`v${i}`, 'x'.repeat(10_000)]));
    const tpl = { name: 'limits-big-vars', agents: ['planner'], variables, phases: [{ name: 'p', agent: 'planner' }] };
    const refused = await fx.call<Json>('POST', '/api/workflow-templates', { body: tpl });
    expect(refused.status).toBe(400);
    expect(refused.body.error?.message).toMatch(/variables are 200\d{3} bytes in all; the limit is 65536 bytes \(64 KiB\)/);
  });
});

describe('a refused submission', () => {
  it('writes nothing: a variable named like a phase, with a conversation and an idempotency key, answers 400 and leaves no key in Redis', async () => {
    const keysBefore = new Set(await fx.fleet.redis.keys(`${fx.fleet.prefix}:*`));
    const refused = await fx.call<Json>('POST', '/api/runs', {
      key: ANALYST_KEY,
      headers: { 'idempotency-key': 'refused-submission-1' },
      body: { requirements: 'Build it', template: 'limits-approval', variables: { plan: 'x' }, conversation_id: 'refused-conversation' },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error?.message).toMatch(/variable "plan" has the name of a phase of limits-approval; rename it/);
    // The keys a submission writes (the fleet's own queue keys come and go beside it).
    const submissionKey = /:(run|runs|idempotency|conversation)[:]/;
    const written = (await fx.fleet.redis.keys(`${fx.fleet.prefix}:*`)).filter((k) => !keysBefore.has(k) && submissionKey.test(k));
    expect(written).toEqual([]);
  });
});

describe('tenants', () => {
  it("analytics show a non-admin key only its own runs, never an admin's inline workflow", async () => {
    const inline = { name: 'admin-secret-inline', agents: ['planner'], phases: [{ name: 'p', agent: 'planner', timeout: 20, retries: 0 }] };
    expect((await fx.call('POST', '/api/runs', { body: { requirements: 'Build it', workflow: inline } })).status).toBe(201);
    expect((await fx.call('POST', '/api/runs', { key: ANALYST_KEY, body: { requirements: 'Build it', template: 'limits-approval' } })).status).toBe(201);
    type Stats = { items: Array<{ workflow: string }>; runs_considered: number };
    const admin = await fx.call<Stats>('GET', '/api/analytics/workflows');
    expect(admin.body.items.map((i) => i.workflow)).toContain('admin-secret-inline');
    const analyst = await fx.call<Stats>('GET', '/api/analytics/workflows', { key: ANALYST_KEY });
    expect(analyst.status).toBe(200);
    expect(analyst.body.items.map((i) => i.workflow)).not.toContain('admin-secret-inline');
    // The analyst's own run is still counted.
    expect(analyst.body.items.map((i) => i.workflow)).toContain('limits-approval');
  });
});
