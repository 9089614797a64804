/**
 * Tool phases, the workflow library and learned workflows, on real Redis:
 * - a workflow mixing agent and tool phases (http_request against a local HTTP server, with a 503
 *   retried; render_template; write_file; a user tool loaded from a TypeScript module) runs end to end;
 * - http_request to a host that is not allowed (directly or through a redirect) and write_file out of
 *   the artifacts directory are refused with clear errors;
 * - `fleet workflows search|suggest` return the expected workflows in order; export then import into
 *   another fleet gives the same templates;
 * - `fleet patterns` finds the sequence three runs shared, and `fleet patterns suggest` turns it into
 *   a registered workflow.
 */
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startToolPool, type ToolPool } from '@agentfleet/agents';
import { FleetAttributes, GenAiAttributes, TemplateRegistry, createRedis } from '@agentfleet/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, trace } from '@opentelemetry/api';
import { TracerProvider as BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

/** Tests that spawn `fleet` processes: each start costs seconds on a loaded machine, so they get four minutes, not the default 30 s. */
const SPAWNS_FLEET = { timeout: 240_000 };

const UPPER_TOOL = fileURLToPath(new URL('./support/tools/upper-tool.ts', import.meta.url));
const spans = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });

let fleet: FleetFixture;
let tools: ToolPool;
let server: Server;
let baseUrl: string;
let artifacts: string;
const requests: Array<{ method: string; url: string; header: string | undefined }> = [];
let failNext = 1;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  server = createServer((req: IncomingMessage, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', header: req.headers['x-run'] as string | undefined });
    if (req.url === '/redirect') {
      res.writeHead(302, { location: 'http://example.com/elsewhere' }).end();
    } else if (req.url?.startsWith('/issues/') && failNext > 0) {
      failNext -= 1;
      res.writeHead(503).end('try again');
    } else if (req.url?.startsWith('/issues/')) {
      const id = req.url.slice('/issues/'.length);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, title: 'Login fails', body: 'Users cannot log in after a password reset.' }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  artifacts = await mkdtemp(join(tmpdir(), 'fleet-tools-'));
  fleet = await startFleet({ name: 'tools' });
  tools = await startToolPool({
    redisUrl: fleet.url,
    prefix: fleet.prefix,
    settings: { allowedHosts: [], artifactsDir: (runId) => join(artifacts, runId), modules: [UPPER_TOOL] },
    onError: () => undefined,
  });
});

afterAll(async () => {
  await tools?.close(2000);
  await fleet?.close();
  await new Promise((resolve) => server?.close(resolve));
  await rm(artifacts, { recursive: true, force: true });
  await provider.shutdown();
  trace.disable();
});

