/**
 * The console's Schedules page end to end: Debian's Chromium, driven by playwright-core, against a
 * real manager HTTP API serving the built console under /ui/, on real Redis. Pause, resume and run
 * now, found by role and accessible name; the run it starts shows its schedule.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCS, UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';


let fx: ApiFixture;
let browser: ConsoleBrowser;

beforeAll(async () => {
  fx = await startApiFixture('console-schedules');
  browser = await openConsoleBrowser('console-schedules');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.[Symbol.asyncDispose]();
});

describe('console: schedules', () => {
  it('lists schedules, pauses and resumes one, and runs it now; the run shows its schedule', { timeout: 120_000 }, async () => {
    const template = { name: 'sign-off', description: 'waits for a sign-off', agents: ['planner'], phases: [{ name: 'sign_off', type: 'approval', timeout: 3600 }] };
    expect((await fx.call('POST', '/api/workflow-templates', { body: template })).status).toBe(201);
    const added = await fx.call('POST', '/api/schedules', {
      body: { name: 'nightly-review', workflow: 'sign-off', cron: '0 2 * * *', tz: 'Europe/Berlin', requirements: 'Review the day' },
    });
    expect(added.status).toBe(201);

    const page = await browser.context.newPage();
    await page.goto(`${fx.api.url}/ui/`);
    await page.getByLabel('API key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Schedules' }).click();
    await page.getByRole('heading', { name: 'Schedules', level: 1 }).waitFor({ timeout: UI_WAIT_MS });
    const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'nightly-review' }) });
    await row.getByText('0 2 * * *').waitFor({ timeout: UI_WAIT_MS });
    await row.getByRole('cell', { name: 'active', exact: true }).waitFor({ timeout: UI_WAIT_MS });

    await row.getByRole('button', { name: 'Pause nightly-review' }).click();
    await row.getByRole('cell', { name: 'paused', exact: true }).waitFor({ timeout: UI_WAIT_MS });
    expect((await fx.call<{ status: string; next_fire_at: string | null }>('GET', '/api/schedules/nightly-review')).body).toMatchObject({ status: 'paused', next_fire_at: null });

    await row.getByRole('button', { name: 'Resume nightly-review' }).click();
    await row.getByRole('cell', { name: 'active', exact: true }).waitFor({ timeout: UI_WAIT_MS });
    expect((await fx.call<{ status: string }>('GET', '/api/schedules/nightly-review')).body.status).toBe('active');

    await row.getByRole('button', { name: 'Run nightly-review now' }).click();
    const notice = page.getByRole('status').filter({ hasText: 'nightly-review fired: run' });
    await notice.waitFor({ timeout: UI_WAIT_MS });
    const runId = (await notice.getByRole('link').textContent()) ?? '';
    const runs = await fx.call<{ items: Array<{ run_id: string }> }>('GET', '/api/runs?schedule=nightly-review');
    expect(runs.body.items.map((r) => r.run_id)).toEqual([runId]);
    await row.getByText('1 started, 0 skipped, 0 missed').waitFor({ timeout: UI_WAIT_MS });
    // The screenshot docs/schedules.md shows.
    await page.screenshot({ path: join(DOCS, 'console-schedules.png') });

    await notice.getByRole('link').click();
    await page.getByRole('heading', { level: 1 }).filter({ hasText: runId }).waitFor({ timeout: UI_WAIT_MS });
    const fact = page.getByRole('definition').filter({ hasText: 'nightly-review, fire of' });
    await fact.waitFor({ timeout: UI_WAIT_MS });
    await page.close();
  });
});
