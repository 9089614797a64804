/**
 * The console's run page shows the output of the running phase as the model writes it: Debian's
 * Chromium (playwright-core) against a real manager HTTP API serving the built console, a real agent
 * pool calling the real Anthropic SDK, and a local Messages API server that holds the coder's reply
 * open until the page showed its first pieces, so "live" is proven by an event, not a timer.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { BUILTIN_ROLES, type AgentRole } from '@agentfleet/agents';
import { startHttpApi } from '@agentfleet/manager';
import { startFakeAnthropic } from './support/fake-anthropic.js';
import { fakeAnthropicClient, startFleet, testWorkflow } from './support/fleet.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const CONSOLE_INDEX = fileURLToPath(new URL('../apps/console/dist/index.html', import.meta.url));
const UI_WAIT_MS = 20_000;
const ADMIN_KEY = 'admin-key-live-output-0123456789';
const CODE = {
  files: [{ path: 'src/server.js', language: 'javascript', content: 'import { createServer } from "node:http";\ncreateServer((q, s) => s.end("ok")).listen(3000);\n' }],
  notes: 'Run node src/server.js.',
};

describe('console live output', { timeout: 120_000 }, () => {
  it('shows the running phase output while it is written, and the validated output once it completes', async () => {
    if (!existsSync(CONSOLE_INDEX)) throw new Error(`the console is not built (${CONSOLE_INDEX} is missing): run \`npm run build\` at the repository root`);
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: install Debian's package with \`apt-get update && apt-get install -y chromium\``);
    await using fake = await startFakeAnthropic();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The first 3 chunks (60 characters) hold the file's path; the rest waits for the page.
    fake.enqueue({ streamed: { toolInput: CODE, chunkSize: 20, holdAfterChunks: 3, release: released } });
    await using fleet = await startFleet({ name: 'console-live', roles: [BUILTIN_ROLES['coder'] as AgentRole], llm: fakeAnthropicClient(fake.url) });
    const api = await startHttpApi({ redisUrl: fleet.url, prefix: fleet.prefix, port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], provider: 'anthropic', sseKeepAliveMs: 1000 });
    const profile = await mkdtemp(join(tmpdir(), 'agentfleet-live-chromium-'));
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1400, height: 900 } });
    try {
      const wf = testWorkflow({ agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder' }] });
      const runId = await fleet.client.submit({ workflow: wf, requirements: 'Build a todo API', provider: 'anthropic' });
      const page = await context.newPage();
      await page.goto(`${api.url}/ui/`);
      await page.getByLabel('API key').fill(ADMIN_KEY);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor({ timeout: UI_WAIT_MS });
      await page.goto(`${api.url}/ui/#/runs/${runId}`);
      const live = page.getByRole('region', { name: 'Live output' }).getByLabel('Live output of implementation');
      await live.getByText('"path":"src/server.js"', { exact: false }).waitFor({ timeout: UI_WAIT_MS });
      // The reply is still held by the server: the phase has not ended.
      expect(fake.requests).toHaveLength(1);
      expect((await fleet.client.result(runId)).status).not.toBe('completed');
      expect(await page.getByRole('region', { name: 'Live output' }).getByRole('heading', { name: 'implementation · attempt 1' }).count()).toBe(1);
      release();
      await page.getByLabel('Run status').getByText('completed').waitFor({ timeout: UI_WAIT_MS });
      // Once completed, the live view gives way to the validated output in the phase panel.
      await page.getByRole('region', { name: 'Live output' }).waitFor({ state: 'detached', timeout: UI_WAIT_MS });
      expect((await fleet.client.result(runId)).results['implementation']).toEqual(CODE);
    } finally {
      await context.close();
      await api.close();
      await rm(profile, { recursive: true, force: true });
    }
  });
});
