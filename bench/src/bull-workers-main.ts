/**
 * Child process: the bare BullMQ chain's workers (see ./bull-chain.ts).
 * Usage: `node bull-workers-main.js '<BullWorkersSpec as JSON>'`; prints `bull-workers: ready`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { CHAIN_JOB_OPTIONS, chainJobData, chainJobId, type BullWorkersSpec, type ChainJobData, type StageSpec } from './bull-chain.js';

const spec = JSON.parse(process.argv[2] ?? '{}') as BullWorkersSpec;
const redis = new Redis(spec.redisUrl, { maxRetriesPerRequest: null, connectionName: 'bench-bull-workers' });
const queues = new Map<string, Queue>();
const queueFor = (name: string): Queue => {
  let q = queues.get(name);
  if (!q) {
    q = new Queue(name, { connection: redis, prefix: spec.prefix });
    queues.set(name, q);
  }
  return q;
};

async function process1(job: Job<ChainJobData>): Promise<{ ok: true }> {
  const { run_id: runId, stage } = job.data;
  const here = spec.stages[stage] as StageSpec;
  if (here.latencyMs > 0) await sleep(here.latencyMs);
  const next = spec.stages[stage + 1];
  if (!next) return { ok: true };
  if (here.width > 1) {
    // Fan-in: the last job of this stage to finish starts the next one.
    const key = `${spec.prefix}:fanin:${runId}:${stage}`;
    const n = await redis.incr(key);
    if (n < here.width) return { ok: true };
    await redis.del(key);
  }
  const q = queueFor(next.queue);
  if (next.width === 1) {
    await q.add(next.queue, chainJobData(runId, stage + 1, 0, next), { ...CHAIN_JOB_OPTIONS, jobId: chainJobId(runId, stage + 1, 0) });
  } else {
    await q.addBulk(
      Array.from({ length: next.width }, (_, i) => ({
        name: next.queue,
        data: chainJobData(runId, stage + 1, i, next),
        opts: { ...CHAIN_JOB_OPTIONS, jobId: chainJobId(runId, stage + 1, i) },
      })),
    );
  }
  return { ok: true };
}

const served = new Set(spec.serve ?? spec.stages.map((s) => s.queue));
const workers = [...served].map(
  (name) =>
    new Worker<ChainJobData>(name, process1, {
      connection: redis,
      prefix: spec.prefix,
      concurrency: spec.concurrency,
      lockDuration: 30_000,
      stalledInterval: 30_000,
      maxStalledCount: 2,
    }),
);
for (const w of workers) w.on('error', (err) => process.stderr.write(`bull-workers: ${err.message}\n`));
await Promise.all(workers.map((w) => w.waitUntilReady()));
process.stderr.write(`bull-workers: ready (${[...served].join(', ')}, concurrency ${spec.concurrency})\n`);

const stop = async () => {
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all([...queues.values()].map((q) => q.close()));
  redis.disconnect();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
