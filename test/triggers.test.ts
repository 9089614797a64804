/**
 * Inbound triggers and idempotent submissions over real HTTP, with a real fleet on real Redis:
 * signed deliveries start runs, replays and stale ones answer 401 and start nothing; an
 * `Idempotency-Key` repeat gets the first run, a different body 409; outbound webhooks carry a
 * delivery id and are signed with the template's own secret, in the scheme triggers are checked with.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, createRedis, signPayload, signedHeaders, verifySignature, type RunResult } from '@agentfleet/core';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, ANALYST_KEY, startApiFixture, startWebhookReceiver, type ApiFixture } from './support/http-api.js';
import { waitForRunEvent } from './support/run-events.js';

let fx: ApiFixture;
let blocking: Redis;
beforeAll(async () => {
  fx = await startApiFixture('triggers');
  blocking = createRedis(fx.fleet.url, { forWorker: true });
});
afterAll(async () => {
  blocking?.disconnect();
  await fx?.[Symbol.asyncDispose]();
});

function template(name: string, extra: Record<string, unknown> = {}) {
  return { name, description: `test template ${name}`, agents: ['planner'], variables: { repo: 'none', label: 'none' }, phases: [{ name: 'plan', agent: 'planner', timeout: 20, retries: 0 }], ...extra };
}

/** Follow a run's event stream (blocking reads) until it finishes. */
function finished(id: string): Promise<RunResult> {
  return fx.fleet.client.follow(id, blocking, () => undefined);
}

/** The first `count` events of `type` in a run's stream, waiting for them with blocking reads. */
async function eventsOf(id: string, type: string, count: number): Promise<Array<Record<string, unknown>>> {
  const seen: Array<Record<string, unknown>> = [];
  await waitForRunEvent({ ...fx.fleet, blocking }, id, (e) => e.type === type && seen.push({ ...e }) >= count, { what: `${count} ${type} event(s)` });
  return seen;
}

