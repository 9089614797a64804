/**
 * `GET /api/runs` on Redis alone (no archive) with more runs than one page looks at: real runs
 * through a real manager, pools and HTTP API, plus 10,030 copies of a finished one
 * (bench/src/console-seed.ts) so the run index is deeper than the scan limit. Paging by cursor
 * reaches every run once, newest first; a filter whose only match is older than 10,000 other runs
 * still finds it on a later page; search matches requirements words or the start of a run id;
 * a key that is not an admin key sees only its own runs, whatever it filters by.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedRunCopies } from '../bench/src/console-seed.js';
import { ADMIN_KEY, ANALYST_KEY, eventually, startApiFixture, type ApiFixture } from './support/http-api.js';

interface Row {
  run_id: string;
  created_at: string;
  user_id: string | null;
  conversation_id: string | null;
}
interface Page {
  items: Row[];
  has_more: boolean;
  next_cursor: string | null;
}

const COPIES = 10_030;
let fx: ApiFixture;
/** Real runs: the analyst's in conversation conv-red and the admin's in its own conv-red. */
let analystRun: string;
let adminRun: string;
let analystId: string;
/** The copies' ids, newest first. */
let copies: string[];

async function submit(key: string, body: Record<string, unknown>): Promise<string> {
  const res = await fx.call<{ run_id: string }>('POST', '/api/runs', { key, body: { template: 'quick-fix', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.run_id;
}

async function finished(id: string): Promise<void> {
  await eventually(async () => (['completed', 'failed', 'cancelled'].includes((await fx.call<{ status: string }>('GET', `/api/runs/${id}`)).body.status) ? true : undefined), `run ${id} to finish`);
}

async function list(query: string, key = ADMIN_KEY): Promise<Page> {
  const res = await fx.call<Page>('GET', `/api/runs?${query}`, { key });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

beforeAll(async () => {
  fx = await startApiFixture('runs-list');
  analystRun = await submit(ANALYST_KEY, { requirements: 'A kanban board for the tracker', conversation_id: 'conv-red' });
  adminRun = await submit(ADMIN_KEY, { requirements: 'A login page with kanban colours', conversation_id: 'conv-red' });
  await Promise.all([finished(analystRun), finished(adminRun)]);
  analystId = (await fx.call<{ user_id: string }>('GET', `/api/runs/${analystRun}`)).body.user_id;
  // Copies older than the real runs; the oldest one alone is in conversation "deep".
  copies = await seedRunCopies(fx.fleet.redis, {
    prefix: fx.fleet.prefix,
    templates: [adminRun],
    count: COPIES,
    newest: Date.now() - 3_600_000,
    spacingMs: 10,
    events: false,
    copy: (i) => ({ requirements: `copy number ${i}`, labels: i === COPIES - 1 ? { conversation_id: 'deep' } : { conversation_id: 'copies' } }),
  });
}, 180_000);

afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

describe('GET /api/runs on Redis', { timeout: 120_000 }, () => {
  it('pages by cursor through every run once, newest first, past the 10,000 a page looks at', async () => {
    const seen: Row[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await list(`limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.items);
      cursor = page.next_cursor;
      expect(page.has_more).toBe(cursor !== null);
    } while (cursor);
    const ids = seen.map((r) => r.run_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(0, 2).sort()).toEqual([analystRun, adminRun].sort());
    expect(ids.slice(2)).toEqual(copies);
    const times = seen.map((r) => Date.parse(r.created_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it('finds the one run of a conversation that is older than 10,000 other runs, on a later page', async () => {
    const first = await list('conversation_id=deep&limit=25');
    // The first page looked at 10,000 runs without a match: it says so, and its cursor goes on.
    expect(first.items).toEqual([]);
    expect(first.has_more).toBe(true);
    const second = await list(`conversation_id=deep&limit=25&cursor=${first.next_cursor}`);
    expect(second.items.map((r) => r.run_id)).toEqual([copies[COPIES - 1]]);
    expect(second.has_more).toBe(false);
  });

  it('filters by user and conversation, and searches by requirements words or the start of a run id', async () => {
    const byUser = await list(`user_id=${encodeURIComponent(analystId)}`);
    expect(byUser.items.map((r) => r.run_id)).toEqual([analystRun]);
    const byConversation = await list('conversation_id=conv-red');
    expect(byConversation.items.map((r) => r.run_id).sort()).toEqual([analystRun, adminRun].sort());
    const both = await list(`conversation_id=conv-red&user_id=${encodeURIComponent(analystId)}`);
    expect(both.items.map((r) => r.run_id)).toEqual([analystRun]);
    const words = await list('q=KANBAN%20tracker');
    expect(words.items.map((r) => r.run_id)).toEqual([analystRun]);
    const byId = await list(`q=${adminRun.slice(0, 13)}`);
    expect(byId.items.map((r) => r.run_id)).toEqual([adminRun]);
    const copy = copies[1234] as string;
    expect((await list(`q=${copy.toUpperCase()}`)).items.map((r) => r.run_id)).toEqual([copy]);
  });

  it('shows a key that is not an admin key only its own runs, whatever it filters by', async () => {
    expect((await list('limit=500', ANALYST_KEY)).items.map((r) => r.run_id)).toEqual([analystRun]);
    expect((await list('conversation_id=conv-red', ANALYST_KEY)).items.map((r) => r.run_id)).toEqual([analystRun]);
    expect((await list('q=kanban', ANALYST_KEY)).items.map((r) => r.run_id)).toEqual([analystRun]);
    expect((await list(`q=${adminRun}`, ANALYST_KEY)).items).toEqual([]);
    const other = await list(`user_id=${encodeURIComponent(adminRun)}`, ANALYST_KEY);
    expect(other).toMatchObject({ items: [], has_more: false });
  });

  it('bounds by creation time together with a cursor', async () => {
    const from = Date.parse((await list(`q=${copies[99]}`)).items[0]!.created_at);
    const to = Date.parse((await list(`q=${copies[40]}`)).items[0]!.created_at);
    const bounds = `created_after=${new Date(from).toISOString()}&created_before=${new Date(to).toISOString()}`;
    const first = await list(`${bounds}&limit=30`);
    const second = await list(`${bounds}&limit=30&cursor=${first.next_cursor}`);
    // Copies 41..99: created before copy 40, at or after copy 99.
    expect([...first.items, ...second.items].map((r) => r.run_id)).toEqual(copies.slice(41, 100));
    expect(second.has_more).toBe(false);
  });
});
