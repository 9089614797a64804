/**
 * `fleet runs purge`: remove finished runs older than a cutoff from Redis and from the archive.
 */
import { isTerminalRun, type TERMINAL_RUN_STATUSES } from '@agentfleet/core';
import type { RunStore } from '@agentfleet/core/internal';
import type { HistoryStore } from './history-store.js';

export interface PurgeOptions {
  /** Runs that finished before this, epoch ms. */
  finishedBefore: number;
  /** Only runs of this status (`completed`, `failed` or `cancelled`). */
  status?: (typeof TERMINAL_RUN_STATUSES)[number] | undefined;
}

/**
 * Remove matching finished runs: from Redis (every key, index entries), then from the archive.
 * Runs still going are never touched.
 *
 * @returns how many runs were removed from each.
 */
export async function purgeRuns(store: RunStore, history: HistoryStore | undefined, options: PurgeOptions): Promise<{ redis: number; archive: number }> {
  let redis = 0;
  // The index is by creation time, and a run finishes after it was created.
  let offset = 0;
  for (;;) {
    const ids = await store.redis.zrangebyscore(store.indexKey, '-inf', options.finishedBefore, 'LIMIT', offset, 500);
    if (ids.length === 0) break;
    const states = await store.readRunStates(ids);
    let kept = 0;
    for (let i = 0; i < ids.length; i++) {
      const state = states[i];
      const match = state !== undefined && isTerminalRun(state.status) && (state.finishedAt ?? Infinity) < options.finishedBefore && (options.status === undefined || state.status === options.status);
      if (match && (await store.purgeRun(ids[i] as string))) redis++;
      else if (state !== undefined) kept++;
      else await store.redis.zrem(store.indexKey, ids[i] as string);
    }
    offset += kept;
    if (ids.length < 500) break;
  }
  let archive = 0;
  if (history) {
    for (;;) {
      const ids = await history.finishedBefore(options.finishedBefore, options.status, 1000);
      if (ids.length === 0) break;
      archive += await history.delete(ids);
    }
  }
  return { redis, archive };
}
