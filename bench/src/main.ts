/**
 * `npm run bench [-- options]`: AgentFleet against a bare BullMQ four-queue chain, same Redis, same
 * machine, same run. Writes `bench/results/<date>.json` and prints a markdown table.
 *
 *   --scenario LIST        overhead,throughput,scaling,dag,telemetry,memory (or 1..6); default all
 *   --rounds N             rounds per scenario (each system once per round, alternately)
 *   --quick                short runs: 1 round-trip sizes divided by ~4 (a smoke run in about a minute)
 *   --runs N               scenario 1: sequential runs per round (default 200)
 *   --throughput-runs N    scenarios 2 and 6: runs per round (default 2000); --in-flight N (default 200)
 *   --concurrency N        jobs in flight per queue / per role (default 16); --manager-concurrency N (16)
 *   --memory-runs N        scenario 3: runs in flight (default 10000); --memory-latency MS (1000)
 *   --memory-concurrency N scenario 3: jobs in flight per role (default 1000)
 *   --pools LIST           scenario 4: pool counts (default 1,2,4,8); --pool-concurrency N (4)
 *   --redis-url URL        use this Redis (default: a private redis-server from PATH, no persistence)
 *   --cpu-prof DIR         profile every child process (node --cpu-prof) into DIR; sampling interval
 *                          BENCH_CPU_PROF_INTERVAL_US (µs, default 1000)
 *   --out DIR              results directory (default bench/results)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, type BenchOptions, type ScenarioResult } from './harness.js';
import { childNodeFlags } from './processes.js';
import { startPrivateRedis } from './redis-util.js';
import { overheadScenario, telemetryScenario, throughputScenario } from './scenarios/chain.js';
import { dagScenario } from './scenarios/dag.js';
import { memoryScenario } from './scenarios/memory.js';
import { scalingScenario } from './scenarios/scaling.js';

const SCENARIOS = {
  overhead: { id: 1, run: overheadScenario },
  throughput: { id: 2, run: throughputScenario },
  memory: { id: 3, run: memoryScenario },
  scaling: { id: 4, run: scalingScenario },
  dag: { id: 5, run: dagScenario },
  telemetry: { id: 6, run: telemetryScenario },
} as const;
type ScenarioName = keyof typeof SCENARIOS;
/** Default order: the quick ones first, memory (the longest) last. */
const DEFAULT_ORDER: ScenarioName[] = ['overhead', 'throughput', 'scaling', 'dag', 'telemetry', 'memory'];

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    'throughput-runs': { type: 'string' },
    'in-flight': { type: 'string' },
    concurrency: { type: 'string' },
    'manager-concurrency': { type: 'string' },
    'memory-runs': { type: 'string' },
    'memory-latency': { type: 'string' },
    'memory-concurrency': { type: 'string' },
    pools: { type: 'string' },
    'pool-concurrency': { type: 'string' },
    'dag-runs': { type: 'string' },
    'redis-url': { type: 'string' },
    'cpu-prof': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

function int(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench: --${flag} must be a whole number ≥ 1, got "${value}"\n`);
    process.exit(2);
  }
  return n;
}

if (values.help) {
  const source = await import('node:fs').then((fs) => fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'));
  process.stdout.write((/\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? '').replace(/^ \* ?/gm, '') + '\n');
  process.exit(0);
}

const names: ScenarioName[] = values.scenario
  ? values.scenario.split(',').map((s) => {
      const t = s.trim();
      const byId = Object.entries(SCENARIOS).find(([, v]) => String(v.id) === t)?.[0];
      const name = (byId ?? t) as ScenarioName;
      if (!(name in SCENARIOS)) {
        process.stderr.write(`bench: unknown scenario "${t}"; scenarios: ${Object.keys(SCENARIOS).join(', ')} (or 1..6)\n`);
        process.exit(2);
      }
      return name;
    })
  : DEFAULT_ORDER;

const quick = values.quick ?? false;
if (values['cpu-prof']) {
  const dir = resolve(values['cpu-prof']);
  await mkdir(dir, { recursive: true });
  childNodeFlags.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${process.env.BENCH_CPU_PROF_INTERVAL_US ?? 1000}`);
}

const redis = values['redis-url'] ? { url: values['redis-url'], stop: () => Promise.resolve() } : await startPrivateRedis();
const options: BenchOptions = {
  redisUrl: redis.url,
  rounds: values.rounds ? int('rounds', values.rounds, 1) : quick ? 1 : undefined,
  overheadRuns: int('runs', values.runs, quick ? 50 : 200),
  throughputRuns: int('throughput-runs', values['throughput-runs'], quick ? 500 : 2000),
  inFlight: int('in-flight', values['in-flight'], 200),
  concurrency: int('concurrency', values.concurrency, 16),
  managerConcurrency: int('manager-concurrency', values['manager-concurrency'], 16),
  memoryRuns: int('memory-runs', values['memory-runs'], quick ? 1000 : 10_000),
  memoryLatencyMs: int('memory-latency', values['memory-latency'], 1000),
  memoryConcurrency: int('memory-concurrency', values['memory-concurrency'], 1000),
  scalingPools: (values.pools ?? '1,2,4,8').split(',').map((p) => int('pools', p.trim(), 1)),
  scalingConcurrency: int('pool-concurrency', values['pool-concurrency'], 4),
  scalingLatencyMs: 200,
  dagRuns: int('dag-runs', values['dag-runs'], quick ? 3 : 10),
};

const started = new Date();
const results: ScenarioResult[] = [];
try {
  for (const name of names) {
    log(`scenario ${SCENARIOS[name].id}: ${name}`);
    const t0 = Date.now();
    results.push(await SCENARIOS[name].run(options));
    log(`scenario ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
} finally {
  await redis.stop();
}

const machine = {
  cpus: os.cpus().length,
  cpu_model: os.cpus()[0]?.model ?? 'unknown',
  memory_gib: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${os.platform()} ${os.release()}`,
};
const report = {
  started_at: started.toISOString(),
  duration_s: Math.round((Date.now() - started.getTime()) / 1000),
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  machine,
  redis: values['redis-url'] ? 'given (--redis-url)' : 'private redis-server, no persistence, noeviction',
  options,
  scenarios: results,
};
const outDir = resolve(values.out ?? fileURLToPath(new URL('../results/', import.meta.url)));
await mkdir(outDir, { recursive: true });
const file = join(outDir, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, JSON.stringify(report, null, 2) + '\n');

const lines = [
  `Machine: ${machine.cpus} × ${machine.cpu_model}, ${machine.memory_gib} GiB, Node ${machine.node}. Medians over rounds; ratio = AgentFleet / bare BullMQ.`,
  '',
  '| # | scenario | metric | bare BullMQ | AgentFleet | ratio |',
  '| --- | --- | --- | --- | --- | --- |',
];
for (const r of results) {
  for (const [metric, b, f, ratio] of r.table) lines.push(`| ${r.id} | ${r.name} | ${metric} | ${b} | ${f} | ${ratio} |`);
}
lines.push('', '| target | measured | met |', '| --- | --- | --- |');
for (const r of results) for (const t of r.targets) lines.push(`| ${t.target} | ${t.value} | ${t.pass ? 'yes' : '**no**'} |`);
const notes = results.flatMap((r) => r.notes.map((n) => `- ${r.name}: ${n}`));
if (notes.length) lines.push('', ...notes);
process.stdout.write(lines.join('\n') + '\n');
log(`results written to ${file}`);
