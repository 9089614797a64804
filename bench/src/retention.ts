/**
 * Redis memory under run retention (`node bench/dist/retention.js`, after `tsc -b && tsc -p bench`):
 * RETENTION_BENCH_RUNS finished runs (default 100,000) of a one-phase workflow through the real
 * `fleet manager` and `fleet agents` processes (offline model, no latency) on a private redis-server,
 * with FLEET_RUN_RETENTION=RETENTION_BENCH_RETENTION (default 30s), and again with retention off (0)
 * for RETENTION_BENCH_BASELINE_RUNS runs (default the same).
 * Prints Redis `used_memory` every 5% of the runs: with retention it levels off once the period has
 * passed (finished runs expire as fast as new ones finish); without it, it grows with every run.
 * Writes bench/results/retention-<date>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FleetClient, createRedis } from '@agentfleet/core';
import { singlePhaseWorkflow } from './harness.js';
import { FLEET_BIN, startChild, stopAll } from './processes.js';
import { startPrivateRedis, usedMemory } from './redis-util.js';

const RUNS = Number(process.env.RETENTION_BENCH_RUNS ?? 100_000);
/** Runs of the comparison without retention (it grows with every run, so fewer tell the slope). */
const BASELINE_RUNS = Number(process.env.RETENTION_BENCH_BASELINE_RUNS ?? RUNS);
const RETENTION = process.env.RETENTION_BENCH_RETENTION ?? '30s';
/** Runs submitted and not yet finished, at most. */
const IN_FLIGHT = Number(process.env.RETENTION_BENCH_IN_FLIGHT ?? 200);

interface Sample {
  runs: number;
  elapsed_s: number;
  used_memory_mb: number;
}

async function measure(retention: string, RUNS: number): Promise<Sample[]> {
  const redis = await startPrivateRedis();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FLEET_LOG_LEVEL: 'warn',
    REDIS_URL: redis.url,
    FLEET_QUEUE_PREFIX: '{bench-retention}',
    FLEET_PROVIDER: 'offline',
    FLEET_RUN_RETENTION: retention,
    FLEET_OFFLINE_LATENCY_MS: '0',
  };
  delete env.ANTHROPIC_API_KEY;
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const children = await Promise.all([
    // A busy machine can take a while to start a process: the bench waits up to a minute.
    startChild('fleet manager', FLEET_BIN, ['manager', '--concurrency', '16'], env, 'manager: consuming', 60_000),
    startChild('fleet agents', FLEET_BIN, ['agents', '--roles', 'coder', '--concurrency', '32', '--grace', '1'], env, 'agents: serving', 60_000),
  ]);
  const conn = createRedis(redis.url, { name: 'bench-retention' });
  const client = new FleetClient(conn, '{bench-retention}');
  const workflow = singlePhaseWorkflow();
  const samples: Sample[] = [];
  const started = Date.now();
  try {
    // Finished runs are counted from the manager's view: each run's `run_finished` in its stream is
    // read by one blocking XREAD per run on a small pool of connections.
    const followers = Array.from({ length: IN_FLIGHT }, () => createRedis(redis.url, { forWorker: true, name: 'bench-retention-follow' }));
    let submitted = 0;
    let finished = 0;
    const every = Math.max(1, Math.floor(RUNS / 20));
    const lane = async (follower: (typeof followers)[number]) => {
      while (submitted < RUNS) {
        submitted++;
        const id = await client.submit({ workflow, requirements: 'Build a todo API', provider: 'offline' });
        const key = client.store.eventsKey(id);
        let last = '0';
        for (let done = false; !done; ) {
          const reply = await follower.xread('COUNT', 100, 'BLOCK', 0, 'STREAMS', key, last);
          for (const [, entries] of reply ?? []) {
            for (const [entryId, fields] of entries) {
              last = entryId;
              if (fields[1] === 'run_finished') done = true;
            }
          }
        }
        finished++;
        if (finished % every === 0) {
          const sample = { runs: finished, elapsed_s: Math.round((Date.now() - started) / 100) / 10, used_memory_mb: Math.round((await usedMemory(conn)) / 1e5) / 10 };
          samples.push(sample);
          console.log(`retention ${retention}: ${sample.runs} runs, ${sample.elapsed_s} s, used_memory ${sample.used_memory_mb} MB`);
        }
      }
    };
    await Promise.all(followers.map(lane));
    for (const f of followers) f.disconnect();
    console.log(`retention ${retention}: what Redis holds after ${RUNS} runs, by key family:`);
    for (const [family, v] of await keyFamilies(conn)) console.log(`  ${family.padEnd(48)} ${String(v.keys).padStart(8)} keys  ${(v.bytes / 1e6).toFixed(1).padStart(7)} MB`);
  } finally {
    await stopAll(children);
    await client.close();
    conn.disconnect();
    await redis.stop();
  }
  return samples;
}

/** Keys grouped by their name with ids replaced by `*`, with `MEMORY USAGE` summed; largest first. */
async function keyFamilies(conn: ReturnType<typeof createRedis>): Promise<Array<[string, { keys: number; bytes: number }]>> {
  const families = new Map<string, { keys: number; bytes: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await conn.scan(cursor, 'COUNT', 1000);
    cursor = next;
    const pipe = conn.pipeline();
    for (const k of keys) pipe.memory('USAGE', k);
    const sizes = (await pipe.exec()) ?? [];
    keys.forEach((k, i) => {
      const family = k.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '*').replace(/:\d+(?=:|$)/g, ':N');
      const f = families.get(family) ?? { keys: 0, bytes: 0 };
      f.keys++;
      f.bytes += Number(sizes[i]?.[1] ?? 0);
      families.set(family, f);
    });
  } while (cursor !== '0');
  return [...families.entries()].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 12);
}

const withRetention = await measure(RETENTION, RUNS);
const without = await measure('0', BASELINE_RUNS);
const outDir = resolve(fileURLToPath(new URL('../results', import.meta.url)));
await mkdir(outDir, { recursive: true });
const file = join(outDir, `retention-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, JSON.stringify({ runs: RUNS, baseline_runs: BASELINE_RUNS, retention: RETENTION, with_retention: withRetention, without_retention: without }, null, 2) + '\n');
console.log(`| runs | used_memory, retention ${RETENTION} (MB) | used_memory, retention off (MB) |`);
console.log('| ---: | ---: | ---: |');
const byRuns = new Map(without.map((s) => [s.runs, s.used_memory_mb]));
withRetention.forEach((s) => console.log(`| ${s.runs} | ${s.used_memory_mb} | ${byRuns.get(s.runs) ?? '—'} |`));
for (const s of without) if (!withRetention.some((w) => w.runs === s.runs)) console.log(`| ${s.runs} | — | ${s.used_memory_mb} |`);
console.log(`wrote ${file}`);
