/**
 * The manager's HTTP API over real HTTP on a listening port, with a real fleet (manager + agent
 * pools, offline model) on real Redis: templates, runs, permissions, SSE, end actions, OpenAPI.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { signWebhook, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '@agentfleet/manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, ANALYST_KEY, readSse, startApiFixture, startWebhookReceiver, type ApiFixture } from './support/http-api.js';
import { waitForRunEnd, waitForRunEvent } from './support/run-events.js';

type Json = Record<string, unknown> & { error?: { code: string; message: string; issues?: Array<{ path: string; message: string }>; active_run_id?: string } };
type RunJson = Json & { run_id: string; status: string; workflow: { name: string; version: string }; phases: Array<{ name: string; status: string }>; errors: Array<{ phase: string; error: { code: string; message: string } }> };

let fx: ApiFixture;
beforeAll(async () => {
  process.env.FLEET_WEBHOOK_SECRET = 'whsec-test-0123456789';
  fx = await startApiFixture('http-api');
});
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

/** A one- or two-phase template on built-in roles. */
function template(name: string, extra: Record<string, unknown> = {}, phases: unknown[] = [{ name: 'plan', agent: 'planner', timeout: 20, retries: 0 }]) {
  return { name, description: `test template ${name}`, agents: ['planner', 'reviewer'], phases, ...extra };
}

/** The run as the API shows it once it has finished (woken by the run's events, not by polling). */
async function waitFinished(id: string): Promise<RunJson> {
  await waitForRunEnd(fx.fleet, id);
  return (await fx.call<RunJson>('GET', `/api/runs/${id}`)).body;
}

/** The run as the API shows it once its end action recorded an attempt with `outcome`. */
async function afterEndAction<T>(id: string, outcome: 'succeeded' | 'failed'): Promise<T> {
  await waitForRunEvent(fx.fleet, id, (e) => e.type === 'end_action' && (e as { outcome?: string }).outcome === outcome, { what: `its end action to be ${outcome}` });
  return (await fx.call<T>('GET', `/api/runs/${id}`)).body;
}

async function submit(body: Record<string, unknown>, key: string = ADMIN_KEY) {
  return fx.call<Json & { run_id: string }>('POST', '/api/runs', { key, body: { requirements: 'Build a tiny todo API', ...body } });
}

describe('OpenAPI and health', () => {
  it('serves a valid OpenAPI 3.1 document that lists every route, a docs page and /healthz', async () => {
    const doc = await fx.call<{ openapi: string; paths: Record<string, Record<string, unknown>> }>('GET', '/openapi.json', { key: null });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    const validator = new Validator();
    const res = await validator.validate(doc.body);
    expect(res.errors ?? [], JSON.stringify(res.errors)).toEqual([]);
    expect(res.valid).toBe(true);
    const missing = fx.api.routes.filter((r) => {
      const [method, path] = r.split(' ') as [string, string];
      const openapiPath = path.replace(/:([A-Za-z_]+)/g, '{$1}');
      return !doc.body.paths[openapiPath]?.[method.toLowerCase()];
    });
    expect(missing).toEqual([]);
    expect(fx.api.routes.length).toBeGreaterThanOrEqual(20);

    const docs = await fetch(`${fx.api.url}/docs`, { redirect: 'follow' });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger');
    expect((await fx.call('GET', '/healthz', { key: null })).body).toEqual({ status: 'ok', redis: 'ok' });
    expect((await fx.call('GET', '/readyz', { key: null })).status).toBe(200);
  });
});

