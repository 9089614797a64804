/**
 * Shared pieces of the fault tests (`test/faults/*.test.ts`): in-process manager and pools on a given
 * Redis and prefix, polling, and readers of the run events streams the assertions count on.
 *
 * Every fault test counts what happened from the runs' own event streams (`<prefix>:run:<id>:events`)
 * and from the LLM calls the agents made, never from log lines.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BUILTIN_ROLES, coder, startAgentPool, type AgentPool, type AgentRole, type RoleInput } from '@agentfleet/agents';
import {
  FleetClient,
  OfflineLlmClient,
  type RunMeta,
  type WorkflowDefinition,
  createLogger,
  createRedis,
  initialRunState,
  type LlmClient,
  type LlmRequest,
  type LlmResponse,
  type RunEvent,
  type StoredRunEvent,
} from '@agentfleet/core';
import { RunDriver, type RunStore } from '@agentfleet/core/internal';
import { startManager, type Manager } from '@agentfleet/manager';
import type { Redis } from 'ioredis';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';

/**
 * Write a run as a client that died before starting it leaves it: created at `createdAt` (epoch ms),
 * its start in its outbox (aged from `createdAt`: a manager takes it once it outlives the manager's
 * `outboxLeaseMs`, 30 s by default), no decision and no job.
 * @returns the run id.
 */
export async function createUnstartedRun(store: RunStore, workflow: WorkflowDefinition, requirements: string, createdAt = Date.now()): Promise<string> {
  const id = randomUUID();
  const meta: RunMeta = { run_id: id, workflow, requirements, variables: {}, created_at: createdAt, provider: 'offline', trace: {} };
  if (!(await store.createRun(meta, initialRunState(workflow, createdAt), {}))) throw new Error(`run ${id} already exists`);
  return id;
}

/** Poll `check` every 50 ms until it is true; throw naming `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await sleep(50);
  }
}

/** Every event of a run's stream, in order. */
export async function runEvents(store: RunStore, runId: string): Promise<StoredRunEvent['event'][]> {
  const out: StoredRunEvent['event'][] = [];
  let last = '0';
  for (;;) {
    const batch = await store.readEvents(runId, last);
    if (batch.length === 0) return out;
    for (const e of batch) {
      out.push(e.event);
      last = e.id;
    }
  }
}

/** How many events of `type` (for `phase`, when given) a stream holds. */
export function countEvents(events: readonly StoredRunEvent['event'][], type: RunEvent['type'] | 'run_created', phase?: string): number {
  return events.filter((e) => e.type === type && (phase === undefined || ('phase' in e && e.phase === phase))).length;
}

/**
 * An offline LLM that records every call (role + requirements + phase), answering each role's
 * deterministic offline output after `latencyMs`.
 */
export class CountingOfflineLlm implements LlmClient {
  readonly provider = 'offline';
  readonly model = 'agentfleet-offline-1';
  /** `<requirements>|<phase>` → calls. */
  readonly calls = new Map<string, number>();
  readonly #inner: OfflineLlmClient;

  constructor(roles: readonly AgentRole[] = Object.values(BUILTIN_ROLES), latencyMs = 0) {
    const responders = Object.fromEntries(roles.map((r) => [r.name, (req: LlmRequest) => r.offline(req.inputs as unknown as RoleInput)]));
    this.#inner = new OfflineLlmClient({ responders, latencyMs });
  }

  async generate(request: LlmRequest): Promise<LlmResponse> {
    const input = request.inputs as unknown as RoleInput;
    const key = `${input.requirements}|${input.phase}`;
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    return this.#inner.generate(request);
  }
}

/**
 * A driver that commits what it is given and stops before carrying out any effect (no cancel is
 * published, no job removed): a canceller that died right after its commit. Close it after use.
 */
export function stoppedBeforeEffects(conn: { redis: Redis; store: RunStore }, prefix: string): RunDriver {
  return new RunDriver({
    redis: conn.redis,
    prefix,
    store: conn.store,
    log: createLogger({ name: 'test', level: 'silent' }),
    followUp: () => Promise.resolve(),
    beforeEffect: () => {
      throw new Error('stopped before the effects');
    },
  });
}

/** A client, a blocking connection and a store on `url` and `prefix`; `close()` disconnects. */
export function connect(url: string, prefix: string): { redis: Redis; blocking: Redis; client: FleetClient; store: RunStore; close(): Promise<void> } {
  const redis = createRedis(url, { name: 'fault-test' });
  const blocking = createRedis(url, { forWorker: true, name: 'fault-test-follow' });
  redis.on('error', () => undefined);
  blocking.on('error', () => undefined);
  const client = new FleetClient(redis, prefix);
  client.managerQueue.queue.on('error', () => undefined);
  return {
    redis,
    blocking,
    client,
    store: client.store,
    async close() {
      await client.close().catch(() => undefined);
      blocking.disconnect();
      redis.disconnect();
    },
  };
}

/** What {@link withConnection} hands its body: the Redis URL, the test's own key prefix, and {@link connect}'s connection. */
export interface TestConnection {
  url: string;
  prefix: string;
  conn: ReturnType<typeof connect>;
}

/**
 * Run `body` on a connection of its own under a fresh prefix (`uniquePrefix(name)`) on the test
 * Redis, then close the connection and delete the prefix's keys, whether `body` passed or threw.
 */
export async function withConnection(name: string, body: (t: TestConnection) => Promise<void>): Promise<void> {
  const url = redisUrl();
  const prefix = uniquePrefix(name);
  const conn = connect(url, prefix);
  try {
    await body({ url, prefix, conn });
  } finally {
    await conn.close();
    await cleanupPrefix(url, prefix);
  }
}

/** A manager in this process, quiet, with short locks so a crashed peer's reports are taken over fast. */
export function quietManager(url: string, prefix: string, extra: { concurrency?: number; outboxLeaseMs?: number } = {}): Promise<Manager> {
  return startManager({ redisUrl: url, prefix, warn: () => undefined, onError: () => undefined, lockDurationMs: 2000, stalledIntervalMs: 1000, ...extra });
}

/** An agent pool in this process for `roles`, quiet, answering with `llm`. */
export function quietPool(url: string, prefix: string, roles: AgentRole[], llm: LlmClient, concurrency = 4): Promise<AgentPool> {
  return startAgentPool({ redisUrl: url, prefix, roles, llm, concurrency, onError: () => undefined, lockDurationMs: 2000, stalledIntervalMs: 1000 });
}

/** A valid coder output whose notes say who wrote it, so a test can tell two attempts apart. */
export function codeBy(author: string): unknown {
  const base = coder.offline({ requirements: 'Build a todo API', variables: {}, phase: 'implementation', instructions: undefined, upstream: [], upstreamErrors: [] });
  return { ...base, notes: `written by ${author}` };
}
