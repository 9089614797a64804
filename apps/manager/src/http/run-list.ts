/**
 * The Redis side of `GET /api/runs`: runs matching a {@link RunListFilter}, newest first, read from
 * Redis in chunks that stop as soon as the page is full.
 *
 * Runs are listed from the run index `<p>:runs` (a sorted set scored by creation time, epoch ms), so
 * the cursor and the `created_after` / `created_before` bounds become score ranges and a page reads
 * only the runs at and after its position, never the whole index. Label filters (user, conversation,
 * schedule) are checked on the labels hash before the run record is read; the run record (state
 * and meta JSON) is read only for runs that pass them.
 */
import { TERMINAL_RUN_STATUSES, type RunState } from '@agentfleet/core';
import { FleetError } from '@agentfleet/core';
import type { RunListFilter } from '../archive/history-store.js';
import type { ApiContext } from './context.js';

/** Runs one request looks at in the index, at most; past it the page ends and `next_cursor` goes on from there. */
export const LIST_SCAN_LIMIT = 10_000;
/** Runs read per round trip once a filter has turned runs away (the first chunk is the page size). */
const MAX_CHUNK = 1000;

/** One row of the runs list. */
export interface RunListRow {
  run_id: string;
  status: RunState['status'];
  workflow: { name: string; version: string };
  /** ISO 8601. */
  created_at: string;
  /** ISO 8601, null while the run goes. */
  finished_at: string | null;
  user_id: string | null;
  conversation_id: string | null;
  template: string | null;
  schedule: string | null;
}

/** A position in the newest-first order: the row a page ended on. */
export interface ListPosition {
  /** Epoch ms. */
  createdAt: number;
  runId: string;
}

/** What {@link listIndexedRuns} found. */
export interface IndexedRunsPage {
  /** Matching runs, newest first, at most `wanted`. */
  rows: RunListRow[];
  /**
   * Set when the scan stopped at {@link LIST_SCAN_LIMIT} before the index ended and before `wanted`
   * rows were found: the last run looked at, so the next page can go on after it.
   */
  scannedTo: ListPosition | undefined;
}

/** Newest first by (created_at, run_id): the order of every page and of the cursor. */
export function newestFirst(a: { created_at: string; run_id: string }, b: { created_at: string; run_id: string }): number {
  const t = Date.parse(b.created_at) - Date.parse(a.created_at);
  return t !== 0 ? t : a.run_id < b.run_id ? 1 : a.run_id > b.run_id ? -1 : 0;
}

/** The opaque `next_cursor` for a position. */
export function makeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.runId])).toString('base64url');
}

/** @throws FleetError `INVALID_INPUT` for a cursor this API did not make. */
export function parseCursor(cursor: string): ListPosition {
  try {
    const [createdAt, runId] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[];
    if (typeof createdAt === 'number' && typeof runId === 'string') return { createdAt, runId };
  } catch {
    // reported below
  }
  throw new FleetError('INVALID_INPUT', 'cursor: not a cursor from this API; pass the `next_cursor` of the previous page', {
    details: { issues: [{ path: 'querystring.cursor', message: 'invalid cursor' }] },
  });
}

/**
 * Whether `text` (the `q` parameter) matches a run: every word appears in the requirements
 * (case-insensitive), or `text` is one word that starts the run id.
 */
export function matchesText(text: string, runId: string, requirements: string): boolean {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  if (words.length === 1 && runId.toLowerCase().startsWith(words[0] as string)) return true;
  const haystack = requirements.toLowerCase();
  return words.every((w) => haystack.includes(w));
}

/**
 * Matching runs from the run index, newest first: reads chunks of the index from the filter's
 * position (cursor, `createdTo`) down to `createdFrom` until `wanted` rows are found, the index ends,
 * or {@link LIST_SCAN_LIMIT} runs were looked at.
 *
 * @param wanted - rows to find (the page's `skip + limit + 1`, so the caller can tell `has_more`).
 */
export async function listIndexedRuns(ctx: ApiContext, filter: RunListFilter, wanted: number): Promise<IndexedRunsPage> {
  const max = upperBound(filter);
  const min = filter.createdFrom === undefined ? '-inf' : String(filter.createdFrom);
  const rows: RunListRow[] = [];
  let offset = 0;
  let chunk = Math.min(MAX_CHUNK, wanted);
  let last: ListPosition | undefined;
  while (rows.length < wanted && offset < LIST_SCAN_LIMIT) {
    const size = Math.min(chunk, LIST_SCAN_LIMIT - offset);
    const reply = await ctx.redis.zrevrangebyscore(ctx.store.indexKey, max, min, 'WITHSCORES', 'LIMIT', offset, size);
    const ids: string[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) ids.push(reply[i] as string);
    if (ids.length === 0) return { rows: rows.sort(newestFirst).slice(0, wanted), scannedTo: undefined };
    offset += ids.length;
    last = { runId: ids[ids.length - 1] as string, createdAt: Number(reply[reply.length - 1]) };
    rows.push(...(await matchRuns(ctx, ids, filter)));
    if (ids.length < size) return { rows: rows.sort(newestFirst).slice(0, wanted), scannedTo: undefined };
    // A filter that turned runs away will likely do so again: read more per round trip.
    chunk = Math.min(MAX_CHUNK, chunk * 4);
  }
  return { rows: rows.sort(newestFirst).slice(0, wanted), scannedTo: rows.length < wanted ? last : undefined };
}

