/** Scenario 4: worker scaling. Latency-bound coder agents; 1, 2, 4, 8 pool processes for the role. */
import { FleetDriver, startFleetProcesses, type FleetSpec } from '../fleet-target.js';
import { cleanup, fmt, log, singlePhaseWorkflow, startBull, stopBull, type BenchOptions, type ScenarioResult } from '../harness.js';
import { runLoad, type Target } from '../load.js';
import { stopAll } from '../processes.js';
import { benchPrefix } from '../redis-util.js';
import { medianOf, round } from '../stats.js';

export async function scalingScenario(o: BenchOptions): Promise<ScenarioResult> {
  const rounds = o.rounds ?? 2;
  const c = o.scalingConcurrency;
  const bullPrefix = benchPrefix('scaling', 'bull');
  const fleetPrefix = benchPrefix('scaling', 'fleet');
  const rows: Array<{ pools: number; runs: number; bullmq: number[]; fleet: number[] }> = [];
  try {
    for (const n of o.scalingPools) {
      // Twenty waves of jobs per measurement, twice the slots in flight so no slot idles.
      const runs = n * c * 20;
      const inFlight = n * c * 2;
      const bull = await startBull(
        { redisUrl: o.redisUrl, prefix: bullPrefix, stages: [{ queue: 'coder', width: 1, latencyMs: o.scalingLatencyMs }], concurrency: c },
        Array.from({ length: n }, () => ['coder']),
      );
      const spec: FleetSpec = {
        redisUrl: o.redisUrl,
        prefix: fleetPrefix,
        managerConcurrency: o.managerConcurrency,
        pools: Array.from({ length: n }, () => ({ roles: ['coder'], concurrency: c, latencyMs: o.scalingLatencyMs })),
      };
      const procs = await startFleetProcesses(spec);
      const fleet = new FleetDriver(spec, singlePhaseWorkflow());
      const row = { pools: n, runs, bullmq: [] as number[], fleet: [] as number[] };
      try {
        const systems: Array<[keyof typeof row & ('bullmq' | 'fleet'), Target]> = [
          ['bullmq', bull.driver],
          ['fleet', fleet],
        ];
        for (const [, t] of systems) await runLoad(t, n * c, inFlight);
        for (let r = 0; r < rounds; r++) {
          for (const [name, t] of r % 2 === 0 ? systems : [...systems].reverse()) {
            const { wallMs } = await runLoad(t, runs, inFlight);
            const rps = runs / (wallMs / 1000);
            row[name].push(round(rps, 1));
            log(`  ${n} pool(s) round ${r + 1}/${rounds} ${name}: ${rps.toFixed(1)} phases/s`);
          }
        }
      } finally {
        await fleet.close();
        await stopAll([procs.manager, ...procs.pools]);
        await stopBull(bull);
      }
      rows.push(row);
    }
  } finally {
    await cleanup(o.redisUrl, [bullPrefix, fleetPrefix]);
  }
  const med = (xs: number[]) => medianOf(xs, (x) => x);
  const base = rows[0];
  const summary: Record<string, number> = {};
  const table: ScenarioResult['table'] = [];
  for (const row of rows) {
    const b = med(row.bullmq);
    const f = med(row.fleet);
    const bx = b / med(base?.bullmq ?? [NaN]);
    const fx = f / med(base?.fleet ?? [NaN]);
    summary[`bull_${row.pools}_per_s`] = b;
    summary[`fleet_${row.pools}_per_s`] = f;
    summary[`bull_${row.pools}_multiple`] = round(bx);
    summary[`fleet_${row.pools}_multiple`] = round(fx);
    table.push([`${row.pools} pool(s): phases/s (multiple of 1)`, `${fmt.n(b, 1)} (${fmt.ratio(bx)})`, `${fmt.n(f, 1)} (${fmt.ratio(fx)})`, fmt.ratio(f / b)]);
  }
  const at4 = summary.fleet_4_multiple ?? NaN;
  return {
    id: 4,
    name: 'scaling',
    title: `Worker scaling (one coder phase per run, agents take ${o.scalingLatencyMs} ms, ${c} jobs in flight per pool process)`,
    params: { pools: o.scalingPools, concurrency_per_pool: c, latency_ms: o.scalingLatencyMs, rounds },
    rounds: rows,
    summary,
    table,
    targets: Number.isNaN(at4) ? [] : [{ target: 'worker scaling ≥ 3.5× at 4 pools', value: at4, limit: 3.5, pass: at4 >= 3.5 }],
    notes: [],
  };
}
