/**
 * docker-compose.yml as `docker compose` sees it: rendered with `docker-compose config` (Debian's
 * `docker-compose` package, no daemon needed; installed by scripts/ensure-tools.sh) from an env file
 * like `.env.example` filled in, and checked for what a team deployment needs.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  ports?: Array<string | { published?: number | string; target?: number }>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-compose-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `docker-compose config` of the repository's compose file with `env` as its env file. */
async function render(env: Record<string, string>): Promise<{ ok: true; doc: { services: Record<string, Service> } } | { ok: false; stderr: string }> {
  const envFile = join(dir, `env-${Object.keys(env).length}`);
  await writeFile(envFile, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  // Only the env file decides: the variables of the shell running the tests are left out.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(FLEET_|REDIS_|POSTGRES_|ANTHROPIC_)/.test(k)));
  try {
    const { stdout } = await run('docker-compose', ['--project-directory', root, '-f', join(root, 'docker-compose.yml'), '--env-file', envFile, 'config'], { env: clean });
    return { ok: true, doc: parse(stdout) as { services: Record<string, Service> } };
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('docker-compose is not installed: run `bash scripts/ensure-tools.sh` (Debian package docker-compose)', { cause: err });
    return { ok: false, stderr: e.stderr ?? '' };
  }
}

const filled = { FLEET_ADMIN_KEY: 'admin-key-0123456789abcdef', REDIS_PASSWORD: 'redis-pw-42', POSTGRES_PASSWORD: 'pg-pw-42' };

describe('docker-compose.yml', () => {
  it('refuses to render without the admin key, naming it and .env.example', async () => {
    const { FLEET_ADMIN_KEY: _unused, ...withoutKey } = filled;
    const result = await render(withoutKey);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.stderr).toContain('set FLEET_ADMIN_KEY in .env (see .env.example)');
    const noRedisPassword = await render({ FLEET_ADMIN_KEY: filled.FLEET_ADMIN_KEY, POSTGRES_PASSWORD: 'x' });
    expect(!noRedisPassword.ok && noRedisPassword.stderr).toContain('REDIS_PASSWORD');
  });

  it('renders a manager serving the API on 8080, agents per role group, a tools pool, a private Redis, PostgreSQL, and healthchecks', async () => {
    const result = await render(filled);
    if (!result.ok) throw new Error(result.stderr);
    const s = result.doc.services;
    expect(Object.keys(s).sort()).toEqual(['agents-build', 'agents-plan', 'grafana', 'jaeger', 'manager', 'postgres', 'prometheus', 'redis', 'tools']);

    expect(s.manager?.command).toEqual(['manager', '--port', '8080']);
    expect(s.manager?.environment?.FLEET_ADMIN_KEY).toBe(filled.FLEET_ADMIN_KEY);
    expect(s.manager?.environment?.FLEET_HISTORY_URL).toBe('postgres://agentfleet:pg-pw-42@postgres:5432/agentfleet');
    expect(JSON.stringify(s.manager?.ports)).toContain('8080');

    const roles = (name: string) => s[name]?.command?.[s[name].command.indexOf('--roles') + 1]?.split(',') ?? [];
    expect([...roles('agents-plan'), ...roles('agents-build')].sort()).toEqual(['coder', 'designer', 'planner', 'reviewer']);
    expect(roles('tools')).toEqual(['tools']);

    // Redis: AOF, noeviction, a password, and no port on the host.
    expect(s.redis?.ports).toBeUndefined();
    const redisCommand = (s.redis?.command ?? []).join(' ');
    expect(redisCommand).toContain('--appendonly yes');
    expect(redisCommand).toContain('--maxmemory-policy noeviction');
    expect(redisCommand).toContain('--requirepass');
    for (const name of ['manager', 'agents-plan', 'agents-build', 'tools']) {
      expect(s[name]?.environment?.REDIS_URL, name).toBe('redis://:redis-pw-42@redis:6379');
      expect(s[name]?.depends_on?.redis?.condition, name).toBe('service_healthy');
      // Several containers per service: no fixed name, no host port.
      if (name !== 'manager') expect(s[name]?.ports, name).toBeUndefined();
    }
    expect(s.manager?.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(s.grafana?.depends_on?.prometheus?.condition).toBe('service_healthy');
    for (const name of ['redis', 'postgres', 'manager', 'agents-plan', 'agents-build', 'tools', 'prometheus']) {
      expect(s[name]?.healthcheck?.test.length, `${name} has a healthcheck`).toBeGreaterThan(0);
    }
    // Prometheus loads the alert rules.
    expect(JSON.stringify(result.doc.services.prometheus)).toContain('alerts.yml');
  });

  it('.env.example names every required variable', async () => {
    const example = await readFile(join(root, '.env.example'), 'utf8');
    for (const name of Object.keys(filled)) expect(example).toMatch(new RegExp(`^${name}=$`, 'm'));
  });
});
