/**
 * Scenarios on the four-phase chain: 1 (per-phase overhead, unloaded), 2 (throughput) and
 * 6 (telemetry cost: scenario 2 with tracing on and off).
 */
import { FleetDriver, startFleetProcesses, type FleetSpec } from '../fleet-target.js';
import { chainWorkflow, cleanup, fmt, fourStageChain, log, startBull, stopBull, type BenchOptions, type ScenarioResult } from '../harness.js';
import { runLoad, type Target } from '../load.js';
import { startOtlpSink } from '../otlp-sink.js';
import { stopAll, type Child } from '../processes.js';
import { benchPrefix, commandStats, redisCpuMs } from '../redis-util.js';
import { Redis } from 'ioredis';
import { medianOf, quantile, round } from '../stats.js';

const PHASES = 4;

interface System {
  name: string;
  target: Target;
  stop(): Promise<void>;
  prefix: string;
  /** The processes doing the work (bare chain: its workers; AgentFleet: the agent pools, then the manager). */
  workers: Child[];
  manager?: Child;
}

/**
 * CPU time one round cost per phase, µs, by where it was spent: the worker (agent pool) processes, the
 * manager, the Redis server and this submitting process. CPU time stretches less with the machine's
 * load than wall time does, so it says which process a gap is in on a day when latency ratios are
 * noise; it still moves 10–20 % between runs. Redis counts every client's work: give the bench its own
 * server (the default) for this to be the systems' alone. The submitting process holds both systems'
 * clients, so its share also counts whatever the idle one does meanwhile.
 */
export interface CpuPerPhase {
  workers_us: number;
  manager_us: number;
  redis_us: number;
  submitter_us: number;
  total_us: number;
  /**
   * Redis commands per phase by command name (`INFO commandstats`): calls a phase and the server's
   * time in them, µs a phase (a script's inner commands are counted under their own names too, and
   * its `evalsha` time includes theirs). Every client's commands count, like `redis_us`.
   */
  redis_commands?: Record<string, { calls: number; us: number }>;
}

interface CpuReading {
  workers: number;
  manager: number;
  redis: number;
  submitter: number;
}

async function readCpu(s: System, redis: Redis): Promise<CpuReading> {
  const [workers, manager, redisMs] = await Promise.all([
    Promise.all(s.workers.map((w) => w.cpuMs())).then((ms) => ms.reduce((a, b) => a + b, 0)),
    s.manager ? s.manager.cpuMs() : Promise.resolve(0),
    redisCpuMs(redis),
  ]);
  const own = process.cpuUsage();
  return { workers, manager, redis: redisMs, submitter: (own.user + own.system) / 1000 };
}

/** Run `work` (which completes `phases` phases) and report its CPU per phase. */
async function measuringCpu<T>(s: System, redisUrl: string, phases: number, work: () => Promise<T>): Promise<{ result: T; cpu: CpuPerPhase }> {
  const redis = new Redis(redisUrl);
  try {
    const statsBefore = await commandStats(redis);
    const before = await readCpu(s, redis);
    const result = await work();
    const after = await readCpu(s, redis);
    const statsAfter = await commandStats(redis);
    const per = (k: keyof CpuReading) => round(((after[k] - before[k]) * 1000) / phases, 1);
    const cpu: CpuPerPhase = { workers_us: per('workers'), manager_us: per('manager'), redis_us: per('redis'), submitter_us: per('submitter'), total_us: 0 };
    cpu.total_us = round(cpu.workers_us + cpu.manager_us + cpu.redis_us + cpu.submitter_us, 1);
    const commands: Record<string, { calls: number; us: number }> = {};
    for (const [name, a] of statsAfter) {
      const b = statsBefore.get(name) ?? { calls: 0, usec: 0 };
      if (a.calls > b.calls) commands[name] = { calls: round((a.calls - b.calls) / phases, 3), us: round((a.usec - b.usec) / phases, 2) };
    }
    cpu.redis_commands = commands;
    return { result, cpu };
  } finally {
    redis.disconnect();
  }
}

/** Summary fields: total CPU per phase of each system, µs, and the ratio within rounds. */
function cpuSummary(results: Array<Record<string, { cpu: CpuPerPhase }>>, a: string, b: string, names: [string, string]): Record<string, number> {
  return {
    [`${names[0]}_cpu_us_per_phase`]: medianOf(results, (r) => r[a]?.cpu.total_us ?? NaN),
    [`${names[1]}_cpu_us_per_phase`]: medianOf(results, (r) => r[b]?.cpu.total_us ?? NaN),
    ratio_cpu_per_phase: round(medianOf(results, (r) => (r[b]?.cpu.total_us ?? NaN) / (r[a]?.cpu.total_us ?? NaN))),
  };
}

