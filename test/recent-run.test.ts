/**
 * A pool that serves several roles takes the next phase of a run it just committed from its own
 * last commit (`RunDriver.recentRun`) instead of reading the run and its context again; one gone
 * stale while the phase works (another process committed since) still ends in the right result,
 * through the version fence, and the work of an iteration the run ended meanwhile is aborted as
 * cancelled when the attempt's start commit finds it.
 */
import { BUILTIN_ROLES, type RoleInput } from '@agentfleet/agents';
import { FleetError, agentQueueName, phaseJobId, type LlmRequest, type LlmResponse } from '@agentfleet/core';
import { RunDriver, RunStore } from '@agentfleet/core/internal';
import { Queue, QueueEvents } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { CountingOfflineLlm, connect, countEvents, quietPool, runEvents, stoppedBeforeEffects } from './faults/helpers.js';
import { testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';
import { waitForRunEvent } from './support/run-events.js';

const workflow = testWorkflow({
  agents: ['planner', 'designer', 'coder'],
  phases: [
    { name: 'plan', agent: 'planner' },
    { name: 'design', agent: 'designer', depends_on: ['plan'] },
    { name: 'code', agent: 'coder', depends_on: ['design'] },
  ],
});

/** Count the calls of `RunStore#getRunWithOutputs` (the worker's read of a run) per run id, in this process. */
async function countReads(during: () => Promise<void>): Promise<Map<string, number>> {
  const reads = new Map<string, number>();
  const original = RunStore.prototype.getRunWithOutputs;
  RunStore.prototype.getRunWithOutputs = function (this: RunStore, id: string) {
    reads.set(id, (reads.get(id) ?? 0) + 1);
    return original.call(this, id);
  };
  try {
    await during();
  } finally {
    RunStore.prototype.getRunWithOutputs = original;
  }
  return reads;
}

/** The offline model, recording the upstream outputs each phase was given. */
class RecordingLlm extends CountingOfflineLlm {
  readonly upstream = new Map<string, Record<string, unknown>>();

  override generate(request: LlmRequest): Promise<LlmResponse> {
    const input = request.inputs as unknown as RoleInput;
    this.upstream.set(input.phase, Object.fromEntries(input.upstream.map((u) => [u.phase, u.output])));
    return super.generate(request);
  }
}

describe('a pool reuses the run it just committed', () => {
  it('reads a three-phase run once (the first phase, queued by the client), and each phase result is right', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('recent-run');
    const conn = connect(url, prefix);
    const llm = new RecordingLlm(Object.values(BUILTIN_ROLES));
    const pool = await quietPool(url, prefix, [BUILTIN_ROLES.planner!, BUILTIN_ROLES.designer!, BUILTIN_ROLES.coder!], llm);
    let id: string | undefined;
    try {
      const reads = await countReads(async () => {
        id = await conn.client.submit({ workflow, requirements: 'A todo API', provider: 'offline' });
        const result = await conn.client.follow(id, conn.blocking, () => undefined);
        expect(result.status).toBe('completed');
      });
      expect(reads.get(id!)).toBe(1);
      const events = await runEvents(conn.store, id!);
      for (const phase of ['plan', 'design', 'code']) expect(countEvents(events, 'phase_completed', phase)).toBe(1);
      // Each phase was given its upstream outputs as stored, as a read would have given them.
      const stored = await conn.store.getOutputs(id!);
      expect(llm.upstream.get('design')).toEqual({ plan: stored.plan });
      expect(llm.upstream.get('code')).toEqual({ plan: stored.plan, design: stored.design });
    } finally {
      await pool.close(1000);
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('a remembered run gone stale while its phase works (another pool committed since) still ends right: the fence refuses the stale commit and it is decided again', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('recent-run-stale');
    const conn = connect(url, prefix);
    const fanOut = testWorkflow({
      agents: ['planner', 'designer', 'coder', 'reviewer'],
      phases: [
        { name: 'plan', agent: 'planner' },
        { name: 'design', agent: 'designer', depends_on: ['plan'] },
        { name: 'side', agent: 'coder', depends_on: ['plan'] },
        { name: 'review', agent: 'reviewer', depends_on: ['design', 'side'] },
      ],
    });
    // Pool A commits the plan and takes the design from its memory; pool B's `side` is held until then,
    // and the design's model call until `side` is committed, so A's remembered run is stale when the
    // design commits.
    let designTaken: () => void = () => undefined;
    const taken = new Promise<void>((resolve) => (designTaken = resolve));
    let runIdKnown: (id: string) => void = () => undefined;
    const runId = new Promise<string>((resolve) => (runIdKnown = resolve));
    const llmA = new (class extends RecordingLlm {
      override async generate(request: LlmRequest): Promise<LlmResponse> {
        if ((request.inputs as unknown as RoleInput).phase === 'design') {
          await waitForRunEvent({ redis: conn.redis, prefix }, await runId, (e) => e.type === 'phase_completed' && e.phase === 'side', { what: 'side to be committed' });
        }
        return super.generate(request);
      }
    })(Object.values(BUILTIN_ROLES));
    const llmB = new (class extends RecordingLlm {
      override async generate(request: LlmRequest): Promise<LlmResponse> {
        // Only once the design has started from pool A's memory (never on a timer: a late start would
        // then find side committed already, and the case under test would not happen).
        await taken;
        return super.generate(request);
      }
    })(Object.values(BUILTIN_ROLES));
    const poolA = await quietPool(url, prefix, [BUILTIN_ROLES.planner!, BUILTIN_ROLES.designer!, BUILTIN_ROLES.reviewer!], llmA);
    const poolB = await quietPool(url, prefix, [BUILTIN_ROLES.coder!], llmB);
    try {
      let id = '';
      // Whether the design job started from pool A's memory: offered a remembered run showing the
      // design queued, as stored then (side not committed yet: pool B holds it until this moment).
      let designUsedMemory = false;
      const recentRun = RunDriver.prototype.recentRun;
      RunDriver.prototype.recentRun = function (this: RunDriver, runId: string) {
        const run = recentRun.call(this, runId);
        if (run?.state.phases.design?.status === 'queued' && run.state.phases.side?.status !== 'completed') {
          designUsedMemory = true;
          designTaken();
        }
        return run;
      };
      try {
        id = await conn.client.submit({ workflow: fanOut, requirements: 'A chat server', provider: 'offline' });
        runIdKnown(id);
        expect((await conn.client.follow(id, conn.blocking, () => undefined)).status).toBe('completed');
      } finally {
        RunDriver.prototype.recentRun = recentRun;
      }
      expect(designUsedMemory).toBe(true);
      // `side` was committed by pool B after the design started from memory and before the design
      // completed: the design's commits were decided on a stale run, refused by the fence and decided again.
      const order = (await runEvents(conn.store, id)).map((e) => ('phase' in e ? `${e.type} ${String(e.phase)}` : e.type));
      expect(order.indexOf('phase_completed side')).toBeLessThan(order.indexOf('phase_completed design'));
      const events = await runEvents(conn.store, id);
      for (const phase of ['plan', 'design', 'side', 'review']) expect(countEvents(events, 'phase_completed', phase)).toBe(1);
      expect(countEvents(events, 'phase_queued', 'review')).toBe(1);
      const stored = await conn.store.getOutputs(id);
      expect(llmA.upstream.get('review')).toEqual({ plan: stored.plan, design: stored.design, side: stored.side });
    } finally {
      await poolA.close(1000);
      await poolB.close(1000);
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
  it('the work of an iteration the run ended after the job was taken (found by the attempt\'s start commit) is aborted as PHASE_CANCELLED, and nothing of it is committed', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('recent-run-ended');
    const conn = connect(url, prefix);
    // The design's model call is entered, then the run is cancelled, then the attempt's start is
    // committed (the work outlasts START_RECORD_AFTER_MS: its model call waits for the abort): in that
    // order, so the start's commit can only find out after the work began.
    let designEntered: () => void = () => undefined;
    const entered = new Promise<void>((resolve) => (designEntered = resolve));
    let designAborted: (reason: unknown) => void = () => undefined;
    const abortReason = new Promise<unknown>((resolve) => (designAborted = resolve));
    const llm = new (class extends RecordingLlm {
      override async generate(request: LlmRequest): Promise<LlmResponse> {
        if ((request.inputs as unknown as RoleInput).phase !== 'design') return super.generate(request);
        designEntered();
        const { signal } = request;
        await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
        designAborted(signal.reason);
        throw signal.reason;
      }
    })(Object.values(BUILTIN_ROLES));
    // Commits the cancel and stops before carrying out its effects (no cancel is published, no job
    // removed), as a canceller that died after its commit: only the start's fenced commit can tell the pool.
    const canceller = stoppedBeforeEffects(conn, prefix);
    const events = new QueueEvents(agentQueueName('designer'), { connection: { url }, prefix });
    const designQueue = new Queue(agentQueueName('designer'), { connection: conn.redis, prefix });
    const pool = await quietPool(url, prefix, [BUILTIN_ROLES.planner!, BUILTIN_ROLES.designer!, BUILTIN_ROLES.coder!], llm);
    const apply = RunDriver.prototype.apply;
    let cancelled = false;
    try {
      await events.waitUntilReady();
      RunDriver.prototype.apply = async function (this: RunDriver, runId, batch, options) {
        const list = Array.isArray(batch) ? batch : [batch];
        if (!cancelled && this !== canceller && list.some((e) => e.type === 'phase_started' && e.phase === 'design')) {
          cancelled = true;
          await entered;
          await canceller.apply(runId, { type: 'cancel_requested', at: Date.now(), reason: 'cancelled in the test' }).catch(() => undefined);
        }
        return apply.call(this, runId, batch, options);
      };
      const id = await conn.client.submit({ workflow, requirements: 'A todo API', provider: 'offline' });
      const reason = await abortReason;
      expect(reason).toBeInstanceOf(FleetError);
      expect((reason as FleetError).code).toBe('PHASE_CANCELLED');
      expect((reason as FleetError).message).toContain('ended phase "design" iteration 1 while it was being worked on');
      // The job ends for good (a cancellation is not retried), and the run shows what the cancel committed.
      const job = await designQueue.getJob(phaseJobId(id, 'design', 1));
      await expect(job!.waitUntilFinished(events)).rejects.toThrow('ended phase "design" iteration 1');
      const { state } = await conn.store.getRun(id);
      expect(state.status).toBe('cancelled');
      const recorded = await runEvents(conn.store, id);
      expect(countEvents(recorded, 'phase_completed', 'design')).toBe(0);
      expect(countEvents(recorded, 'phase_queued', 'code')).toBe(0);
      expect(llm.upstream.has('code')).toBe(false);
    } finally {
      RunDriver.prototype.apply = apply;
      await pool.close(1000);
      await events.close();
      await designQueue.close();
      await canceller.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
});
