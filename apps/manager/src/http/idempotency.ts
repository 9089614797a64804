/**
 * `Idempotency-Key` on `POST /api/runs`: a repeat of a submission (same key, same API key's user,
 * same body) within 24 h answers 200 with the first run; the same key with a different body answers
 * 409. The key is claimed in Redis before the run is created (see @agentfleet/core `IdempotencyStore`),
 * so two concurrent repeats cannot create two runs. Keys are scoped to the API key's user: two users'
 * keys never collide, and one user cannot learn another's run ids.
 */
import { FleetError, submissionFingerprint, type IdempotencyClaim, type WorkflowDefinition } from '@agentfleet/core';
import type { FastifyRequest } from 'fastify';
import { callerOf } from './auth.js';
import type { ApiContext } from './context.js';

/** The request header (RFC draft "The Idempotency-Key HTTP Header Field"). */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** A claimed key, to settle once the run exists or release when it could not be created. */
export interface HeldIdempotencyKey {
  key: string;
  claim: Extract<IdempotencyClaim, { outcome: 'claimed' }>;
}

/**
 * Claim the request's `Idempotency-Key` for `runId`.
 *
 * @returns nothing without the header; `held` when this request creates the run; `repeatOf` (the
 *   first run's id) for a repeat.
 * @throws FleetError `CONFLICT` when the key was used for a different body, or its first submission
 *   is still being created.
 */
export async function claimIdempotencyKey(ctx: ApiContext, request: FastifyRequest, body: unknown, runId: string): Promise<{ held?: HeldIdempotencyKey; repeatOf?: string }> {
  const header = request.headers[IDEMPOTENCY_HEADER];
  if (header === undefined) return {};
  const given = Array.isArray(header) ? (header[0] ?? '') : header;
  const key = `api:${callerOf(request).id}:${given}`;
  const claim = await ctx.client.idempotency.claim(key, submissionFingerprint(body), runId);
  switch (claim.outcome) {
    case 'claimed':
      return { held: { key, claim } };
    case 'repeat':
      return { repeatOf: claim.runId };
    case 'mismatch':
      throw new FleetError('CONFLICT', `Idempotency-Key "${given}" was already used (within 24 h) with a different body, for run ${claim.runId}; use a new key for a new submission`);
    case 'in_progress':
      throw new FleetError('CONFLICT', `the first request with Idempotency-Key "${given}" is still creating run ${claim.runId}; retry in a moment`);
  }
}

/** Keep a held key (the run was created) or drop it (it was not, so a retry may create it). */
export async function settleIdempotencyKey(ctx: ApiContext, held: HeldIdempotencyKey | undefined, created: boolean): Promise<void> {
  if (!held) return;
  if (created) await ctx.client.idempotency.settle(held.key, held.claim);
  else await ctx.client.idempotency.release(held.key, held.claim).catch(() => undefined);
}

/**
 * The answer to a repeat: the first run as `POST /api/runs` answered it, with its status now (from
 * Redis, else the run archive once Redis let it go).
 *
 * @param workflow - what this request resolved, shown when the run is in neither store.
 */
export async function repeatedRun(
  ctx: ApiContext,
  runId: string,
  workflow: Pick<WorkflowDefinition, 'name' | 'version'>,
): Promise<{ run_id: string; status: string; workflow: { name: string; version: string }; location: string; events_url: string }> {
  const live = await ctx.store.getRun(runId).catch(() => undefined);
  const archived = live ? undefined : await ctx.history?.get(runId);
  const status = live?.state.status ?? archived?.result.status ?? 'created';
  const wf = live?.meta.workflow ?? archived?.result.workflow ?? workflow;
  const location = `/api/runs/${runId}`;
  return { run_id: runId, status, workflow: { name: wf.name, version: wf.version }, location, events_url: `${location}/events` };
}