/** Table rows of CPU per phase, medians over rounds, with the ratio taken within each round. */
function cpuRows(results: Array<Record<string, { cpu: CpuPerPhase }>>, a: string, b: string): Array<[string, string, string, string]> {
  const parts: Array<[Exclude<keyof CpuPerPhase, 'redis_commands'>, string]> = [
    ['workers_us', 'CPU per phase: workers / agent pools'],
    ['manager_us', 'CPU per phase: manager'],
    ['redis_us', 'CPU per phase: Redis'],
    ['submitter_us', 'CPU per phase: submitting process'],
    ['total_us', 'CPU per phase: all'],
  ];
  return parts.map(([k, label]) => {
    const va = medianOf(results, (r) => r[a]?.cpu[k] ?? NaN);
    const vb = medianOf(results, (r) => r[b]?.cpu[k] ?? NaN);
    const ratio = medianOf(results, (r) => (r[b]?.cpu[k] ?? NaN) / (r[a]?.cpu[k] ?? NaN));
    return [label, `${fmt.n(va)} µs`, `${fmt.n(vb)} µs`, va > 0 ? fmt.ratio(ratio) : '–'];
  });
}

async function bullSystem(o: BenchOptions, scenario: string): Promise<System> {
  const prefix = benchPrefix(scenario, 'bull');
  const sys = await startBull({ redisUrl: o.redisUrl, prefix, stages: fourStageChain(0), concurrency: o.concurrency });
  return { name: 'bullmq', target: sys.driver, prefix, workers: sys.workers, stop: () => stopBull(sys) };
}

async function fleetSystem(o: BenchOptions, scenario: string, name: string, otlpEndpoint?: string): Promise<System> {
  const prefix = benchPrefix(scenario, name);
  const spec: FleetSpec = {
    redisUrl: o.redisUrl,
    prefix,
    managerConcurrency: o.managerConcurrency,
    pools: [{ roles: ['planner', 'designer', 'coder', 'reviewer'], concurrency: o.concurrency, latencyMs: 0 }],
    ...(otlpEndpoint ? { otlpEndpoint } : {}),
  };
  const procs = await startFleetProcesses(spec);
  const driver = new FleetDriver(spec, await chainWorkflow());
  return {
    name,
    target: driver,
    prefix,
    workers: procs.pools,
    manager: procs.manager,
    stop: async () => {
      await driver.close();
      await stopAll([procs.manager, ...procs.pools]);
    },
  };
}

/** Alternate `systems` for `rounds` rounds (the order flips each round), after a warm-up each. */
async function alternate<T>(systems: System[], rounds: number, warmup: (s: System) => Promise<void>, measure: (s: System) => Promise<T>): Promise<Array<Record<string, T>>> {
  for (const s of systems) await warmup(s);
  const out: Array<Record<string, T>> = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? systems : [...systems].reverse();
    const round: Record<string, T> = {};
    for (const s of order) {
      round[s.name] = await measure(s);
      log(`  round ${r + 1}/${rounds} ${s.name}: ${JSON.stringify(round[s.name])}`);
    }
    out.push(round);
  }
  return out;
}

interface OverheadRound {
  p50: number;
  p99: number;
  mean: number;
  cpu: CpuPerPhase;
}

