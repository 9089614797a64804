/**
 * `npm run bench:backoff [-- --runs N --retry-delay S --out DIR]`: how long a retried phase really
 * waits compared with the backoff it recorded. Each run has one phase (`retries: 2`, `retry_delay`
 * S seconds) whose model call fails twice with `PROVIDER_OVERLOADED` and then answers, through the
 * real fleet (manager and agent pool in this process, offline model) on a private Redis.
 *
 * For each retry it takes the attempt's failure (`phase_retry`: its `at` and the `delay_ms` chosen
 * for it) and the next attempt's start (`phase_started.at`) from the run's events, and reports the
 * gap and the overshoot (gap − delay_ms): BullMQ holding the job at least the delay shows as an
 * overshoot that is never negative. The tests assert the delay recorded and that BullMQ is handed
 * that very delay; how long the wait takes on a given machine is measured here, never asserted.
 *
 * Writes `bench/results/backoff-timing-<date>.json` and prints a markdown table.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BUILTIN_ROLES, startAgentPool, type RoleInput } from '@agentfleet/agents';
import { FleetClient, FleetError, OfflineLlmClient, compileWorkflow, createLogger, createRedis, type LlmClient, type LlmRequest, type LlmResponse, type StoredRunEvent } from '@agentfleet/core';
import { startManager } from '@agentfleet/manager';
import { startPrivateRedis } from './redis-util.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, 'retry-delay': { type: 'string', default: '0.2' }, out: { type: 'string' } }, strict: true });
const RUNS = Math.max(1, Number(values.runs));
const RETRY_DELAY_S = Number(values['retry-delay']);
const OUT = resolve(values.out ?? join(fileURLToPath(new URL('../results/', import.meta.url))));

/** The planner's offline answer on the third call of each run; the first two fail as overloaded. */
class FailsTwice implements LlmClient {
  readonly provider = 'offline';
  readonly model = 'agentfleet-offline-1';
  readonly #calls = new Map<string, number>();
  readonly #inner = new OfflineLlmClient({ responders: { planner: (req) => BUILTIN_ROLES.planner!.offline(req.inputs as unknown as RoleInput) } });
  async generate(request: LlmRequest): Promise<LlmResponse> {
    const key = (request.inputs as unknown as RoleInput).requirements;
    const n = (this.#calls.get(key) ?? 0) + 1;
    this.#calls.set(key, n);
    if (n <= 2) throw new FleetError('PROVIDER_OVERLOADED', 'bench: overloaded on purpose');
    return this.#inner.generate(request);
  }
}

const workflow = compileWorkflow({ name: 'backoff-timing', agents: ['planner'], phases: [{ name: 'plan', agent: 'planner', retries: 2, retry_delay: RETRY_DELAY_S, timeout: 30 }] });
const redis = await startPrivateRedis();
const prefix = `{bench-backoff-${randomBytes(3).toString('hex')}}`;
const quiet = { warn: () => undefined, onError: () => undefined };
const manager = await startManager({ redisUrl: redis.url, prefix, ...quiet, logger: createLogger({ name: 'manager', level: 'silent' }) });
const pool = await startAgentPool({ redisUrl: redis.url, prefix, roles: [BUILTIN_ROLES.planner!], llm: new FailsTwice(), onError: () => undefined, logger: createLogger({ name: 'agents', level: 'silent' }) });
const conn = createRedis(redis.url);
const blocking = createRedis(redis.url, { forWorker: true });
const client = new FleetClient(conn, prefix);

interface Retry {
  attempt: number;
  delay_ms: number;
  gap_ms: number;
  overshoot_ms: number;
}
const retries: Retry[] = [];
for (let i = 0; i < RUNS; i++) {
  const runId = await client.submit({ workflow, requirements: `Backoff run ${i}`, provider: 'offline' });
  const events: Array<StoredRunEvent['event']> = [];
  const result = await client.follow(runId, blocking, (e) => events.push(e.event));
  if (result.status !== 'completed') throw new Error(`run ${runId} ${result.status}: ${JSON.stringify(result.errors)}`);
  for (const retry of events.filter((e) => e.type === 'phase_retry')) {
    const next = events.find((e) => e.type === 'phase_started' && e.attempt === retry.attempt + 1);
    if (!next || retry.delay_ms === undefined) throw new Error(`run ${runId}: attempt ${retry.attempt + 1} has no start, or its retry no delay`);
    const gap = next.at - retry.at;
    retries.push({ attempt: retry.attempt, delay_ms: retry.delay_ms, gap_ms: gap, overshoot_ms: gap - retry.delay_ms });
  }
}

await pool.close(2000);
await manager.close();
await client.close();
blocking.disconnect();
conn.disconnect();
await redis.stop();

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};
const rows = [1, 2].map((attempt) => {
  const of = retries.filter((r) => r.attempt === attempt);
  return {
    retry: attempt,
    samples: of.length,
    delay_ms_p50: pct(of.map((r) => r.delay_ms), 50),
    gap_ms_p50: pct(of.map((r) => r.gap_ms), 50),
    overshoot_ms_min: Math.min(...of.map((r) => r.overshoot_ms)),
    overshoot_ms_p50: pct(of.map((r) => r.overshoot_ms), 50),
    overshoot_ms_p99: pct(of.map((r) => r.overshoot_ms), 99),
  };
});
const summary = { runs: RUNS, retry_delay_s: RETRY_DELAY_S, rows, retries };
await mkdir(OUT, { recursive: true });
const file = join(OUT, `backoff-timing-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
process.stdout.write(
  [
    `Backoff as waited, ${RUNS} runs, retry_delay ${RETRY_DELAY_S} s (equal jitter: retry 1 waits ${RETRY_DELAY_S * 500}-${RETRY_DELAY_S * 1000} ms, retry 2 twice that):`,
    '',
    '| retry | samples | delay recorded p50 ms | gap p50 ms | overshoot min ms | overshoot p50 ms | overshoot p99 ms |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.retry} | ${r.samples} | ${r.delay_ms_p50} | ${r.gap_ms_p50} | ${r.overshoot_ms_min} | ${r.overshoot_ms_p50} | ${r.overshoot_ms_p99} |`),
    '',
    `written to ${file}`,
    '',
  ].join('\n'),
);
process.exit(0);
