/**
 * Scenario 3: memory at scale. Submit `memoryRuns` four-phase runs as fast as possible to agents that
 * take `memoryLatencyMs` per phase, sample every 250 ms while they run, and measure: manager and
 * agent-process RSS (peak), Redis `used_memory` per run at the peak of runs in flight, and per
 * completed run after all finished (AgentFleet: minus the agent outputs, which it stores twice, in the
 * shared context and in the result).
 */
import { Redis } from 'ioredis';
import { FleetDriver, startFleetProcesses, type FleetSpec } from '../fleet-target.js';
import { chainWorkflow, cleanup, fmt, fourStageChain, log, startBull, stopBull, type BenchOptions, type ScenarioResult } from '../harness.js';
import { stopAll, type Child } from '../processes.js';
import { benchPrefix, usedMemory } from '../redis-util.js';
import { round } from '../stats.js';

interface MemoryFigures {
  runs: number;
  peak_in_flight: number;
  redis_bytes_per_run_in_flight: number;
  redis_bytes_per_completed_run: number;
  outputs_bytes_per_run: number;
  redis_bytes_per_completed_run_excl_outputs: number;
  manager_rss_peak_bytes: number;
  agents_rss_peak_bytes: number;
  seconds_to_finish: number;
}

async function measure(
  redis: Redis,
  runs: number,
  submit: () => Promise<void>,
  inFlight: () => Promise<number>,
  manager: Child | undefined,
  agents: Child,
): Promise<Omit<MemoryFigures, 'outputs_bytes_per_run' | 'redis_bytes_per_completed_run_excl_outputs'>> {
  await new Promise((r) => setTimeout(r, 500));
  const before = await usedMemory(redis);
  const t0 = Date.now();
  let submitted = 0;
  let peak = { inFlight: 0, used: before };
  let managerRss = 0;
  let agentsRss = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [n, used, m, a] = await Promise.all([inFlight(), usedMemory(redis), manager?.rss() ?? 0, agents.rss()]);
      if (n >= peak.inFlight) peak = { inFlight: n, used };
      managerRss = Math.max(managerRss, m);
      agentsRss = Math.max(agentsRss, a);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const lane = async () => {
    while (submitted < runs) {
      submitted += 1;
      await submit();
    }
  };
  await Promise.all(Array.from({ length: 100 }, lane));
  log(`  ${runs} submitted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const deadline = Date.now() + 15 * 60_000;
  let last = Date.now();
  for (;;) {
    const n = await inFlight();
    if (n === 0) break;
    if (Date.now() > deadline) throw new Error(`memory scenario: ${n} runs still in flight after 15 minutes`);
    if (Date.now() - last > 5000) {
      log(`  ${n} runs in flight`);
      last = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const seconds = (Date.now() - t0) / 1000;
  sampling = false;
  await sampler;
  // Let the last acknowledgements and deadline removals land.
  await new Promise((r) => setTimeout(r, 1000));
  const after = await usedMemory(redis);
  return {
    runs,
    peak_in_flight: peak.inFlight,
    redis_bytes_per_run_in_flight: Math.round((peak.used - before) / Math.max(1, peak.inFlight)),
    redis_bytes_per_completed_run: Math.round((after - before) / runs),
    manager_rss_peak_bytes: managerRss,
    agents_rss_peak_bytes: agentsRss,
    seconds_to_finish: round(seconds, 1),
  };
}

/** Average bytes of agent output a finished run stores: its shared context and the copy in its result. */
async function outputBytesPerRun(driver: FleetDriver, sample = 200): Promise<number> {
  const ids = await driver.client.store.recentRunIds(sample);
  let total = 0;
  for (const id of ids) {
    const values = await driver.redis.hvals(driver.client.store.contextKey(id));
    total += values.reduce((n, v) => n + Buffer.byteLength(v), 0);
    const [run] = await driver.client.store.readRuns([id], { withResult: true });
    if (run?.result) total += Buffer.byteLength(JSON.stringify(run.result.results));
  }
  return ids.length ? Math.round(total / ids.length) : 0;
}

export async function memoryScenario(o: BenchOptions): Promise<ScenarioResult> {
  const redis = new Redis(o.redisUrl);
  const bullPrefix = benchPrefix('memory', 'bull');
  const fleetPrefix = benchPrefix('memory', 'fleet');
  const figures: Record<string, MemoryFigures> = {};
  try {
    {
      const bull = await startBull({ redisUrl: o.redisUrl, prefix: bullPrefix, stages: fourStageChain(o.memoryLatencyMs), concurrency: o.memoryConcurrency });
      try {
        let submitted = 0;
        const m = await measure(
          redis,
          o.memoryRuns,
          async () => {
            await bull.driver.submit();
            submitted += 1;
          },
          async () => submitted - (await bull.driver.completedCount()),
          undefined,
          bull.workers[0] as Child,
        );
        figures.bullmq = { ...m, outputs_bytes_per_run: 0, redis_bytes_per_completed_run_excl_outputs: m.redis_bytes_per_completed_run };
        log(`  bullmq: ${JSON.stringify(figures.bullmq)}`);
      } finally {
        await stopBull(bull);
        await cleanup(o.redisUrl, [bullPrefix]);
      }
    }
    {
      const spec: FleetSpec = {
        redisUrl: o.redisUrl,
        prefix: fleetPrefix,
        managerConcurrency: o.managerConcurrency,
        pools: [{ roles: ['planner', 'designer', 'coder', 'reviewer'], concurrency: o.memoryConcurrency, latencyMs: o.memoryLatencyMs }],
      };
      const procs = await startFleetProcesses(spec);
      const driver = new FleetDriver(spec, await chainWorkflow());
      try {
        const m = await measure(
          redis,
          o.memoryRuns,
          async () => void (await driver.submitOnly()),
          () => driver.activeCount(),
          procs.manager,
          procs.pools[0] as Child,
        );
        const outputs = await outputBytesPerRun(driver);
        figures.fleet = { ...m, outputs_bytes_per_run: outputs, redis_bytes_per_completed_run_excl_outputs: m.redis_bytes_per_completed_run - outputs };
        log(`  fleet: ${JSON.stringify(figures.fleet)}`);
      } finally {
        await driver.close();
        await stopAll([procs.manager, ...procs.pools]);
        await cleanup(o.redisUrl, [fleetPrefix]);
      }
    }
  } finally {
    redis.disconnect();
  }
  const b = figures.bullmq;
  const f = figures.fleet;
  if (!b || !f) throw new Error('memory scenario: a system was not measured');
  const scaled = o.memoryRuns !== 10_000;
  return {
    id: 3,
    name: 'memory',
    title: `Memory at scale (${o.memoryRuns} four-phase runs submitted at once, agents take ${o.memoryLatencyMs} ms, ${o.memoryConcurrency} jobs in flight per role)`,
    params: { runs: o.memoryRuns, latency_ms: o.memoryLatencyMs, concurrency_per_role: o.memoryConcurrency, manager_concurrency: o.managerConcurrency },
    rounds: [figures],
    summary: {
      bull_peak_in_flight: b.peak_in_flight,
      fleet_peak_in_flight: f.peak_in_flight,
      bull_redis_bytes_per_run_in_flight: b.redis_bytes_per_run_in_flight,
      fleet_redis_bytes_per_run_in_flight: f.redis_bytes_per_run_in_flight,
      bull_redis_bytes_per_completed_run: b.redis_bytes_per_completed_run,
      fleet_redis_bytes_per_completed_run: f.redis_bytes_per_completed_run,
      fleet_outputs_bytes_per_run: f.outputs_bytes_per_run,
      fleet_redis_bytes_per_completed_run_excl_outputs: f.redis_bytes_per_completed_run_excl_outputs,
      fleet_manager_rss_peak_bytes: f.manager_rss_peak_bytes,
      bull_workers_rss_peak_bytes: b.agents_rss_peak_bytes,
      fleet_agents_rss_peak_bytes: f.agents_rss_peak_bytes,
    },
    table: [
      ['peak runs in flight', fmt.n(b.peak_in_flight), fmt.n(f.peak_in_flight), ''],
      ['manager RSS (peak)', 'n/a (no manager)', fmt.mib(f.manager_rss_peak_bytes), ''],
      ['workers / agents RSS (peak)', fmt.mib(b.agents_rss_peak_bytes), fmt.mib(f.agents_rss_peak_bytes), fmt.ratio(f.agents_rss_peak_bytes / b.agents_rss_peak_bytes)],
      ['Redis per run in flight', fmt.kib(b.redis_bytes_per_run_in_flight), fmt.kib(f.redis_bytes_per_run_in_flight), fmt.ratio(f.redis_bytes_per_run_in_flight / b.redis_bytes_per_run_in_flight)],
      ['Redis per completed run', fmt.kib(b.redis_bytes_per_completed_run), fmt.kib(f.redis_bytes_per_completed_run), fmt.ratio(f.redis_bytes_per_completed_run / b.redis_bytes_per_completed_run)],
      ['… excluding agent outputs', fmt.kib(b.redis_bytes_per_completed_run), fmt.kib(f.redis_bytes_per_completed_run_excl_outputs), fmt.ratio(f.redis_bytes_per_completed_run_excl_outputs / b.redis_bytes_per_completed_run)],
    ],
    targets: [
      { target: `manager RSS ≤ 250 MB at ${o.memoryRuns} runs in flight`, value: round(f.manager_rss_peak_bytes / 1e6, 1), limit: 250, pass: f.manager_rss_peak_bytes <= 250e6 },
      { target: 'Redis ≤ 16 KiB per completed run, excluding outputs', value: round(f.redis_bytes_per_completed_run_excl_outputs / 1024, 2), limit: 16, pass: f.redis_bytes_per_completed_run_excl_outputs <= 16 * 1024 },
    ],
    notes: scaled ? [`scaled down to ${o.memoryRuns} runs (--memory-runs); the target is stated for 10,000`] : [],
  };
}