/**
 * The runs among `ids` that match `filter`, newest first, at most `limit` (for the runs not in the
 * archive yet: in flight, or finished and waiting for their archive write).
 */
export async function listRunsByIds(ctx: ApiContext, ids: readonly string[], filter: RunListFilter, limit: number): Promise<RunListRow[]> {
  const out: RunListRow[] = [];
  for (let i = 0; i < ids.length; i += MAX_CHUNK) out.push(...(await matchRuns(ctx, ids.slice(i, i + MAX_CHUNK), filter)));
  return out.sort(newestFirst).slice(0, limit);
}

/** The score range's top for the filter: the cursor's creation time (inclusive) or `createdTo` (exclusive), the lower one. */
function upperBound(filter: RunListFilter): string {
  const before = filter.before?.createdAt;
  const to = filter.createdTo;
  if (before === undefined) return to === undefined ? '+inf' : `(${to}`;
  if (to === undefined || before < to) return String(before);
  return `(${to}`;
}

/** The rows of the runs among `ids` that match `filter`: labels first, run records only for runs whose labels match. */
async function matchRuns(ctx: ApiContext, ids: readonly string[], filter: RunListFilter): Promise<RunListRow[]> {
  const byLabel = filter.userId !== undefined || filter.conversationId !== undefined || filter.schedule !== undefined;
  let candidates = ids;
  let labels = await ctx.labels.getMany(ids);
  if (byLabel) {
    const keep = ids.map((_, i) => {
      const l = labels[i] ?? {};
      return (
        (filter.userId === undefined || l.user_id === filter.userId) &&
        (filter.conversationId === undefined || l.conversation_id === filter.conversationId) &&
        (filter.schedule === undefined || l.schedule === filter.schedule)
      );
    });
    candidates = ids.filter((_, i) => keep[i]);
    labels = labels.filter((_, i) => keep[i]);
    if (candidates.length === 0) return [];
  }
  const records = await readRunRecords(ctx, candidates);
  const out: RunListRow[] = [];
  records.forEach((rec, i) => {
    if (!rec) return;
    const created = Date.parse(rec.created_at);
    if (filter.status && rec.status !== filter.status) return;
    if (filter.workflow && rec.workflow.name !== filter.workflow) return;
    if (filter.createdFrom !== undefined && created < filter.createdFrom) return;
    if (filter.createdTo !== undefined && created >= filter.createdTo) return;
    if (filter.before && newestFirst({ created_at: new Date(filter.before.createdAt).toISOString(), run_id: filter.before.runId }, rec) >= 0) return;
    if (filter.text !== undefined && !matchesText(filter.text, rec.run_id, rec.requirements)) return;
    const l = labels[i] ?? {};
    const { requirements: _requirements, ...summary } = rec;
    out.push({ ...summary, user_id: l.user_id ?? null, conversation_id: l.conversation_id ?? null, template: l.template ?? null, schedule: l.schedule ?? null });
  });
  return out;
}

type RunRecord = Omit<RunListRow, 'user_id' | 'conversation_id' | 'template' | 'schedule'> & { requirements: string };

/** Status, workflow, requirements and times of many runs in one round trip (undefined for runs that are gone). */
async function readRunRecords(ctx: ApiContext, ids: readonly string[]): Promise<Array<RunRecord | undefined>> {
  const pipe = ctx.redis.pipeline();
  for (const id of ids) pipe.hmget(ctx.store.runKey(id), 'state', 'meta');
  const replies = (await pipe.exec()) ?? [];
  return replies.map(([err, value], i) => {
    if (err) throw err;
    const [stateRaw, metaRaw] = (value as Array<string | null> | undefined) ?? [];
    if (!stateRaw || !metaRaw) return undefined;
    const state = JSON.parse(stateRaw) as RunState;
    const meta = JSON.parse(metaRaw) as { workflow: { name: string; version: string }; requirements: string };
    return {
      run_id: ids[i] as string,
      status: state.status,
      workflow: { name: meta.workflow.name, version: meta.workflow.version },
      requirements: meta.requirements,
      created_at: new Date(state.createdAt).toISOString(),
      finished_at: state.finishedAt === undefined || !TERMINAL_RUN_STATUSES.includes(state.status) ? null : new Date(state.finishedAt).toISOString(),
    };
  });
}
