/**
 * Concurrency keys and priority through the HTTP API and the `fleet` CLI: a run over its key's limit
 * answers `queued`, is listed and filtered as `queued`, shows its key and priority, and starts when
 * the run ahead of it finishes; bad settings are refused naming the field.
 */
import { createRedis, type RunResult } from '@agentfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './support/fleet.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

/** Tests that spawn `fleet` processes get four minutes: each start costs seconds on a loaded machine. */
const SPAWNS_FLEET = { timeout: 240_000 };

type Json = { run_id?: string; status?: string; items?: Array<{ run_id: string; status: string }>; error?: { message: string; issues?: Array<{ path: string; message: string }> } } & Partial<RunResult>;

let fx: ApiFixture;
beforeAll(async () => {
  fx = await startApiFixture('concurrency-http');
});
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

describe('concurrency keys and priority over HTTP and the CLI', () => {
  it('queues a run over its key\'s limit, shows and filters it as queued, and starts it when the first finishes', SPAWNS_FLEET, async () => {
    const template = {
      name: 'fair-http',
      agents: ['planner'],
      phases: [{ name: 'gate', agent: 'planner', retries: 0 }],
      concurrency: { key: 'tenant-{{tenant}}', limit: 1 },
      priority: 7,
    };
    expect((await fx.call('POST', '/api/workflow-templates', { body: template })).status).toBe(201);

    fx.llm.hold('gate');
    const first = await fx.call<Json>('POST', '/api/runs', { body: { requirements: 'first of t1', template: 'fair-http', variables: { tenant: 't1' } } });
    expect(first.status).toBe(201);
    expect(first.body.status).toBe('created');
    await fx.llm.entered('gate');

    // The second run of the key, through `fleet submit`, with a priority of its own.
    const env = cliEnv(fx.fleet.url, fx.fleet.prefix, { FLEET_API_KEY: ADMIN_KEY, FLEET_MANAGER_URL: fx.api.url });
    const submitted = await runCli(['submit', 'second of t1', '--workflow', 'fair-http', '--var', 'tenant=t1', '--priority', '9'], env);
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(submitted.stderr).toContain('(queued: its concurrency key is at its limit)');
    const second = submitted.stdout.trim();

    const detail = await fx.call<Json>('GET', `/api/runs/${second}`);
    expect(detail.body).toMatchObject({ status: 'queued', concurrency: { key: 'tenant-t1', limit: 1 }, priority: 9 });
    const firstDetail = await fx.call<Json>('GET', `/api/runs/${first.body.run_id}`);
    expect(firstDetail.body).toMatchObject({ status: 'active', concurrency: { key: 'tenant-t1', limit: 1 }, priority: 7 });
    const listed = await fx.call<Json>('GET', '/api/runs?status=queued');
    expect(listed.status).toBe(200);
    expect(listed.body.items?.map((r) => [r.run_id, r.status])).toEqual([[second, 'queued']]);
    const status = await runCli(['status', '--status', 'queued'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^${second}\\s+queued\\s+fair-http`, 'm'));

    // The same key over the API: a third run waits behind the second.
    const third = await fx.call<Json>('POST', '/api/runs', { body: { requirements: 'third of t1', template: 'fair-http', variables: { tenant: 't1' } } });
    expect(third.body.status).toBe('queued');

    fx.llm.release('gate');
    const blocking = createRedis(fx.fleet.url, { forWorker: true });
    try {
      for (const id of [first.body.run_id!, second, third.body.run_id!]) {
        expect((await fx.fleet.client.follow(id, blocking, () => undefined)).status).toBe('completed');
      }
    } finally {
      blocking.disconnect();
    }
    expect((await fx.call<Json>('GET', '/api/runs?status=queued')).body.items).toEqual([]);
  });

  it('refuses a key that renders empty and a priority out of range, naming the field', async () => {
    const inline = { name: 'fair-inline', agents: ['planner'], phases: [{ name: 'p', agent: 'planner' }] };
    const noTenant = await fx.call<Json>('POST', '/api/runs', { body: { requirements: 'x', workflow: inline, concurrency: { key: '{{tenant}}', limit: 2 } } });
    expect(noTenant.status).toBe(400);
    expect(noTenant.body.error?.message).toContain('concurrency.key "{{tenant}}" renders to an empty key for this run; set the variable "tenant"');
    const badPriority = await fx.call<Json>('POST', '/api/runs', { body: { requirements: 'x', workflow: inline, priority: 11 } });
    expect(badPriority.status).toBe(400);
    expect(badPriority.body.error?.issues?.[0]).toMatchObject({ path: 'body.priority', message: 'priority must be at most 10 (most urgent)' });
    const badLimit = await fx.call<Json>('POST', '/api/runs', { body: { requirements: 'x', workflow: inline, concurrency: { key: 'k', limit: 0 } } });
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error?.issues?.[0]?.path).toBe('body.concurrency.limit');
  });
});
