/**
 * Registering a workflow template from the browser console's workflows page: Debian's Chromium,
 * driven by playwright-core, against a real manager HTTP API serving the built console and real
 * Redis. Bad YAML is shown with the line (and the field) it names; a good one validates, registers
 * and appears in the list. The run also takes the docs' screenshot of the form (docs/console-register.png).
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCS, UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

let fx: ApiFixture;
let browser: ConsoleBrowser;

beforeAll(async () => {
  fx = await startApiFixture('console-register');
  browser = await openConsoleBrowser('console-register');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.[Symbol.asyncDispose]();
});

const lines = (...l: string[]) => l.join('\n') + '\n';

/** The workflow, with `dependsOn` as the design phase's dependency (line 10) and `extra` lines at the end of the design phase. */
const workflow = (dependsOn: string, ...extra: string[]) =>
  lines(
    'name: console-registered',
    'description: plan, then design',
    'agents: [planner, designer]',
    'phases:',
    '  - name: plan',
    '    agent: planner',
    '    timeout: 60',
    '  - name: design',
    '    agent: designer',
    `    depends_on: [${dependsOn}]`,
    '    timeout: 60',
    ...extra,
  );

/** The problems listed under the YAML, each as its text without the "Go to line" button. */
async function problems(page: Page): Promise<string[]> {
  const list = page.getByRole('list', { name: 'Problems' });
  await list.waitFor({ timeout: UI_WAIT_MS });
  return (await list.getByRole('listitem').allTextContents()).map((t) => t.replace(/\s*Go to line \d+$/, '').trim());
}

async function press(page: Page, name: 'Validate' | 'Register'): Promise<void> {
  await page.getByRole('region', { name: 'Register a workflow' }).getByRole('button', { name, exact: true }).click();
}

describe('registering a workflow from the console', { timeout: 120_000 }, () => {
  it('shows a bad YAML at its line and field, then validates, registers and lists a good one', async () => {
    const page = await browser.signedIn(fx.api.url, ADMIN_KEY);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workflows' }).click();
    const yaml = page.getByLabel('Workflow YAML');

    // A syntax error: found in the page, before anything is sent, at the line the parser names.
    await yaml.fill(lines('name: console-registered', 'agents: [planner]', 'phases:', '  - name: plan', '    agent: planner', '   timeout: 60'));
    await press(page, 'Validate');
    expect(await problems(page)).toEqual(['✖ Line 6: Sequence item without - indicator']);
    expect(await yaml.getAttribute('aria-invalid')).toBe('true');

    // Problems the API finds: each at the field it names and that field's line.
    await yaml.fill(workflow('plann', '    timeot: 30'));
    await press(page, 'Validate');
    await page.getByRole('list', { name: 'Problems' }).getByText('timeot').waitFor({ timeout: UI_WAIT_MS });
    // A misspelt field does not hide the graph's problems: both are listed, each at its line.
    expect(await problems(page)).toEqual([
      '✖ Line 12, phases[1].timeot: unknown field "timeot" (did you mean "timeout"?); remove it or check the spelling',
      '✖ Line 10, phases[1].depends_on[0]: phase "design": depends_on "plann" is not a phase of this workflow; use one of: plan',
    ]);
    await yaml.fill(workflow('plann'));
    await press(page, 'Validate');
    // The new answer replaces the list: the misspelt field's problem goes (the graph's stays, so it cannot be waited for).
    await page.getByRole('list', { name: 'Problems' }).getByText('timeot').waitFor({ state: 'detached', timeout: UI_WAIT_MS });
    expect(await problems(page)).toEqual(['✖ Line 10, phases[1].depends_on[0]: phase "design": depends_on "plann" is not a phase of this workflow; use one of: plan']);
    await page.getByRole('region', { name: 'Register a workflow' }).screenshot({ path: join(DOCS, 'console-register.png') });
    // "Go to line 10" puts the caret on that line of the text.
    await page.getByRole('button', { name: 'Go to line 10' }).click();
    expect(await yaml.and(page.locator(':focus')).count()).toBe(1);
    expect(await yaml.evaluate((el: { value: string; selectionStart: number; selectionEnd: number }) => el.value.slice(el.selectionStart, el.selectionEnd))).toBe('    depends_on: [plann]');

    // A good one: valid, and nothing is stored until it is registered.
    await yaml.fill(workflow('plan'));
    await press(page, 'Validate');
    await page.getByRole('status').filter({ hasText: '✔ console-registered is valid (2 phases): it would register as version 1' }).waitFor({ timeout: UI_WAIT_MS });
    expect((await fx.call('GET', '/api/workflow-templates/console-registered')).status).toBe(404);
    await press(page, 'Register');
    await page.getByRole('status').filter({ hasText: '✔ Registered console-registered v1 (2 phases)' }).waitFor({ timeout: UI_WAIT_MS });
    const row = page.getByRole('row').filter({ has: page.getByRole('button', { name: 'console-registered', exact: true }) });
    await row.waitFor({ timeout: UI_WAIT_MS });
    expect(await row.getByRole('cell', { name: 'registered', exact: true }).count()).toBe(1);
    // The registered template is chosen: its graph is shown.
    const chosen = page.getByRole('region', { name: 'Workflow console-registered' });
    for (const phase of ['plan', 'design']) await chosen.getByRole('region', { name: 'Workflow graph' }).getByRole('button', { name: new RegExp(`^${phase} \\(`) }).waitFor({ timeout: UI_WAIT_MS });
    const stored = await fx.call<{ version: string; phases: number }>('GET', '/api/workflow-templates/console-registered');
    expect(stored.body).toMatchObject({ version: '1', phases: 2 });

    // Registering the same name again: the API's refusal, at the name's line.
    await press(page, 'Register');
    await page.getByRole('list', { name: 'Problems' }).getByText('already exists').waitFor({ timeout: UI_WAIT_MS });
    expect(await problems(page)).toEqual([
      '✖ Line 1, name: 409 CONFLICT: a template named "console-registered" already exists; PUT /api/workflow-templates/console-registered (or `fleet workflows add --update`) to add a version',
    ]);
    await page.close();
  });
});
