/**
 * What a key that is not an admin key reads of the template registry, over the real HTTP API: an
 * admin registers two templates whose webhook end action carries a token in its URL and grants one
 * to the analysts. The analyst key lists the built-ins and the granted one only, gets 404 for the
 * other (as for an unknown name), and reads the granted one's webhook as its origin only; the admin
 * key still reads everything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYST_KEY, startApiFixture, type ApiFixture } from '../support/http-api.js';

const TOKEN = 's3cr3t-webhook-token-91c2';
const HOOK = `https://hooks.example.com/services/T01/B02?token=${TOKEN}`;

type Json = Record<string, unknown> & { error?: { code: string; message: string } };
type Detail = { name: string; template: Record<string, unknown> | null; definition: { endAction?: { type: string; target: string } } };

let fx: ApiFixture;
beforeAll(async () => {
  fx = await startApiFixture('template-visibility');
  for (const name of ['tv-granted', 'tv-private']) {
    const created = await fx.call<Json>('POST', '/api/workflow-templates', {
      body: {
        name,
        description: `${name} with a webhook`,
        guidelines: `guidance for ${name} only`,
        agents: ['planner'],
        phases: [{ name: 'plan', agent: 'planner' }],
        end_action_type: 'api_call',
        end_action_target: HOOK,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }
  expect((await fx.call('POST', '/api/permissions', { body: { user_type: 'analyst', template: 'tv-granted' } })).status).toBe(201);
});
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

describe('templates seen by a key that is not an admin key', () => {
  it('lists the built-ins and the granted templates only', async () => {
    const analyst = await fx.call<{ items: Array<{ name: string; builtin: boolean }>; total: number }>('GET', '/api/workflow-templates?limit=500', { key: ANALYST_KEY });
    expect(analyst.status).toBe(200);
    expect(analyst.body.items.filter((t) => !t.builtin).map((t) => t.name)).toEqual(['tv-granted']);
    expect(analyst.body.items.some((t) => t.name === 'software-delivery')).toBe(true);
    expect(analyst.body.total).toBe(analyst.body.items.length);
    const admin = await fx.call<{ items: Array<{ name: string; builtin: boolean }> }>('GET', '/api/workflow-templates?limit=500');
    expect(admin.body.items.filter((t) => !t.builtin).map((t) => t.name)).toEqual(['tv-granted', 'tv-private']);
  });

  it('answers 404 for a template not granted, as for an unknown one', async () => {
    const hidden = await fx.call<Json>('GET', '/api/workflow-templates/tv-private', { key: ANALYST_KEY });
    const unknown = await fx.call<Json>('GET', '/api/workflow-templates/tv-nowhere', { key: ANALYST_KEY });
    expect(hidden.status).toBe(404);
    expect(hidden.body.error?.message).toBe('no workflow template "tv-private"; list them with GET /api/workflow-templates or `fleet workflows list`');
    expect(unknown.status).toBe(404);
    expect(JSON.stringify(hidden.body)).not.toContain('guidance');
    expect((await fx.call<Json>('GET', '/api/workflow-templates/tv-private?version=1', { key: ANALYST_KEY })).status).toBe(404);
  });

  it("shows a granted template's webhook as its origin only; the admin key reads the whole URL", async () => {
    const granted = await fx.call<Detail>('GET', '/api/workflow-templates/tv-granted', { key: ANALYST_KEY });
    expect(granted.status).toBe(200);
    expect(granted.body.template?.end_action_target).toBe('https://hooks.example.com');
    expect(granted.body.definition.endAction).toEqual({ type: 'api_call', target: 'https://hooks.example.com' });
    expect(JSON.stringify(granted.body)).not.toContain(TOKEN);
    expect(JSON.stringify(granted.body)).not.toContain('/services/');
    const admin = await fx.call<Detail>('GET', '/api/workflow-templates/tv-granted');
    expect(admin.body.template?.end_action_target).toBe(HOOK);
    expect(admin.body.definition.endAction?.target).toBe(HOOK);
  });
});
