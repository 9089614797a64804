/**
 * Small errors, each done for real against a real fleet (Redis, manager, pools, HTTP API):
 * - `write_file` with a NUL byte or a 300-byte name fails once with `TOOL_INPUT_INVALID` (not retried);
 * - `Last-Event-ID` beyond a stream id's 64-bit range answers 400 naming the header;
 * - a body with a `__proto__` key answers 400 naming the key, not "not valid JSON";
 * - a cancel that reaches the manager after the run completed leaves `cancel_ignored` in its events;
 * - a template `Software-Delivery` (or `MY-FLOW` beside `my-flow`) is refused with 409;
 * - `fleet workflows list` with Redis down lists the built-ins, says why templates are missing, exits 2.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startToolPool, type ToolPool } from '@agentfleet/agents';
import { createRedis } from '@agentfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, testWorkflow } from '../support/fleet.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from '../support/http-api.js';
import { freePort } from '../support/redis.js';

type Json = Record<string, unknown> & { error?: { code: string; message: string; issues?: Array<{ path: string; message: string }> } };

let fx: ApiFixture;
let tools: ToolPool;
let artifacts: string;

beforeAll(async () => {
  fx = await startApiFixture('small-errors');
  artifacts = await mkdtemp(join(tmpdir(), 'fleet-small-errors-'));
  tools = await startToolPool({
    redisUrl: fx.fleet.url,
    prefix: fx.fleet.prefix,
    settings: { allowedHosts: [], artifactsDir: (runId) => join(artifacts, runId), modules: [] },
    onError: () => undefined,
  });
});

afterAll(async () => {
  await tools?.close(2000);
  await fx?.[Symbol.asyncDispose]();
  if (artifacts) await rm(artifacts, { recursive: true, force: true });
});

describe('write_file', () => {
  it('fails a NUL byte and a 300-byte name once with TOOL_INPUT_INVALID naming the limit, not as a retryable TOOL_FAILED', async () => {
    const wf = testWorkflow({
      agents: [],
      error_handling: { continue_on_error: true },
      phases: [
        { name: 'nul', tool: 'write_file', parameters: { path: 'report\u0000.md', content: 'x' }, retries: 3 },
        { name: 'long_name', tool: 'write_file', parameters: { path: `${'n'.repeat(300)}.md`, content: 'x' }, retries: 3 },
        { name: 'fine', tool: 'write_file', parameters: { path: 'ok.md', content: 'x' } },
      ],
    });
    const { result } = await fx.fleet.run(wf, 'Write odd files');
    expect(result.status).toBe('completed');
    const error = (phase: string) => result.errors.find((e) => e.phase === phase)?.error;
    expect(error('nul')).toMatchObject({ code: 'TOOL_INPUT_INVALID', retryable: false });
    expect(error('nul')?.message).toMatch(/parameters\.path: path must not contain a NUL byte/);
    expect(error('long_name')).toMatchObject({ code: 'TOOL_INPUT_INVALID', retryable: false });
    expect(error('long_name')?.message).toMatch(/name of 303 bytes.*at most 255 bytes/);
    for (const phase of ['nul', 'long_name']) expect(result.phases.find((p) => p.name === phase)?.attempts).toBe(1);
    expect(result.phases.find((p) => p.name === 'fine')?.status).toBe('completed');
  });
});

describe('HTTP input', () => {
  it('answers 400 naming Last-Event-ID when a part of it is beyond 2^64 - 1', async () => {
    const created = await fx.call<Json & { run_id: string }>('POST', '/api/runs', { body: { requirements: 'Build a tiny todo API', workflow: { name: 'one', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] } } });
    expect(created.status).toBe(201);
    for (const id of ['99999999999999999999-0', '1-18446744073709551616']) {
      const res = await fx.call<Json>('GET', `/api/runs/${created.body.run_id}/events`, { headers: { 'last-event-id': id } });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error?.code).toBe('INVALID_INPUT');
      expect(res.body.error?.message).toContain('Last-Event-ID is out of range: each part of a stream id is at most 18446744073709551615');
    }
    const query = await fx.call<Json>('GET', `/api/runs/${created.body.run_id}/events?last_event_id=99999999999999999999`);
    expect(query.status).toBe(400);
    expect(query.body.error?.message).toContain('last_event_id is out of range');
  });

  it('answers 400 naming a __proto__ key in a body (and still says "not valid JSON" for text that is not JSON)', async () => {
    const post = (body: string) =>
      fetch(`${fx.api.url}/api/runs`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as Json }));
    const poisoned = await post('{"requirements":"Build a tiny todo API","workflow":"software-delivery","variables":{"__proto__":{"admin":true}}}');
    expect(poisoned.status).toBe(400);
    expect(poisoned.body.error?.code).toBe('INVALID_INPUT');
    expect(poisoned.body.error?.message).toMatch(/^body\.variables\.__proto__: a key named "__proto__" is not accepted .*rename the key$/);
    expect(poisoned.body.error?.message).not.toMatch(/not valid JSON/);
    expect(poisoned.body.error?.issues).toEqual([{ path: 'body.variables.__proto__', message: 'forbidden key: rename it' }]);
    const broken = await post('{"requirements": ');
    expect(broken.status).toBe(400);
    expect(broken.body.error?.message).toMatch(/^the body is not valid JSON: /);
  });
});

describe('cancel', () => {
  it('a cancel that arrives after the run completed leaves cancel_ignored in the run\'s events', async () => {
    const wf = testWorkflow({ agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] });
    const { result, events } = await fx.fleet.run(wf, 'Plan a tiny todo API');
    expect(result.status).toBe('completed');
    const lastId = (await fx.fleet.client.store.readEvents(result.run_id)).at(-1)?.id ?? '0';
    expect(events.at(-1)?.type).toBe('run_finished');
    // The cancel the API or `fleet cancel` sent while the run was still going, reaching the manager late.
    await fx.fleet.client.cancel(result.run_id, 'stop it');
    const blocking = createRedis(fx.fleet.url, { forWorker: true });
    try {
      const next = await fx.fleet.client.store.readEvents(result.run_id, lastId, 60_000, blocking);
      expect(next.map((e) => e.event)).toEqual([
        {
          type: 'cancel_ignored',
          at: expect.any(Number) as number,
          reason: 'stop it',
          status: 'completed',
          message: expect.stringMatching(/^the cancel requested at .* arrived after the run had completed at .*; nothing was cancelled$/) as string,
        },
      ]);
    } finally {
      blocking.disconnect();
    }
    expect((await fx.fleet.client.result(result.run_id)).status).toBe('completed');
  });
});

describe('template names', () => {
  it('refuses a template whose name differs from a built-in or a registered one only in case', async () => {
    const tpl = (name: string) => ({ name, description: 'd', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] });
    const shadow = await fx.call<Json>('POST', '/api/workflow-templates', { body: tpl('Software-Delivery') });
    expect(shadow.status).toBe(409);
    expect(shadow.body.error?.message).toBe('"Software-Delivery" clashes with the built-in workflow "software-delivery" (template names are compared without case); pick another template name');
    expect((await fx.call('POST', '/api/workflow-templates', { body: tpl('my-flow') })).status).toBe(201);
    const twin = await fx.call<Json>('POST', '/api/workflow-templates', { body: tpl('MY-Flow') });
    expect(twin.status).toBe(409);
    expect(twin.body.error?.message).toMatch(/^"MY-Flow" clashes with the registered template "my-flow"/);
    const listed = await fx.call<{ items: Array<{ name: string }> }>('GET', '/api/workflow-templates?limit=500');
    expect(listed.body.items.map((t) => t.name.toLowerCase()).filter((n) => n === 'software-delivery' || n === 'my-flow')).toEqual(['software-delivery', 'my-flow']);
  });
});

describe('fleet workflows list', () => {
  it('exits 2 when Redis does not answer, listing the built-ins and saying the registered templates could not be read', async () => {
    const port = await freePort();
    const res = await runCli(['workflows', 'list'], cliEnv(`redis://127.0.0.1:${port}`, '{fleet}'));
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).toMatch(/^software-delivery +v/m);
    expect(res.stderr).toContain(`fleet: the registered templates could not be read: Redis at redis://127.0.0.1:${port} does not answer (`);
    expect(res.stderr).toContain('only the built-in workflows are listed');
  });
});
