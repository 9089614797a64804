/** What every scenario shares: options, systems under test, result records, progress lines. */
import { compileWorkflow, loadBuiltinWorkflow, type WorkflowDefinition } from '@agentfleet/core';
import { Redis } from 'ioredis';
import { BULL_WORKERS_BIN, startChild, stopAll, type Child } from './processes.js';
import { BullChainDriver, type BullWorkersSpec, type StageSpec } from './bull-chain.js';
import { deletePrefix } from './redis-util.js';

export interface BenchOptions {
  redisUrl: string;
  /** Rounds per scenario (each system once per round, alternately); undefined: the scenario's default. */
  rounds: number | undefined;
  /** Scenario 1: sequential runs per round. */
  overheadRuns: number;
  /** Scenarios 2 and 6: runs per round, and runs in flight. */
  throughputRuns: number;
  inFlight: number;
  /** Jobs in flight per queue (bare chain) and per role (AgentFleet pools), scenarios 1, 2, 6. */
  concurrency: number;
  managerConcurrency: number;
  /** Scenario 3: runs in flight, agent latency, jobs in flight per role. */
  memoryRuns: number;
  memoryLatencyMs: number;
  memoryConcurrency: number;
  /** Scenario 4: pool counts, jobs in flight per pool, agent latency. */
  scalingPools: number[];
  scalingConcurrency: number;
  scalingLatencyMs: number;
  /** Scenario 5: sequential runs per round. */
  dagRuns: number;
}

/** One target with its verdict. */
export interface TargetCheck {
  target: string;
  value: number;
  limit: number;
  pass: boolean;
}

export interface ScenarioResult {
  id: number;
  name: string;
  title: string;
  params: Record<string, unknown>;
  /** Every round's raw figures, per system. */
  rounds: Array<Record<string, unknown>>;
  /** Medians over rounds (and ratios). */
  summary: Record<string, number>;
  /** Markdown table rows: [metric, bare BullMQ, AgentFleet, ratio]. */
  table: Array<[string, string, string, string]>;
  targets: TargetCheck[];
  notes: string[];
}

export function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

/** `requirements → planning → design → implementation → review`: the built-in four-phase workflow. */
export async function chainWorkflow(): Promise<WorkflowDefinition> {
  return loadBuiltinWorkflow('software-delivery');
}

export function fourStageChain(latencyMs: number): StageSpec[] {
  return ['q1', 'q2', 'q3', 'q4'].map((queue) => ({ queue, width: 1, latencyMs }));
}

/** A workflow of one `coder` phase. */
export function singlePhaseWorkflow(): WorkflowDefinition {
  return compileWorkflow({ name: 'bench-single', agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder', timeout: 120, retries: 2 }] });
}

/** `plan → impl_1 … impl_<width> (in parallel) → review`. */
export function wideDagWorkflow(width: number): WorkflowDefinition {
  const impls = Array.from({ length: width }, (_, i) => `impl_${i + 1}`);
  return compileWorkflow({
    name: 'bench-wide-dag',
    agents: ['planner', 'coder', 'reviewer'],
    phases: [
      { name: 'plan', agent: 'planner', timeout: 120, retries: 2 },
      ...impls.map((name) => ({ name, agent: 'coder', timeout: 120, retries: 2, depends_on: ['plan'] })),
      { name: 'review', agent: 'reviewer', timeout: 120, retries: 2, depends_on: impls },
    ],
  });
}

/** The bare BullMQ system: worker processes (one per `serve` list) and the driver. */
export async function startBull(spec: Omit<BullWorkersSpec, 'serve'>, serveLists: Array<string[] | undefined> = [undefined]): Promise<{ driver: BullChainDriver; workers: Child[] }> {
  const workers = await Promise.all(
    serveLists.map((serve, i) =>
      startChild(`bull workers #${i + 1}`, BULL_WORKERS_BIN, [JSON.stringify({ ...spec, ...(serve ? { serve } : {}) })], process.env, 'bull-workers: ready'),
    ),
  );
  const driver = new BullChainDriver({ ...spec }, 'bullmq');
  await driver.ready();
  return { driver, workers };
}

export async function stopBull(sys: { driver: BullChainDriver; workers: Child[] }): Promise<void> {
  await sys.driver.close();
  await stopAll(sys.workers);
}

/** Delete a scenario's keys. */
export async function cleanup(redisUrl: string, prefixes: string[]): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    for (const p of prefixes) await deletePrefix(redis, p);
  } finally {
    redis.disconnect();
  }
}

export const fmt = {
  ms: (v: number) => `${v.toFixed(2)} ms`,
  n: (v: number, d = 0) => v.toFixed(d),
  ratio: (v: number) => `${v.toFixed(2)}×`,
  mib: (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`,
  kib: (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`,
};
