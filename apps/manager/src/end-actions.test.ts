/**
 * End actions on an injected clock, against real Redis and a local webhook receiver that never
 * answers: the request's timeout runs on the clock, so advancing a {@link TestClock} past it fails
 * the attempt at once, and the attempt is dated by that clock.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileWorkflow, createRedis, initialRunState, TestClock, type RunMeta, type StoredRunEvent } from '@agentfleet/core';
import { RunStore } from '@agentfleet/core/internal';
import { describe, expect, it } from 'vitest';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js';
import { waitForRunEvent } from '../../../test/support/run-events.js';
import { startEndActions } from './end-actions.js';

/** A webhook receiver that takes each request and never answers it. */
async function startSilentHook(): Promise<{ url: string; arrived: Promise<void> } & AsyncDisposable> {
  let arrived!: () => void;
  const first = new Promise<void>((resolve) => (arrived = resolve));
  const server: Server = createServer((req) => {
    req.resume();
    req.on('end', () => arrived());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrived: first,
    [Symbol.asyncDispose]: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type EndActionEvent = Extract<StoredRunEvent['event'], { type: 'end_action' }>;

describe('end actions on an injected clock', () => {
  it('a webhook that never answers fails its attempt when the clock passes the request timeout, dated by that clock', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('end-action-clock');
    const redis = createRedis(url, { forWorker: true });
    await using hook = await startSilentHook();
    const clock = new TestClock();
    clock.advance(24 * 3600_000);
    const hourMs = 3600_000;
    const endActions = await startEndActions(redis, prefix, { webhookSecret: 'whsec-test-0123456789', attempts: 1, requestTimeoutMs: hourMs, clock });
    try {
      const workflow = compileWorkflow({ name: 'hooked', agents: ['planner'], phases: [{ name: 'only', agent: 'planner' }], end_action_type: 'api_call', end_action_target: hook.url });
      const meta: RunMeta = { run_id: 'run-end-action-clock', workflow, requirements: 'A hook', variables: {}, created_at: clock.now(), provider: 'offline', trace: {} };
      const store = new RunStore(redis, prefix);
      expect(await store.createRun(meta, initialRunState(workflow, meta.created_at), {})).toBe(true);

      const before = clock.now();
      await endActions.enqueue(meta);
      await hook.arrived;
      // An hour on the clock, at once: the request times out and the only attempt fails.
      clock.advance(hourMs);
      const event = await waitForRunEvent<EndActionEvent>({ redis, prefix }, meta.run_id, (e) => e.type === 'end_action', { what: 'the end action attempt' });
      expect(event).toMatchObject({ action: 'api_call', attempt: 1, outcome: 'failed', will_retry: false });
      expect(String(event.error)).toContain('aborted due to timeout');
      // Dated by the injected clock (a day ahead of real time), not the system's.
      expect(event.at).toBeGreaterThanOrEqual(before + hourMs);
    } finally {
      await endActions.close();
      redis.disconnect();
      await cleanupPrefix(url, prefix);
    }
  });
});
