/**
 * `fleet run "…" --console`: the real CLI as a child process (manager, pools and the console's HTTP
 * API in it, offline model, real Redis) prints the run's console address; Debian's Chromium, driven
 * by playwright-core, opens it, signed in by the key in it, and sees the run; the run is approved on
 * the page, and the console stops being served once the run has ended.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { cliEnv, runCli, spawnCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('console-cli');
let dir: string;
let browser: ConsoleBrowser;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-console-cli-'));
  browser = await openConsoleBrowser('console-cli');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
  await cleanupPrefix(redisUrl(), prefix);
});

const WORKFLOW = `name: console-cli
description: plan, sign off, design
agents: [planner, designer]
phases:
  - name: planning
    agent: planner
    timeout: 60
  - name: sign_off
    type: approval
    description: approve the plan
    depends_on: [planning]
    timeout: 300
  - name: design
    agent: designer
    depends_on: [sign_off]
    timeout: 60
`;

describe('fleet run --console', { timeout: 120_000 }, () => {
  it("prints the run's console address, serves the console while the run goes on, and stops when it ends", async () => {
    const file = join(dir, 'console-cli.yaml');
    await writeFile(file, WORKFLOW);
    const child = spawnCli(['run', 'A todo API with a list and an add endpoint', '--workflow', file, '--console', '--out', join(dir, 'out')], cliEnv(redisUrl(), prefix));
    try {
      await child.waitFor('console: http://');
      const line = /console: (http:\/\/127\.0\.0\.1:\d+\/ui\/#\/runs\/([0-9a-f-]+)\?key=([0-9a-f]{48})) \(served until the run ends/.exec(child.output());
      expect(line, child.output()).not.toBeNull();
      const [, address = '', runId = '', key = ''] = line ?? [];
      const origin = new URL(address).origin;

      // The address signs in by itself; the key leaves the address at once.
      const page = await browser.context.newPage();
      await page.goto(address);
      await page.getByRole('heading', { name: `Run ${runId}` }).waitFor({ timeout: UI_WAIT_MS });
      expect(new URL(page.url()).hash).toBe(`#/runs/${runId}`);
      const graph = page.getByRole('region', { name: 'Workflow graph' });
      await graph.getByRole('button', { name: /^sign_off: waiting\b/ }).waitFor({ timeout: UI_WAIT_MS });
      await graph.getByRole('button', { name: /^design: pending\b/ }).waitFor({ timeout: UI_WAIT_MS });
      // The same key reads the API this process serves.
      const api = await fetch(`${origin}/api/runs/${runId}`, { headers: { authorization: `Bearer ${key}` } });
      expect(api.status).toBe(200);
      expect(((await api.json()) as { status: string }).status).toBe('waiting');

      await page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Approve sign_off' }).click();
      await page.getByRole('dialog', { name: 'Approve sign_off?' }).getByRole('button', { name: 'Confirm' }).click();
      // The approval is accepted; the run then ends, and with it the console (the page may not see the end).
      await page.getByRole('region', { name: 'Actions' }).getByRole('status').filter({ hasText: 'Approve sign_off: accepted by the API' }).waitFor({ timeout: UI_WAIT_MS });

      expect(await child.exited, child.output()).toBe(0);
      expect(child.output()).toContain(`Run ${runId} completed in `);
      expect(child.output()).toContain('console: no longer served (the run has ended)');
      // The run has ended and so has the console.
      await expect(fetch(`${origin}/ui/`)).rejects.toThrow();
      await page.close();
    } finally {
      await child.stop();
    }
  });

  it('refuses --port without --console, saying what to add', async () => {
    const r = await runCli(['run', 'A todo API', '--port', '8080'], cliEnv(redisUrl(), prefix));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--port says where the console listens: add --console (fleet run "…" --console --port 8080)');
  });
});
