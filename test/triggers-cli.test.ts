/**
 * `fleet triggers add|list|show|remove|fire`, `fleet workflows webhook-secret` and
 * `fleet submit --idempotency-key` through the real CLI, against a real fleet and HTTP API on real Redis.
 */
import { signedHeaders } from '@agentfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './support/fleet.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

/** Tests that spawn `fleet` processes: each start costs seconds on a loaded machine. */
const SPAWNS_FLEET = { timeout: 240_000 };

let fx: ApiFixture;
beforeAll(async () => {
  fx = await startApiFixture('triggers-cli');
});
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

describe('fleet triggers and fleet submit --idempotency-key', () => {
  it('defines a signed trigger that a delivery fires, lists, shows and removes it; submit with a key twice prints one run', SPAWNS_FLEET, async () => {
    const env = cliEnv(fx.fleet.url, fx.fleet.prefix, { FLEET_API_KEY: ADMIN_KEY, FLEET_MANAGER_URL: fx.api.url, ISSUE_HOOK_SECRET: 'from-the-env-0123456789' });
    expect((await fx.call('POST', '/api/workflow-templates', { body: { name: 'cli-trig', agents: ['planner'], variables: { repo: 'none' }, phases: [{ name: 'plan', agent: 'planner', timeout: 20, retries: 0 }] } })).status).toBe(201);

    const add = await runCli(['triggers', 'add', 'cli-issue', '--workflow', 'cli-trig', '--generate-secret', '--requirements-template', 'Triage: {{body.title}}', '--var', 'repo={{body.repo}}'], env);
    expect(add.code, add.stderr).toBe(0);
    const secret = add.stdout.trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const again = await runCli(['triggers', 'add', 'cli-issue', '--workflow', 'cli-trig', '--requirements-template', 'x'], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('--replace');
    const fromEnv = await runCli(['triggers', 'add', 'cli-env', '--workflow', 'cli-trig', '--secret-env', 'ISSUE_HOOK_SECRET', '--requirements-template', '{{body.title}}'], env);
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    const badRef = await runCli(['triggers', 'add', 'cli-bad', '--workflow', 'cli-trig', '--requirements-template', '{{plan.tasks}}'], env);
    expect(badRef.code).toBe(2);
    expect(badRef.stderr).toContain('{{body.<field>}}');

    const list = await runCli(['triggers', 'list'], env);
    expect(list.stdout).toMatch(/cli-env\s+cli-trig\s+signed/);
    expect(list.stdout).toMatch(/cli-issue\s+cli-trig\s+signed/);
    const show = await runCli(['triggers', 'show', 'cli-issue'], env);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'cli-issue', workflow: 'cli-trig', has_secret: true, variables: { repo: '{{body.repo}}' } });
    expect(show.stdout).not.toContain(secret);

    // A delivery signed with the printed secret, and one signed with the secret the env variable held.
    for (const [name, key] of [['cli-issue', secret], ['cli-env', 'from-the-env-0123456789']] as const) {
      const body = JSON.stringify({ title: `Crash on save (${name})`, repo: 'acme/app' });
      const res = await fetch(`${fx.api.url}/api/triggers/${name}`, { method: 'POST', headers: { 'content-type': 'application/json', ...signedHeaders(key, body, `cli-${name}-1`) }, body });
      expect(res.status, await res.clone().text()).toBe(201);
      const { run_id } = (await res.json()) as { run_id: string };
      expect((await fx.fleet.client.store.getRun(run_id)).meta.requirements).toBe(`${name === 'cli-issue' ? 'Triage: ' : ''}Crash on save (${name})`);
    }

    // fleet triggers fire: signed with the secret from the environment, then the same delivery again (refused), then with the API key.
    const fired = await runCli(['triggers', 'fire', 'cli-env', '--data', '{"title": "Fired from the CLI"}', '--secret-env', 'ISSUE_HOOK_SECRET', '--delivery-id', 'cli-fire-1'], env);
    expect(fired.code, fired.stderr).toBe(0);
    expect((await fx.fleet.client.store.getRun(fired.stdout.trim())).meta.requirements).toBe('Fired from the CLI');
    const refired = await runCli(['triggers', 'fire', 'cli-env', '--data', '{"title": "Fired from the CLI"}', '--secret-env', 'ISSUE_HOOK_SECRET', '--delivery-id', 'cli-fire-1'], env);
    expect(refired.code).toBe(2);
    expect(refired.stderr).toMatch(/401.*cli-fire-1 was received before/);
    const keyed = await runCli(['triggers', 'fire', 'cli-env', '--data', '{"title": "With the key"}'], env);
    expect(keyed.code, keyed.stderr).toBe(0);
    expect(keyed.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);

    const removed = await runCli(['triggers', 'remove', 'cli-env'], env);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await runCli(['triggers', 'remove', 'cli-env'], env)).code).toBe(2);

    const secretSet = await runCli(['workflows', 'webhook-secret', 'cli-trig', '--generate'], env);
    expect(secretSet.code, secretSet.stderr).toBe(0);
    expect(secretSet.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(await fx.fleet.redis.hget(`${fx.fleet.prefix}:webhook-secrets`, 'cli-trig')).toBe(secretSet.stdout.trim());

    const s1 = await runCli(['submit', 'Build a tiny todo API', '--workflow', 'cli-trig', '--idempotency-key', 'cli-order-1'], env);
    const s2 = await runCli(['submit', 'Build a tiny todo API', '--workflow', 'cli-trig', '--idempotency-key', 'cli-order-1'], env);
    expect(s1.code, s1.stderr).toBe(0);
    expect(s2.code, s2.stderr).toBe(0);
    expect(s2.stdout.trim()).toBe(s1.stdout.trim());
    const s3 = await runCli(['submit', 'Another API', '--workflow', 'cli-trig', '--idempotency-key', 'cli-order-1'], env);
    expect(s3.code).toBe(2);
    expect(s3.stderr).toMatch(/409.*different body/);
  });
});