describe('trace context', () => {
  it('an incoming W3C traceparent on POST /api/runs becomes the parent of the run span; a malformed one starts a trace of its own', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const traceparent = `00-${traceId}-00f067aa0ba902b7-01`;
    const joined = await fx.call<Json & { run_id: string }>('POST', '/api/runs', {
      body: { requirements: 'Build a tiny todo API', template: 'software-delivery' },
      headers: { traceparent, tracestate: 'vendor=abc' },
    });
    expect(joined.status).toBe(201);
    const run = await fx.fleet.client.store.getRun(joined.body.run_id);
    expect(run.meta.trace).toEqual({ traceparent, tracestate: 'vendor=abc' });
    expect(run.state.span?.trace_id).toBe(traceId);

    const own = await fx.call<Json & { run_id: string }>('POST', '/api/runs', {
      body: { requirements: 'Build a tiny todo API', template: 'software-delivery' },
      headers: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' },
    });
    expect(own.status).toBe(201);
    const other = await fx.fleet.client.store.getRun(own.body.run_id);
    expect(other.meta.trace).toEqual({});
    expect(other.state.span?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(other.state.span?.trace_id).not.toBe('00000000000000000000000000000000');
  });
});

describe('auth and permissions', () => {
  it('answers 401 without a valid key, 403 for non-admin changes and ungranted templates, and honours grants', async () => {
    expect((await fx.call('GET', '/api/runs', { key: null })).status).toBe(401);
    const bad = await fx.call<Json>('GET', '/api/workflow-templates', { key: 'not-a-valid-key-at-all' });
    expect(bad.status).toBe(401);
    expect(bad.body.error?.code).toBe('UNAUTHORIZED');

    expect((await fx.call('POST', '/api/workflow-templates', { key: ANALYST_KEY, body: template('perm-x') })).status).toBe(403);
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('perm-x') })).status).toBe(201);
    const denied = await submit({ template: 'perm-x' }, ANALYST_KEY);
    expect(denied.status).toBe(403);
    expect(denied.body.error?.message).toMatch(/user type "analyst" may not run template "perm-x"/);
    // Built-in workflows are open to every key.
    expect((await submit({ template: 'software-delivery', conversation_id: 'perm-builtin' }, ANALYST_KEY)).status).toBe(201);

    expect((await fx.call('POST', '/api/permissions', { key: ANALYST_KEY, body: { user_type: 'analyst', template: 'perm-x' } })).status).toBe(403);
    expect((await fx.call('POST', '/api/permissions', { body: { user_type: 'analyst', template: 'perm-x' } })).status).toBe(201);
    expect((await fx.call('POST', '/api/permissions', { body: { user_type: 'analyst', template: 'nope-template' } })).status).toBe(404);
    expect((await fx.call<{ items: unknown[] }>('GET', '/api/permissions')).body.items).toContainEqual({ user_type: 'analyst', template: 'perm-x' });
    const allowed = await submit({ template: 'perm-x' }, ANALYST_KEY);
    expect(allowed.status).toBe(201);
    // An analyst sees its own runs only; the admin sees them all.
    const mine = await fx.call<{ items: Array<{ run_id: string; user_id: string }> }>('GET', '/api/runs?limit=500', { key: ANALYST_KEY });
    expect(mine.body.items.map((r) => r.run_id)).toContain(allowed.body.run_id);
    expect(new Set(mine.body.items.map((r) => r.user_id)).size).toBe(1);
    expect((await fx.call('DELETE', '/api/permissions?user_type=analyst&template=perm-x')).status).toBe(204);
    expect((await fx.call('DELETE', '/api/permissions?user_type=analyst&template=perm-x')).status).toBe(404);
    expect((await submit({ template: 'perm-x' }, ANALYST_KEY)).status).toBe(403);
    // Revoked means revoked: the analyst may no longer resume or re-run its earlier run of perm-x either.
    const resumed = await fx.call<Json>('POST', `/api/runs/${allowed.body.run_id}/resume`, { key: ANALYST_KEY });
    expect(resumed.status).toBe(403);
    expect(resumed.body.error?.message).toMatch(/may no longer run template "perm-x"/);
    expect((await fx.call('POST', `/api/runs/${allowed.body.run_id}/rerun`, { key: ANALYST_KEY, body: { from: 'a' } })).status).toBe(403);

    // Keys created through the API by an admin: shown once, stored hashed, deletable.
    const created = await fx.call<{ key: string; id: string; user_type: string }>('POST', '/api/api-keys', { body: { user_type: 'ops', name: 'ci' } });
    expect(created.status).toBe(201);
    expect((await fx.call('GET', '/api/workflow-templates', { key: created.body.key })).status).toBe(200);
    const stored = await fx.fleet.redis.hgetall(`${fx.fleet.prefix}:api-keys`);
    expect(JSON.stringify(stored)).not.toContain(created.body.key);
    const listed = await fx.call<{ items: Array<{ id: string }> }>('GET', '/api/api-keys');
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);
    expect((await fx.call('DELETE', `/api/api-keys/${created.body.id}`)).status).toBe(204);
    expect((await fx.call('GET', '/api/workflow-templates', { key: created.body.key })).status).toBe(401);
    expect((await fx.call('DELETE', `/api/api-keys/${created.body.id}`)).status).toBe(404);

    // The queue dashboard: admin only; a browser gets a Basic-auth prompt.
    const board = await fetch(`${fx.api.url}/admin/queues`);
    expect(board.status).toBe(401);
    expect(board.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect((await fx.call('GET', '/admin/queues', { key: ANALYST_KEY })).status).toBe(403);
    // Basic credentials (cached by a browser for the dashboard) do not authenticate API calls.
    const basicOnApi = await fetch(`${fx.api.url}/api/runs`, { headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}` } });
    expect(basicOnApi.status).toBe(401);
    // Percent-encoding the path does not get around the admin check (the router decodes it).
    for (const sneaky of ['/%61dmin/queues', '/%61dmin/queues/api/queues', '/admin%2Fqueues']) {
      expect((await fx.call('GET', sneaky, { key: ANALYST_KEY })).status, sneaky).not.toBe(200);
    }
    const boardOk = await fetch(`${fx.api.url}/admin/queues`, { headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}` } });
    expect(boardOk.status).toBe(200);
    expect(await boardOk.text()).toContain('<html');
  });
});

