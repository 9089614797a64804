/**
 * A pool that serves several roles takes the next phase of a run it just committed from its own
 * last commit (`RunDriver.recentRun`), after checking the stored version, instead of reading the run
 * and its context again; one gone stale while the phase works (another process committed since)
 * still ends in the right result, through the version fence.
 */
import { BUILTIN_ROLES, type RoleInput } from '@agentfleet/agents';
import type { LlmRequest, LlmResponse } from '@agentfleet/core';
import { RunDriver, RunStore } from '@agentfleet/core/internal';
import { describe, expect, it } from 'vitest';
import { CountingOfflineLlm, connect, countEvents, quietPool, runEvents } from './faults/helpers.js';
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
      // design queued (version V), and the stored version was still V when it checked.
      let offered: number | undefined;
      let designUsedMemory = false;
      const recentRun = RunDriver.prototype.recentRun;
      const getVersion = RunStore.prototype.getVersion;
      RunDriver.prototype.recentRun = function (this: RunDriver, runId: string) {
        const run = recentRun.call(this, runId);
        if (run?.state.phases.design?.status === 'queued') offered = run.state.version;
        return run;
      };
      RunStore.prototype.getVersion = async function (this: RunStore, runId: string) {
        const v = await getVersion.call(this, runId);
        if (offered !== undefined && v === offered) {
          designUsedMemory = true;
          designTaken();
        }
        return v;
      };
      try {
        id = await conn.client.submit({ workflow: fanOut, requirements: 'A chat server', provider: 'offline' });
        runIdKnown(id);
        expect((await conn.client.follow(id, conn.blocking, () => undefined)).status).toBe('completed');
      } finally {
        RunDriver.prototype.recentRun = recentRun;
        RunStore.prototype.getVersion = getVersion;
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
});
