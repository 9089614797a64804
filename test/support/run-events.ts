/**
 * Waits on a run's event stream (`<prefix>:run:<id>:events`), for tests: a blocking XREAD that wakes
 * on each new event, instead of a loop that polls the run every few milliseconds.
 *
 * Every commit that changes a run writes its run events in the same Lua call, so a run state a test
 * waits for is there by the time the event that announces it can be read. The deadline of each wait
 * only turns a missing event into a failure that names what was awaited and lists the events seen;
 * it never decides the outcome of a wait that succeeds.
 *
 * @example
 * ```ts
 * const runId = await fleet.client.submit({ workflow, requirements: 'A todo API', provider: 'test' });
 * const waiting = await waitForRunEvent(fleet, runId, (e) => e.type === 'phase_waiting');
 * const done = await waitForRunStatus(fleet, runId, 'completed');
 * ```
 */
import type { RunResult, StoredRunEvent } from '@agentfleet/core';
import { RunStore } from '@agentfleet/core/internal';
import type { Redis } from 'ioredis';

/** One run event as stored (the `data` of a stream entry). */
export type RunEventRecord = StoredRunEvent['event'];

/** Where the runs live: a connection and the fleet's key prefix (a `FleetFixture` is one). */
export interface RunEventSource {
  redis: Redis;
  prefix: string;
  /**
   * A connection kept for blocking reads, for a test that waits on many runs in a row.
   * @defaultValue a duplicate of `redis`, opened for this wait and closed after it
   */
  blocking?: Redis | undefined;
}

export interface WaitOptions {
  /** How long to wait before failing, ms. @defaultValue 60000 (a loaded machine starts processes slowly) */
  timeoutMs?: number;
  /** What is awaited, for the failure message. @defaultValue a generic description */
  what?: string;
}

/** The longest one blocking read waits before the deadline is looked at again, ms. */
const READ_SLICE_MS = 5_000;

/**
 * Read the run's events from the start and resolve with the first one for which `predicate` is true
 * (it is also given every event read so far, in stream order).
 *
 * @throws Error naming `options.what`, the run and the types of the events seen, when no event
 *   matched within `options.timeoutMs`.
 */
export async function waitForRunEvent<E extends RunEventRecord = RunEventRecord>(
  source: RunEventSource,
  runId: string,
  predicate: ((event: RunEventRecord, seen: readonly RunEventRecord[]) => event is E) | ((event: RunEventRecord, seen: readonly RunEventRecord[]) => boolean),
  options: WaitOptions = {},
): Promise<E> {
  let found: E | undefined;
  await readRunEvents(source, runId, options, (event, seen) => {
    if (!predicate(event, seen)) return false;
    found = event as E;
    return true;
  });
  return found as E;
}

/**
 * Resolve with `check(result)` once it is not undefined: the run's result is read at once and again
 * after each new run event, never on a timer.
 *
 * @throws Error naming `options.what` and the run's last status when `check` did not answer within
 *   `options.timeoutMs`.
 */
export async function waitForRunState<T>(source: RunEventSource, runId: string, check: (result: RunResult) => T | undefined, options: WaitOptions = {}): Promise<T> {
  const store = new RunStore(source.redis, source.prefix);
  let answer: T | undefined;
  let last: RunResult | undefined;
  const look = async (): Promise<boolean> => {
    last = await store.getResult(runId).catch(() => undefined);
    answer = last ? check(last) : undefined;
    return answer !== undefined;
  };
  if (await look()) return answer as T;
  await readRunEvents(source, runId, { ...options, what: `${options.what ?? 'a run state'} (last status: ${last?.status ?? 'no run'})` }, undefined, look);
  return answer as T;
}

/** Resolve with the run's result once its status is `status`. */
export function waitForRunStatus(source: RunEventSource, runId: string, status: RunResult['status'], options: WaitOptions = {}): Promise<RunResult> {
  return waitForRunState(source, runId, (r) => (r.status === status ? r : undefined), { what: `run ${runId} to be ${status}`, ...options });
}

/** Resolve with the run's result once it has finished (completed, failed or cancelled). */
export function waitForRunEnd(source: RunEventSource, runId: string, options: WaitOptions = {}): Promise<RunResult> {
  return waitForRunState(source, runId, (r) => (['completed', 'failed', 'cancelled'].includes(r.status) ? r : undefined), { what: `run ${runId} to finish`, ...options });
}

/**
 * Blocking reads of the run's stream until `onEvent` (per event) or `onBatch` (after each batch of
 * new events) says done.
 */
async function readRunEvents(
  source: RunEventSource,
  runId: string,
  options: WaitOptions,
  onEvent?: (event: RunEventRecord, seen: readonly RunEventRecord[]) => boolean,
  onBatch?: () => Promise<boolean>,
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const store = new RunStore(source.redis, source.prefix);
  const blocking = source.blocking ?? source.redis.duplicate();
  const seen: RunEventRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  let last = '0';
  try {
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(`waited ${timeoutMs} ms for ${options.what ?? 'a run event'} of run ${runId}; its events: ${seen.map((e) => e.type).join(', ') || 'none'}`);
      }
      const batch = await store.readEvents(runId, last, Math.min(READ_SLICE_MS, remaining), blocking);
      for (const { id, event } of batch) {
        last = id;
        seen.push(event);
        if (onEvent?.(event, seen)) return;
      }
      if (batch.length > 0 && (await onBatch?.())) return;
    }
  } finally {
    if (!source.blocking) blocking.disconnect();
  }
}
