/**
 * The console's Triggers page in Debian's Chromium (playwright-core) against a real manager HTTP API
 * and real Redis: an admin sees each trigger's endpoint, workflow, how it authenticates and how the
 * body maps into the run, never its secret; another key is told the page needs an admin key.
 *
 * Chromium must be installed (`apt-get install -y chromium`) and the console built (`npm run build`):
 * without them these tests fail, they never skip.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, ANALYST_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const CONSOLE_INDEX = fileURLToPath(new URL('../apps/console/dist/index.html', import.meta.url));
/** Waits on page state (a locator appearing); generous because the machine is shared and loaded. */
const UI_WAIT_MS = 20_000;

let fx: ApiFixture;
let context: BrowserContext;
let profile: string;

beforeAll(async () => {
  if (!existsSync(CONSOLE_INDEX)) throw new Error(`the console is not built (${CONSOLE_INDEX} is missing): run \`npm run build\` at the repository root`);
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: install Debian's package with \`apt-get update && apt-get install -y chromium\``);
  fx = await startApiFixture('console-triggers');
  profile = await mkdtemp(join(tmpdir(), 'agentfleet-console-triggers-'));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1400, height: 900 } });
}, 120_000);

afterAll(async () => {
  await context?.close();
  await fx?.[Symbol.asyncDispose]();
  if (profile) await rm(profile, { recursive: true, force: true });
});

async function signedIn(key: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${fx.api.url}/ui/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor({ timeout: UI_WAIT_MS });
  return page;
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
