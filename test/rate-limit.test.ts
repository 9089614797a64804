/**
 * The fleet-wide rate limiter: four `fleet agents` processes share one input-tokens-per-
 * window limit kept in Redis, against a local Messages API server that enforces that limit (429
 * beyond it). The window is 2 s instead of a minute (FLEET_RATE_LIMIT_WINDOW_MS) so the test is short.
 */
import { planner } from '@agentfleet/agents';
import { FleetClient, createRedis, type RunResult } from '@agentfleet/core';
import { startManager } from '@agentfleet/manager';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic } from './support/fake-anthropic.js';
import { cliEnv, spawnCli, testWorkflow, type CliProcess } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

const WINDOW_MS = 2000;
const LIMIT = 5000; // input tokens per window; one planner request is about 500
const RUNS = 30;
const plan = planner.offline({ requirements: 'Build a todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] });

const url = redisUrl();
const prefix = uniquePrefix('rate-limit');
afterAll(() => cleanupPrefix(url, prefix));

describe('fleet-wide rate limit', () => {
  it(`${RUNS} runs over 4 worker processes share the provider's tokens-per-window limit: the limiter paces them and each run is served once`, async () => {
    await using fake = await startFakeAnthropic({ tokenLimit: { inputTokens: LIMIT, windowMs: WINDOW_MS }, responder: () => ({ toolInput: plan }) });
    const manager = await startManager({ redisUrl: url, prefix, warn: () => undefined });
    const env = cliEnv(url, prefix, {
      ANTHROPIC_API_KEY: 'sk-ant-test-key',
      ANTHROPIC_BASE_URL: fake.url,
      FLEET_MODEL: 'claude-sonnet-5-5',
      FLEET_RATE_LIMIT_ITPM: String(LIMIT),
      FLEET_RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
      FLEET_LOG_LEVEL: 'warn',
    });
    const pools: CliProcess[] = [];
    const redis = createRedis(url);
    const client = new FleetClient(redis, prefix);
    try {
      for (let i = 0; i < 4; i++) pools.push(spawnCli(['agents', '--roles', 'planner', '--concurrency', '4', '--grace', '1'], env));
      await Promise.all(pools.map((p) => p.waitFor('agents: serving')));
      const wf = testWorkflow({ agents: ['planner'], phases: [{ name: 'planning', agent: 'planner', retries: 3, retry_delay: 0.1, timeout: 60 }] });
      const ids = await Promise.all(Array.from({ length: RUNS }, (_, i) => client.submit({ workflow: wf, requirements: `Build a todo API (run ${String(i).padStart(2, '0')})`, provider: 'anthropic' })));
      // Wait on each run's events (a blocking read per run), not on a timer.
      const blocking = createRedis(url);
      let results: RunResult[];
      try {
        results = [];
        for (const id of ids) results.push(await client.follow(id, blocking, () => undefined));
      } finally {
        blocking.disconnect();
      }
      expect(results.map((r) => r.status)).toEqual(Array(RUNS).fill('completed'));

      // The limiter, not the provider, paces the fleet: workers waited on the shared limit, and those
      // waits outnumber the provider's 429s. How close to the limit the fleet runs is a speed, not
      // checked here: a busy machine delays requests past the limiter's margin and draws a few more
      // 429s, which the retries absorb.
      const events = (await Promise.all(ids.map((id) => client.store.readEvents(id)))).flat().map((e) => e.event);
      const waits = events.filter((e) => e.type === 'rate_limited');
      expect(waits.length).toBeGreaterThan(0);
      expect(waits[0]).toMatchObject({ phase: 'planning' });
      expect(['input_tokens', 'paused']).toContain((waits[0] as { limit?: string }).limit);
      expect(waits.filter((e) => (e as { limit?: string }).limit === 'input_tokens').length).toBeGreaterThan(fake.rateLimited);
      // One served call per run: a wait or a 429 never turned into a second call of a finished phase.
      const served = fake.served;
      expect(served.length).toBe(RUNS);
      console.log(`rate limit: ${served.length} served, ${fake.rateLimited} 429s, ${waits.length} rate_limited events`);
    } finally {
      await Promise.all(pools.map((p) => p.stop()));
      await manager.close();
      await client.close();
      redis.disconnect();
    }
  }, 120_000);
});
