/**
 * The console's Triggers page in Debian's Chromium (playwright-core) against a real manager HTTP API
 * and real Redis: an admin sees each trigger's endpoint, workflow, how it authenticates and how the
 * body maps into the run, never its secret; another key is told the page needs an admin key.
 *
 * Chromium must be installed (`apt-get install -y chromium`) and the console built (`npm run build`):
 * without them these tests fail, they never skip.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY, ANALYST_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';


let fx: ApiFixture;
let browser: ConsoleBrowser;

beforeAll(async () => {
  fx = await startApiFixture('console-triggers');
  browser = await openConsoleBrowser('console-triggers');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.[Symbol.asyncDispose]();
});

/** A new tab signed in with `key`, on the runs list. */
function signedIn(key: string): Promise<Page> {
  return browser.signedIn(fx.api.url, key);
}

describe('console: triggers', () => {
  it('lists the triggers with their endpoint, workflow and mapping for an admin, never a secret; other keys are told it needs an admin key', async () => {
    const put = await fx.call<{ secret: string }>('PUT', '/api/triggers/issue-opened', {
      body: { workflow: 'software-delivery', requirements_template: 'Fix {{body.issue.title}}', variables: { repo: '{{body.repository.full_name}}' }, generate_secret: true },
    });
    expect(put.status).toBe(201);
    expect((await fx.call('PUT', '/api/triggers/nightly', { body: { workflow: 'software-delivery', requirements_template: '{{body.task}}', debounce: { key: '{{body.task}}', period_s: 600 } } })).status).toBe(201);

    const page = await signedIn(ADMIN_KEY);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Triggers' }).click();
    const issue = page.getByRole('row', { name: /^issue-opened POST \/api\/triggers\/issue-opened software-delivery signed deliveries and API keys Fix \{\{body\.issue\.title\}\} repo = \{\{body\.repository\.full_name\}\} none$/ });
    await issue.waitFor({ timeout: UI_WAIT_MS });
    const nightly = page.getByRole('row', { name: /^nightly .* API keys only .* \{\{body\.task\}\} within 600 s$/ });
    await nightly.waitFor({ timeout: UI_WAIT_MS });
    expect(await page.content()).not.toContain(put.body.secret);
    await page.close();

    const analyst = await signedIn(ANALYST_KEY);
    await analyst.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Triggers' }).click();
    const alert = analyst.getByRole('alert');
    await alert.waitFor({ timeout: UI_WAIT_MS });
    expect(await alert.textContent()).toContain('needs an admin key');
    await analyst.close();
  });
});
