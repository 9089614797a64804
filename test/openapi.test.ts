/**
 * The OpenAPI document as a user's tools read it, from a real manager (fleet + HTTP API on real
 * Redis): rules every operation must follow (so routes added later are held to them), Redocly's
 * recommended ruleset (`@redocly/cli`), and a client generated from it (`openapi-typescript` types,
 * `openapi-fetch` calls) that type-checks strictly and then submits and reads a run.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, readSse, startApiFixture, type ApiFixture } from './support/http-api.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, { description?: string; content?: Record<string, { schema?: { $ref?: string; properties?: Record<string, { enum?: string[] }> } }> }>;
}
interface Document {
  servers?: Array<{ url: string }>;
  tags?: Array<{ name: string; description?: string }>;
  paths: Record<string, Record<string, Operation>>;
  components: {
    securitySchemes: Record<string, { type: string; scheme?: string; in?: string; name?: string }>;
    schemas: Record<string, { properties?: Record<string, { enum?: string[] }> }>;
  };
}

let fx: ApiFixture;
let doc: Document;
let dir: string;
const operations: Array<{ method: string; path: string; op: Operation }> = [];

beforeAll(async () => {
  fx = await startApiFixture('openapi');
  const res = await fx.call<Document>('GET', '/openapi.json', { key: null });
  expect(res.status).toBe(200);
  doc = res.body;
  for (const [path, methods] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(methods)) operations.push({ method, path, op });
  dir = await mkdtemp(join(tmpdir(), 'fleet-openapi-'));
  await writeFile(join(dir, 'openapi.json'), JSON.stringify(doc, null, 2));
});
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `/api/runs/{id}` with every path parameter filled in, so the route can be called. */
const callable = (path: string) => path.replace(/\{[^}]+\}/g, 'no-such-id');
const isPublic = (op: Operation) => Array.isArray(op.security) && op.security.length === 0;