/** Scenario 1: one run at a time, zero-latency agents; per-phase time = end-to-end / 4. */
export async function overheadScenario(o: BenchOptions): Promise<ScenarioResult> {
  const rounds = o.rounds ?? 5;
  const systems = [await bullSystem(o, 'overhead'), await fleetSystem(o, 'overhead', 'fleet')];
  try {
    const results = await alternate<OverheadRound>(
      systems,
      rounds,
      async (s) => void (await runLoad(s.target, 50, 1)),
      async (s) => {
        const { result, cpu } = await measuringCpu(s, o.redisUrl, o.overheadRuns * PHASES, () => runLoad(s.target, o.overheadRuns, 1));
        const perPhase = result.latencies.map((l) => l / PHASES);
        return { p50: round(quantile(perPhase, 0.5), 3), p99: round(quantile(perPhase, 0.99), 3), mean: round(perPhase.reduce((a, b) => a + b, 0) / perPhase.length, 3), cpu };
      },
    );
    const b50 = medianOf(results, (r) => r.bullmq?.p50 ?? NaN);
    const f50 = medianOf(results, (r) => r.fleet?.p50 ?? NaN);
    const b99 = medianOf(results, (r) => r.bullmq?.p99 ?? NaN);
    const f99 = medianOf(results, (r) => r.fleet?.p99 ?? NaN);
    // The ratio is taken within each round (the two systems ran back to back) and its median reported:
    // machine speed drifts between rounds more than the systems differ within one.
    const r50 = medianOf(results, (r) => (r.fleet?.p50 ?? NaN) / (r.bullmq?.p50 ?? NaN));
    const r99 = medianOf(results, (r) => (r.fleet?.p99 ?? NaN) / (r.bullmq?.p99 ?? NaN));
    return {
      id: 1,
      name: 'overhead',
      title: 'Per-phase overhead, unloaded (one 4-phase run at a time, zero-latency agents)',
      params: { runs_per_round: o.overheadRuns, rounds, concurrency: o.concurrency, manager_concurrency: o.managerConcurrency },
      rounds: results,
      summary: { bull_p50_ms: b50, fleet_p50_ms: f50, bull_p99_ms: b99, fleet_p99_ms: f99, ratio_p50: round(r50), ratio_p99: round(r99), ...cpuSummary(results, 'bullmq', 'fleet', ['bull', 'fleet']) },
      table: [
        ['per-phase p50', fmt.ms(b50), fmt.ms(f50), fmt.ratio(r50)],
        ['per-phase p99', fmt.ms(b99), fmt.ms(f99), fmt.ratio(r99)],
        ...cpuRows(results, 'bullmq', 'fleet'),
      ],
      targets: [{ target: 'per-phase p50 ≤ 1.5× bare chain', value: round(r50), limit: 1.5, pass: r50 <= 1.5 }],
      notes: [],
    };
  } finally {
    for (const s of systems) await s.stop();
    await cleanup(o.redisUrl, systems.map((s) => s.prefix));
  }
}

interface ThroughputRound {
  runs_per_s: number;
  phases_per_s: number;
  p50_ms: number;
  p99_ms: number;
  cpu: CpuPerPhase;
}

async function throughput(s: System, o: BenchOptions): Promise<ThroughputRound> {
  const { result, cpu } = await measuringCpu(s, o.redisUrl, o.throughputRuns * PHASES, () => runLoad(s.target, o.throughputRuns, o.inFlight));
  const { latencies, wallMs } = result;
  const rps = o.throughputRuns / (wallMs / 1000);
  return { runs_per_s: round(rps, 1), phases_per_s: round(rps * PHASES, 1), p50_ms: round(quantile(latencies, 0.5), 1), p99_ms: round(quantile(latencies, 0.99), 1), cpu };
}

/** Warm-up before the first round: long enough for the JIT to settle (shorter ones left later rounds faster). */
const warm = (o: BenchOptions) => async (s: System) => void (await runLoad(s.target, Math.min(1500, o.throughputRuns), o.inFlight));

/** Scenario 2: 2,000 runs, 200 in flight. */
export async function throughputScenario(o: BenchOptions): Promise<ScenarioResult> {
  const rounds = o.rounds ?? 3;
  const systems = [await bullSystem(o, 'throughput'), await fleetSystem(o, 'throughput', 'fleet')];
  try {
    const results = await alternate<ThroughputRound>(systems, rounds, warm(o), (s) => throughput(s, o));
    const m = (sys: string, k: Exclude<keyof ThroughputRound, 'cpu'>) => medianOf(results, (r) => r[sys]?.[k] ?? NaN);
    // Within each round, then the median over rounds (see scenario 1).
    const ratio = medianOf(results, (r) => (r.fleet?.runs_per_s ?? NaN) / (r.bullmq?.runs_per_s ?? NaN));
    return {
      id: 2,
      name: 'throughput',
      title: `Throughput (${o.throughputRuns} four-phase runs, ${o.inFlight} in flight, zero-latency agents)`,
      params: { runs: o.throughputRuns, in_flight: o.inFlight, rounds, concurrency: o.concurrency, manager_concurrency: o.managerConcurrency },
      rounds: results,
      summary: {
        bull_runs_per_s: m('bullmq', 'runs_per_s'),
        fleet_runs_per_s: m('fleet', 'runs_per_s'),
        bull_phases_per_s: m('bullmq', 'phases_per_s'),
        fleet_phases_per_s: m('fleet', 'phases_per_s'),
        bull_p50_ms: m('bullmq', 'p50_ms'),
        fleet_p50_ms: m('fleet', 'p50_ms'),
        bull_p99_ms: m('bullmq', 'p99_ms'),
        fleet_p99_ms: m('fleet', 'p99_ms'),
        ratio_runs_per_s: round(ratio),
        ...cpuSummary(results, 'bullmq', 'fleet', ['bull', 'fleet']),
      },
      table: [
        ['runs/s', fmt.n(m('bullmq', 'runs_per_s')), fmt.n(m('fleet', 'runs_per_s')), fmt.ratio(ratio)],
        ['phases/s', fmt.n(m('bullmq', 'phases_per_s')), fmt.n(m('fleet', 'phases_per_s')), fmt.ratio(ratio)],
        ['end-to-end p50', fmt.ms(m('bullmq', 'p50_ms')), fmt.ms(m('fleet', 'p50_ms')), fmt.ratio(m('fleet', 'p50_ms') / m('bullmq', 'p50_ms'))],
        ['end-to-end p99', fmt.ms(m('bullmq', 'p99_ms')), fmt.ms(m('fleet', 'p99_ms')), fmt.ratio(m('fleet', 'p99_ms') / m('bullmq', 'p99_ms'))],
        ...cpuRows(results, 'bullmq', 'fleet'),
      ],
      targets: [{ target: 'throughput ≥ 0.7× bare chain', value: round(ratio), limit: 0.7, pass: ratio >= 0.7 }],
      notes: [],
    };
  } finally {
    for (const s of systems) await s.stop();
    await cleanup(o.redisUrl, systems.map((s) => s.prefix));
  }
}