describe('workflow templates', () => {
  it('creates, lists, filters, versions, deactivates, and refuses bad templates naming each problem', async () => {
    const t = template('tpl-crud', { category: 'docs', tags: ['writing'], guidelines: 'Write in British English.' });
    const created = await fx.call<Json>('POST', '/api/workflow-templates', { body: t });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/api/workflow-templates/tpl-crud');
    expect(created.body).toMatchObject({ name: 'tpl-crud', version: '1', is_active: true, builtin: false, category: 'docs', versions: 1 });
    const dup = await fx.call<Json>('POST', '/api/workflow-templates', { body: t });
    expect(dup.status).toBe(409);
    expect(dup.body.error?.message).toMatch(/already exists/);
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('software-delivery') })).status).toBe(409);

    const bad = await fx.call<Json>('POST', '/api/workflow-templates', {
      body: {
        name: 'tpl-bad',
        agents: ['planner'],
        phases: [{ name: 'a', agent: 'planner' }, { name: 'a', agent: 'planner' }],
        state_schema: { type: 'object', properties: { a: { type: 'no-such-type' } } },
        end_action_type: 'api_call',
      },
    });
    expect(bad.status).toBe(400);
    const paths = bad.body.error?.issues?.map((i) => i.path) ?? [];
    expect(paths).toEqual(expect.arrayContaining(['phases[1].name', 'state_schema', 'end_action_target']));
    const empty = await fx.call<Json>('POST', '/api/workflow-templates', { body: { name: 'tpl-empty', agents: ['planner'], phases: [] } });
    expect(empty.status).toBe(400);
    expect(empty.body.error?.issues?.[0]?.path).toBe('phases');

    const list = await fx.call<{ items: Array<{ name: string; builtin: boolean }>; total: number }>('GET', '/api/workflow-templates?category=docs');
    expect(list.body.items.map((i) => i.name)).toEqual(['tpl-crud']);
    const all = await fx.call<{ items: Array<{ name: string; builtin: boolean }> }>('GET', '/api/workflow-templates?limit=500');
    expect(all.body.items.find((i) => i.name === 'software-delivery')?.builtin).toBe(true);
    expect((await fx.call<{ items: Array<{ name: string }> }>('GET', '/api/workflow-templates?q=BRITISH')).body.items).toEqual([]);
    expect((await fx.call<{ items: Array<{ name: string }> }>('GET', '/api/workflow-templates?q=WRITING')).body.items.map((i) => i.name)).toEqual(['tpl-crud']);

    const v2 = await fx.call<Json>('PUT', '/api/workflow-templates/tpl-crud', { body: { ...t, description: 'second' } });
    expect(v2.status).toBe(200);
    expect(v2.body).toMatchObject({ version: '2', description: 'second', versions: 2 });
    expect((await fx.call<Json>('GET', '/api/workflow-templates/tpl-crud?version=1')).body).toMatchObject({ version: '1', description: 'test template tpl-crud' });
    expect((await fx.call('PUT', '/api/workflow-templates/tpl-crud', { body: { ...t, name: 'other' } })).status).toBe(400);
    expect((await fx.call('PUT', '/api/workflow-templates/tpl-none', { body: { ...t, name: 'tpl-none' } })).status).toBe(404);

    expect((await fx.call('DELETE', '/api/workflow-templates/tpl-crud')).status).toBe(204);
    expect((await fx.call<Json>('GET', '/api/workflow-templates/tpl-crud')).body).toMatchObject({ is_active: false, versions: 2 });
    expect((await fx.call<{ items: unknown[] }>('GET', '/api/workflow-templates?is_active=false')).body.items).toHaveLength(1);
    expect((await submit({ template: 'tpl-crud' })).status).toBe(404);
    expect((await fx.call('DELETE', '/api/workflow-templates/software-delivery')).status).toBe(409);
    expect((await fx.call('GET', '/api/workflow-templates/tpl-none')).status).toBe(404);
  });

  it('validates a template as registering would, storing nothing', async () => {
    const ok = await fx.call<Json & { valid: boolean; name: string; phases: number; definition: { version: string } }>('POST', '/api/workflow-templates/validate', { body: template('tpl-check') });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ valid: true, name: 'tpl-check', phases: 1, definition: { version: '1' } });
    expect((await fx.call('GET', '/api/workflow-templates/tpl-check')).status).toBe(404);
    expect((await fx.call('POST', '/api/workflow-templates/validate', { key: ANALYST_KEY, body: template('tpl-check') })).status).toBe(403);
    const bad = await fx.call<Json>('POST', '/api/workflow-templates/validate', { body: { name: 'tpl-check', agents: ['planner'], phases: [{ name: 'a', agent: 'planner', depends_on: ['b'] }] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.issues?.map((i) => i.path)).toEqual(['phases[0].depends_on[0]']);
    // A taken name, built in or registered (compared without case), is refused as registering it would be.
    expect((await fx.call<Json>('POST', '/api/workflow-templates/validate', { body: template('Software-Delivery') })).status).toBe(409);
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-check') })).status).toBe(201);
    const taken = await fx.call<Json>('POST', '/api/workflow-templates/validate', { body: template('TPL-check') });
    expect(taken.status).toBe(409);
    expect(taken.body.error?.message).toContain('clashes with the registered template "tpl-check"');
  });
});

