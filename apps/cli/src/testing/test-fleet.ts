/**
 * A disposable fleet for testing workflows with scripted agents: a manager and agent pools in this
 * process, on a private `redis-server` (or a given Redis) and a fresh key prefix, answering from
 * {@link parseReplies} fixtures.
 */
import { randomUUID } from 'node:crypto';
import { BUILTIN_ROLES, startAgentPool, type AgentPool, type AgentRole } from '@agentfleet/agents';
import { FleetClient, TestClock, createLogger, createRedis, type LlmClient, type RunResult, type StoredRunEvent, type WorkflowDefinition } from '@agentfleet/core';
import { startManager, type Manager } from '@agentfleet/manager';
import { ensureRedis, type RedisHandle } from '../local-redis.js';
import { ScriptedLlmClient, checkReplies, parseReplies, type RawReplies, type Replies } from './replies.js';

export interface TestFleetOptions {
  /** The scripted replies: a fixture as YAML text, or as an object (`{ review: [{ verdict: 'approve', … }] }`). */
  replies?: string | RawReplies | undefined;
  /** Name of the fixture in error messages. @defaultValue `replies` */
  repliesSource?: string | undefined;
  /** Agent roles the pools serve. @defaultValue the built-in roles */
  roles?: AgentRole[] | undefined;
  /** A Redis to use (on a fresh prefix, deleted at dispose). @defaultValue a private `redis-server` from PATH, stopped at dispose */
  redisUrl?: string | undefined;
  /** Answers the calls no scripted reply covers (e.g. a {@link ReplayLlmClient}). @defaultValue each role's offline answer */
  fallback?: LlmClient | undefined;
  /**
   * The clock the manager and the fleet's client read deadlines and leases with; advance it to expire
   * approvals and timeouts. (The agent pools keep the system clock.) @defaultValue a new {@link TestClock}
   */
  clock?: TestClock | undefined;
}

/** Options of one {@link TestFleet.run}. */
export interface TestRunOptions {
  variables?: Record<string, string> | undefined;
  /** Called with each run event as it happens (e.g. advance the clock once an approval waits). */
  onEvent?: ((event: StoredRunEvent['event']) => void) | undefined;
}

/** What one run of a test fleet gave. */
export interface TestRun {
  result: RunResult;
  /** The run's events, in order. */
  events: Array<StoredRunEvent['event']>;
  /** Model calls per phase of this run (errors and retries included). */
  calls: Record<string, number>;
}

export interface TestFleet extends AsyncDisposable {
  /**
   * Run `workflow` on `requirements` with the scripted agents and wait for its end.
   * @throws FleetError `INVALID_INPUT` when the fixture does not fit the workflow (path named).
   */
  run(workflow: WorkflowDefinition, requirements?: string, options?: TestRunOptions): Promise<TestRun>;
  /** The clock the fleet's manager reads deadlines with. */
  readonly clock: TestClock;
  /** Model calls per agent role, across every run of this fleet. */
  callsByRole(): Record<string, number>;
  /** Every model request, in order, with its phase and role. */
  readonly llm: ScriptedLlmClient;
  readonly redisUrl: string;
  readonly prefix: string;
  close(): Promise<void>;
}

/**
 * Start a test fleet. Dispose it (`await using`) to stop everything and delete its keys.
 *
 * @example
 * await using fleet = await createTestFleet({ replies: { review: [{ verdict: 'changes_requested', findings: [], summary: 'x' }, { verdict: 'approve', findings: [], summary: 'ok' }] } });
 * const { result, calls } = await fleet.run(await loadBuiltinWorkflow('software-delivery'), 'Build a todo API');
 * expect(calls.review).toBe(2);
 * @throws FleetError `INVALID_INPUT` for a malformed fixture; `REDIS_UNAVAILABLE` when no Redis can be started.
 */
export async function createTestFleet(options: TestFleetOptions = {}): Promise<TestFleet> {
  const source = options.repliesSource ?? 'replies';
  const replies: Replies = parseReplies(options.replies ?? {}, source);
  const roles = options.roles ?? Object.values(BUILTIN_ROLES);
  const redisHandle: RedisHandle = options.redisUrl
    ? { url: options.redisUrl, private: false, stop: () => Promise.resolve() }
    : await ensureRedis('', () => undefined, { alwaysPrivate: true });
  const url = redisHandle.url;
  const prefix = `{fleet-test-${randomUUID().slice(0, 8)}}`;
  const llm = new ScriptedLlmClient(replies, roles, options.fallback);
  const clock = options.clock ?? new TestClock();
  const quiet = createLogger({ name: 'fleet-test', level: 'silent' });
  let manager: Manager | undefined;
  let pool: AgentPool | undefined;
  const redis = createRedis(url);
  const blocking = createRedis(url, { forWorker: true });
  const client = new FleetClient(redis, prefix, { clock });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await pool?.close(2000);
      await manager?.close();
      await client.close().catch(() => undefined);
      if (!redisHandle.private) {
        // A shared Redis: delete this fleet's keys.
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await redis.unlink(...keys);
        } while (cursor !== '0');
      }
      blocking.disconnect();
      redis.disconnect();
      await redisHandle.stop();
    })());
  try {
    manager = await startManager({ redisUrl: url, prefix, warn: () => undefined, onError: () => undefined, logger: quiet, clock });
    pool = await startAgentPool({ redisUrl: url, prefix, roles, llm, onError: () => undefined, logger: quiet });
  } catch (err) {
    await close();
    throw err;
  }
  return {
    llm,
    clock,
    redisUrl: url,
    prefix,
    async run(workflow, requirements = 'scripted test run', runOptions = {}) {
      checkReplies(replies, workflow, roles, source);
      const before = new Map(llm.callsByPhase);
      const runId = await client.submit({ workflow, requirements, variables: runOptions.variables ?? {}, provider: 'scripted' });
      const events: TestRun['events'] = [];
      const result = await client.follow(runId, blocking, (e) => {
        events.push(e.event);
        runOptions.onEvent?.(e.event);
      });
      const calls: Record<string, number> = {};
      for (const [phase, n] of llm.callsByPhase) if (n - (before.get(phase) ?? 0) > 0) calls[phase] = n - (before.get(phase) ?? 0);
      return { result, events, calls };
    },
    callsByRole: () => Object.fromEntries(llm.callsByRole),
    close,
    [Symbol.asyncDispose]: close,
  };
}
