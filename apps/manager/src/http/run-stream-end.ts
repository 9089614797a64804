/**
 * When a run's event stream is complete for a live reader: the run finished (`run_finished`) and,
 * when its workflow has an end action, that end action recorded its final attempt (an `end_action`
 * event whose `outcome` is not `pending`; see `end-actions.ts`). Until then more events will come,
 * so an SSE stream stays open.
 */
import type { RunMeta, StoredRunEvent } from '@agentfleet/core';
import { hasEndAction, type RunStore } from '@agentfleet/core/internal';

/** How many events one backwards read of the stream takes. */
const PAGE = 100;

/** Whether an `end_action` event is its end action's last (succeeded, failed or skipped, not a retry). */
function isFinalEndAction(event: StoredRunEvent['event']): boolean {
  return event.type === 'end_action' && event.outcome !== 'pending';
}

/**
 * Follows the events one SSE connection writes, in stream order, and says which one is the last.
 *
 * @example
 * const end = new RunStreamEnd(meta);
 * for (const e of events) { write(e); if (end.isLast(e.event)) break; }
 */
export class RunStreamEnd {
  private readonly endAction: boolean;
  private finished = false;
  private settled = false;

  constructor(meta: RunMeta) {
    this.endAction = hasEndAction(meta);
  }

  /** Record one written event; true when nothing more will follow it. */
  isLast(event: StoredRunEvent['event']): boolean {
    if (event.type === 'run_finished') {
      this.finished = true;
      this.settled = !this.endAction;
    } else if (this.finished && isFinalEndAction(event)) {
      this.settled = true;
    }
    return this.finished && this.settled;
  }
}

/**
 * For a finished run with no event after the reader's position: whether its end action (if any)
 * has recorded its final attempt after the run's last `run_finished`. Reads the stream backwards
 * from its newest event. A stream trimmed past its `run_finished` counts as complete (nothing older
 * can be waited for).
 *
 * @throws whatever the Redis read throws.
 */
export async function endActionSettled(store: RunStore, meta: RunMeta): Promise<boolean> {
  if (!hasEndAction(meta)) return true;
  const key = store.eventsKey(meta.run_id);
  let settled = false;
  let end = '+';
  for (;;) {
    const page = await store.redis.xrevrange(key, end, '-', 'COUNT', PAGE);
    for (const { event } of store.eventsOf(meta.run_id, page)) {
      if (event.type === 'run_finished') return settled;
      if (isFinalEndAction(event)) settled = true;
    }
    const oldest = page.at(-1)?.[0];
    if (page.length < PAGE || oldest === undefined) return true;
    // Exclusive range (Redis 6.2+): the next page starts just before the oldest entry read.
    end = `(${oldest}`;
  }
}
