/**
 * The run's SSE stream ends after the end action's events, not at `run_finished`: a client following
 * a run live, one that connects after the run finished while its webhook is still in flight, and one
 * that resumes from `run_finished` all receive every `end_action` attempt, and the stream ends after
 * the final one. Real manager, pools, API and Redis, offline model, a local webhook receiver.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, readSse, startApiFixture, type ApiFixture } from './support/http-api.js';

let fx: ApiFixture;
beforeAll(async () => {
  process.env.FLEET_WEBHOOK_SECRET = 'whsec-test-0123456789';
  fx = await startApiFixture('sse-end-action');
});
afterAll(async () => {
  await fx?.[Symbol.asyncDispose]();
});

/**
 * A webhook receiver whose first request is held until {@link HeldHook.answerFirst}, then answered
 * 500 (so the end action retries); later requests get 200 at once.
 */
interface HeldHook extends AsyncDisposable {
  url: string;
  /** Resolves when the first request arrived. */
  firstArrived: Promise<void>;
  answerFirst(): void;
  count(): number;
}

async function startHeldHook(): Promise<HeldHook> {
  let arrived!: () => void;
  const firstArrived = new Promise<void>((resolve) => (arrived = resolve));
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  let count = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count += 1;
      if (count === 1) {
        arrived();
        void answered.then(() => res.writeHead(500).end('boom'));
      } else {
        res.writeHead(200).end('ok');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    firstArrived,
    answerFirst: answer,
    count: () => count,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('SSE and end actions', () => {
  it('the stream ends after the end action recorded its final attempt, for a live client, a client that came after run_finished, and one resuming from it', async () => {
    await using hook = await startHeldHook();
    const body = {
      name: 'tpl-sse-hook',
      description: 'one phase and a webhook end action',
      agents: ['planner'],
      phases: [{ name: 'hooked', agent: 'planner', timeout: 20, retries: 0 }],
      end_action_type: 'api_call',
      end_action_target: hook.url,
    };
    expect((await fx.call('POST', '/api/workflow-templates', { body })).status).toBe(201);
    fx.llm.hold('hooked');
    const submitted = await fx.call<{ run_id: string }>('POST', '/api/runs', { body: { requirements: 'Build a tiny todo API', template: 'tpl-sse-hook' } });
    expect(submitted.status).toBe(201);
    const id = submitted.body.run_id;
    const url = `${fx.api.url}/api/runs/${id}/events`;

    // Client A follows the run live from its start.
    let openedA!: () => void;
    const openA = new Promise<void>((resolve) => (openedA = resolve));
    const live = readSse(url, ADMIN_KEY, { onOpen: openedA });
    await openA;
    await fx.llm.entered('hooked');
    fx.llm.release('hooked');

    // The webhook is called only after the run finished: client B connects while it is in flight.
    await hook.firstArrived;
    expect((await fx.fleet.client.store.getRun(id)).state.status).toBe('completed');
    let openedB!: () => void;
    const openB = new Promise<void>((resolve) => (openedB = resolve));
    const late = readSse(url, ADMIN_KEY, { onOpen: openedB });
    await openB;
    hook.answerFirst();

    const [a, b] = await Promise.all([live, late]);
    for (const client of [a, b]) {
      expect(client.ended).toBe(true);
      const types = client.messages.map((m) => m.event);
      expect(types[0]).toBe('run_created');
      const finishedAt = types.indexOf('run_finished');
      expect(finishedAt).toBeGreaterThan(0);
      expect(client.messages.slice(finishedAt + 1).map((m) => [m.event, m.data.attempt, m.data.outcome])).toEqual([
        ['end_action', 1, 'pending'],
        ['end_action', 2, 'succeeded'],
      ]);
    }
    expect(hook.count()).toBe(2);
    const stored = (await fx.fleet.client.store.readEvents(id)).map((e) => e.id);
    expect(a.messages.map((m) => m.id)).toEqual(stored);
    expect(b.messages.map((m) => m.id)).toEqual(stored);

    // Resuming from run_finished gives the end action's events, then the stream ends.
    const finishedId = a.messages.find((m) => m.event === 'run_finished')?.id as string;
    const resumed = await readSse(url, ADMIN_KEY, { lastEventId: finishedId });
    expect(resumed.ended).toBe(true);
    expect(resumed.messages.map((m) => m.data.outcome)).toEqual(['pending', 'succeeded']);
    // From the final event: nothing more, the stream ends at once.
    expect(await readSse(url, ADMIN_KEY, { lastEventId: stored.at(-1) as string })).toEqual({ messages: [], ended: true });
  });

  it('a run without an end action still ends its stream at run_finished', async () => {
    const body = { name: 'tpl-sse-plain', description: 'one phase', agents: ['planner'], phases: [{ name: 'plain', agent: 'planner', timeout: 20, retries: 0 }] };
    expect((await fx.call('POST', '/api/workflow-templates', { body })).status).toBe(201);
    fx.llm.hold('plain');
    const id = (await fx.call<{ run_id: string }>('POST', '/api/runs', { body: { requirements: 'Build a tiny todo API', template: 'tpl-sse-plain' } })).body.run_id;
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const live = readSse(`${fx.api.url}/api/runs/${id}/events`, ADMIN_KEY, { onOpen: opened });
    await open;
    fx.llm.release('plain');
    const got = await live;
    expect(got.ended).toBe(true);
    expect(got.messages.at(-1)?.event).toBe('run_finished');
  });
});
