/**
 * Concurrency keys: at most `limit` runs of one key (the rendered `concurrency.key`, e.g. a tenant)
 * are active at once; the others wait with status `queued`, in submission order.
 *
 * Keys (under the fleet prefix, so one Redis Cluster hash tag holds them with the runs):
 * - `<p>:concurrency:<key>:active`  set of the key's runs holding a slot (admitted, not yet finished)
 * - `<p>:concurrency:<key>:queued`  list of the key's queued runs, oldest first (the FIFO)
 *
 * The life of a slot:
 * 1. {@link admitRun} (store script `admit-run-4`) counts the key's active runs and admits the run or
 *    appends it to the FIFO, in one step; a queued run's state becomes `queued` in that same step.
 * 2. The commit that finishes a run of the key carries, in its outbox, a `release_concurrency` effect
 *    ({@link withConcurrencyRelease}): whoever carries that outbox out ({@link releaseConcurrency},
 *    store script `release-concurrency-3`) frees the slot, admits the next queued runs and starts
 *    them. A crash anywhere in between leaves the outbox entry, which the committer's retry or the
 *    manager's reconcile of stale outboxes carries out again: the admitted runs are recorded on the
 *    finished run, so a repeat starts the same ones and frees nothing twice.
 * 3. Cancelling a queued run finishes it like any other: its release takes it out of the FIFO.
 *
 * User documentation: docs/concurrency-and-priority.md.
 */
import { commandError, storeCommand } from '../store/commands.js';
import { encodeRunState } from '../store/run-codec.js';
import type { RunStore } from '../store/run-store.js';
import type { RunMeta } from '../result.js';
import type { Decision, RunState, SchedulerAction } from '../scheduler/types.js';

type AdmitCommand = (
  runKey: string,
  eventsKey: string,
  activeKey: string,
  queuedKey: string,
  runId: string,
  limit: string,
  expectedVersion: string,
  queuedState: string,
  queuedVersion: string,
  now: string,
  key: string,
) => Promise<number>;

type ReleaseCommand = (runKey: string, activeKey: string, queuedKey: string, runId: string, limit: string, field: string, runKeyPrefix: string) => Promise<string[]>;

/** The Redis keys of one concurrency key: its active set and its FIFO of queued runs. */
export function concurrencyKeys(prefix: string, key: string): { active: string; queued: string } {
  return { active: `${prefix}:concurrency:${key}:active`, queued: `${prefix}:concurrency:${key}:queued` };
}

/** What {@link admitRun} did: the caller starts an `admitted` run; a `queued` one waits; `moved_on` needs nothing. */
export type Admission = 'admitted' | 'queued' | 'moved_on';

/**
 * Admit a `created` run against its concurrency key's limit, or queue it (status `queued`, a
 * `run_queued` event). Runs without a limit are always admitted.
 * Idempotent: asking again for a run already admitted or queued answers the same.
 *
 * @param state - the run as the caller read it (status `created`); its version fences the queueing.
 * @param now - epoch ms, the time of the `run_queued` event.
 * @throws FleetError `RUN_NOT_FOUND`; Redis errors (nothing was changed, or the admission stands: asking again is safe).
 */
export async function admitRun(store: RunStore, meta: RunMeta, state: RunState, now: number): Promise<Admission> {
  const concurrency = meta.concurrency;
  if (concurrency?.limit === undefined) return 'admitted';
  if (state.status !== 'created') return state.status === 'queued' ? 'queued' : 'moved_on';
  const keys = concurrencyKeys(store.prefix, concurrency.key);
  const queuedState: RunState = { ...state, status: 'queued', version: state.version + 1 };
  const admit = storeCommand<AdmitCommand>(store.redis, 'admitRun');
  const code = await admit(
    store.runKey(meta.run_id),
    store.eventsKey(meta.run_id),
    keys.active,
    keys.queued,
    meta.run_id,
    String(concurrency.limit),
    String(state.version),
    encodeRunState(queuedState, meta.run_id),
    String(queuedState.version),
    String(now),
    concurrency.key,
  );
  if (code === -1) {
    throw commandError('admitRun', code, meta.run_id) as Error;
  }
  return code === 1 ? 'admitted' : code === 0 ? 'queued' : 'moved_on';
}

/** The `release_concurrency` effect. */
export type ReleaseConcurrency = Extract<SchedulerAction, { type: 'release_concurrency' }>;

/**
 * Free a finished run's slot and admit the key's next queued runs (while the key is under its limit).
 *
 * @returns the ids of the admitted runs: the caller starts each (a `run_started` event). A repeat for
 *   the same commit returns the same ids.
 * @throws Redis errors (safe to repeat).
 */
export async function releaseConcurrency(store: RunStore, runId: string, effect: ReleaseConcurrency): Promise<string[]> {
  const keys = concurrencyKeys(store.prefix, effect.key);
  const release = storeCommand<ReleaseCommand>(store.redis, 'releaseConcurrency');
  return release(store.runKey(runId), keys.active, keys.queued, runId, String(effect.limit), `admitted:${effect.version}`, `${store.prefix}:run:`);
}

/**
 * Add the `release_concurrency` effect to a decision that finishes a run with a concurrency limit, so
 * the slot is released from the same commit's outbox. Other decisions are returned unchanged.
 */
export function withConcurrencyRelease(meta: RunMeta, decision: Decision): Decision {
  const concurrency = meta.concurrency;
  if (!decision.accepted || concurrency?.limit === undefined) return decision;
  if (!decision.actions.some((a) => a.type === 'finish_run')) return decision;
  const release: ReleaseConcurrency = { type: 'release_concurrency', key: concurrency.key, limit: concurrency.limit, version: decision.state.version };
  return { ...decision, actions: [...decision.actions, release] };
}

/** The key's runs holding a slot (sorted by id), and those queued (oldest first). */
export async function concurrencyState(store: RunStore, key: string): Promise<{ active: string[]; queued: string[] }> {
  const keys = concurrencyKeys(store.prefix, key);
  const [active, queued] = await Promise.all([store.redis.smembers(keys.active), store.redis.lrange(keys.queued, 0, -1)]);
  return { active: active.sort(), queued };
}