describe('runs', () => {
  it('validates submissions, naming each bad field, before anything is enqueued', async () => {
    const res = await fx.call<Json>('POST', '/api/runs', { body: { requirements: 42, template: 'software-delivery', variables: { a: 1 } } });
    expect(res.status).toBe(400);
    expect(res.body.error?.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(['body.requirements', 'body.variables.a']));
    // A misspelt field is refused, not dropped: the run would go on without its budget.
    const typo = await submit({ template: 'software-delivery', budjet: { max_cost_usd: 1 } });
    expect(typo.status).toBe(400);
    expect(typo.body.error?.message).toContain('unknown field "budjet" (did you mean "budget"?)');
    const none = await fx.call<Json>('POST', '/api/runs', { body: { requirements: 'x' } });
    expect(none.status).toBe(400);
    expect(none.body.error?.issues?.[0]?.path).toBe('body.template');
    const empty = await submit({ requirements: '   ', template: 'software-delivery' });
    expect(empty.status).toBe(400);
    expect(empty.body.error?.issues?.[0]?.path).toBe('body.requirements');
    expect((await submit({ template: 'no-such-template' })).status).toBe(404);
    expect((await submit({ workflow: { name: 'inline', agents: ['planner'], phases: [{ name: 'p', agent: 'planner' }] } }, ANALYST_KEY)).status).toBe(403);
    const inlineBad = await submit({ workflow: { name: 'inline', agents: ['planner'], phases: [{ name: 'p', agent: 'planner', depends_on: ['zz'] }] } });
    expect(inlineBad.status).toBe(400);
    expect(inlineBad.body.error?.issues?.[0]?.path).toBe('phases[0].depends_on[0]');
  });

  it("takes a request budget: a bad one is refused naming the field, a run over it fails with BUDGET_EXCEEDED", async () => {
    const bad = await submit({ template: 'software-delivery', budget: { max_cost_usd: -1, max_tokens: 1.5 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(['body.budget.max_cost_usd', 'body.budget.max_tokens']));
    // The offline planner's prompt alone is a few hundred tokens: over a 50-token budget before any call.
    const over = await waitFinished((await submit({ template: 'software-delivery', budget: { max_tokens: 50 } })).body.run_id);
    expect(over.status).toBe('failed');
    expect(over.errors[0]?.error.code).toBe('BUDGET_EXCEEDED');
    expect(over.errors[0]?.error.message).toMatch(/max_tokens budget of 50/);
  });

  it('runs a template to completion; GET, list filters, 404 and 409 paths; guidelines reach every agent', async () => {
    const guidelines = 'GUIDELINE-7f3: cite the requirement id in every answer.';
    const phases = [
      { name: 'plan', agent: 'planner', timeout: 20, retries: 0 },
      { name: 'check', agent: 'reviewer', timeout: 20, retries: 0, depends_on: ['plan'] },
    ];
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-run', { guidelines, category: 'qa' }, phases) })).status).toBe(201);
    const created = await submit({ template: 'tpl-run', variables: { team: 'core' }, conversation_id: 'conv-run' });
    expect(created.status).toBe(201);
    const id = created.body.run_id;
    expect(created.headers.get('location')).toBe(`/api/runs/${id}`);
    const run = await waitFinished(id);
    expect(run).toMatchObject({ status: 'completed', workflow: { name: 'tpl-run', version: '1' }, variables: { team: 'core' }, conversation_id: 'conv-run', template: 'tpl-run' });
    expect(run.phases.map((p) => [p.name, p.status])).toEqual([['plan', 'completed'], ['check', 'completed']]);
    const prompts = fx.llm.systems.filter((s) => s.system.includes(guidelines)).map((s) => s.phase);
    expect(prompts).toEqual(expect.arrayContaining(['plan', 'check']));

    const byConv = await fx.call<{ items: Array<{ run_id: string }> }>('GET', '/api/runs?conversation_id=conv-run');
    expect(byConv.body.items.map((r) => r.run_id)).toEqual([id]);
    const byWorkflow = await fx.call<{ items: Array<{ run_id: string; status: string }> }>('GET', '/api/runs?workflow=tpl-run&status=completed');
    expect(byWorkflow.body.items.map((r) => r.run_id)).toContain(id);
    const paged = await fx.call<{ items: unknown[]; has_more: boolean }>('GET', '/api/runs?limit=1&skip=0');
    expect(paged.body.items).toHaveLength(1);
    expect(paged.body.has_more).toBe(true);
    expect((await fx.call('GET', '/api/runs?limit=0')).status).toBe(400);

    expect((await fx.call('GET', '/api/runs/no-such-run')).status).toBe(404);
    expect((await fx.call('POST', '/api/runs/no-such-run/cancel')).status).toBe(404);
    expect((await fx.call<Json>('POST', `/api/runs/${id}/cancel`)).status).toBe(409);
    expect((await fx.call<Json>('POST', `/api/runs/${id}/resume`)).status).toBe(409);
    expect((await fx.call<Json>('POST', `/api/runs/${id}/events`, { body: { type: 'approval', data: { approved: true } } })).status).toBe(409);
    expect((await fx.call<Json>('POST', `/api/runs/${id}/rerun`, { body: { from: 'nope' } })).status).toBe(400);
    const rerun = await fx.call<Json & { run_id: string }>('POST', `/api/runs/${id}/rerun`, { body: { from: 'check', requirements: 'Build a tiny todo API, edited' } });
    expect(rerun.status).toBe(201);
    const again = await waitFinished(rerun.body.run_id);
    expect(again).toMatchObject({ status: 'completed', requirements: 'Build a tiny todo API, edited' });
    expect(again.links).toMatchObject({ rerun_of: { run_id: id, from: 'check' } });

    const stats = await fx.call<{ items: Array<{ workflow: string; runs: number; completion_rate: number; median_ms: number; p95_ms: number; mean_tokens: number }> }>('GET', '/api/analytics/workflows');
    const row = stats.body.items.find((s) => s.workflow === 'tpl-run');
    // The figures are those of the two runs' own results: with two runs the median is the shorter
    // duration and the 95th percentile the longer one (nearest rank).
    const results = await Promise.all([id, rerun.body.run_id].map((r) => fx.fleet.client.result(r)));
    const durations = results.map((r) => r.duration_ms).sort((a, b) => a - b);
    const tokens = results.map((r) => r.usage.input_tokens + r.usage.output_tokens);
    expect(tokens.every((t) => t > 0)).toBe(true);
    expect(row).toMatchObject({ runs: 2, completion_rate: 1, median_ms: durations[0], p95_ms: durations[1], mean_tokens: Math.round(((tokens[0]! + tokens[1]!) / 2) * 1000) / 1000 });

    // Another key's analytics count only its own runs: the admin's tpl-run runs are not in them,
    // and what they count matches that key's own run list.
    const analystStats = await fx.call<{ items: Array<{ workflow: string; runs: number }>; runs_considered: number }>('GET', '/api/analytics/workflows', { key: ANALYST_KEY });
    expect(analystStats.status).toBe(200);
    expect(analystStats.body.items.map((s) => s.workflow)).not.toContain('tpl-run');
    const analystRuns = await fx.call<{ items: Array<{ workflow: { name: string } }> }>('GET', '/api/runs?limit=500', { key: ANALYST_KEY });
    const own = new Map<string, number>();
    for (const r of analystRuns.body.items) own.set(r.workflow.name, (own.get(r.workflow.name) ?? 0) + 1);
    expect(Object.fromEntries(analystStats.body.items.map((s) => [s.workflow, s.runs]))).toEqual(Object.fromEntries(own));
    expect(analystStats.body.runs_considered).toBe(analystRuns.body.items.length);
  });

  it('keeps a version-1 run on version 1 while the template is updated to version 2', async () => {
    const v1 = [{ name: 'slow1', agent: 'planner', timeout: 20, retries: 0 }];
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-ver', {}, v1) })).status).toBe(201);
    fx.llm.hold('slow1');
    const first = await submit({ template: 'tpl-ver' });
    await fx.llm.entered('slow1');
    const v2 = [...v1, { name: 'extra', agent: 'reviewer', timeout: 20, retries: 0, depends_on: ['slow1'] }];
    expect((await fx.call<Json>('PUT', '/api/workflow-templates/tpl-ver', { body: template('tpl-ver', {}, v2) })).body).toMatchObject({ version: '2' });
    const second = await submit({ template: 'tpl-ver' });
    fx.llm.release('slow1');
    const [a, b] = await Promise.all([waitFinished(first.body.run_id), waitFinished(second.body.run_id)]);
    expect(a).toMatchObject({ status: 'completed', workflow: { name: 'tpl-ver', version: '1' } });
    expect(a.phases.map((p) => p.name)).toEqual(['slow1']);
    expect(b).toMatchObject({ status: 'completed', workflow: { name: 'tpl-ver', version: '2' } });
    expect(b.phases.map((p) => p.name)).toEqual(['slow1', 'extra']);
  });

  it('fails a run whose final context violates state_schema, naming the path', async () => {
    const schema = { type: 'object', required: ['plan'], properties: { plan: { type: 'object', required: ['approved_by'] } } };
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-schema', { state_schema: schema }) })).status).toBe(201);
    const run = await waitFinished((await submit({ template: 'tpl-schema' })).body.run_id);
    expect(run.status).toBe('failed');
    expect(run.phases[0]?.status).toBe('completed');
    expect(run.errors).toEqual([
      { phase: 'state_schema', error: expect.objectContaining({ code: 'STATE_SCHEMA_VIOLATION', message: expect.stringContaining("/plan/approved_by: must have required property 'approved_by'") as unknown }) as unknown },
    ]);
    // A context that satisfies it completes.
    const ok = { type: 'object', required: ['plan'] };
    expect((await fx.call('PUT', '/api/workflow-templates/tpl-schema', { body: template('tpl-schema', { state_schema: ok }) })).status).toBe(200);
    expect((await waitFinished((await submit({ template: 'tpl-schema' })).body.run_id)).status).toBe('completed');
  });

  it('allows one active run per conversation, also under two concurrent requests, and cancels', async () => {
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-conv', {}, [{ name: 'slow2', agent: 'planner', timeout: 20, retries: 0 }]) })).status).toBe(201);
    fx.llm.hold('slow2');
    const [x, y] = await Promise.all([submit({ template: 'tpl-conv', conversation_id: 'conv-race' }), submit({ template: 'tpl-conv', conversation_id: 'conv-race' })]);
    expect([x.status, y.status].sort()).toEqual([201, 409]);
    const winner = x.status === 201 ? x : y;
    const loser = x.status === 201 ? y : x;
    expect(loser.body.error?.active_run_id).toBe(winner.body.run_id);
    expect(loser.body.error?.message).toContain(winner.body.run_id);
    // Another conversation is free, and so is the same name for another user (conversations are per user).
    expect((await submit({ template: 'software-delivery', conversation_id: 'conv-other' })).status).toBe(201);
    expect((await submit({ template: 'software-delivery', conversation_id: 'conv-race' }, ANALYST_KEY)).status).toBe(201);

    await fx.llm.entered('slow2');
    const cancel = await fx.call<Json>('POST', `/api/runs/${winner.body.run_id}/cancel`, { body: { reason: 'test' } });
    expect(cancel.status).toBe(202);
    expect((await waitFinished(winner.body.run_id)).status).toBe('cancelled');
    fx.llm.release('slow2');
    // Once the run is over, the conversation takes a new run.
    const next = await submit({ template: 'tpl-conv', conversation_id: 'conv-race' });
    expect(next.status).toBe(201);
    expect((await waitFinished(next.body.run_id)).status).toBe('completed');
  });
});

describe('live events (SSE)', () => {
  it('resumes with Last-Event-ID without missing or repeating an event; a late client sees them all', async () => {
    const phases = [
      { name: 'sse1', agent: 'planner', timeout: 20, retries: 0 },
      { name: 'sse2', agent: 'reviewer', timeout: 20, retries: 0, depends_on: ['sse1'] },
    ];
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-sse', {}, phases) })).status).toBe(201);
    fx.llm.hold('sse2');
    const id = (await submit({ template: 'tpl-sse' })).body.run_id;
    const url = `${fx.api.url}/api/runs/${id}/events`;
    // First client: disconnects mid-run, once sse1 completed.
    const part1 = await readSse(url, ADMIN_KEY, { stop: (m) => m.some((e) => e.event === 'phase_completed' && e.data.phase === 'sse1') });
    expect(part1.ended).toBe(false);
    await fx.llm.entered('sse2');
    const last = part1.messages.at(-1)?.id as string;
    // sse2 finishes only once the resumed client's stream is open, so it gets the rest live.
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const resumed = readSse(url, ADMIN_KEY, { lastEventId: last, onOpen: opened });
    await open;
    fx.llm.release('sse2');
    const part2 = await resumed;
    expect(part2.ended).toBe(true);
    expect(part2.messages.at(-1)?.event).toBe('run_finished');

    const stream = await fx.fleet.client.store.readEvents(id);
    const finalIndex = stream.findIndex((e) => e.event.type === 'run_finished');
    const expected = stream.slice(0, finalIndex + 1).map((e) => e.id);
    const got = [...part1.messages, ...part2.messages].map((m) => m.id);
    expect(got).toEqual(expected);
    expect(new Set(got).size).toBe(got.length);

    const late = await readSse(url, ADMIN_KEY);
    expect(late.ended).toBe(true);
    expect(late.messages.map((m) => m.id)).toEqual(expected);
    expect(late.messages[0]?.event).toBe('run_created');
    // After the final event there is nothing more: the stream ends at once.
    const after = await readSse(url, ADMIN_KEY, { lastEventId: expected.at(-1) as string });
    expect(after).toEqual({ messages: [], ended: true });
    expect((await fx.call('GET', `/api/runs/${id}/events`, { headers: { 'last-event-id': 'garbage' } })).status).toBe(400);
    expect((await fx.call('GET', '/api/runs/nope/events')).status).toBe(404);
  });
});

describe('end actions', () => {
  it('posts the result to a webhook with a valid HMAC signature, retries a 500, records each attempt, and keeps the run status', async () => {
    await using hook = await startWebhookReceiver([500]);
    const body = template('tpl-hook', { end_action_type: 'api_call', end_action_target: hook.url });
    expect((await fx.call('POST', '/api/workflow-templates', { body })).status).toBe(201);
    const id = (await submit({ template: 'tpl-hook' })).body.run_id;
    await hook.waitFor(2);
    expect(hook.requests.map((r) => r.answered)).toEqual([500, 200]);
    for (const r of hook.requests) {
      const ts = String(r.headers[TIMESTAMP_HEADER]);
      expect(r.headers[SIGNATURE_HEADER]).toBe(signWebhook('whsec-test-0123456789', ts, r.body));
      expect(JSON.parse(r.body)).toMatchObject({ run_id: id, status: 'completed', workflow: { name: 'tpl-hook', version: '1' } });
    }
    const run = await afterEndAction<RunJson & { end_action: { status: string; attempts: number } | null }>(id, 'succeeded');
    expect(run.status).toBe('completed');
    expect(run.end_action).toMatchObject({ type: 'api_call', status: 'succeeded', attempts: 2, status_code: 200 });
    const attempts = (await fx.fleet.client.store.readEvents(id)).map((e) => e.event as unknown as Record<string, unknown>).filter((e) => e.type === 'end_action');
    expect(attempts).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'pending', status_code: 500, will_retry: true }),
      expect.objectContaining({ attempt: 2, outcome: 'succeeded', status_code: 200 }),
    ]);
  });

  it('a failing end action never changes the run status; a workflow end action starts a linked child run', async () => {
    await using hook = await startWebhookReceiver([404]);
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-hook404', { end_action_type: 'api_call', end_action_target: hook.url }) })).status).toBe(201);
    const id = (await submit({ template: 'tpl-hook404' })).body.run_id;
    const failed = await afterEndAction<RunJson & { end_action: { status: string } | null }>(id, 'failed');
    expect(failed.status).toBe('completed');
    expect(hook.requests).toHaveLength(1);

    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-child') })).status).toBe(201);
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-parent', { end_action_type: 'workflow', end_action_target: 'tpl-child' }) })).status).toBe(201);
    const parentId = (await submit({ template: 'tpl-parent' })).body.run_id;
    const parent = await afterEndAction<RunJson & { end_action: { status: string; child_run_id?: string } | null }>(parentId, 'succeeded');
    const childId = parent.end_action?.child_run_id as string;
    const child = await waitFinished(childId);
    expect(child).toMatchObject({ status: 'completed', workflow: { name: 'tpl-child' }, parent_run_id: parentId, variables: { parent_run_id: parentId, parent_status: 'completed' } });
    expect(JSON.parse((child.variables as Record<string, string>).parent_results ?? '{}')).toHaveProperty('plan');
    expect(parent.links).toMatchObject({ children: [childId] });
  });
});
