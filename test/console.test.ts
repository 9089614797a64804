/**
 * The browser console end to end: Debian's Chromium, driven by playwright-core, against a real
 * manager HTTP API serving the built console under /ui/, real agent pools (offline model, some phases
 * held open by the test) and real Redis. Elements are found by role and accessible name, as a screen
 * reader would. The run also takes the README's screenshots (docs/console-*.png).
 *
 * Chromium must be installed (`apt-get install -y chromium`): without it these tests fail, they never skip.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCS, UI_WAIT_MS, openConsoleBrowser, type ConsoleBrowser } from './support/console.js';
import { ADMIN_KEY, ANALYST_KEY, startApiFixture, type ApiFixture } from './support/http-api.js';
import { waitForRunStatus } from './support/run-events.js';


let fx: ApiFixture;
let browser: ConsoleBrowser;

beforeAll(async () => {
  fx = await startApiFixture('console');
  browser = await openConsoleBrowser('console');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fx?.[Symbol.asyncDispose]();
});

/** A new tab signed in with `key`, on the runs list. */
function signedIn(key: string): Promise<Page> {
  return browser.signedIn(fx.api.url, key);
}

async function submit(body: Record<string, unknown>, key = ADMIN_KEY): Promise<string> {
  const res = await fx.call<{ run_id: string }>('POST', '/api/runs', { key, body: { requirements: 'Build a tiny todo API with a list and an add endpoint', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.run_id;
}

async function runStatus(id: string): Promise<string> {
  return (await fx.call<{ status: string }>('GET', `/api/runs/${id}`)).body.status;
}

/** The graph node of `phase`, by its accessible name (`<phase>: <status> …`). */
function node(page: Page, phase: string, status: string) {
  return page.getByRole('region', { name: 'Workflow graph' }).getByRole('button', { name: new RegExp(`^${phase}: (?:${status})\\b`) });
}

/** Confirm the action named `label` in its dialog. */
async function confirmAction(page: Page, label: string): Promise<void> {
  await page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: label }).click();
  const dialog = page.getByRole('dialog', { name: `${label}?` });
  await dialog.waitFor({ timeout: UI_WAIT_MS });
  await dialog.getByRole('button', { name: 'Confirm' }).click();
}

describe('console', { timeout: 120_000 }, () => {
  it('serves the console under /ui/ without a key, and the data only with one', async () => {
    const index = await fetch(`${fx.api.url}/ui/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('<div id="root">');
    expect((await fetch(`${fx.api.url}/ui`, { redirect: 'manual' })).headers.get('location')).toBe('/ui/');
    expect((await fx.call('GET', '/api/runs/progress?ids=x', { key: null })).status).toBe(401);
    const page = await browser.context.newPage();
    await page.goto(`${fx.api.url}/ui/`);
    await page.getByLabel('API key').fill('not-a-key-of-this-fleet');
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(await page.getByRole('alert').textContent({ timeout: UI_WAIT_MS })).toContain('401 UNAUTHORIZED');
    await page.close();
  });

  it('shows a run submitted through the API in the list, and its graph turns every node completed live', async () => {
    fx.llm.hold('planning');
    const id = await submit({ template: 'quick-fix' });
    const page = await signedIn(ADMIN_KEY);
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: id }) });
    await row.waitFor({ timeout: UI_WAIT_MS });
    await page.getByRole('link', { name: id }).click();
    await page.getByRole('heading', { name: `Run ${id}` }).waitFor({ timeout: UI_WAIT_MS });
    // Live: planning is shown running while the model holds it, the later phases are still pending.
    await fx.llm.entered('planning');
    await node(page, 'planning', 'running').waitFor({ timeout: UI_WAIT_MS });
    await node(page, 'fix', 'pending').waitFor({ timeout: UI_WAIT_MS });
    fx.llm.release('planning');
    for (const phase of ['planning', 'fix', 'review']) await node(page, phase, 'completed').waitFor({ timeout: UI_WAIT_MS });
    await page.getByLabel('Run status').getByText('completed').waitFor({ timeout: UI_WAIT_MS });
    // The event log came over SSE and ends with run_finished.
    await page.getByRole('region', { name: 'Event log' }).getByText('run_finished').waitFor({ timeout: UI_WAIT_MS });
    // The timeline has a bar per attempt, named by what it shows.
    const timeline = page.getByRole('region', { name: 'Timeline' });
    for (const phase of ['planning', 'fix', 'review']) {
      expect(await timeline.getByRole('img', { name: new RegExp(`^${phase} iteration 1 attempt 1: completed, `) }).count()).toBe(1);
    }
    // The phase panel: the plan rendered as tasks, usage, attempts, and the output as JSON.
    await node(page, 'planning', 'completed').click();
    const panel = page.getByRole('region', { name: 'Phase planning' });
    await panel.getByRole('heading', { name: 'Attempts' }).waitFor({ timeout: UI_WAIT_MS });
    expect(await panel.getByText('iteration 1, attempt 1: completed').count()).toBe(1);
    expect(await panel.getByRole('list', { name: /^Acceptance criteria of / }).count()).toBeGreaterThan(0);
    await mkdir(DOCS, { recursive: true });
    await page.screenshot({ path: join(DOCS, 'console-run.png'), fullPage: true });
    // Back on the list the row shows the finished run with every phase done.
    await page.getByRole('link', { name: 'Runs', exact: true }).click();
    const doneRow = page.getByRole('row').filter({ has: page.getByRole('link', { name: id }) });
    await doneRow.getByText('3 / 3').waitFor({ timeout: UI_WAIT_MS });
    expect(await doneRow.getByText('completed').count()).toBe(1);
    await page.close();
  });

  it('approves a waiting approval from the page, and the run goes on', async () => {
    const workflow = {
      name: 'console-approval',
      description: 'plan, sign off, design',
      agents: ['planner', 'designer'],
      phases: [
        { name: 'planning', agent: 'planner', timeout: 60 },
        { name: 'sign_off', type: 'approval', description: 'approve the plan', depends_on: ['planning'], timeout: 300 },
        { name: 'design', agent: 'designer', depends_on: ['sign_off'], timeout: 60 },
      ],
    };
    const id = await submit({ workflow });
    const page = await signedIn(ADMIN_KEY);
    await page.goto(`${fx.api.url}/ui/#/runs/${id}`);
    await node(page, 'sign_off', 'waiting').waitFor({ timeout: UI_WAIT_MS });
    await node(page, 'design', 'pending').waitFor({ timeout: UI_WAIT_MS });
    const approve = page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Approve sign_off' });
    await approve.click();
    const dialog = page.getByRole('dialog', { name: 'Approve sign_off?' });
    await dialog.getByLabel('Comment (optional)').fill('looks right');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await node(page, 'sign_off', 'completed').waitFor({ timeout: UI_WAIT_MS });
    await node(page, 'design', 'completed').waitFor({ timeout: UI_WAIT_MS });
    expect(await runStatus(id)).toBe('completed');
    const result = await fx.call<{ results: Record<string, unknown> }>('GET', `/api/runs/${id}`);
    expect(result.body.results.sign_off).toEqual({ approved: true, comment: 'looks right' });
    await page.close();
  });

  it('shows a run waiting on its budget with what it would spend, and raises the budget from the page', async () => {
    const workflow = {
      name: 'console-budget',
      agents: ['planner', 'designer'],
      // The offline model bills about 4 characters a token: planning fits, design's prompt does not.
      budget: { max_tokens: 1500, on_exceed: 'wait' },
      phases: [
        { name: 'planning', agent: 'planner', timeout: 60 },
        { name: 'design', agent: 'designer', depends_on: ['planning'], timeout: 60 },
      ],
    };
    const id = await submit({ workflow });
    const page = await signedIn(ADMIN_KEY);
    await page.goto(`${fx.api.url}/ui/#/runs/${id}`);
    await node(page, 'design', 'waiting').waitFor({ timeout: UI_WAIT_MS });
    await page.getByText(/design waits for "budget" \(the run would exceed its max_tokens budget of 1500/).waitFor({ timeout: UI_WAIT_MS });
    await page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Raise budget' }).click();
    const dialog = page.getByRole('dialog', { name: 'Raise budget?' });
    await dialog.getByLabel('Tokens to add').fill('100000');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await node(page, 'design', 'completed').waitFor({ timeout: UI_WAIT_MS });
    expect(await runStatus(id)).toBe('completed');
    await page.close();
  });

  it('cancels a run from the page, and shows the API refusing a second cancel verbatim', async () => {
    const workflow = {
      name: 'console-cancel',
      description: 'a plan the model holds open',
      agents: ['planner', 'designer'],
      phases: [
        { name: 'held_plan', agent: 'planner', timeout: 300, retries: 0 },
        { name: 'design', agent: 'designer', depends_on: ['held_plan'], timeout: 60 },
      ],
    };
    fx.llm.hold('held_plan');
    const id = await submit({ workflow });
    const page = await signedIn(ADMIN_KEY);
    const stale = await signedIn(ADMIN_KEY);
    await page.goto(`${fx.api.url}/ui/#/runs/${id}`);
    await stale.goto(`${fx.api.url}/ui/#/runs/${id}`);
    await fx.llm.entered('held_plan');
    await node(page, 'held_plan', 'running').waitFor({ timeout: UI_WAIT_MS });
    await node(stale, 'held_plan', 'running').waitFor({ timeout: UI_WAIT_MS });
    // The second tab opens its confirmation before the first cancels, so its request is refused.
    await stale.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Cancel run' }).click();
    await confirmAction(page, 'Cancel run');
    await page.getByLabel('Run status').getByText('cancelled').waitFor({ timeout: UI_WAIT_MS });
    await node(page, 'design', 'cancelled|skipped|pending').waitFor({ timeout: UI_WAIT_MS });
    expect(await runStatus(id)).toBe('cancelled');
    await stale.getByRole('dialog', { name: 'Cancel run?' }).getByRole('button', { name: 'Confirm' }).click();
    const refusal = await stale.getByRole('region', { name: 'Actions' }).getByRole('alert').textContent({ timeout: UI_WAIT_MS });
    expect(refusal).toMatch(/^409 INVALID_STATE: run .* is cancelled; only runs that are still going can be cancelled$/);
    // A cancelled run offers Resume instead.
    await page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Resume run' }).waitFor({ timeout: UI_WAIT_MS });
    fx.llm.release('held_plan');
    await page.close();
    await stale.close();
  });

  it("does not show a non-admin key another user's run", async () => {
    const adminRun = await submit({ template: 'quick-fix' });
    const ownRun = await submit({ template: 'quick-fix' }, ANALYST_KEY);
    await waitForRunStatus(fx.fleet, adminRun, 'completed', { timeoutMs: UI_WAIT_MS });
    const page = await signedIn(ANALYST_KEY);
    await page.getByRole('link', { name: ownRun }).waitFor({ timeout: UI_WAIT_MS });
    expect(await page.getByRole('link', { name: adminRun }).count()).toBe(0);
    await page.goto(`${fx.api.url}/ui/#/runs/${adminRun}`);
    expect(await page.getByRole('alert').textContent({ timeout: UI_WAIT_MS })).toContain('404 RUN_NOT_FOUND');
    await page.close();
  });

  it('resumes a cancelled run from the page, running again only the phase that did not complete', async () => {
    const workflow = {
      name: 'console-resume',
      description: 'a plan, then a design the model holds until the run is cancelled',
      agents: ['planner', 'designer'],
      phases: [
        { name: 'resume_plan', agent: 'planner', timeout: 60 },
        { name: 'resume_design', agent: 'designer', depends_on: ['resume_plan'], timeout: 300, retries: 0 },
      ],
    };
    fx.llm.hold('resume_design');
    const id = await submit({ workflow });
    await fx.llm.entered('resume_design');
    expect((await fx.call('POST', `/api/runs/${id}/cancel`, { body: {} })).status).toBe(202);
    await waitForRunStatus(fx.fleet, id, 'cancelled', { timeoutMs: UI_WAIT_MS });
    fx.llm.release('resume_design');
    const page = await signedIn(ADMIN_KEY);
    await page.goto(`${fx.api.url}/ui/#/runs/${id}`);
    await node(page, 'resume_plan', 'completed').waitFor({ timeout: UI_WAIT_MS });
    await node(page, 'resume_design', 'cancelled').waitFor({ timeout: UI_WAIT_MS });
    await confirmAction(page, 'Resume run');
    // The page follows the resumed run live (its event stream had ended with the first run_finished).
    await node(page, 'resume_design', 'completed').waitFor({ timeout: UI_WAIT_MS });
    await page.getByLabel('Run status').getByText('completed').waitFor({ timeout: UI_WAIT_MS });
    await page.getByRole('region', { name: 'Event log' }).getByText('run_resumed').waitFor({ timeout: UI_WAIT_MS });
    expect(fx.llm.systems.filter((c) => c.phase === 'resume_plan')).toHaveLength(1);
    expect(fx.llm.systems.filter((c) => c.phase === 'resume_design')).toHaveLength(2);
    await page.close();
  });

  it('resumes the event log with Last-Event-ID after the connection is cut', async () => {
    const workflow = {
      name: 'console-sse-cut',
      description: 'a plan the model holds while the test cuts the event stream',
      agents: ['planner', 'designer'],
      phases: [
        { name: 'cut_plan', agent: 'planner', timeout: 300, retries: 0 },
        { name: 'cut_design', agent: 'designer', depends_on: ['cut_plan'], timeout: 60 },
      ],
    };
    fx.llm.hold('cut_plan');
    const id = await submit({ workflow });
    const page = await signedIn(ADMIN_KEY);
    const streams: Array<string | undefined> = [];
    let resumed: () => void = () => undefined;
    const resumedOnce = new Promise<void>((resolve) => (resumed = resolve));
    page.on('request', (request) => {
      // The run page asks for the live output too (`?output=true`).
      if (new URL(request.url()).pathname !== `/api/runs/${id}/events`) return;
      const last = request.headers()['last-event-id'];
      streams.push(last);
      if (last) resumed();
    });
    await page.goto(`${fx.api.url}/ui/#/runs/${id}`);
    await fx.llm.entered('cut_plan');
    const log = page.getByRole('region', { name: 'Event log' });
    await log.getByText('phase_started').waitFor({ timeout: UI_WAIT_MS });
    // Cut every open connection of the API server, the event stream among them.
    fx.api.app.server.closeAllConnections();
    await resumedOnce;
    fx.llm.release('cut_plan');
    await node(page, 'cut_design', 'completed').waitFor({ timeout: UI_WAIT_MS });
    await log.getByText('run_finished').waitFor({ timeout: UI_WAIT_MS });
    expect(streams[0]).toBeUndefined();
    // The reconnect asked for the events after the last one it had: each event is in the log once.
    const stored = await fx.fleet.client.store.readEvents(id);
    expect(streams.filter((s) => s !== undefined)[0]).toMatch(/^\d+-\d+$/);
    expect(await log.getByRole('listitem').count()).toBe(stored.length);
    await page.close();
  });

  it('re-runs a finished run from a phase with edited requirements, reusing the outputs before it', async () => {
    const workflow = {
      name: 'console-rerun',
      description: 'plan, then design',
      agents: ['planner', 'designer'],
      phases: [
        { name: 'rr_plan', agent: 'planner', timeout: 60 },
        { name: 'rr_design', agent: 'designer', depends_on: ['rr_plan'], timeout: 60 },
      ],
    };
    const id = await submit({ workflow });
    await waitForRunStatus(fx.fleet, id, 'completed', { timeoutMs: UI_WAIT_MS });
    const page = await signedIn(ADMIN_KEY);
    await page.goto(`${fx.api.url}/ui/#/runs/${id}`);
    await node(page, 'rr_design', 'completed').click();
    await page.getByRole('region', { name: 'Actions' }).getByRole('button', { name: 'Re-run from rr_design' }).click();
    const dialog = page.getByRole('dialog', { name: 'Re-run from rr_design?' });
    await dialog.getByLabel('Requirements').fill('Build a tiny todo API with a list, an add and a delete endpoint');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    // The page moves to the new run, which runs only rr_design again.
    await page.waitForURL((url) => url.hash.startsWith('#/runs/') && !url.hash.endsWith(id), { timeout: UI_WAIT_MS });
    const newId = decodeURIComponent(new URL(page.url()).hash.slice('#/runs/'.length));
    await page.getByRole('heading', { name: `Run ${newId}` }).waitFor({ timeout: UI_WAIT_MS });
    await node(page, 'rr_design', 'completed').waitFor({ timeout: UI_WAIT_MS });
    await page.getByLabel('Run status').getByText('completed').waitFor({ timeout: UI_WAIT_MS });
    const rerun = await fx.call<{ requirements: string; links: { rerun_of?: { run_id: string; from: string } } }>('GET', `/api/runs/${newId}`);
    expect(rerun.body.requirements).toBe('Build a tiny todo API with a list, an add and a delete endpoint');
    expect(rerun.body.links.rerun_of).toEqual({ run_id: id, from: 'rr_design' });
    expect(fx.llm.systems.filter((c) => c.phase === 'rr_plan')).toHaveLength(1);
    expect(fx.llm.systems.filter((c) => c.phase === 'rr_design')).toHaveLength(2);
    await page.close();
  });

  it('shows an admin key every user\'s runs, filtered by status', async () => {
    const page = await signedIn(ADMIN_KEY);
    const all = await fx.call<{ items: Array<{ run_id: string; status: string; user_id: string }> }>('GET', '/api/runs?limit=25');
    expect(new Set(all.body.items.map((r) => r.user_id)).size).toBeGreaterThan(1);
    for (const r of all.body.items) await page.getByRole('link', { name: r.run_id }).waitFor({ timeout: UI_WAIT_MS });
    await mkdir(DOCS, { recursive: true });
    await page.screenshot({ path: join(DOCS, 'console-runs.png'), fullPage: true });
    await page.getByLabel('Status').selectOption('cancelled');
    const cancelled = all.body.items.filter((r) => r.status === 'cancelled');
    expect(cancelled.length).toBeGreaterThan(0);
    await page.getByRole('link', { name: cancelled[0]!.run_id }).waitFor({ timeout: UI_WAIT_MS });
    const completed = all.body.items.find((r) => r.status === 'completed');
    await page.getByRole('link', { name: completed!.run_id }).waitFor({ state: 'detached', timeout: UI_WAIT_MS });
    await page.close();
  });

  it('shows the workflows with their graph, and analytics per day and per workflow', async () => {
    const page = await signedIn(ADMIN_KEY);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workflows' }).click();
    await page.getByRole('button', { name: 'quick-fix' }).click();
    const chosen = page.getByRole('region', { name: 'Workflow quick-fix' });
    for (const phase of ['planning', 'fix', 'review']) await chosen.getByRole('region', { name: 'Workflow graph' }).getByRole('button', { name: new RegExp(`^${phase} \\(`) }).waitFor({ timeout: UI_WAIT_MS });
    expect(await chosen.getByRole('row', { name: /^review reviewer fix / }).count()).toBe(1);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Analytics' }).click();
    // The analytics page (loaded on first use) has replaced the workflows page, whose table also has a quick-fix row.
    await page.getByRole('heading', { name: 'Analytics', level: 1 }).waitFor({ timeout: UI_WAIT_MS });
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'quick-fix', exact: true }) });
    await row.getByRole('meter', { name: 'completion rate of quick-fix' }).waitFor({ timeout: UI_WAIT_MS });
    expect(await row.getByRole('meter', { name: 'completion rate of quick-fix' }).count()).toBe(1);
    // Runs per day: the chart, and a row per day with the API's figures.
    await page.getByRole('img', { name: 'runs per day over the last 30 days' }).waitFor({ timeout: UI_WAIT_MS });
    const daily = await fx.call<{ items: Array<{ day: string; runs: number }> }>('GET', '/api/analytics/daily');
    expect(daily.body.items.length).toBeGreaterThan(0);
    for (const d of daily.body.items) {
      const dayRow = page.getByRole('row').filter({ has: page.getByRole('cell', { name: d.day, exact: true }) });
      expect(await dayRow.getByRole('cell', { name: String(d.runs), exact: true }).count()).toBeGreaterThan(0);
    }
    await page.getByRole('heading', { name: 'Failures by error code' }).waitFor({ timeout: UI_WAIT_MS });
    await page.screenshot({ path: join(DOCS, 'console-analytics.png'), fullPage: true });
    await page.close();
  });

  it('shows the agent pools per role on the workers page', async () => {
    const page = await signedIn(ADMIN_KEY);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workers' }).click();
    // The fixture runs one pool process serving every built-in role with concurrency 4.
    const planner = page.getByRole('row', { name: /^planner 1 4 \d+ \/ 4 / });
    await planner.waitFor({ timeout: UI_WAIT_MS });
    const api = await fx.call<{ items: Array<{ role: string; processes: number; concurrency: number }> }>('GET', '/api/workers');
    expect(api.body.items.find((r) => r.role === 'planner')).toMatchObject({ processes: 1, concurrency: 4 });
    await page.close();
  });
});
