/**
 * The Dockerfile's image and docker-compose.yml as `docker compose` sees it: rendered with `docker-compose config` (Debian's
 * `docker-compose` package, no daemon needed; installed by scripts/ensure-tools.sh) from an env file
 * like `.env.example` filled in, and checked for what a team deployment needs.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { BUILTIN_WORKFLOWS_DIR } from '@agentfleet/core';
import { MIGRATIONS_DIR } from '@agentfleet/manager';
import balenaDockerignore from '@balena/dockerignore';
import { Copy, DockerfileParser } from 'dockerfile-ast';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const run = promisify(execFile);
// A CommonJS module whose typings declare a default export: under Node's ESM the default import is
// `module.exports`, which also carries itself as `.default`.
const dockerignore = balenaDockerignore.default;
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

/**
 * The image as the Dockerfile builds it, worked out without a Docker daemon: the build context is
 * the repository's files less `.dockerignore` (Docker's own matching rules, `@balena/dockerignore`),
 * and each stage's files follow its `WORKDIR`, `COPY` and `COPY --from` instructions (parsed with
 * `dockerfile-ast`). Checked: `npm ci` sees every workspace's manifest (else that workspace's
 * dependencies are missing and its build fails), and the final stage holds every file the processes
 * read from disk at run time.
 */
describe('Dockerfile', () => {
  /** Files of each stage (absolute image paths → context path), and the files present at each `RUN`. */
  async function simulate(): Promise<{ stages: Map<string, Map<string, string>>; runs: Array<{ stage: string; command: string; files: Set<string> }>; final: Map<string, string> }> {
    const { stdout } = await run('git', ['ls-files', '-z'], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
    const ignore = dockerignore().add((await readFile(join(root, '.dockerignore'), 'utf8')).split('\n'));
    const context = ignore.filter(stdout.split('\0').filter(Boolean));
    const dockerfile = DockerfileParser.parse(await readFile(join(root, 'Dockerfile'), 'utf8'));
    const stages = new Map<string, Map<string, string>>();
    const runs: Array<{ stage: string; command: string; files: Set<string> }> = [];
    let stage = '';
    let files = new Map<string, string>();
    let workdir = '/';
    for (const instruction of dockerfile.getInstructions()) {
      const keyword = instruction.getKeyword();
      const args = instruction.getArguments().map((a) => a.getValue());
      if (keyword === 'FROM') {
        const as = args.findIndex((a) => a.toUpperCase() === 'AS');
        stage = as >= 0 ? (args[as + 1] ?? '') : String(stages.size);
        files = new Map();
        stages.set(stage, files);
        workdir = '/';
      } else if (keyword === 'WORKDIR') {
        workdir = posix.resolve(workdir, args[0] ?? '.');
      } else if (keyword === 'RUN') {
        runs.push({ stage, command: instruction.getArgumentsContent() ?? '', files: new Set(files.keys()) });
      } else if (keyword === 'COPY') {
        const from = instruction instanceof Copy ? (instruction.getFromFlag()?.getValue() ?? undefined) : undefined;
        const paths = [...args];
        const dest = paths.pop() ?? '.';
        const target = posix.resolve(workdir, dest);
        for (const source of paths) {
          const origin: Array<[string, string]> = from === undefined ? context.map((f) => [f, f]) : [...(stages.get(from) ?? new Map<string, string>())];
          const base = from === undefined ? posix.normalize(source).replace(/\/$/, '') : posix.resolve('/', source);
          for (const [path, contextPath] of origin) {
            if (path === base) files.set(dest.endsWith('/') || paths.length > 1 ? posix.join(target, posix.basename(path)) : target, contextPath);
            else if (path.startsWith(`${base}/`)) files.set(posix.join(target, path.slice(base.length + 1)), contextPath);
          }
        }
      }
    }
    return { stages, runs, final: files };
  }

  it('installs with every workspace manifest present, so each workspace gets its dependencies and builds', async () => {
    const { runs } = await simulate();
    const install = runs.find((r) => r.stage === 'build' && /\bnpm ci\b/.test(r.command));
    expect(install, 'the build stage runs `npm ci`').toBeDefined();
    const workspaces = (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    const missing = ['package.json', 'package-lock.json', ...workspaces.map((w) => `${w}/package.json`)].filter((f) => !install?.files.has(`/app/${f}`));
    expect(missing, 'manifests `npm ci` does not see').toEqual([]);
    const build = runs.find((r) => r.stage === 'build' && /\bnpm run build\b/.test(r.command));
    expect(build?.files.has('/app/apps/console/index.html'), 'the console sources are there when `npm run build` builds them').toBe(true);
  });

  it('ships the files the processes read at run time: the archive migrations, the Redis scripts, the built-in workflows', async () => {
    const { final } = await simulate();
    const { stdout } = await run('git', ['ls-files', '-z'], { cwd: root });
    const tracked = stdout.split('\0').filter(Boolean);
    const dirs = [relative(root, MIGRATIONS_DIR), relative(root, BUILTIN_WORKFLOWS_DIR), 'packages/core/src/store/commands'];
    for (const dir of dirs) {
      const needed = tracked.filter((f) => f.startsWith(`${dir}/`));
      expect(needed.length, `${dir} holds files`).toBeGreaterThan(0);
      expect(needed.filter((f) => !final.has(`/app/${f}`)), `files of ${dir} missing from the image`).toEqual([]);
    }
    expect(final.has(`/app/${relative(root, MIGRATIONS_DIR)}/1764600000000_run-archive.sql`)).toBe(true);
    // The runtime stage has the built workspaces and the CLI the ENTRYPOINT runs.
    expect(final.has('/app/apps/cli/bin/fleet.js')).toBe(true);
  });
});
