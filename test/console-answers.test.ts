/**
 * Answering a planner's open questions from the browser console: Debian's Chromium, driven by
 * playwright-core, against a real manager HTTP API serving the built console, real pools (offline
 * model) and real Redis. An interactive run's planner asks a question and the run waits; the user
 * answers it on the run page, and planning runs again with the answer and the run goes on.
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it this test fails, it never skips.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';

const QUESTION = 'Who are the users, and how do they sign in?';

let fx: ApiFixture;
let browser: ConsoleBrowser;

beforeAll(async () => {
  fx = await startApiFixture('console-answers');
  browser = await openConsoleBrowser('console-answers');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.[Symbol.asyncDispose]();
});

describe("a planner's open questions in the console", { timeout: 120_000 }, () => {
  it('shows the question of a waiting run, refuses an empty answer at its field, and sends the answer so the run goes on', async () => {
    // `interactive: true` makes the planner ask (as `fleet run --interactive` does) and the run wait for `answers`.
    const res = await fx.call<{ run_id: string }>('POST', '/api/runs', { body: { requirements: 'A todo API with a list and an add endpoint', template: 'quick-fix', variables: { interactive: 'true' } } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const id = res.body.run_id;
    const page = await browser.signedIn(fx.api.url, ADMIN_KEY);
    await page.goto(`${fx.api.url}/ui/#/runs/${id}`);
    const graph = page.getByRole('region', { name: 'Workflow graph' });
    await graph.getByRole('button', { name: /^planning: waiting\b/ }).waitFor({ timeout: UI_WAIT_MS });
    await page.getByRole('status').filter({ hasText: `Waiting: planning waits for "answers": ${QUESTION}` }).waitFor({ timeout: UI_WAIT_MS });

    await page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Answer planning' }).click();
    const dialog = page.getByRole('dialog', { name: 'Answer planning?' });
    await dialog.waitFor({ timeout: UI_WAIT_MS });
    expect(await dialog.getByText('Send your answers to the question of phase "planning" (event "answers"): the phase runs again with them in its context.').count()).toBe(1);
    // An empty answer is refused at its field, and nothing is sent.
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    expect(await dialog.getByRole('alert').textContent({ timeout: UI_WAIT_MS })).toBe(`✖ ${QUESTION}: give a value`);
    expect(await dialog.getByLabel(QUESTION).getAttribute('aria-invalid')).toBe('true');
    expect((await fx.call<{ status: string }>('GET', `/api/runs/${id}`)).body.status).toBe('waiting');

    await dialog.getByLabel(QUESTION).fill('Staff members, with single sign-on');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('region', { name: 'Actions' }).getByRole('status').filter({ hasText: 'Answer planning: accepted by the API' }).waitFor({ timeout: UI_WAIT_MS });
    // Planning ran again with the answer (its second iteration), then the rest of the run.
    await graph.getByRole('button', { name: /^planning: completed\b.*, iteration 2$/ }).waitFor({ timeout: UI_WAIT_MS });
    for (const phase of ['fix', 'review']) await graph.getByRole('button', { name: new RegExp(`^${phase}: completed\\b`) }).waitFor({ timeout: UI_WAIT_MS });
    await page.getByLabel('Run status').getByText('completed').waitFor({ timeout: UI_WAIT_MS });

    const events = await fx.fleet.client.store.readEvents(id);
    expect(events.map((e) => e.event).filter((e) => e.type === 'external_event')).toEqual([
      expect.objectContaining({ event: 'answers', data: { answers: { [QUESTION]: 'Staff members, with single sign-on' } } }),
    ]);
    const run = await fx.call<{ phases: Array<{ name: string; iterations: number }>; results: { planning: { open_questions: string[] } } }>('GET', `/api/runs/${id}`);
    expect(run.body.phases.find((p) => p.name === 'planning')?.iterations).toBe(2);
    expect(run.body.results.planning.open_questions).toEqual([]);
    await page.close();
  });
});