/** POST a raw body to a trigger with the given headers (no API key unless given). */
async function deliver(name: string, body: string, headers: Record<string, string>, key?: string) {
  const res = await fetch(`${fx.api.url}/api/triggers/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { run_id: string; error?: { code: string; message: string } } };
}

/** Run ids of the runs a trigger started, from the run labels in Redis. */
async function runsOf(template: string): Promise<string[]> {
  const list = await fx.call<{ items: Array<{ run_id: string }> }>('GET', `/api/runs?workflow=${template}&limit=500`);
  return list.body.items.map((r) => r.run_id);
}

describe('inbound triggers', () => {
  it('a delivery signed with the trigger secret starts a run mapped from the body; a replay, a stale one and a bad signature are refused with 401 and start nothing', async () => {
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-trig') })).status).toBe(201);
    const put = await fx.call<Record<string, unknown> & { secret: string; has_secret: boolean }>('PUT', '/api/triggers/issue-opened', {
      body: {
        workflow: 'tpl-trig',
        requirements_template: 'Fix issue #{{body.issue.number}}: {{body.issue.title}}',
        variables: { repo: '{{body.repository.full_name}}', label: '{{body.issue.labels[0]}}' },
        generate_secret: true,
      },
    });
    expect(put.status).toBe(201);
    expect(put.body.has_secret).toBe(true);
    expect(put.body.secret).toMatch(/^[0-9a-f]{64}$/);
    const secret = put.body.secret;
    // The secret is shown once: never in a read or a list.
    const shown = await fx.call<Record<string, unknown>>('GET', '/api/triggers/issue-opened');
    expect(shown.status).toBe(200);
    expect(shown.body).not.toHaveProperty('secret');
    expect(JSON.stringify((await fx.call('GET', '/api/triggers')).body)).not.toContain(secret);

    const body = JSON.stringify({ issue: { number: 42, title: 'Login fails on Safari', labels: ['bug'] }, repository: { full_name: 'acme/web' } });
    const headers = signedHeaders(secret, body, 'delivery-0001');
    const first = await deliver('issue-opened', body, headers);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({ trigger: 'issue-opened', delivery_id: 'delivery-0001', debounced: false, workflow: { name: 'tpl-trig', version: '1' } });
    const { meta } = await fx.fleet.client.store.getRun(first.body.run_id);
    expect(meta.requirements).toBe('Fix issue #42: Login fails on Safari');
    expect(meta.variables).toMatchObject({ repo: 'acme/web', label: 'bug' });
    expect((await finished(first.body.run_id)).status).toBe('completed');
    expect((await fx.call<{ template: string }>('GET', `/api/runs/${first.body.run_id}`)).body).toMatchObject({ template: 'tpl-trig', trigger: 'issue-opened', user_id: 'trigger:issue-opened' });

    // The very same request again: the delivery id was seen.
    const replay = await deliver('issue-opened', body, headers);
    expect(replay.status).toBe(401);
    expect(replay.body.error?.message).toContain('delivery-0001 was received before');
    // The same signed request under a new delivery id: the signature was seen.
    const relabelled = await deliver('issue-opened', body, { ...headers, [DELIVERY_HEADER]: 'delivery-0002' });
    expect(relabelled.status).toBe(401);
    expect(relabelled.body.error?.message).toContain('received before');
    // Signed 400 s ago (the tolerance is 300 s), with a fresh delivery id: stale.
    const stale = await deliver('issue-opened', body, signedHeaders(secret, body, 'delivery-0003', Date.now() - 400_000));
    expect(stale.status).toBe(401);
    expect(stale.body.error?.message).toMatch(/40\d s away from the server's clock; the tolerance is 300 s/);
    // Signed with another secret, or a body changed after signing.
    expect((await deliver('issue-opened', body, signedHeaders('another-secret-0123456789', body, 'delivery-0004'))).status).toBe(401);
    const tampered = body.replace('42', '43');
    expect((await deliver('issue-opened', tampered, signedHeaders(secret, body, 'delivery-0005'))).status).toBe(401);
    // No signature and no key: 401 from the API-key check.
    expect((await deliver('issue-opened', body, {})).status).toBe(401);
    // A signed delivery to a trigger that does not exist tells nothing about it.
    const unknown = await deliver('no-such-trigger', body, signedHeaders(secret, body, 'delivery-0006'));
    expect(unknown.status).toBe(401);

    expect(await runsOf('tpl-trig')).toEqual([first.body.run_id]);

    // A new delivery (new id, signed a second later) of the same body is a new run.
    const second = await deliver('issue-opened', body, signedHeaders(secret, body, 'delivery-0007', Number(headers[TIMESTAMP_HEADER]) * 1000 + 1000));
    expect(second.status).toBe(201);
    expect(second.body.run_id).not.toBe(first.body.run_id);
    expect((await runsOf('tpl-trig')).sort()).toEqual([first.body.run_id, second.body.run_id].sort());
  });

  it('an API key may fire a trigger when its user type may run the workflow; bad definitions and bodies are refused naming the field', async () => {
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-trig-key') })).status).toBe(201);
    expect((await fx.call('PUT', '/api/triggers/keyed', { body: { workflow: 'tpl-trig-key', requirements_template: '{{body.feature}}' } })).status).toBe(201);
    const ok = await deliver('keyed', JSON.stringify({ feature: 'dark mode' }), {}, ADMIN_KEY);
    expect(ok.status).toBe(201);
    expect((await fx.fleet.client.store.getRun(ok.body.run_id)).meta.requirements).toBe('dark mode');
    // The analyst's user type was not granted the template.
    expect((await deliver('keyed', JSON.stringify({ feature: 'x' }), {}, ANALYST_KEY)).status).toBe(403);
    expect((await fx.call('POST', '/api/permissions', { body: { user_type: 'analyst', template: 'tpl-trig-key' } })).status).toBe(201);
    expect((await deliver('keyed', JSON.stringify({ feature: 'x' }), {}, ANALYST_KEY)).status).toBe(201);
    // A trigger without a secret takes no signed deliveries.
    expect((await deliver('keyed', '{"feature":"y"}', signedHeaders('some-secret-0123456789', '{"feature":"y"}', 'd-1'))).status).toBe(401);
    // A body whose fields the template does not find gives empty requirements: 400 naming the template.
    const empty = await deliver('keyed', JSON.stringify({ other: 1 }), {}, ADMIN_KEY);
    expect(empty.status).toBe(400);
    expect(empty.body.error?.message).toContain('requirements_template');
    expect((await deliver('keyed', 'not json', {}, ADMIN_KEY)).status).toBe(400);
    expect((await fx.call('POST', '/api/triggers/nope', { body: {} })).status).toBe(404);

    const badRef = await fx.call<{ error: { message: string } }>('PUT', '/api/triggers/bad', { body: { workflow: 'tpl-trig-key', requirements_template: 'Do {{plan.tasks}}' } });
    expect(badRef.status).toBe(400);
    expect(badRef.body.error.message).toContain('{{body.<field>}}');
    expect((await fx.call('PUT', '/api/triggers/bad', { body: { workflow: 'no-such-template', requirements_template: 'x' } })).status).toBe(404);
    expect((await fx.call('PUT', '/api/triggers/bad', { body: { workflow: 'tpl-trig-key', requirements_template: 'x', secret: 'short' } })).status).toBe(400);
    expect((await fx.call('PUT', '/api/triggers/keyed', { key: ANALYST_KEY, body: { workflow: 'tpl-trig-key', requirements_template: 'x' } })).status).toBe(403);
    expect((await fx.call('DELETE', '/api/triggers/keyed')).status).toBe(200);
    expect((await fx.call('DELETE', '/api/triggers/keyed')).status).toBe(404);
  });

  it('a debounced trigger starts one run for a burst of deliveries with the same key', async () => {
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-trig-burst') })).status).toBe(201);
    const put = await fx.call<{ secret: string }>('PUT', '/api/triggers/pushes', {
      body: { workflow: 'tpl-trig-burst', requirements_template: 'Rebuild {{body.repo}}', generate_secret: true, debounce: { key: '{{body.repo}}', period_s: 3600 } },
    });
    // Each push has its own commit: two identical bodies signed in the same second would be one signed request.
    const fire = (repo: string, id: string) => {
      const body = JSON.stringify({ repo, after: id });
      return deliver('pushes', body, signedHeaders(put.body.secret, body, id));
    };
    const a1 = await fire('acme/api', 'push-1');
    const a2 = await fire('acme/api', 'push-2');
    const b1 = await fire('acme/docs', 'push-3');
    expect([a1.status, a2.status, b1.status]).toEqual([201, 200, 201]);
    expect(a2.body).toMatchObject({ run_id: a1.body.run_id, debounced: true });
    expect(b1.body.run_id).not.toBe(a1.body.run_id);
    expect((await runsOf('tpl-trig-burst')).sort()).toEqual([a1.body.run_id, b1.body.run_id].sort());
  });

  it('a delivery whose run could not be started is not used up: the same delivery id is accepted once the trigger is fixed', async () => {
    const v1 = template('tpl-trig-fix', { variables: { draft: 'none', repo: 'none' }, phases: [{ name: 'build', agent: 'planner', timeout: 20, retries: 0 }] });
    expect((await fx.call('POST', '/api/workflow-templates', { body: v1 })).status).toBe(201);
    // A variable named like a phase would hide its output: refused when the trigger is defined.
    const clash = await fx.call<{ error: { message: string } }>('PUT', '/api/triggers/fixme', { body: { workflow: 'tpl-trig-fix', requirements_template: 'x', variables: { build: '{{body.task}}' } } });
    expect(clash.status).toBe(400);
    expect(clash.body.error.message).toContain('variable "build"');
    const put = await fx.call<{ secret: string }>('PUT', '/api/triggers/fixme', {
      body: { workflow: 'tpl-trig-fix', requirements_template: 'Do {{body.task}}', variables: { draft: '{{body.task}}' }, generate_secret: true, debounce: { key: '{{body.task}}', period_s: 3600 } },
    });
    expect(put.status).toBe(201);
    // The template changes under the trigger: its new phase "draft" now clashes with the trigger's variable.
    expect((await fx.call('PUT', '/api/workflow-templates/tpl-trig-fix', { body: { ...v1, variables: { repo: 'none' }, phases: [{ name: 'draft', agent: 'planner', timeout: 20, retries: 0 }] } })).status).toBe(200);
    const body = JSON.stringify({ task: 'release notes' });
    const refused = await deliver('fixme', body, signedHeaders(put.body.secret, body, 'fix-1'));
    expect(refused.status).toBe(400);
    expect(refused.body.error?.message).toContain('variable "draft"');
    expect((await fx.call('PUT', '/api/triggers/fixme', { body: { workflow: 'tpl-trig-fix', requirements_template: 'Do {{body.task}}', variables: { repo: '{{body.task}}' }, debounce: { key: '{{body.task}}', period_s: 3600 } } })).status).toBe(200);
    // The sender's retry: same delivery id, signed again; the burst the failed one began does not hold it.
    const retried = await deliver('fixme', body, signedHeaders(put.body.secret, body, 'fix-1', Date.now() + 1000));
    expect(retried.status, JSON.stringify(retried.body)).toBe(201);
    expect(retried.body.debounced).toBe(false);
    expect((await fx.fleet.client.store.getRun(retried.body.run_id)).meta.variables).toMatchObject({ repo: 'release notes' });
  });
});

describe('Idempotency-Key on POST /api/runs', () => {
  const post = (key: string, body: Record<string, unknown>, apiKey = ADMIN_KEY) =>
    fx.call<{ run_id: string; error?: { message: string } }>('POST', '/api/runs', { key: apiKey, body, headers: { 'idempotency-key': key } });

  it('a repeat returns the first run with 200, a different body 409, and concurrent repeats create one run', async () => {
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-idem') })).status).toBe(201);
    const body = { requirements: 'Build a tiny todo API', template: 'tpl-idem' };
    const first = await post('order-1001', body);
    expect(first.status).toBe(201);
    const repeat = await post('order-1001', body);
    expect(repeat.status).toBe(200);
    expect(repeat.body.run_id).toBe(first.body.run_id);
    expect(repeat.headers.get('location')).toBe(`/api/runs/${first.body.run_id}`);
    const other = await post('order-1001', { ...body, requirements: 'Something else' });
    expect(other.status).toBe(409);
    expect(other.body.error?.message).toContain(first.body.run_id);
    // Keys belong to the API key's user: the analyst's "order-1001" is its own.
    expect((await fx.call('POST', '/api/permissions', { body: { user_type: 'analyst', template: 'tpl-idem' } })).status).toBe(201);
    const analyst = await post('order-1001', body, ANALYST_KEY);
    expect(analyst.status).toBe(201);
    expect(analyst.body.run_id).not.toBe(first.body.run_id);
    expect((await finished(first.body.run_id)).status).toBe('completed');
    // After the run finished, a repeat still answers with it.
    expect((await post('order-1001', body)).body.run_id).toBe(first.body.run_id);

    const burst = await Promise.all(Array.from({ length: 12 }, () => post('order-2002', { ...body, requirements: 'Concurrent repeats' })));
    const created = burst.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    // The others either got the run (200) or were told its first request was still creating it (409).
    expect(burst.every((r) => r.status === 201 || r.status === 200 || (r.status === 409 && r.body.error?.message.includes('still creating')))).toBe(true);
    expect(new Set(burst.filter((r) => r.status !== 409).map((r) => r.body.run_id))).toEqual(new Set([created[0]?.body.run_id]));
    const runs = await fx.call<{ items: Array<{ run_id: string }> }>('GET', `/api/runs?q=${encodeURIComponent('Concurrent repeats')}`);
    expect(runs.body.items.map((r) => r.run_id)).toEqual([created[0]?.body.run_id]);
    // A bad body claims nothing: the key stays free for the corrected request.
    expect((await post('order-3003', { requirements: '', template: 'tpl-idem' })).status).toBe(400);
    expect((await post('order-3003', body)).status).toBe(201);
  });

  it('client.submit({ idempotencyKey }) returns the first run for a repeat and refuses a different submission', async () => {
    const workflow = (await fx.fleet.client.store.getRun((await post('order-4004', { requirements: 'Seed run', template: 'tpl-idem' })).body.run_id)).meta.workflow;
    const input = { workflow, requirements: 'Library submission', provider: 'offline', idempotencyKey: 'lib-1' };
    const a = await fx.fleet.client.submitIdempotent(input);
    const b = await fx.fleet.client.submitIdempotent(input);
    expect(a.created).toBe(true);
    expect(b).toEqual({ runId: a.runId, created: false });
    expect(await fx.fleet.client.submit(input)).toBe(a.runId);
    await expect(fx.fleet.client.submit({ ...input, requirements: 'Other' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});

describe('signed webhooks and the OpenAPI document', () => {
  it("an end-action webhook carries a delivery id and is signed with the template's own secret, and its attempts record that id", async () => {
    await using hook = await startWebhookReceiver([503]);
    expect((await fx.call('POST', '/api/workflow-templates', { body: template('tpl-signed-hook', { end_action_type: 'api_call', end_action_target: hook.url }) })).status).toBe(201);
    const set = await fx.call<{ secret: string }>('PUT', '/api/workflow-templates/tpl-signed-hook/webhook-secret', { body: { generate: true } });
    expect(set.status).toBe(200);
    const secret = set.body.secret;
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const id = (await fx.call<{ run_id: string }>('POST', '/api/runs', { body: { requirements: 'Build a tiny todo API', template: 'tpl-signed-hook' } })).body.run_id;
    await hook.waitFor(2);
    const [one, two] = hook.requests;
    expect([one?.answered, two?.answered]).toEqual([503, 200]);
    const delivery = one?.headers[DELIVERY_HEADER];
    expect(delivery).toMatch(/^[0-9a-f-]{36}$/);
    expect(two?.headers[DELIVERY_HEADER]).toBe(delivery);
    for (const r of hook.requests) {
      // What a receiver does: the documented recipe, with the template's secret.
      expect(verifySignature(secret, r.headers, r.body)).toMatchObject({ ok: true, deliveryId: delivery });
      expect(r.headers[SIGNATURE_HEADER]).toBe(signPayload(secret, String(r.headers[TIMESTAMP_HEADER]), r.body));
    }
    const recorded = await eventsOf(id, 'end_action', 2);
    expect(recorded).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'pending', status_code: 503, delivery_id: delivery }),
      expect.objectContaining({ attempt: 2, outcome: 'succeeded', status_code: 200, delivery_id: delivery }),
    ]);
    expect((await fx.call('PUT', '/api/workflow-templates/tpl-signed-hook/webhook-secret', { key: ANALYST_KEY, body: { generate: true } })).status).toBe(403);
    expect((await fx.call('PUT', '/api/workflow-templates/no-such/webhook-secret', { body: { generate: true } })).status).toBe(404);
  });

  it('the OpenAPI document is valid and has the trigger routes and the Idempotency-Key header', async () => {
    const doc = await fx.call<{ paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }>; responses: Record<string, unknown> }>> }>('GET', '/openapi.json', { key: null });
    const res = await new Validator().validate(doc.body);
    expect(res.errors ?? [], JSON.stringify(res.errors)).toEqual([]);
    expect(Object.keys(doc.body.paths['/api/triggers/{name}'] ?? {}).sort()).toEqual(['delete', 'get', 'post', 'put']);
    expect(doc.body.paths['/api/triggers']?.get).toBeDefined();
    expect(doc.body.paths['/api/workflow-templates/{name}/webhook-secret']?.put).toBeDefined();
    const submit = doc.body.paths['/api/runs']?.post;
    expect(submit?.parameters?.some((p) => p.name === 'idempotency-key' && p.in === 'header')).toBe(true);
    expect(Object.keys(submit?.responses ?? {})).toEqual(expect.arrayContaining(['200', '201', '409']));
    const fire = doc.body.paths['/api/triggers/{name}']?.post;
    expect(fire?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining([DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER]));
  });
});
