/**
 * Accessibility of the browser console: Debian's Chromium, driven by playwright-core, against a real
 * manager HTTP API serving the built console, real pools (offline model) and real Redis. On every
 * page, every control in Chromium's accessibility tree has an accessible name and can take the
 * keyboard focus; every status is shown as a word, not by colour alone; and a waiting run is
 * answered with the keyboard only.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

/** Roles of the controls a user operates. */
const CONTROL_ROLES = new Set(['button', 'link', 'textbox', 'combobox', 'listbox', 'checkbox', 'radio', 'slider', 'spinbutton', 'switch', 'tab', 'menuitem', 'searchbox']);
/** The words a status badge may say. */
const STATUS_WORDS = new Set(['created', 'queued', 'active', 'waiting', 'completed', 'failed', 'cancelled', 'pending', 'running', 'retrying', 'skipped']);

interface AxNode {
  ignored: boolean;
  role?: { value: string };
  name?: { value: string };
  properties?: Array<{ name: string; value: { value: unknown } }>;
}

/** Every control of the page (Chromium's accessibility tree) without an accessible name or the keyboard focus, described. */
async function controlProblems(page: Page): Promise<string[]> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: AxNode[] };
    const problems: string[] = [];
    for (const n of nodes) {
      const role = n.role?.value ?? '';
      if (n.ignored || !CONTROL_ROLES.has(role)) continue;
      const prop = (name: string) => n.properties?.find((p) => p.name === name)?.value.value;
      const name = (n.name?.value ?? '').trim();
      if (!name) problems.push(`a ${role} without an accessible name`);
      if (prop('disabled') !== true && prop('focusable') !== true) problems.push(`${role} "${name}" cannot take the keyboard focus`);
    }
    return problems;
  } finally {
    await cdp.detach();
  }
}

/** The text of every status badge on the page that does not start with a status word. */
async function colourOnlyStatuses(page: Page): Promise<string[]> {
  // A badge is an icon (hidden from assistive technology) and the word: `✔ completed 7 ms`.
  const texts = (await page.locator('.status').allTextContents()).map((t) => t.replace(/^\S+\s/, '').trim());
  expect(texts.length).toBeGreaterThan(0);
  return texts.filter((t) => !STATUS_WORDS.has(t.split(/\s/)[0] ?? ''));
}

let fx: ApiFixture;
let browser: ConsoleBrowser;

beforeAll(async () => {
  fx = await startApiFixture('console-a11y');
  browser = await openConsoleBrowser('console-a11y');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.[Symbol.asyncDispose]();
});

describe('console accessibility', { timeout: 120_000 }, () => {
  it('gives every control on every page a name and the keyboard focus, and every status a word', async () => {
    const done = await fx.call<{ run_id: string }>('POST', '/api/runs', { body: { requirements: 'A todo API with a list and an add endpoint', template: 'quick-fix' } });
    expect(done.status).toBe(201);
    const page = await browser.signedIn(fx.api.url, ADMIN_KEY);
    const nav = page.getByRole('navigation', { name: 'Main' });

    // The list shows the run live until every phase is done.
    await page.getByRole('row').filter({ has: page.getByRole('link', { name: done.body.run_id }) }).getByText('3 / 3').waitFor({ timeout: UI_WAIT_MS });
    expect(await controlProblems(page), 'runs list').toEqual([]);
    expect(await colourOnlyStatuses(page), 'runs list').toEqual([]);

    await page.getByRole('link', { name: done.body.run_id }).click();
    const graph = page.getByRole('region', { name: 'Workflow graph' });
    await graph.getByRole('button', { name: /^review: completed\b/ }).click();
    await page.getByRole('region', { name: 'Phase review' }).waitFor({ timeout: UI_WAIT_MS });
    await page.getByRole('region', { name: 'Timeline' }).getByRole('img', { name: /^review iteration 1 attempt 1: completed, / }).waitFor({ timeout: UI_WAIT_MS });
    expect(await controlProblems(page), 'run page').toEqual([]);
    expect(await colourOnlyStatuses(page), 'run page').toEqual([]);

    await nav.getByRole('link', { name: 'Workflows' }).click();
    await page.getByRole('button', { name: 'quick-fix' }).click();
    await page.getByRole('region', { name: 'Workflow quick-fix' }).waitFor({ timeout: UI_WAIT_MS });
    await page.getByLabel('Workflow YAML').fill('name: [unclosed\n');
    await page.getByRole('button', { name: 'Validate', exact: true }).click();
    await page.getByRole('list', { name: 'Problems' }).waitFor({ timeout: UI_WAIT_MS });
    expect(await controlProblems(page), 'workflows page').toEqual([]);

    for (const [link, heading] of [
      ['Workers', 'Workers'],
      ['Schedules', 'Schedules'],
      ['Triggers', 'Triggers'],
      ['Analytics', 'Analytics'],
    ] as const) {
      await nav.getByRole('link', { name: link }).click();
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor({ timeout: UI_WAIT_MS });
      expect(await controlProblems(page), `${link} page`).toEqual([]);
    }
    await page.close();
  });

  it('answers a waiting run with the keyboard only', async () => {
    const res = await fx.call<{ run_id: string }>('POST', '/api/runs', { body: { requirements: 'A todo API with a list and an add endpoint', template: 'quick-fix', variables: { interactive: 'true' } } });
    expect(res.status).toBe(201);
    const page = await browser.signedIn(fx.api.url, ADMIN_KEY);
    await page.goto(`${fx.api.url}/ui/#/runs/${res.body.run_id}`);
    const answer = page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Answer planning' });
    await answer.waitFor({ timeout: UI_WAIT_MS });
    // Tab from the top of the page until the action has the focus: it is in the tab order.
    let presses = 0;
    const focused = page.locator(':focus');
    while ((await answer.and(focused).count()) === 0) {
      expect(presses++, 'Tab presses to reach "Answer planning"').toBeLessThan(40);
      await page.keyboard.press('Tab');
    }
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Answer planning?' });
    await dialog.waitFor({ timeout: UI_WAIT_MS });
    // The dialog takes the focus on its first field: type the answer, Tab to Confirm, Enter.
    expect(await dialog.getByLabel('Who are the users, and how do they sign in?').and(focused).count()).toBe(1);
    await page.keyboard.type('Staff members, with single sign-on');
    await page.keyboard.press('Tab');
    expect(await dialog.getByRole('button', { name: 'Confirm' }).and(focused).count()).toBe(1);
    await page.keyboard.press('Enter');
    await page.getByLabel('Run status').getByText('completed').waitFor({ timeout: UI_WAIT_MS });
    await page.close();
  });
});
