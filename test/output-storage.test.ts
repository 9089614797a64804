/**
 * A phase output is stored once in Redis: in the run's shared context. The finished run's result
 * names the phases whose outputs it leaves to the context, and every read (the store, the client,
 * hence the HTTP API and the CLI) gives the result with its `results` as before.
 */
import { FleetClient, createLogger, createRedis, initialRunState, type RunMeta } from '@agentfleet/core';
import { RunDriver, RunStore } from '@agentfleet/core/internal';
import { describe, expect, it } from 'vitest';
import { testWorkflow } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const silent = createLogger({ name: 'test', level: 'silent' });
const oneStep = testWorkflow({ agents: ['planner'], phases: [{ name: 'plan', agent: 'planner' }] });

/** Bytes Redis uses for `key`, every element counted (`MEMORY USAGE … SAMPLES 0`). */
async function memoryUsage(redis: ReturnType<typeof createRedis>, key: string): Promise<number> {
  return Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
}

describe('phase outputs in Redis', () => {
  it('an 8 MB output of a finished run takes 8 MB, not 16: the result reads it from the shared context', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('output-storage');
    const redis = createRedis(url, { name: 'output-storage-test' });
    const store = new RunStore(redis, prefix);
    const driver = new RunDriver({ redis, prefix, store, log: silent, followUp: () => Promise.resolve() });
    try {
      const id = 'run-big-output';
      const now = Date.now();
      const meta: RunMeta = { run_id: id, workflow: oneStep, requirements: 'A wiki', variables: {}, created_at: now, provider: 'offline', trace: {} };
      const state = initialRunState(oneStep, now);
      expect(await store.createRun(meta, state, {})).toBe(true);
      // The create's own outbox entry (the start) is dropped: the test starts the run itself.
      await store.clearOutbox(id, [state.version]);
      await driver.apply(id, { type: 'run_started', at: now });
      const output = { summary: 'x'.repeat(8 * 1024 * 1024) };
      const at = Date.now();
      const done = await driver.apply(
        id,
        [
          { type: 'phase_started', at, phase: 'plan', iteration: 1, attempt: 1, agent: 'planner' },
          { type: 'phase_completed', at, phase: 'plan', iteration: 1, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'offline', agent: 'planner' },
        ],
        { output: { phase: 'plan', value: output } },
      );
      expect(done.decision.state.status).toBe('completed');

      const outputBytes = JSON.stringify(output).length;
      const runBytes = await memoryUsage(redis, store.runKey(id));
      const contextBytes = await memoryUsage(redis, store.contextKey(id));
      // The context holds the output (Redis's allocator rounds an 8 MiB string up to its 10 MiB size
      // class); the run hash (meta, state, result) a few KiB. Stored twice, it was 21 MB in all.
      expect(contextBytes).toBeGreaterThan(outputBytes);
      expect(runBytes).toBeLessThan(64 * 1024);
      expect(runBytes + contextBytes).toBeLessThan(outputBytes * 1.5);

      // Every read gives the result as before: with the output in `results`.
      const fresh = new RunStore(redis, prefix);
      expect((await fresh.getRun(id)).result?.results).toEqual({ plan: output });
      expect((await fresh.getRunWithOutputs(id)).result?.results).toEqual({ plan: output });
      const viaClient = await new FleetClient(redis, prefix).result(id);
      expect(viaClient.results).toEqual({ plan: output });
      expect(Object.keys(viaClient)).not.toContain('results_in_context');
    } finally {
      await driver.close();
      await cleanupPrefix(url, prefix);
      redis.disconnect();
    }
  });
});
