/**
 * Queued runs in the browser console: Debian's Chromium, driven by playwright-core, against a real
 * manager HTTP API serving the built console, real pools (offline model, one phase held open) and real
 * Redis. The runs page filters `queued` runs; a queued run's page shows its status, concurrency key,
 * limit and priority, and cancels it out of its key's queue.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { concurrencyState, createRedis } from '@agentfleet/core';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';


let fx: ApiFixture;
let browser: ConsoleBrowser;

beforeAll(async () => {
  fx = await startApiFixture('console-queued');
  browser = await openConsoleBrowser('console-queued');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.[Symbol.asyncDispose]();
});

function signedIn(): Promise<Page> {
  return browser.signedIn(fx.api.url, ADMIN_KEY);
}

describe('queued runs in the console', () => {
  it('filters queued runs, shows a queued run\'s key, limit and priority, and cancels it out of the queue', async () => {
    const workflow = {
      name: 'console-queued',
      agents: ['planner'],
      phases: [{ name: 'held_q', agent: 'planner', timeout: 300, retries: 0 }],
      concurrency: { key: 'team-{{team}}', limit: 1 },
    };
    fx.llm.hold('held_q');
    const submit = async (priority: number) => {
      const res = await fx.call<{ run_id: string; status: string }>('POST', '/api/runs', { body: { requirements: 'A weekly plan', workflow, variables: { team: 'red' }, priority } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body;
    };
    const first = await submit(5);
    await fx.llm.entered('held_q');
    const second = await submit(8);
    expect(second.status).toBe('queued');

    const page = await signedIn();
    await page.getByLabel('Status').selectOption('queued');
    await page.getByRole('link', { name: second.run_id }).waitFor({ timeout: UI_WAIT_MS });
    await page.getByRole('link', { name: first.run_id }).waitFor({ state: 'detached', timeout: UI_WAIT_MS });

    await page.getByRole('link', { name: second.run_id }).click();
    await page.getByLabel('Run status').getByText('queued').waitFor({ timeout: UI_WAIT_MS });
    expect(await page.getByLabel('Concurrency key').textContent()).toBe('team-red (limit 1)');
    expect(await page.getByLabel('Priority').textContent()).toBe('8');
    expect(await page.getByRole('status').filter({ hasText: 'Queued:' }).textContent()).toBe(
      'Queued: concurrency key "team-red" has 1 run(s) active; this run starts when one of them finishes.',
    );

    await page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Cancel run' }).click();
    const dialog = page.getByRole('dialog', { name: 'Cancel run?' });
    await dialog.waitFor({ timeout: UI_WAIT_MS });
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await page.getByLabel('Run status').getByText('cancelled').waitFor({ timeout: UI_WAIT_MS });
    expect(await concurrencyState(fx.fleet.client.store, 'team-red')).toEqual({ active: [first.run_id], queued: [] });

    fx.llm.release('held_q');
    const blocking = createRedis(fx.fleet.url, { forWorker: true });
    try {
      expect((await fx.fleet.client.follow(first.run_id, blocking, () => undefined)).status).toBe('completed');
    } finally {
      blocking.disconnect();
    }
    await page.close();
  });
});
