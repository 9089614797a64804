/**
 * AgentFleet under test: the real `fleet manager` and `fleet agents` processes (offline model with a
 * simulated latency), and the submitting side in the driver process (FleetClient.submit, then the
 * run's event stream up to `run_finished`, as `fleet run` follows a run).
 */
import { FleetClient, createRedis, type WorkflowDefinition } from '@agentfleet/core';
import type { Redis } from 'ioredis';
import { FLEET_BIN, startChild, type Child } from './processes.js';
import type { Target } from './load.js';

/** One `fleet agents` process. */
export interface PoolSpec {
  roles: string[];
  /** Jobs in flight per role. */
  concurrency: number;
  /** Offline model latency, ms (`FLEET_OFFLINE_LATENCY_MS`). */
  latencyMs: number;
  /** Offline model jitter, ms (`FLEET_OFFLINE_JITTER_MS`). @defaultValue 0 */
  jitterMs?: number;
}

export interface FleetSpec {
  redisUrl: string;
  prefix: string;
  /** Manager-queue jobs processed at once. */
  managerConcurrency: number;
  pools: PoolSpec[];
  /** OTLP endpoint for the manager and pools; tracing off when unset. */
  otlpEndpoint?: string;
}

export const REQUIREMENTS = 'Build a REST API for a todo list with user accounts and due-date reminders';

function childEnv(spec: FleetSpec, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  // Per-phase log lines (info) are off, as in the bare chain, which logs nothing: set
  // FLEET_LOG_LEVEL=info before `npm run bench` to measure with them (about 10% of an agent's CPU).
  const env: NodeJS.ProcessEnv = {
    FLEET_LOG_LEVEL: 'warn',
    ...process.env,
    REDIS_URL: spec.redisUrl,
    FLEET_QUEUE_PREFIX: spec.prefix,
    FLEET_PROVIDER: 'offline',
    ...extra,
  };
  delete env.ANTHROPIC_API_KEY;
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (spec.otlpEndpoint) {
    env.OTEL_EXPORTER_OTLP_ENDPOINT = spec.otlpEndpoint;
    env.OTEL_TRACES_SAMPLER = 'always_on';
    env.OTEL_METRICS_EXPORTER = 'none';
    env.OTEL_LOGS_EXPORTER = 'none';
  }
  return env;
}

/** Start the manager and the pools (in parallel). */
export async function startFleetProcesses(spec: FleetSpec): Promise<{ manager: Child; pools: Child[] }> {
  const manager = startChild('fleet manager', FLEET_BIN, ['manager', '--concurrency', String(spec.managerConcurrency)], childEnv(spec), 'manager: consuming');
  const pools = spec.pools.map((p, i) =>
    startChild(
      `fleet agents #${i + 1} (${p.roles.join(',')})`,
      FLEET_BIN,
      ['agents', '--roles', p.roles.join(','), '--concurrency', String(p.concurrency), '--grace', '1'],
      childEnv(spec, { FLEET_OFFLINE_LATENCY_MS: String(p.latencyMs), FLEET_OFFLINE_JITTER_MS: String(p.jitterMs ?? 0) }),
      'agents: serving',
    ),
  );
  return { manager: await manager, pools: await Promise.all(pools) };
}

/**
 * The submitting side. Completion is seen on the run's event stream (`run_finished`), as `fleet run`
 * follows a run: one blocking XREAD per run on a connection of its own, taken from a pool that grows
 * to the number of runs in flight. (One XREAD over all streams in flight would cost Redis O(streams)
 * per call: 250 µs at 200 runs, a load the product would not have.)
 */
export class FleetDriver implements Target {
  readonly redis: Redis;
  readonly client: FleetClient;
  private readonly idle: Redis[] = [];
  private readonly all: Redis[] = [];

  constructor(
    readonly spec: FleetSpec,
    readonly workflow: WorkflowDefinition,
  ) {
    this.redis = createRedis(spec.redisUrl, { name: 'bench-driver' });
    this.client = new FleetClient(this.redis, spec.prefix);
  }

  async submit(): Promise<{ id: string; done: Promise<void> }> {
    const id = await this.client.submit({ workflow: this.workflow, requirements: REQUIREMENTS, provider: 'offline' });
    return { id, done: this.follow(id) };
  }

  private async follow(id: string): Promise<void> {
    let conn = this.idle.pop();
    if (!conn) {
      conn = createRedis(this.spec.redisUrl, { forWorker: true, name: 'bench-driver-follow' });
      this.all.push(conn);
    }
    const key = this.client.store.eventsKey(id);
    let last = '0';
    try {
      for (;;) {
        const reply = await conn.xread('COUNT', 100, 'BLOCK', 0, 'STREAMS', key, last);
        for (const [, entries] of reply ?? []) {
          for (const [entryId, fields] of entries) {
            last = entryId;
            if (fields[1] === 'run_finished') return;
          }
        }
      }
    } finally {
      this.idle.push(conn);
    }
  }

  /** Submit one run without following it (scenario 3 submits thousands). */
  async submitOnly(): Promise<string> {
    return this.client.submit({ workflow: this.workflow, requirements: REQUIREMENTS, provider: 'offline' });
  }

  /** Runs not finished yet (the store's active set). */
  async activeCount(): Promise<number> {
    return this.redis.scard(this.client.store.activeKey);
  }

  async close(): Promise<void> {
    for (const c of this.all) c.disconnect();
    await this.client.close();
    this.redis.disconnect();
  }
}
