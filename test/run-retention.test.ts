/**
 * Retention of finished runs in Redis (`FLEET_RUN_RETENTION`), without an archive: the commit that
 * finishes a run sets the expiry of every key of the run; a run held by an open run keeps its keys
 * until the holder finishes; 0 keeps runs forever; `parseDuration` reads the setting.
 */
import { randomUUID } from 'node:crypto';
import { RunLabelStore, conversationScope, createRedis, loadConfig, parseDuration, RUN_KEY_SUFFIXES } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { startFleet, testWorkflow } from './support/fleet.js';

const workflow = testWorkflow({
  agents: ['planner', 'designer'],
  phases: [
    { name: 'plan', agent: 'planner' },
    { name: 'design', agent: 'designer', depends_on: ['plan'] },
  ],
});

describe('run retention in Redis', () => {
  it('the finishing commit sets the expiry of every key of the run', async () => {
    await using fleet = await startFleet({ name: 'retention', manager: { runRetentionMs: 90_000 } });
    // Two phases, and one: the finishing commit of a one-phase run is the one that creates its context.
    const onePhase = testWorkflow({ agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] });
    for (const wf of [workflow, onePhase]) {
      const { result } = await fleet.run(wf, 'a todo app');
      expect(result.status).toBe('completed');
      const run = fleet.client.store.runKey(result.run_id);
      for (const suffix of [':context', ':events', '']) {
        const ttl = await fleet.redis.pttl(run + suffix);
        expect(ttl, `PTTL of ${run}${suffix} (${wf.phases.length} phase(s))`).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(90_000);
      }
      // Keys that exist only for some runs: none is left without an expiry.
      for (const suffix of RUN_KEY_SUFFIXES) {
        if ((await fleet.redis.exists(run + suffix)) === 1) expect(await fleet.redis.pttl(run + suffix), `PTTL of ${run}${suffix}`).toBeGreaterThan(0);
      }
    }
  });

  it("a run's conversation claim lives as long as the run: the run's expiry once it finished, settled before or after", async () => {
    await using fleet = await startFleet({ name: 'retention-conversation', manager: { runRetentionMs: 90_000 } });
    const labels = new RunLabelStore(fleet.redis, fleet.prefix);
    const blocking = createRedis(fleet.url);
    try {
      for (const settledBeforeTheEnd of [true, false]) {
        const runId = randomUUID();
        const conversation = `conversation-${settledBeforeTheEnd}`;
        const claim = labels.conversationKey(conversationScope('user-1', conversation));
        // As POST /api/runs does it: claim, label, create, settle.
        expect(await labels.claimConversation(conversationScope('user-1', conversation), runId)).toBeUndefined();
        await labels.set(runId, { user_id: 'user-1', conversation_id: conversation });
        await fleet.client.submit({ runId, workflow, requirements: 'a todo app', provider: 'offline' });
        if (settledBeforeTheEnd) await labels.settleConversation(conversationScope('user-1', conversation), runId, true);
        expect((await fleet.client.follow(runId, blocking, () => undefined)).status).toBe('completed');
        if (!settledBeforeTheEnd) await labels.settleConversation(conversationScope('user-1', conversation), runId, true);
        const ttl = await fleet.redis.pttl(claim);
        expect(ttl, `PTTL of the claim (settled ${settledBeforeTheEnd ? 'before' : 'after'} the run finished)`).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(90_000);
      }
    } finally {
      blocking.disconnect();
    }
  });

  it('0 keeps finished runs; a run held by an open run gets its expiry when the holder finishes', async () => {
    await using fleet = await startFleet({ name: 'retention-keep', manager: { runRetentionMs: 0 } });
    const { result } = await fleet.run(workflow, 'kept forever');
    expect(await fleet.redis.pttl(fleet.client.store.runKey(result.run_id))).toBe(-1);

    // Retention on: a rerun holds the run it re-runs while it is open.
    await fleet.client.store.writeRetentionSettings(60_000, false);
    const first = await fleet.run(workflow, 'held by its rerun');
    const firstKey = fleet.client.store.runKey(first.result.run_id);
    expect(await fleet.redis.pttl(firstKey)).toBeGreaterThan(0);
    await fleet.redis.hset(fleet.client.store.runKey('an-open-run'), 'state', JSON.stringify({ status: 'active' }));
    await fleet.client.store.holdRun(first.result.run_id, 'an-open-run');
    expect(await fleet.redis.pttl(firstKey), 'held: no expiry').toBe(-1);
    const rerunId = await fleet.client.rerun(first.result.run_id, { from: 'design' });
    const blocking = fleet.redis.duplicate();
    const rerun = await fleet.client.follow(rerunId, blocking, () => undefined).finally(() => blocking.disconnect());
    expect(rerun.status).toBe('completed');
    expect(await fleet.redis.pttl(firstKey), 'still held by the other open run').toBe(-1);
    await fleet.redis.hset(fleet.client.store.runKey('an-open-run'), 'state', JSON.stringify({ status: 'cancelled' }));
    expect(await fleet.client.store.markArchived(first.result.run_id), 'no holder open: the expiry is set').toBe(true);
    expect(await fleet.redis.pttl(firstKey)).toBeGreaterThan(0);
    expect(await fleet.redis.pttl(fleet.client.store.runKey(rerunId))).toBeGreaterThan(0);
  });

  it('FLEET_RUN_RETENTION is a duration', () => {
    expect(loadConfig({}).runRetentionMs).toBe(7 * 86_400_000);
    expect(loadConfig({ FLEET_RUN_RETENTION: '12h' }).runRetentionMs).toBe(12 * 3_600_000);
    expect(loadConfig({ FLEET_RUN_RETENTION: '0' }).runRetentionMs).toBe(0);
    expect(parseDuration('90s', 'X')).toBe(90_000);
    expect(() => loadConfig({ FLEET_RUN_RETENTION: 'a week' })).toThrow(/FLEET_RUN_RETENTION: "a week" is not a duration; write e.g. 7d/);
  });
});
