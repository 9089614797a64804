/**
 * The Redis side of `GET /api/runs`: runs matching a {@link RunListFilter}, newest first, read from
 * Redis in chunks that stop as soon as the page is full.
 *
 * Runs are listed from the run index `<p>:runs` (a sorted set scored by creation time, epoch ms): a
 * page starts at its cursor's rank (or the `created_before` bound) and reads only as far as it must,
 * never the whole index. Redis walks the index itself (one short script per step) checking labels
 * (user, conversation, schedule) exactly and pre-filtering status, workflow and words on the raw run
 * record, so only the runs that may match travel to the manager, which reads their records and
 * checks each exactly.
 */
import { FleetError, TERMINAL_RUN_STATUSES, type RunState } from '@agentfleet/core';
import type { RunIndexFilter } from '@agentfleet/core/internal';
import type { RunListFilter } from '../archive/history-store.js';
import type { ApiContext } from './context.js';

/** Runs one request looks at in the index, at most; past it the page ends and `next_cursor` goes on from there. */
export const LIST_SCAN_LIMIT = 10_000;
/** Index entries one Redis call looks at, at most (a short script: Redis serves others between steps). */
const SCAN_STEP = 2000;
/** Run records read per round trip. */
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
 * Matching runs from the run index, newest first: walks the index in Redis from the filter's
 * position (the cursor, or `createdTo`) down to `createdFrom` (`RunStore.scanIndex`, which checks
 * labels exactly and pre-filters status, workflow and words), reads the run records of the runs it
 * returns and checks each exactly, until `wanted` rows are found, the index ends, or
 * {@link LIST_SCAN_LIMIT} runs were looked at.
 *
 * @param wanted - rows to find (the page's `skip + limit + 1`, so the caller can tell `has_more`).
 */
export async function listIndexedRuns(ctx: ApiContext, filter: RunListFilter, wanted: number): Promise<IndexedRunsPage> {
  const indexFilter = toIndexFilter(filter);
  const rows: RunListRow[] = [];
  let after: ListPosition | undefined = filter.before;
  let looked = 0;
  while (rows.length < wanted && looked < LIST_SCAN_LIMIT) {
    const step = await ctx.store.scanIndex({
      after,
      bounds: { before: filter.createdTo, from: filter.createdFrom },
      look: Math.min(SCAN_STEP, LIST_SCAN_LIMIT - looked),
      want: wanted - rows.length,
      filter: indexFilter,
    });
    looked += step.looked;
    if (step.runIds.length > 0) rows.push(...(await matchRuns(ctx, step.runIds, filter)));
    if (step.exhausted || !step.last) return { rows: rows.slice(0, wanted), scannedTo: undefined };
    after = step.last;
  }
  return { rows: rows.slice(0, wanted), scannedTo: rows.length < wanted ? after : undefined };
}

/** What Redis can check of `filter` while it walks the index: labels exactly, the rest as a pre-filter. */
function toIndexFilter(filter: RunListFilter): RunIndexFilter {
  const labels: Record<string, string> = {};
  if (filter.userId !== undefined) labels.user_id = filter.userId;
  if (filter.conversationId !== undefined) labels.conversation_id = filter.conversationId;
  if (filter.schedule !== undefined) labels.schedule = filter.schedule;
  const words = filter.text?.toLowerCase().split(/\s+/).filter(Boolean) ?? [];
  // Redis lower-cases ASCII only, and the requirements sit JSON-escaped in the meta: other words are checked in Node alone.
  const prefilterWords = words.filter((w) => /^[\x20-\x7e]+$/.test(w) && !/["\\]/.test(w));
  return {
    labels,
    ...(filter.status !== undefined ? { status: filter.status } : {}),
    ...(filter.workflow !== undefined ? { workflow: filter.workflow } : {}),
    ...(prefilterWords.length === words.length && words.length > 0 ? { words } : {}),
    ...(words.length === 1 ? { idPrefix: words[0] } : {}),
  };
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
  const runs = await ctx.store.readRuns(ids);
  return runs.map((run, i) => {
    if (!run) return undefined;
    const { meta, state } = run;
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