describe('every operation', () => {
  it('has a unique operationId, a summary, and tags the document declares with a description', () => {
    expect(operations.length).toBeGreaterThanOrEqual(25);
    const declared = new Map((doc.tags ?? []).map((t) => [t.name, t.description]));
    const problems: string[] = [];
    const ids = new Set<string>();
    for (const { method, path, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.operationId || !/^[A-Za-z][A-Za-z0-9]*$/.test(op.operationId)) problems.push(`${where}: operationId "${op.operationId ?? ''}" (camelCase, letters and digits)`);
      else if (ids.has(op.operationId)) problems.push(`${where}: operationId "${op.operationId}" is used twice`);
      else ids.add(op.operationId);
      if (!op.summary?.trim()) problems.push(`${where}: no summary`);
      if (!op.tags?.length) problems.push(`${where}: no tag`);
      for (const tag of op.tags ?? []) if (!declared.get(tag)) problems.push(`${where}: tag "${tag}" is not in the document's tags with a description (apps/manager/src/http/openapi.ts)`);
    }
    expect(problems).toEqual([]);
  });

  it('states the security the server enforces: a key for every operation the server refuses without one, none for the open ones', async () => {
    const problems: string[] = [];
    for (const { method, path, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      const answer = await fx.call(method.toUpperCase(), callable(path), { key: null, ...(op.requestBody ? { body: {} } : {}) });
      if (isPublic(op) && answer.status === 401) problems.push(`${where}: documented as open, answered 401 without a key`);
      if (!isPublic(op)) {
        if (answer.status !== 401) problems.push(`${where}: documented as needing a key, answered ${answer.status} without one`);
        const names = (op.security ?? []).flatMap((s) => Object.keys(s)).sort();
        if (names.join() !== Object.keys(doc.components.securitySchemes).sort().join()) problems.push(`${where}: security ${names.join()}`);
        if (!op.responses['401']) problems.push(`${where}: no 401 response`);
      }
    }
    expect(problems).toEqual([]);
    expect(operations.filter(({ op }) => isPublic(op)).map(({ path }) => path)).toEqual(expect.arrayContaining(['/healthz', '/openapi.json', '/readyz']));
    expect(operations.filter(({ op }) => isPublic(op)).length, 'most of the API needs a key').toBeLessThan(operations.length / 2);
  });

  it('documents error answers with the shared Error body', () => {
    const problems: string[] = [];
    for (const { method, path, op } of operations) {
      if (isPublic(op)) continue;
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const ref = response.content?.['application/json']?.schema?.$ref;
        if (ref !== '#/components/schemas/Error') problems.push(`${method.toUpperCase()} ${path} ${status}: ${ref ?? 'no application/json schema'}`);
        if (!response.description || response.description === 'Default Response') problems.push(`${method.toUpperCase()} ${path} ${status}: no description`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('the document', () => {
  it('names a server and the schemes of auth.ts, each of which the API accepts', async () => {
    expect(doc.servers?.length).toBeGreaterThan(0);
    const schemes = doc.components.securitySchemes;
    expect(Object.keys(schemes).length).toBeGreaterThan(0);
    for (const [name, scheme] of Object.entries(schemes)) {
      const headers: Record<string, string> =
        scheme.type === 'http' && scheme.scheme === 'bearer' ? { authorization: `Bearer ${ADMIN_KEY}` } : scheme.type === 'apiKey' && scheme.in === 'header' && scheme.name ? { [scheme.name]: ADMIN_KEY } : {};
      expect(Object.keys(headers), `scheme ${name} is one this test knows how to send`).toHaveLength(1);
      expect((await fx.call('GET', '/api/runs', { key: null, headers })).status, `GET /api/runs with scheme ${name}`).toBe(200);
    }
  });

  it('describes the events route as text/event-stream whose event names cover what a run sends', async () => {
    const events = operations.find((o) => o.op.operationId === 'streamRunEvents');
    expect(events?.path).toBe('/api/runs/{id}/events');
    const content = events?.op.responses['200']?.content ?? {};
    expect(Object.keys(content)).toEqual(['text/event-stream']);
    const ref = content['text/event-stream']?.schema?.$ref ?? '';
    const documented = doc.components.schemas[ref.replace('#/components/schemas/', '')]?.properties?.event?.enum ?? [];
    expect(documented).toContain('run_finished');

    const submitted = await fx.call<{ run_id: string }>('POST', '/api/runs', { body: { requirements: 'Build a tiny todo API', template: 'software-delivery' } });
    expect(submitted.status).toBe(201);
    const sent = await readSse(`${fx.api.url}/api/runs/${submitted.body.run_id}/events`, ADMIN_KEY);
    expect(sent.ended).toBe(true);
    const names = [...new Set(sent.messages.map((m) => m.event))];
    expect(names).toContain('run_finished');
    expect(names.length).toBeGreaterThan(3);
    expect(names.filter((n) => !documented.includes(n))).toEqual([]);
  });

  it("passes Redocly's recommended ruleset: no error, and a warning only where it cannot apply", async () => {
    const out = await run(bin('redocly'), ['lint', '--extends', 'recommended', '--format', 'json', join(dir, 'openapi.json')], { cwd: dir, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } }).catch(
      (err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }),
    );
    const report = JSON.parse(out.stdout) as { problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer: string }> }> };
    const pointerOf = (p: (typeof report.problems)[number]) => p.location[0]?.pointer ?? '';
    // operation-4xx-response asks for a client-error answer; an open operation without parameters or
    // body (the health probes, this document) has none to give.
    const noClientError = new Set(
      operations.filter(({ op }) => isPublic(op) && !op.parameters?.length && !op.requestBody).map(({ method, path }) => `#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}/${method}/responses`),
    );
    const left = report.problems.filter((p) => !(p.ruleId === 'operation-4xx-response' && noClientError.has(pointerOf(p))));
    expect(left.map((p) => `${p.severity} ${p.ruleId} ${pointerOf(p)}: ${p.message}`)).toEqual([]);
  });
});

describe('a client generated from the document', () => {
  it('type-checks strictly with openapi-typescript types and, through openapi-fetch, submits and reads a run', async () => {
    await symlink(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    await run(bin('openapi-typescript'), [join(dir, 'openapi.json'), '--output', join(dir, 'api.d.ts')], { cwd: dir });
    await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, allowImportingTsExtensions: true, types: ['node'] },
        files: ['client.ts'],
      }),
    );
    await writeFile(
      join(dir, 'client.ts'),
      `import createClient from 'openapi-fetch';
import type { paths } from './api.d.ts';

const [baseUrl, key] = process.argv.slice(2) as [string, string];
const client = createClient<paths>({ baseUrl, headers: { authorization: \`Bearer \${key}\` } });

const submitted = await client.POST('/api/runs', { body: { requirements: 'Build a tiny todo API', template: 'software-delivery' } });
if (!submitted.data) throw new Error(\`submit failed: \${JSON.stringify(submitted.error)}\`);
const runId: string = submitted.data.run_id;

const read = await client.GET('/api/runs/{id}', { params: { path: { id: runId } } });
if (!read.data) throw new Error(\`read failed: \${JSON.stringify(read.error)}\`);
const status: 'created' | 'active' | 'waiting' | 'completed' | 'failed' | 'cancelled' = read.data.status;

const missing = await client.GET('/api/runs/{id}', { params: { path: { id: 'no-such-run' } } });
const code: string | undefined = missing.error?.error.code;

// @ts-expect-error requirements is required: the generated types must say so
void client.POST('/api/runs', { body: { template: 'software-delivery' } });

console.log(JSON.stringify({ runId, workflow: read.data.workflow.name, status, missing: { status: missing.response.status, code } }));
`,
    );
    const typecheck = await run(bin('tsc'), ['-p', join(dir, 'tsconfig.json')], { cwd: dir }).catch((err: { stdout?: string }) => ({ stdout: `FAILED\n${err.stdout ?? ''}` }));
    expect(typecheck.stdout).toBe('');
    const { stdout } = await run(process.execPath, [join(dir, 'client.ts'), fx.api.url, ADMIN_KEY], { cwd: dir });
    const result = JSON.parse(stdout) as { runId: string; workflow: string; status: string; missing: { status: number; code: string } };
    expect(result.workflow).toBe('software-delivery');
    expect(result.missing).toEqual({ status: 404, code: 'RUN_NOT_FOUND' });
    const stored = await fx.fleet.client.store.getRun(result.runId);
    expect(stored.meta.workflow.name).toBe('software-delivery');
  });
});
