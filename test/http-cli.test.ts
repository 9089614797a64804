/**
 * The `fleet` commands that use the HTTP API and the template registry (`submit`, `watch`,
 * `workflows add|list|show|validate`), through the real CLI, and the API's answers when Redis is down.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHttpApi } from '@agentfleet/manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './support/fleet.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';
import { startRedisServer, uniquePrefix } from './support/redis.js';

/** Tests that spawn `fleet` processes: each start costs seconds on a loaded machine, so they get four minutes, not the default 30 s. */
const SPAWNS_FLEET = { timeout: 240_000 };

let fx: ApiFixture;
beforeAll(async () => {
  fx = await startApiFixture('http-cli');
});
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

describe('fleet submit, watch and workflows with the HTTP API', () => {
  it('adds a template from a file, lists and shows it, submits a run with --wait and watches it', SPAWNS_FLEET, async () => {
    const env = cliEnv(fx.fleet.url, fx.fleet.prefix, { FLEET_API_KEY: ADMIN_KEY, FLEET_MANAGER_URL: fx.api.url });
    const dir = mkdtempSync(join(tmpdir(), 'fleet-tpl-'));
    const file = join(dir, 'cli-tpl.yaml');
    writeFileSync(file, 'name: cli-tpl\ndescription: from the CLI\ncategory: cli\nagents: [planner]\nphases:\n  - {name: plan, agent: planner, timeout: 20, retries: 0}\n');
    const validate = await runCli(['workflows', 'validate', file], env);
    expect(validate.code, validate.stderr).toBe(0);
    const add = await runCli(['workflows', 'add', file], env);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout.trim()).toBe('cli-tpl 1');
    const again = await runCli(['workflows', 'add', file], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    const update = await runCli(['workflows', 'add', file, '--update'], env);
    expect(update.stdout.trim()).toBe('cli-tpl 2');
    const list = await runCli(['workflows', 'list'], env);
    expect(list.stdout).toMatch(/software-delivery\s+v\S+\s+built-in/);
    expect(list.stdout).toMatch(/cli-tpl\s+v2\s+template\s+from the CLI/);
    const show = await runCli(['workflows', 'show', 'cli-tpl'], env);
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'cli-tpl', version: '2', category: 'cli' });

    const submitted = await runCli(['submit', 'Build a tiny todo API', '--workflow', 'cli-tpl', '--wait', '--manager-url', fx.api.url], env);
    expect(submitted.code, submitted.stderr).toBe(0);
    const result = JSON.parse(submitted.stdout) as { run_id: string; status: string; workflow: { name: string; version: string } };
    expect(result).toMatchObject({ status: 'completed', workflow: { name: 'cli-tpl', version: '2' } });
    expect(submitted.stderr).toMatch(/✓ plan completed in \d+\.\ds/);
    expect(submitted.stderr).toMatch(/run completed in/);

    const watched = await runCli(['watch', result.run_id], env);
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stderr).toContain('run created: workflow cli-tpl v2');
    expect(watched.stderr).toMatch(/✓ plan completed/);
    expect(watched.stderr).toContain(`run ${result.run_id} completed`);

    const noKey = await runCli(['submit', 'x', '--manager-url', fx.api.url], { ...env, FLEET_API_KEY: '' });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/answered 401.*FLEET_API_KEY/);
  });
});

describe('when Redis is down', () => {
  it('answers 503 at once on /healthz and the runs endpoints instead of hanging', async () => {
    const redis = await startRedisServer();
    const api = await startHttpApi({ redisUrl: redis.url, prefix: uniquePrefix('http-down'), port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], bullBoard: false });
    try {
      expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
      await redis.stop();
      const auth = { authorization: `Bearer ${ADMIN_KEY}` };
      const health = await fetch(`${api.url}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'unavailable', redis: 'unreachable' });
      const runs = await fetch(`${api.url}/api/runs`, { headers: auth });
      expect(runs.status).toBe(503);
      expect(await runs.json()).toMatchObject({ error: { code: 'REDIS_UNAVAILABLE' } });
      const post = await fetch(`${api.url}/api/runs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ requirements: 'x', template: 'software-delivery' }) });
      expect(post.status).toBe(503);
    } finally {
      await api.close();
      await redis.stop();
    }
  });
});
