/**
 * Phases queued to a role that no live pool serves. Without a word, such a run would sit at
 * `… review (reviewer) queued` for ever: the pools' heartbeats (`<prefix>:pools`, see
 * `startPoolHeartbeat`) say which roles are served, so the manager (and `fleet run` without local
 * workers) compares them with the run's queued phases and says so in the run's events, once per
 * phase iteration; `FleetClient.result` reports them live in the result's `unserved`.
 */
import type { Redis } from 'ioredis';
import { readPoolHeartbeats } from '../queues/pool-heartbeat.js';
import { isTerminalRun } from '../scheduler/decide.js';
import type { RunState } from '../scheduler/types.js';
import type { RunStore } from '../store/run-store.js';
import type { WorkflowDefinition } from '../workflow/definition.js';

/** How long a phase may wait for a pool's first heartbeat before it is reported unserved, ms. */
export const UNSERVED_GRACE_MS = 2000;

/** One phase queued to a role no live pool serves. */
export interface UnservedPhase {
  phase: string;
  iteration: number;
  /** The agent role (or `tools`) whose queue holds the phase's job. */
  role: string;
  /** What to tell a person: which role lacks a worker, and the command that starts one. */
  message: string;
}

/** The line a person reads for a role without a worker. */
export function unservedMessage(role: string): string {
  return `no worker serves role ${role}: start \`fleet agents --roles ${role}\``;
}

/**
 * The queued phases of a run whose role is not in `served`.
 *
 * @param now - epoch ms; phases queued less than `graceMs` before it are not counted (a pool that is
 *   starting may not have announced itself yet).
 */
export function unservedPhases(workflow: WorkflowDefinition, state: RunState, served: ReadonlySet<string>, now: number, graceMs = 0): UnservedPhase[] {
  if (isTerminalRun(state.status)) return [];
  const out: UnservedPhase[] = [];
  for (const def of workflow.phases) {
    if (def.kind !== 'agent' && def.kind !== 'tool') continue;
    const p = state.phases[def.name];
    if (p?.status !== 'queued') continue;
    if (now - (p.queuedAt ?? 0) < graceMs) continue;
    const role = p.agent ?? def.agent;
    if (!served.has(role)) out.push({ phase: def.name, iteration: p.iteration, role, message: unservedMessage(role) });
  }
  return out;
}

/** The roles some live pool process serves, from the pools' heartbeats. */
export async function servedRoles(redis: Redis, prefix: string, now = Date.now()): Promise<Set<string>> {
  return new Set((await readPoolHeartbeats(redis, prefix, now)).map((h) => h.role));
}

/**
 * Append a `role_unserved` event to the run for each phase queued (for at least
 * {@link UNSERVED_GRACE_MS}) to a role no live pool serves, once per phase iteration whoever checks
 * (a Redis `SET NX` marker per iteration). Several managers may check the same run.
 *
 * @returns the phases reported by this call.
 * @throws FleetError `RUN_NOT_FOUND`; Redis errors.
 */
export async function reportUnservedPhases(redis: Redis, store: RunStore, prefix: string, runId: string, now = Date.now()): Promise<UnservedPhase[]> {
  const { meta, state } = await store.getRun(runId);
  const queued = Object.values(state.phases).some((p) => p.status === 'queued');
  if (!queued) return [];
  const found = unservedPhases(meta.workflow, state, await servedRoles(redis, prefix, now), now, UNSERVED_GRACE_MS);
  const reported: UnservedPhase[] = [];
  for (const u of found) {
    const marker = `${store.runKey(runId)}:unserved:${u.phase}:${u.iteration}`;
    if ((await redis.set(marker, '1', 'PX', 7 * 24 * 3600_000, 'NX')) !== 'OK') continue;
    await store.appendEvent(runId, { type: 'role_unserved', at: now, phase: u.phase, iteration: u.iteration, role: u.role, message: u.message });
    reported.push(u);
  }
  return reported;
}
