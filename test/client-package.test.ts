/**
 * `@agentfleet/core` as an application gets it from a registry: `npm pack` of the workspace, the
 * tarball installed into a new project outside the workspace, a small program type-checked with
 * `skipLibCheck: false` (so every typing it pulls in must compile) and run against real Redis: it
 * submits a run, follows its events and reads the result, while this test's fleet (manager and
 * agent pools, offline model) carries the run out.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startFleet, type FleetFixture } from './support/fleet.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

const PROGRAM = `import { FleetClient, createRedis, loadBuiltinWorkflow, type RunResult, type StoredRunEvent } from '@agentfleet/core';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = process.env.FLEET_QUEUE_PREFIX ?? '{fleet}';
const redis = createRedis(url);
const blocking = createRedis(url, { forWorker: true });
const client = new FleetClient(redis, prefix);
const workflow = await loadBuiltinWorkflow('software-delivery');
const runId: string = await client.submit({ workflow, requirements: 'A todo API with user accounts', provider: 'offline' });
const events: string[] = [];
const result: RunResult = await client.follow(runId, blocking, (e: StoredRunEvent) => events.push(e.event.type));
console.log(JSON.stringify({ runId, status: result.status, phases: result.phases.map((p) => p.name), events }));
await client.close();
blocking.disconnect();
redis.disconnect();
`;

let project: string;
let fleet: FleetFixture;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'fleet-consumer-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', project], { cwd: join(root, 'packages/core'), maxBuffer: 16 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  expect(packed!.files.map((f) => f.path)).toContain('dist/index.js');
  expect(packed!.files.map((f) => f.path)).toContain('workflows/software-delivery.yaml');
  expect(packed!.files.some((f) => f.path.includes('.test.'))).toBe(false);
  const typesNode = (JSON.parse(await readFile(join(root, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'fleet-consumer', version: '1.0.0', private: true, type: 'module' }));
  // --prefer-offline: the packages are in npm's cache after the workspace's own `npm ci`.
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', `./${packed!.filename}`, `@types/node@${typesNode}`], { cwd: project, maxBuffer: 16 * 1024 * 1024 });
  await writeFile(join(project, 'main.ts'), PROGRAM);
  await writeFile(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, files: ['main.ts'] }),
  );
  fleet = await startFleet({ name: 'client-package' });
}, 300_000);

afterAll(async () => {
  await fleet?.close();
  if (project) await rm(project, { recursive: true, force: true });
});

describe('@agentfleet/core from its tarball', () => {
  it('installs outside the workspace with its build, and nothing links back to the workspace', async () => {
    const installed = join(project, 'node_modules/@agentfleet/core');
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { private?: boolean; exports: Record<string, { types: string }> };
    expect(manifest.private).toBeUndefined();
    expect(manifest.exports['.']?.types).toBe('./dist/index.d.ts');
    expect(await readdir(join(installed, 'dist'))).toContain('index.d.ts');
    expect(project.startsWith(root)).toBe(false);
  });

  it('a program using it type-checks with skipLibCheck: false', async () => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    await expect(run(process.execPath, [tsc, '-p', project], { cwd: project })).resolves.toBeDefined();
  }, 300_000);

  it('submits a run, follows its events and reads the result against real Redis', async () => {
    const { stdout } = await run(process.execPath, ['main.ts'], {
      cwd: project,
      env: { ...process.env, REDIS_URL: fleet.url, FLEET_QUEUE_PREFIX: fleet.prefix, NODE_NO_WARNINGS: '1' },
    });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { runId: string; status: string; phases: string[]; events: string[] };
    expect(out.status).toBe('completed');
    expect(out.phases).toEqual(['planning', 'design', 'implementation', 'review']);
    expect(out.events.slice(0, 2)).toEqual(['run_created', 'run_started']);
    expect(out.events.at(-1)).toBe('run_finished');
    expect((await fleet.client.result(out.runId)).status).toBe('completed');
  }, 120_000);
});
