/**
 * The console's runs list: Debian's Chromium, driven by playwright-core, against a real manager HTTP
 * API serving the built console, real pools (offline model) and real Redis. Filters by user and
 * conversation and the search box narrow the rows to the right runs, stay in the address across a
 * reload, and page by cursor; a key that is not an admin key finds only its own runs. Elements are
 * found by role and accessible name.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedRunCopies } from '../bench/src/console-seed.js';
import { UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY, ANALYST_KEY, eventually, startApiFixture, type ApiFixture } from './support/http-api.js';

let fx: ApiFixture;
let browser: ConsoleBrowser;
/** The analyst's runs: a kanban board in conv-red, invoices in conv-blue. */
let kanban: string;
let invoices: string;
/** The admin's runs: a login page in its own conv-red, kanban swimlanes. */
let login: string;
let swimlanes: string;
let analystId: string;
/** 30 copies in conversation "paged", newest first. */
let paged: string[];

async function submit(key: string, requirements: string, conversation?: string): Promise<string> {
  const res = await fx.call<{ run_id: string }>('POST', '/api/runs', { key, body: { template: 'quick-fix', requirements, ...(conversation ? { conversation_id: conversation } : {}) } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.run_id;
}

async function finished(id: string): Promise<void> {
  await eventually(async () => (['completed', 'failed', 'cancelled'].includes((await fx.call<{ status: string }>('GET', `/api/runs/${id}`)).body.status) ? true : undefined), `run ${id} to finish`, UI_WAIT_MS);
}

beforeAll(async () => {
  fx = await startApiFixture('console-runs-list');
  browser = await openConsoleBrowser('console-runs-list');
  kanban = await submit(ANALYST_KEY, 'A kanban board for the tracker', 'conv-red');
  invoices = await submit(ANALYST_KEY, 'Export invoices as CSV', 'conv-blue');
  login = await submit(ADMIN_KEY, 'A login page with a remember-me box', 'conv-red');
  swimlanes = await submit(ADMIN_KEY, 'Kanban swimlanes per team');
  await Promise.all([kanban, invoices, login, swimlanes].map(finished));
  analystId = (await fx.call<{ user_id: string }>('GET', `/api/runs/${kanban}`)).body.user_id;
  paged = await seedRunCopies(fx.fleet.redis, {
    prefix: fx.fleet.prefix,
    templates: [login],
    count: 30,
    newest: Date.now() - 3_600_000,
    copy: (i) => ({ requirements: `paged copy ${i}`, labels: { conversation_id: 'paged' } }),
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.[Symbol.asyncDispose]();
});

/** The run ids the table shows, in order. */
async function shownRuns(page: Page): Promise<string[]> {
  return page.getByRole('table').getByRole('link').allTextContents();
}

/** Wait until the table shows exactly `ids`, in that order. */
async function waitForRows(page: Page, ids: string[]): Promise<void> {
  await page.waitForFunction(
    // Runs in the page: a string, so the test's types need no DOM.
    `(() => { const want = ${JSON.stringify(ids)}; const links = [...document.querySelectorAll('table a')].map((a) => a.textContent); return links.length === want.length && links.every((l, i) => l === want[i]); })()`,
    undefined,
    { timeout: UI_WAIT_MS },
  );
}

describe('the runs list in the console', { timeout: 120_000 }, () => {
  it('filters by user and conversation and searches text, keeps the filters in the address, and pages by cursor', async () => {
    const page = await browser.signedIn(fx.api.url, ADMIN_KEY);
    const filters = page.getByRole('search', { name: 'Filter runs' });
    await page.getByRole('link', { name: login }).waitFor({ timeout: UI_WAIT_MS });

    await filters.getByRole('searchbox', { name: 'User' }).fill(analystId);
    await waitForRows(page, [invoices, kanban]);
    await filters.getByRole('searchbox', { name: 'Conversation' }).fill('conv-red');
    await waitForRows(page, [kanban]);
    expect(page.url()).toContain(`user_id=${encodeURIComponent(analystId)}`);
    expect(page.url()).toContain('conversation_id=conv-red');

    // A reload shows the same filtered list.
    await page.reload();
    await waitForRows(page, [kanban]);
    expect(await filters.getByRole('searchbox', { name: 'Conversation' }).inputValue()).toBe('conv-red');

    // The admin's own conv-red is another conversation of the same name.
    await filters.getByRole('searchbox', { name: 'User' }).fill('');
    await waitForRows(page, [login, kanban]);

    await filters.getByRole('button', { name: 'Clear filters' }).click();
    await filters.getByRole('searchbox', { name: 'Search' }).fill('kanban');
    await waitForRows(page, [swimlanes, kanban]);
    await filters.getByRole('searchbox', { name: 'Search' }).fill(login.slice(0, 8));
    await waitForRows(page, [login]);

    // Paging: 25 of the 30 runs of conversation "paged", then the other 5; Newer goes back.
    await filters.getByRole('button', { name: 'Clear filters' }).click();
    await filters.getByRole('searchbox', { name: 'Conversation' }).fill('paged');
    await waitForRows(page, paged.slice(0, 25));
    const pager = page.getByRole('navigation', { name: 'Pages' });
    await pager.getByRole('button', { name: 'Older' }).click();
    await waitForRows(page, paged.slice(25));
    expect(page.url()).toContain('cursor=');
    expect(await pager.getByRole('button', { name: 'Older' }).isDisabled()).toBe(true);
    await pager.getByRole('button', { name: 'Newer' }).click();
    await waitForRows(page, paged.slice(0, 25));
    expect(await shownRuns(page)).toHaveLength(25);
    await page.close();
  });

  it('finds only its own runs for a key that is not an admin key', async () => {
    const page = await browser.signedIn(fx.api.url, ANALYST_KEY);
    const filters = page.getByRole('search', { name: 'Filter runs' });
    await filters.getByRole('searchbox', { name: 'Search' }).fill('kanban');
    await waitForRows(page, [kanban]);
    await filters.getByRole('searchbox', { name: 'Search' }).fill('');
    await filters.getByRole('searchbox', { name: 'Conversation' }).fill('conv-red');
    await waitForRows(page, [kanban]);
    await filters.getByRole('searchbox', { name: 'Conversation' }).fill('');
    await filters.getByRole('searchbox', { name: 'Search' }).fill(login);
    await page.getByText('No runs match.').waitFor({ timeout: UI_WAIT_MS });
    expect(await shownRuns(page)).toEqual([]);
    await page.close();
  });
});
