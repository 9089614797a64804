/**
 * What a newcomer meets in the first hour, through the real `fleet` CLI on real Redis with the
 * offline model: a phase queued to a role no pool serves is reported (not left queued without a
 * word); `fleet run` serves the roles of child workflows and fallbacks and follows the fallback it
 * started; a process that cannot start exits non-zero with one line and no stack trace.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetClient, createRedis, type RunResult, type StoredRunEvent } from '@agentfleet/core';
import { afterAll, describe, expect, it } from 'vitest';
import { FLEET_BIN, cliEnv, runCli, spawnCli, type CliProcess } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefixes: string[] = [];
function prefix(name: string): string {
  const p = uniquePrefix(name);
  prefixes.push(p);
  return p;
}
afterAll(async () => {
  for (const p of prefixes) await cleanupPrefix(redisUrl(), p);
});

/** The bound of a test that starts `fleet` processes (each start takes seconds on a loaded machine). */
const SPAWNS_FLEET = { timeout: 240_000 };

/** No line of a stack trace (`    at fn (file:line)`) in a process's output. */
function expectNoStack(output: string): void {
  expect(output).not.toMatch(/^\s+at .+[:(]/m);
}

function writeWorkflow(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('a phase whose role no pool serves', () => {
  it('is reported in the run events, by fleet run, fleet status and fleet workers; the run completes once a pool starts', SPAWNS_FLEET, async () => {
    const url = redisUrl();
    const p = prefix('unserved');
    const env = cliEnv(url, p);
    const processes: CliProcess[] = [spawnCli(['manager'], env), spawnCli(['agents', '--roles', 'planner,designer,coder'], env)];
    const redis = createRedis(url);
    const blocking = createRedis(url, { forWorker: true });
    const client = new FleetClient(redis, p);
    try {
      await processes[0]!.waitFor('manager: consuming');
      await processes[1]!.waitFor('agents: serving');
      const run = spawnCli(['run', 'Build a todo REST API', '--no-local-workers', '--json'], env);
      processes.push(run);
      await run.waitFor('no worker serves role reviewer: start `fleet agents --roles reviewer`', 60_000);
      const runId = /run ([0-9a-f-]{36}):/.exec(run.output())?.[1];
      expect(runId, run.output()).toBeDefined();

      // The run's own events say it (what the console and SSE clients read).
      const unserved = await new Promise<StoredRunEvent['event']>((resolve, reject) => {
        let found = false;
        client
          .follow(runId!, blocking, (e) => {
            if (!found && e.event.type === 'role_unserved') {
              found = true;
              resolve(e.event);
            }
          })
          .then(() => reject(new Error('the run finished without a role_unserved event')), reject);
        // follow() goes on until the run ends; the test starts the reviewer pool below.
      });
      expect(unserved).toMatchObject({ type: 'role_unserved', phase: 'review', role: 'reviewer' });

      const status = await runCli(['status', runId!], env);
      expect(status.code).toBe(0);
      expect((JSON.parse(status.stdout) as RunResult).unserved).toEqual([expect.objectContaining({ phase: 'review', role: 'reviewer' })]);
      expect(status.stderr).toContain('no worker serves role reviewer');
      expect((await runCli(['status'], env)).stdout).toMatch(new RegExp(`${runId}.*no worker serves role reviewer`));

      const workers = await runCli(['workers'], env);
      expect(workers.stdout).toMatch(/^reviewer .*! no worker serves role reviewer/m);

      // A reviewer pool picks the job up and the run completes.
      processes.push(spawnCli(['agents', '--roles', 'reviewer'], env));
      expect(await run.exited).toBe(0);
      expect((JSON.parse((await runCli(['status', runId!], env)).stdout) as RunResult).status).toBe('completed');
      expectNoStack(run.output());
    } finally {
      await Promise.all(processes.map((proc) => proc.stop('SIGTERM')));
      await client.close();
      blocking.disconnect();
      redis.disconnect();
    }
  });
});

describe('fleet run reaches every workflow its run can start', () => {
  it('serves a child workflow registered as a template, and follows a fallback to completion', SPAWNS_FLEET, async () => {
    const env = cliEnv(redisUrl(), prefix('reach'));
    const dir = mkdtempSync(join(tmpdir(), 'fleet-reach-'));
    // design-review's roles (designer, reviewer, summarizer) are not the parent's: before, the
    // child's first job waited for ever.
    const parent = writeWorkflow(
      dir,
      'with-child.yaml',
      [
        'name: with-child',
        'agents: [planner]',
        'phases:',
        '  - name: planning',
        '    agent: planner',
        '  - name: design',
        '    workflow: design-review',
        '    depends_on: [planning]',
        '',
      ].join('\n'),
    );
    // Registered, then run by name: one library for files, templates and built-ins.
    const added = await runCli(['workflows', 'add', parent], env);
    expect(added.code, added.stderr).toBe(0);
    const child = await runCli(['run', 'Build a todo REST API', '--workflow', 'with-child', '--json', '--out', join(dir, 'child')], env);
    expect(child.code, child.stderr).toBe(0);
    const childResult = JSON.parse(child.stdout) as RunResult;
    expect(childResult.phases.map((ph) => [ph.name, ph.status])).toEqual([
      ['planning', 'completed'],
      ['design', 'completed'],
    ]);

    // A tool phase refused for good (write_file outside the artifacts directory) fails the run; its
    // fallback runs design-review, whose roles the failing workflow does not name.
    const failing = writeWorkflow(
      dir,
      'failing.yaml',
      [
        'name: failing',
        'agents: [planner]',
        'phases:',
        '  - name: planning',
        '    agent: planner',
        '  - name: escape',
        '    tool: write_file',
        '    parameters: { path: /etc/fleet-escape.txt, content: x }',
        '    retries: 0',
        '    depends_on: [planning]',
        'error_handling:',
        '  fallback_workflow: design-review',
        '',
      ].join('\n'),
    );
    const res = await runCli(['run', 'Build a todo REST API', '--workflow', failing, '--json', '--out', join(dir, 'fallback')], env);
    expect(res.code, res.stderr).toBe(0);
    const result = JSON.parse(res.stdout) as RunResult;
    expect(result.workflow.name).toBe('design-review');
    expect(result.status).toBe('completed');
    const failedId = result.links.fallback_of as string;
    expect(res.stderr).toContain(`run ${failedId} failed: following its fallback run ${result.run_id}`);
    const failed = await runCli(['status', failedId], env);
    expect((JSON.parse(failed.stdout) as RunResult).links.fallback_run_id).toBe(result.run_id);
  });
});

describe('a process that cannot do its job', () => {
  it('exits non-zero with one line: busy port, bad API keys, a non-Redis REDIS_URL, --out on a file', SPAWNS_FLEET, async () => {
    const env = cliEnv(redisUrl(), prefix('startup'));
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '0.0.0.0', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const manager = spawnCli(['manager', '--port', String(port)], env);
      expect(await manager.exited).toBe(1);
      expect(manager.output()).toContain(`fleet: port ${port} is already in use`);
      expectNoStack(manager.output());
    } finally {
      busy.close();
    }

    const shortAdmin = await runCli(['manager', '--port', String(port)], { ...env, FLEET_ADMIN_KEY: 'short' });
    expect(shortAdmin.code).toBe(2);
    expect(shortAdmin.stderr).toContain('shorter than 16 characters');
    expect(shortAdmin.stderr).not.toContain('manager: consuming');

    const badKeys = await runCli(['manager', '--port', String(port)], { ...env, FLEET_API_KEYS: 'no-colon-here' });
    expect(badKeys.code).toBe(2);
    expect(badKeys.stderr).toContain('FLEET_API_KEYS');

    const http = await runCli(['status'], { ...env, REDIS_URL: 'http://127.0.0.1:6379' });
    expect(http.code).toBe(2);
    expect(http.stderr).toContain('the scheme "http:" is not a Redis one');

    const file = join(mkdtempSync(join(tmpdir(), 'fleet-out-')), 'taken');
    writeFileSync(file, 'x');
    const out = await runCli(['run', 'Build a todo REST API', '--out', file], env);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`--out ${file} is a file`);
    expect(out.stderr).not.toContain('run created');

    for (const r of [shortAdmin, badKeys, http, out]) expectNoStack(r.stderr);
  });
});

