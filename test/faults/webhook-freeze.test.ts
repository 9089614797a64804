/**
 * A manager frozen (SIGSTOP) in the middle of a webhook delivery: a real `fleet manager` process
 * posts a run's `api_call` end action; the receiver freezes it the moment the request arrives and
 * answers 200 (which the frozen process cannot read). A second `fleet manager` takes the stalled
 * end-action job over and delivers again. Then the first one is thawed (SIGCONT) and reads its answer.
 *
 * What must hold: every delivery carries the same `X-Fleet-Delivery` id (so the receiver can drop the
 * repeat), each one is signed in the scheme triggers are checked with, and every HTTP attempt is one
 * `end_action` event in the run's stream with its own attempt number and that delivery id.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BUILTIN_ROLES } from '@agentfleet/agents';
import { DELIVERY_HEADER, verifySignature } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { cliEnv, spawnCli, testWorkflow } from '../support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';
import { waitForRunEvent } from '../support/run-events.js';
import { CountingOfflineLlm, connect, quietPool } from './helpers.js';

const SECRET = 'whsec-freeze-0123456789abcdef';

describe('webhook delivery across a frozen manager', () => {
  it('a manager SIGSTOPped during delivery: the takeover re-delivers under the same delivery id, and every attempt is an event', { timeout: 180_000 }, async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('fault-webhook-freeze');
    const env = cliEnv(url, prefix, { FLEET_WEBHOOK_SECRET: SECRET });
    const managerArgs = ['manager', '--lock-duration', '1000', '--stalled-interval', '500'];

    // The receiver hands each request to the test, which decides when to answer it.
    const requests: Array<{ headers: IncomingHttpHeaders; body: string; res: ServerResponse }> = [];
    const waiters: Array<{ count: number; resolve: () => void }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        requests.push({ headers: req.headers, body, res });
        for (const w of waiters.filter((x) => requests.length >= x.count)) w.resolve();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const received = (count: number) => new Promise<void>((resolve) => (requests.length >= count ? resolve() : waiters.push({ count, resolve })));
    const hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/fleet`;

    const conn = connect(url, prefix);
    const pool = await quietPool(url, prefix, [BUILTIN_ROLES.planner!], new CountingOfflineLlm());
    const first = spawnCli(managerArgs, env);
    let second: ReturnType<typeof spawnCli> | undefined;
    try {
      await first.waitFor('manager: consuming');
      const workflow = testWorkflow({
        name: 'freeze-hook',
        agents: ['planner'],
        phases: [{ name: 'plan', agent: 'planner', timeout: 60 }],
        end_action_type: 'api_call',
        end_action_target: hookUrl,
      });
      const runId = await conn.client.submit({ workflow, requirements: 'A run whose webhook meets a frozen manager', provider: 'offline' });

      await received(1);
      const pid = first.child.pid as number;
      process.kill(pid, 'SIGSTOP');
      // Answered while the sender is frozen: it cannot read the 200 until it is thawed.
      requests[0]?.res.writeHead(200).end('ok');
      second = spawnCli(managerArgs, env);
      await received(2);
      requests[1]?.res.writeHead(200).end('ok');
      // The takeover's attempt is recorded before the frozen one comes back.
      const seenBeforeThaw = await endActionEvents(conn, runId, 1);
      process.kill(pid, 'SIGCONT');
      const events = await endActionEvents(conn, runId, 2);

      const ids = requests.map((r) => r.headers[DELIVERY_HEADER]);
      expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(new Set(ids)).toEqual(new Set([ids[0]]));
      for (const r of requests) expect(verifySignature(SECRET, r.headers, r.body, { toleranceS: 300 })).toMatchObject({ ok: true });
      expect(JSON.parse(requests[0]?.body ?? '{}')).toMatchObject({ run_id: runId, status: 'completed' });

      expect(seenBeforeThaw).toHaveLength(1);
      expect(events).toHaveLength(requests.length);
      expect(events.map((e) => e.delivery_id)).toEqual([ids[0], ids[0]]);
      expect(events.map((e) => e.attempt).sort()).toEqual([1, 2]);
      // The takeover (attempt 2) was answered 200; the thawed one read its 200 too, or timed out
      // while frozen: either way what it saw is what is recorded.
      // The takeover's event says attempt 1 was still open (its outcome unrecorded) when it began.
      expect(events[0]).toMatchObject({ attempt: 2, outcome: 'succeeded', status_code: 200, in_flight_attempts: [1] });
      expect(events[1]).not.toHaveProperty('in_flight_attempts');
      expect(events[1]).toMatchObject({ attempt: 1 });
      expect(['succeeded', 'pending', 'failed']).toContain(events[1]?.outcome);
    } finally {
      const pid = first.child.pid;
      if (pid !== undefined && first.child.exitCode === null) process.kill(pid, 'SIGCONT');
      await first.stop();
      await second?.stop();
      await pool.close(2000);
      await conn.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cleanupPrefix(url, prefix);
    }
  });
});

/** The first `count` `end_action` events of a run, waiting for them with blocking reads of its stream. */
async function endActionEvents(conn: ReturnType<typeof connect>, runId: string, count: number): Promise<Array<Record<string, unknown>>> {
  const seen: Array<Record<string, unknown>> = [];
  await waitForRunEvent({ redis: conn.redis, prefix: conn.client.prefix, blocking: conn.blocking }, runId, (e) => e.type === 'end_action' && seen.push(e) >= count, { what: `${count} end_action event(s)`, timeoutMs: 150_000 });
  return seen;
}
