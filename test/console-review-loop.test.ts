/**
 * The review loop in the browser console: Debian's Chromium, driven by playwright-core, against a
 * real manager HTTP API serving the built console, a test fleet (`createTestFleet`: manager and agent
 * pools with scripted agents) and real Redis. The software-delivery reviewer asks for changes once,
 * then approves: the graph shows the second iteration on the implementation and review nodes, and
 * the timeline a bar for each iteration.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { createTestFleet, type TestFleet } from '@agentfleet/cli';
import { startHttpApi, type HttpApi } from '@agentfleet/manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY } from './support/http-api.js';
import { redisUrl } from './support/redis.js';

const changesRequested = { verdict: 'changes_requested', findings: [{ severity: 'major', file: 'src/server.mjs', message: 'no input validation' }], summary: 'needs work' };
const approve = { verdict: 'approve', findings: [], summary: 'looks good' };

let fleet: TestFleet;
let api: HttpApi;
let browser: ConsoleBrowser;

beforeAll(async () => {
  fleet = await createTestFleet({ redisUrl: redisUrl(), replies: { review: [changesRequested, approve] } });
  api = await startHttpApi({ redisUrl: fleet.redisUrl, prefix: fleet.prefix, port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], provider: 'scripted', sseKeepAliveMs: 1000 });
  browser = await openConsoleBrowser('console-review-loop');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await api?.close();
  await fleet?.close();
});

describe('the review loop in the console', { timeout: 120_000 }, () => {
  it('shows two iterations on the implementation node after changes were requested, then approved', async () => {
    const res = await fetch(`${api.url}/api/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ requirements: 'A todo API with a list and an add endpoint', template: 'software-delivery' }),
    });
    const submitted = (await res.json()) as { run_id: string };
    expect(res.status, JSON.stringify(submitted)).toBe(201);
    const page = await browser.signedIn(api.url, ADMIN_KEY);
    await page.goto(`${api.url}/ui/#/runs/${submitted.run_id}`);

    const graph = page.getByRole('region', { name: 'Workflow graph' });
    const implementation = graph.getByRole('button', { name: /^implementation: completed\b.*, iteration 2$/ });
    await implementation.waitFor({ timeout: UI_WAIT_MS });
    expect(await implementation.getByText('iteration 2 of 3').count()).toBe(1);
    await graph.getByRole('button', { name: /^review: completed\b.*, iteration 2$/ }).waitFor({ timeout: UI_WAIT_MS });
    for (const phase of ['planning', 'design']) {
      // Phases outside the loop ran once and say nothing of iterations.
      await graph.getByRole('button', { name: new RegExp(`^${phase}: completed \\([^)]*\\)$`) }).waitFor({ timeout: UI_WAIT_MS });
    }
    await page.getByLabel('Run status').getByText('completed').waitFor({ timeout: UI_WAIT_MS });
    // The timeline has a bar for each iteration of the implementation, and the log the jump back to it.
    const timeline = page.getByRole('region', { name: 'Timeline' });
    for (const iteration of [1, 2]) await timeline.getByRole('img', { name: new RegExp(`^implementation iteration ${iteration} attempt 1: completed, `) }).waitFor({ timeout: UI_WAIT_MS });
    await page.getByRole('region', { name: 'Event log' }).getByText('review · jump → implementation', { exact: false }).waitFor({ timeout: UI_WAIT_MS });

    expect(Object.fromEntries(fleet.llm.callsByPhase)).toMatchObject({ implementation: 2, review: 2, planning: 1, design: 1 });
    await page.close();
  });
});
