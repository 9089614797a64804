/**
 * The console's Schedules page end to end: Debian's Chromium, driven by playwright-core, against a
 * real manager HTTP API serving the built console under /ui/, on real Redis. Pause, resume and run
 * now, found by role and accessible name; the run it starts shows its schedule.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const DOCS = fileURLToPath(new URL('../docs/', import.meta.url));
const CONSOLE_INDEX = fileURLToPath(new URL('../apps/console/dist/index.html', import.meta.url));
/** Waits on page state (a locator appearing); generous because the machine is shared and loaded. */
const UI_WAIT_MS = 20_000;

let fx: ApiFixture;
let context: BrowserContext;
let profile: string;

beforeAll(async () => {
  if (!existsSync(CONSOLE_INDEX)) throw new Error(`the console is not built (${CONSOLE_INDEX} is missing): run \`npm run build\` at the repository root`);
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: install Debian's package with \`apt-get update && apt-get install -y chromium\``);
  fx = await startApiFixture('console-schedules');
  profile = await mkdtemp(join(tmpdir(), 'agentfleet-console-schedules-'));
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1400, height: 900 } });
  } catch (err) {
    throw new Error(`Chromium at ${CHROMIUM} did not start (${(err as Error).message.split('\n')[0]}); install or repair Debian's package: \`apt-get update && apt-get install -y chromium\``, { cause: err });
  }
}, 120_000);

afterAll(async () => {
  await context?.close();
  await fx?.[Symbol.asyncDispose]();
  if (profile) await rm(profile, { recursive: true, force: true });
});

describe('console: schedules', () => {
  it('lists schedules, pauses and resumes one, and runs it now; the run shows its schedule', { timeout: 120_000 }, async () => {
    const template = { name: 'sign-off', description: 'waits for a sign-off', agents: ['planner'], phases: [{ name: 'sign_off', type: 'approval', timeout: 3600 }] };
    expect((await fx.call('POST', '/api/workflow-templates', { body: template })).status).toBe(201);
    const added = await fx.call('POST', '/api/schedules', {
      body: { name: 'nightly-review', workflow: 'sign-off', cron: '0 2 * * *', tz: 'Europe/Berlin', requirements: 'Review the day' },
    });
    expect(added.status).toBe(201);

    const page = await context.newPage();
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