describe('tool phases', () => {
  it('runs agent and tool phases together: templated parameters, a retried 503, parallel tools, a file, a user tool', async () => {
    expect(tools.tools).toEqual(['http_request', 'list_files', 'read_file', 'render_template', 'upper', 'write_file']);
    const wf = testWorkflow({
      agents: ['planner', 'summarizer'],
      variables: { base_url: baseUrl },
      phases: [
        { name: 'planning', agent: 'planner' },
        {
          name: 'fetch',
          tool: 'http_request',
          parameters: { url: '{{base_url}}/issues/{{planning.tasks[0].id}}', headers: { 'x-run': '{{requirements}}' } },
          depends_on: ['planning'],
          retries: 2,
          retry_delay: 0.05,
        },
        { name: 'summarize', agent: 'summarizer', depends_on: ['fetch'] },
        { name: 'note', tool: 'render_template', parameters: { template: 'Issue {{fetch.json.id}}: {{fetch.json.title}}' }, depends_on: ['fetch'] },
        { name: 'shout', tool: 'upper', parameters: { text: '{{note.text}}' }, depends_on: ['note'] },
        { name: 'save', tool: 'write_file', parameters: { path: 'reports/{{fetch.json.id}}.md', content: '{{note.text}}\n\n{{summarize.summary}}\n' }, depends_on: ['summarize', 'note'] },
      ],
    });
    const { result } = await fleet.run(wf, 'Fix the login bug');
    expect(result.status, JSON.stringify(result.errors)).toBe('completed');
    expect(result.phases.map((p) => [p.name, p.agent, p.status])).toEqual([
      ['planning', 'planner', 'completed'],
      ['fetch', 'tools', 'completed'],
      ['summarize', 'summarizer', 'completed'],
      ['note', 'tools', 'completed'],
      ['shout', 'tools', 'completed'],
      ['save', 'tools', 'completed'],
    ]);
    expect(result.phases.find((p) => p.name === 'fetch')?.attempts).toBe(2); // the 503 was retried
    expect(requests.filter((r) => r.url === '/issues/T1')).toEqual([
      { method: 'GET', url: '/issues/T1', header: 'Fix the login bug' },
      { method: 'GET', url: '/issues/T1', header: 'Fix the login bug' },
    ]);
    expect(result.results.fetch).toMatchObject({ status: 200, ok: true, json: { id: 'T1', title: 'Login fails' } });
    expect(result.results.note).toEqual({ text: 'Issue T1: Login fails' });
    expect(result.results.shout).toEqual({ text: 'ISSUE T1: LOGIN FAILS' });
    expect(result.results.save).toEqual({ path: 'reports/T1.md', bytes: expect.any(Number) as number });
    const summary = (result.results.summarize as { summary: string }).summary;
    expect(await readFile(join(artifacts, result.run_id, 'reports', 'T1.md'), 'utf8')).toBe(`Issue T1: Login fails\n\n${summary}\n`);
    // Tool phases spend no tokens and leave the run's model alone.
    expect(result.phases.filter((p) => p.agent === 'tools').every((p) => p.usage.input_tokens === 0)).toBe(true);
    expect(result.model).toBe('agentfleet-offline-1');

    const finished = spans.getFinishedSpans();
    const exec = finished.filter((s) => s.name === 'execute_tool http_request' && s.attributes[FleetAttributes.RunId] === result.run_id);
    expect(exec).toHaveLength(2);
    expect(exec[0]?.attributes).toMatchObject({ [GenAiAttributes.OperationName]: 'execute_tool', [GenAiAttributes.ToolName]: 'http_request' });
    const parent = finished.find((s) => s.spanContext().spanId === exec[0]?.parentSpanContext?.spanId);
    expect(parent?.name).toBe('process agent-tools');
  });

  it('refuses http_request to a host that is not allowed (also through a redirect) and write_file out of the artifacts directory', async () => {
    const wf = testWorkflow({
      agents: [],
      error_handling: { continue_on_error: true },
      phases: [
        { name: 'outside', tool: 'http_request', parameters: { url: 'http://example.com/api' }, retries: 3 },
        { name: 'redirected', tool: 'http_request', parameters: { url: `${baseUrl}/redirect` } },
        { name: 'escape', tool: 'write_file', parameters: { path: '../../escaped.txt', content: 'x' } },
        { name: 'bad_params', tool: 'http_request', parameters: { url: 'http://127.0.0.1:1', method: 'FETCH' } },
      ],
    });
    const { result } = await fleet.run(wf, 'Try the fences');
    expect(result.status).toBe('completed');
    const error = (phase: string) => result.errors.find((e) => e.phase === phase)?.error;
    expect(error('outside')?.code).toBe('TOOL_NOT_ALLOWED');
    expect(error('outside')?.message).toMatch(/host "example\.com" is not allowed.*FLEET_TOOL_ALLOWED_HOSTS/);
    expect(result.phases.find((p) => p.name === 'outside')?.attempts).toBe(1); // not retried
    expect(error('redirected')?.message).toMatch(/host "example\.com" \(a redirect from 127\.0\.0\.1:\d+\) is not allowed/);
    expect(error('escape')).toMatchObject({ code: 'TOOL_NOT_ALLOWED' });
    expect(error('escape')?.message).toMatch(/leaves the artifacts directory.*FLEET_ARTIFACTS_DIR/);
    await expect(stat(join(artifacts, '..', 'escaped.txt'))).rejects.toThrow();
    expect(error('bad_params')).toMatchObject({ code: 'TOOL_INPUT_INVALID' });
    expect(error('bad_params')?.message).toMatch(/parameters\.method/);
  });
});