/** Scenario 6: scenario 2 on AgentFleet with tracing off and on (100% sampled, OTLP/HTTP to a local sink). */
export async function telemetryScenario(o: BenchOptions): Promise<ScenarioResult> {
  const rounds = o.rounds ?? 3;
  const sink = await startOtlpSink();
  const systems = [await fleetSystem(o, 'telemetry', 'fleet_off'), await fleetSystem(o, 'telemetry', 'fleet_on', sink.url)];
  try {
    // After the traced system's turn, its last spans are still being exported (a batch waits up to
    // OTEL_BSP_SCHEDULE_DELAY, 5 s): let that finish, or it would run during the other system's turn.
    const settle = async (s: System): Promise<void> => {
      if (s.name !== 'fleet_on') return;
      let last = -1;
      for (let quiet = 0; quiet < 12; ) {
        await new Promise((r) => setTimeout(r, 500));
        const now = sink.stats().requests;
        quiet = now === last ? quiet + 1 : 0;
        last = now;
      }
    };
    const results = await alternate<ThroughputRound>(
      systems,
      rounds,
      async (s) => {
        await warm(o)(s);
        await settle(s);
      },
      async (s) => {
        const r = await throughput(s, o);
        await settle(s);
        return r;
      },
    );
    const m = (sys: string, k: Exclude<keyof ThroughputRound, 'cpu'>) => medianOf(results, (r) => r[sys]?.[k] ?? NaN);
    // Within each round, then the median over rounds (see scenario 1).
    const ratio = medianOf(results, (r) => (r.fleet_on?.runs_per_s ?? NaN) / (r.fleet_off?.runs_per_s ?? NaN));
    const cost = 1 - ratio;
    const received = sink.stats();
    return {
      id: 6,
      name: 'telemetry',
      title: `Telemetry cost (scenario 2 on AgentFleet, tracing off vs on, 100% sampled, OTLP/HTTP to a local sink)`,
      params: { runs: o.throughputRuns, in_flight: o.inFlight, rounds, otlp_requests: received.requests, otlp_bytes: received.bytes },
      rounds: results,
      summary: {
        off_runs_per_s: m('fleet_off', 'runs_per_s'),
        on_runs_per_s: m('fleet_on', 'runs_per_s'),
        off_p50_ms: m('fleet_off', 'p50_ms'),
        on_p50_ms: m('fleet_on', 'p50_ms'),
        ratio_runs_per_s: round(ratio),
        throughput_cost: round(cost, 3),
        ...cpuSummary(results, 'fleet_off', 'fleet_on', ['off', 'on']),
      },
      table: [
        ['runs/s (tracing off → on)', fmt.n(m('fleet_off', 'runs_per_s')), fmt.n(m('fleet_on', 'runs_per_s')), fmt.ratio(ratio)],
        ['end-to-end p50 (off → on)', fmt.ms(m('fleet_off', 'p50_ms')), fmt.ms(m('fleet_on', 'p50_ms')), fmt.ratio(m('fleet_on', 'p50_ms') / m('fleet_off', 'p50_ms'))],
        ...cpuRows(results, 'fleet_off', 'fleet_on'),
      ],
      targets: [{ target: 'tracing on costs ≤ 15% throughput', value: round(cost * 100, 1), limit: 15, pass: cost <= 0.15 }],
      notes: [`the sink received ${received.requests} OTLP export requests (${fmt.mib(received.bytes)})`],
    };
  } finally {
    for (const s of systems) await s.stop();
    await sink.close();
    await cleanup(o.redisUrl, systems.map((s) => s.prefix));
  }
}
