/**
 * Where the built-in `fetch-and-summarize` (tool `http_request`) may go, on a real fleet and HTTP
 * API: a non-admin key points it at a loopback-only service holding a secret. With the tools pool's
 * default settings the fetch is refused (in every spelling of this machine) and the service sees no
 * request; the offline `data:` demo still runs; only an allow-list entry naming the service (the
 * pool's admin's choice) lets it through, and `*` does not.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadToolSettings, startToolPool, type ToolPool } from '@agentfleet/agents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYST_KEY, startApiFixture, type ApiFixture } from '../support/http-api.js';
import { waitForRunEnd } from '../support/run-events.js';

const SECRET = 'loopback-only-secret-7f3a9c';

type RunJson = {
  run_id: string;
  status: string;
  phases: Array<{ name: string; status: string; attempts: number }>;
  errors: Array<{ phase: string; error: { code: string; message: string } }>;
  outputs?: Record<string, unknown>;
};

let fx: ApiFixture;
let server: Server;
let port: number;
let hits = 0;
let artifacts: string;

beforeAll(async () => {
  server = createServer((_req, res) => {
    hits += 1;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(SECRET);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  artifacts = await mkdtemp(join(tmpdir(), 'fleet-targets-'));
  fx = await startApiFixture('http-targets');
});

afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
  await new Promise((resolve) => server?.close(resolve));
  if (artifacts) await rm(artifacts, { recursive: true, force: true });
});

/** A tools pool on the fixture's fleet with the settings `env` gives (FLEET_TOOL_ALLOWED_HOSTS). */
async function toolsPool(env: NodeJS.ProcessEnv): Promise<ToolPool> {
  const settings = loadToolSettings(env);
  return startToolPool({ redisUrl: fx.fleet.url, prefix: fx.fleet.prefix, settings: { ...settings, artifactsDir: (id) => join(artifacts, id) }, onError: () => undefined });
}

/** Start fetch-and-summarize with the analyst key and wait until it finished. */
async function fetchAndSummarize(variables: Record<string, string>): Promise<RunJson> {
  const created = await fx.call<{ run_id: string }>('POST', '/api/runs', { key: ANALYST_KEY, body: { requirements: 'Summarise the page', workflow: 'fetch-and-summarize', variables } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await waitForRunEnd(fx.fleet, created.body.run_id);
  return (await fx.call<RunJson>('GET', `/api/runs/${created.body.run_id}`, { key: ANALYST_KEY })).body;
}

describe('http_request targets', () => {
  it('refuses this machine in every spelling by default; the data: demo still runs', async () => {
    const tools = await toolsPool({});
    try {
      for (const host of ['127.0.0.1', 'localhost', '[::ffff:127.0.0.1]', '0.0.0.0', '127.1.2.3']) {
        const run = await fetchAndSummarize({ url: `http://${host}:${port}/secret` });
        expect(run.status, host).toBe('failed');
        const fetch = run.errors.find((e) => e.phase === 'fetch')?.error;
        expect(fetch?.code, host).toBe('TOOL_NOT_ALLOWED');
        expect(fetch?.message, host).toMatch(/is on this machine or a private network .*only when the tools pool's FLEET_TOOL_ALLOWED_HOSTS names it/);
        expect(run.phases.find((p) => p.name === 'fetch')?.attempts, host).toBe(1);
        expect(JSON.stringify(run), host).not.toContain(SECRET);
      }
      expect(hits).toBe(0);
      const demo = await fetchAndSummarize({});
      expect(demo.status).toBe('completed');
    } finally {
      await tools.close(2000);
    }
  });

  it('"*" does not include this machine; an entry naming the service does', async () => {
    const any = await toolsPool({ FLEET_TOOL_ALLOWED_HOSTS: '*' });
    try {
      const run = await fetchAndSummarize({ url: `http://127.0.0.1:${port}/secret` });
      expect(run.status).toBe('failed');
      expect(run.errors.find((e) => e.phase === 'fetch')?.error.message).toMatch(/and "\*" does not/);
      expect(hits).toBe(0);
    } finally {
      await any.close(2000);
    }
    const named = await toolsPool({ FLEET_TOOL_ALLOWED_HOSTS: `127.0.0.1:${port}` });
    try {
      const run = await fetchAndSummarize({ url: `http://127.0.0.1:${port}/secret` });
      expect(run.status, JSON.stringify(run.errors)).toBe('completed');
      expect(hits).toBe(1);
      // Another port of the same machine stays closed.
      const other = await fetchAndSummarize({ url: `http://127.0.0.1:${port + 1}/secret` });
      expect(other.errors.find((e) => e.phase === 'fetch')?.error.code).toBe('TOOL_NOT_ALLOWED');
    } finally {
      await named.close(2000);
    }
  });
});