describe('learned workflows', () => {
  it('`fleet patterns` finds the sequence three runs share; `fleet patterns suggest` turns it into a registered workflow', SPAWNS_FLEET, async () => {
    const wf = testWorkflow({
      name: 'notes',
      agents: ['planner'],
      phases: [
        { name: 'draft', tool: 'render_template', parameters: { template: 'Notes for {{requirements}}' } },
        { name: 'planning', agent: 'planner', depends_on: ['draft'], instructions: '{{draft.text}}' },
        { name: 'save', tool: 'write_file', parameters: { path: 'notes.md', content: '{{planning.summary}}' }, depends_on: ['planning'] },
      ],
    });
    for (const req of ['Add search', 'Add tags', 'Add export']) expect((await fleet.run(wf, req)).result.status).toBe('completed');
    const env = cliEnv(fleet.url, fleet.prefix);
    const listed = await runCli(['patterns', '--min-frequency', '3', '--min-success-rate', '0.8', '--max-length', '5', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const patterns = JSON.parse(listed.stdout) as Array<{ n: number; steps: string[]; frequency: number; success_rate: number; mean_duration_ms: number }>;
    expect(patterns).toEqual([{ n: 1, steps: ['tool:render_template', 'agent:planner', 'tool:write_file'], frequency: 3, success_rate: 1, mean_duration_ms: expect.any(Number) as number }]);

    const suggested = await runCli(['patterns', 'suggest', '1', '--name', 'learned-notes', '--add'], env);
    expect(suggested.code, suggested.stderr).toBe(0);
    expect(suggested.stdout).toContain('name: learned-notes');
    const registry = new TemplateRegistry(fleet.redis, fleet.prefix);
    const t = await registry.get('learned-notes');
    expect(t.category).toBe('learned');
    expect(t.definition.phases.map((p) => [p.name, p.kind, p.tool ?? p.agent])).toEqual([
      ['draft', 'tool', 'render_template'],
      ['planning', 'agent', 'planner'],
      ['save', 'tool', 'write_file'],
    ]);
    // The learned workflow runs.
    expect((await fleet.run(t.definition, 'Add import')).result.status).toBe('completed');
  });
});

describe('the workflow library from the CLI', () => {
  const url = redisUrl();
  const source = uniquePrefix('library-a');
  const target = uniquePrefix('library-b');
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-library-'));
    const redis = createRedis(url);
    const registry = new TemplateRegistry(redis, source);
    await registry.create({
      name: 'issue-digest',
      description: 'Fetch an issue, render a digest, archive it.',
      category: 'research',
      tags: ['tools', 'issues'],
      variables: { base_url: 'http://127.0.0.1:9' },
      phases: [
        { name: 'fetch', tool: 'http_request', parameters: { url: '{{base_url}}/issues/1', headers: { accept: 'application/json' } }, timeout: 15 },
        { name: 'digest', tool: 'render_template', parameters: { template: '{{fetch.json.title}}' }, depends_on: ['fetch'] },
        { name: 'archive', tool: 'write_file', parameters: { path: 'digest.md', content: '{{digest.text}}' }, depends_on: ['digest'] },
      ],
    });
    await registry.create({
      name: 'triage',
      description: 'Plan the triage of a bug report.',
      category: 'software',
      tags: ['bugfix', 'triage'],
      agents: ['planner_agent'],
      phases: [{ name: 'plan', agent: 'planner_agent', retries: 1, instructions: 'Triage: {{requirements}}' }],
    });
    redis.disconnect();
  });
  afterAll(async () => {
    await cleanupPrefix(url, source);
    await cleanupPrefix(url, target);
    await rm(dir, { recursive: true, force: true });
  });

  it('search and suggest return the expected workflows in order', SPAWNS_FLEET, async () => {
    const env = cliEnv(url, source);
    const names = (out: string) => (JSON.parse(out) as Array<{ name: string }>).map((x) => x.name);
    const suggest = await runCli(['workflows', 'suggest', '--tools', 'http_request,write_file', '--json'], env);
    expect(suggest.code, suggest.stderr).toBe(0);
    expect(names(suggest.stdout)).toEqual(['fetch-and-summarize', 'issue-digest']);
    const search = await runCli(['workflows', 'search', 'bugfix', '--json'], env);
    expect(names(search.stdout)).toEqual(['quick-fix', 'triage']);
    const byCategory = await runCli(['workflows', 'search', '--category', 'software', '--agent', 'planner', '--json'], env);
    expect(names(byCategory.stdout)).toEqual(['quick-fix', 'software-delivery', 'triage']);
  });

  it('export then import into another fleet round-trips every workflow in meaning (YAML and JSON)', SPAWNS_FLEET, async () => {
    for (const format of ['yaml', 'json']) {
      const out = join(dir, format);
      const exported = await runCli(['workflows', 'export', '--out', out, '--format', format], cliEnv(url, source));
      expect(exported.code, exported.stderr).toBe(0);
      const files = (await readdir(out)).sort();
      expect(files).toEqual(['design-review', 'fetch-and-summarize', 'issue-digest', 'quick-fix', 'software-delivery', 'triage'].map((n) => `${n}.${format}`));
      const imported = await runCli(['workflows', 'import', ...files.map((f) => join(out, f))], cliEnv(url, target));
      expect(imported.code, imported.stderr).toBe(0);
      // Built-ins are already there (unchanged); the registered ones are created once, then unchanged.
      expect(imported.stdout).toMatch(format === 'yaml' ? /created\s+issue-digest v1/ : /unchanged\s+issue-digest v1/);
      expect(imported.stdout).toMatch(/unchanged\s+software-delivery/);
    }
    const redis = createRedis(url);
    try {
      const a = new TemplateRegistry(redis, source);
      const b = new TemplateRegistry(redis, target);
      for (const name of ['issue-digest', 'triage']) {
        const [x, y] = [await a.get(name), await b.get(name)];
        expect(y.definition).toEqual(x.definition);
        expect(y.template).toEqual(x.template);
        expect(y.versions).toBe(1);
      }
    } finally {
      redis.disconnect();
    }
  });

  it('import validates every file first and writes nothing when one is not valid', SPAWNS_FLEET, async () => {
    const good = join(dir, 'yaml', 'triage.yaml');
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'name: broken\nphases:\n  - name: a\n    tool: http_request\n    depends_on: [nowhere]\n');
    const prefix = uniquePrefix('library-c');
    try {
      const r = await runCli(['workflows', 'import', good, bad], cliEnv(url, prefix));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/bad\.yaml: broken: not imported: workflow "broken" is not valid:\n.*depends_on "nowhere" is not a phase/);
      expect(r.stderr).toMatch(/triage\.yaml: triage: not imported: another file of this import is not valid/);
      const redis = createRedis(url);
      expect(await redis.exists(`${prefix}:template:triage`)).toBe(0);
      redis.disconnect();
    } finally {
      await cleanupPrefix(url, prefix);
    }
  });
});
