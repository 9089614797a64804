/** Scenario 5: DAG parallelism. `plan → 8 × impl (parallel) → review`, one run at a time. */
import { FleetDriver, startFleetProcesses, type FleetSpec } from '../fleet-target.js';
import { cleanup, fmt, log, startBull, stopBull, wideDagWorkflow, type BenchOptions, type ScenarioResult } from '../harness.js';
import { runLoad, type Target } from '../load.js';
import { stopAll } from '../processes.js';
import { benchPrefix } from '../redis-util.js';
import { median, medianOf, round } from '../stats.js';

const WIDTH = 8;
/** Simulated latency per role, ms: each role's pool runs in its own process with its own latency. */
const LATENCY = { planner: 100, coder: 200, reviewer: 100 };
const CRITICAL_PATH_MS = LATENCY.planner + LATENCY.coder + LATENCY.reviewer;

export async function dagScenario(o: BenchOptions): Promise<ScenarioResult> {
  const rounds = o.rounds ?? 3;
  const bullPrefix = benchPrefix('dag', 'bull');
  const fleetPrefix = benchPrefix('dag', 'fleet');
  const bull = await startBull(
    {
      redisUrl: o.redisUrl,
      prefix: bullPrefix,
      stages: [
        { queue: 'planner', width: 1, latencyMs: LATENCY.planner },
        { queue: 'coder', width: WIDTH, latencyMs: LATENCY.coder },
        { queue: 'reviewer', width: 1, latencyMs: LATENCY.reviewer },
      ],
      concurrency: WIDTH,
    },
    [['planner'], ['coder'], ['reviewer']],
  );
  const spec: FleetSpec = {
    redisUrl: o.redisUrl,
    prefix: fleetPrefix,
    managerConcurrency: o.managerConcurrency,
    pools: (['planner', 'coder', 'reviewer'] as const).map((role) => ({ roles: [role], concurrency: WIDTH, latencyMs: LATENCY[role] })),
  };
  const procs = await startFleetProcesses(spec);
  const fleet = new FleetDriver(spec, wideDagWorkflow(WIDTH));
  const results: Array<Record<string, number>> = [];
  try {
    const systems: Array<[string, Target]> = [
      ['bullmq', bull.driver],
      ['fleet', fleet],
    ];
    for (const [, t] of systems) await runLoad(t, 2, 1);
    for (let r = 0; r < rounds; r++) {
      const row: Record<string, number> = {};
      for (const [name, t] of r % 2 === 0 ? systems : [...systems].reverse()) {
        const { latencies } = await runLoad(t, o.dagRuns, 1);
        row[name] = round(median(latencies), 1);
        log(`  round ${r + 1}/${rounds} ${name}: wall p50 ${row[name]} ms (critical path ${CRITICAL_PATH_MS} ms)`);
      }
      results.push(row);
    }
  } finally {
    await fleet.close();
    await stopAll([procs.manager, ...procs.pools]);
    await stopBull(bull);
    await cleanup(o.redisUrl, [bullPrefix, fleetPrefix]);
  }
  const b = medianOf(results, (r) => r.bullmq ?? NaN);
  const f = medianOf(results, (r) => r.fleet ?? NaN);
  return {
    id: 5,
    name: 'dag',
    title: `DAG parallelism (plan ${LATENCY.planner} ms → ${WIDTH} × impl ${LATENCY.coder} ms in parallel → review ${LATENCY.reviewer} ms; critical path ${CRITICAL_PATH_MS} ms)`,
    params: { width: WIDTH, latency_ms: LATENCY, critical_path_ms: CRITICAL_PATH_MS, runs_per_round: o.dagRuns, rounds },
    rounds: results,
    summary: { bull_wall_ms: b, fleet_wall_ms: f, bull_wall_over_critical: round(b / CRITICAL_PATH_MS, 3), fleet_wall_over_critical: round(f / CRITICAL_PATH_MS, 3) },
    table: [['wall time p50 / critical path', `${fmt.ms(b)} (${fmt.ratio(b / CRITICAL_PATH_MS)})`, `${fmt.ms(f)} (${fmt.ratio(f / CRITICAL_PATH_MS)})`, fmt.ratio(f / b)]],
    targets: [{ target: 'DAG wall time ≤ 1.05× critical path', value: round(f / CRITICAL_PATH_MS, 3), limit: 1.05, pass: f / CRITICAL_PATH_MS <= 1.05 }],
    notes: [],
  };
}