describe('fleet workflows validate', () => {
  it('checks what fleet run checks, every problem at once, with the closest names', SPAWNS_FLEET, async () => {
    const env = cliEnv(redisUrl(), prefix('validate'));
    const dir = mkdtempSync(join(tmpdir(), 'fleet-validate-'));
    const file = writeWorkflow(
      dir,
      'typos.yaml',
      [
        'name: typos',
        'agents: [planner, reviewr]',
        'phases:',
        '  - name: planning',
        '    agent: planner',
        '  - name: check',
        '    agent: reviewr',
        '    depends_on: [planning]',
        '  - name: fetch',
        '    tool: http_reqest',
        '    parameters: { url: "http://127.0.0.1/" }',
        'error_handling:',
        '  fallback_workflow: software-delivry',
        '',
      ].join('\n'),
    );
    const validate = await runCli(['workflows', 'validate', file], env);
    expect(validate.code).toBe(2);
    expect(validate.stderr).toContain('no workflow "software-delivry" (did you mean "software-delivery"?)');
    expect(validate.stderr).toContain('no agent role "reviewr" (did you mean "reviewer"?)');
    expect(validate.stderr).toContain('phases.fetch.tool: no tool "http_reqest" (did you mean "http_request"?)');

    // `fleet run` refuses the same workflow before anything is submitted.
    const run = await runCli(['run', 'Build a todo REST API', '--workflow', file], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no agent role "reviewr"');
    expect(run.stderr).not.toContain('run created');

    const typo = await runCli(['run', 'Build a todo REST API', '--workflow', 'software-delivry'], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('(did you mean "software-delivery"?)');
    const show = await runCli(['workflows', 'show', 'software-delivry'], env);
    expect(show.code).toBe(2);
    expect(show.stderr).toContain('no workflow "software-delivry" (did you mean "software-delivery"?)');
    for (const r of [validate, run, typo, show]) expectNoStack(r.stderr);
  });
});

describe('the output section does what it says', () => {
  it('save_to_file: false writes nothing; format json writes result.json and no documents; markdown no result.json', SPAWNS_FLEET, async () => {
    const env = cliEnv(redisUrl(), prefix('output'));
    const dir = mkdtempSync(join(tmpdir(), 'fleet-output-'));
    const wf = (output: string) =>
      writeWorkflow(dir, `${output.replace(/\W+/g, '-')}.yaml`, ['name: out', 'agents: [planner]', 'phases:', '  - name: planning', '    agent: planner', `output: { ${output} }`, ''].join('\n'));

    const none = await runCli(['run', 'Build a todo REST API', '--workflow', wf('save_to_file: false'), '--json'], env, { cwd: dir });
    expect(none.code, none.stderr).toBe(0);
    expect((JSON.parse(none.stdout) as RunResult).artifacts_dir).toBeNull();
    expect(existsSync(join(dir, 'runs'))).toBe(false);

    const json = await runCli(['run', 'Build a todo REST API', '--workflow', wf('format: json'), '--out', join(dir, 'json')], env);
    expect(json.code, json.stderr).toBe(0);
    expect(readdirSync(join(dir, 'json'))).toEqual(['result.json']);

    const markdown = await runCli(['run', 'Build a todo REST API', '--workflow', wf('format: markdown'), '--out', join(dir, 'md')], env);
    expect(markdown.code, markdown.stderr).toBe(0);
    expect(readdirSync(join(dir, 'md'))).toEqual(['plan.md']);
  });
});

describe('output to a reader that stops early', () => {
  it('fleet status into a pipe whose reader has exited (`fleet status | head -5`) exits 0 without a stack trace', SPAWNS_FLEET, async () => {
    const env = cliEnv(redisUrl(), prefix('epipe'));
    // The pipe's reader (`true`) has exited before fleet starts, so its first write fails with
    // EPIPE every time: the same as `| head -5` once head has read its lines.
    const script = `exec {fd}> >(true); wait $!; ${JSON.stringify(process.execPath)} ${JSON.stringify(FLEET_BIN)} status >&$fd`;
    const res = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).not.toContain('EPIPE');
    expectNoStack(res.stderr);
  });
});

describe('counts in words', () => {
  it('a one-phase workflow is "1 phase" in fleet workflows validate and fleet run', SPAWNS_FLEET, async () => {
    const env = cliEnv(redisUrl(), prefix('plural'));
    const dir = mkdtempSync(join(tmpdir(), 'fleet-plural-'));
    const file = writeWorkflow(dir, 'one.yaml', ['name: one', 'agents: [planner]', 'phases:', '  - name: planning', '    agent: planner', ''].join('\n'));
    const validate = await runCli(['workflows', 'validate', file], env);
    expect(validate.code, validate.stderr).toBe(0);
    expect(validate.stderr).toContain('valid (one v1.0.0, 1 phase)');
    const run = await runCli(['run', 'Build a todo REST API', '--workflow', file, '--out', join(dir, 'out')], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/run [0-9a-f-]{36}: one v1\.0\.0, 1 phase\n/);
  });
});

describe('a mistyped command, flag or role', () => {
  it('is refused with exit 2 and the closest name', SPAWNS_FLEET, async () => {
    const env = cliEnv(redisUrl(), prefix('typos'));
    const command = await runCli(['stauts'], env);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain("unknown command 'stauts'");
    expect(command.stderr).toContain('Did you mean status?');
    const flag = await runCli(['run', 'Build a todo REST API', '--wrkflow', 'quick-fix'], env);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('Did you mean --workflow?');
    const role = await runCli(['agents', '--roles', 'reviewr'], env);
    expect(role.code).toBe(2);
    expect(role.stderr).toContain('no agent role "reviewr" (did you mean "reviewer"?)');
    for (const r of [command, flag, role]) expectNoStack(r.stderr);
  });
});
