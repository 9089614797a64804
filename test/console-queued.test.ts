/**
 * Queued runs in the browser console: Debian's Chromium, driven by playwright-core, against a real
 * manager HTTP API serving the built console, real pools (offline model, one phase held open) and real
 * Redis. The runs page filters `queued` runs; a queued run's page shows its status, concurrency key,
 * limit and priority, and cancels it out of its key's queue.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { concurrencyState, createRedis } from '@agentfleet/core';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

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
  fx = await startApiFixture('console-queued');
  profile = await mkdtemp(join(tmpdir(), 'agentfleet-console-queued-'));
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

async function signedIn(): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${fx.api.url}/ui/`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor({ timeout: UI_WAIT_MS });
  return page;
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
