/**
 * `fleet workers`: per agent role, the processes serving it, their concurrency, busy slots, waiting
 * jobs and the age of the oldest waiting job — what to look at before scaling a pool.
 *
 * Processes come from BullMQ (`Queue.getWorkers()`: the workers connected to the role's queue);
 * concurrency from the pools' heartbeats (`<prefix>:pools`, see `startPoolHeartbeat`); busy slots,
 * waiting and delayed jobs from the queue's counts. A role whose jobs wait with no live pool is
 * marked with the command that starts one.
 */
import { BUILTIN_ROLES } from '@agentfleet/agents';
import { agentQueueName, agentQueuesKey, assertRedisReachable, createRedis, loadConfig, readPoolHeartbeats, unservedMessage } from '@agentfleet/core';
import { Queue } from 'bullmq';
import type { Command } from 'commander';

/** One row of `fleet workers`. */
export interface WorkerRow {
  role: string;
  /** Worker connections on the role's queue: one per pool process serving the role. */
  processes: number;
  /** Sum of the concurrency the live pool processes announced for this role. */
  concurrency: number;
  /** Jobs being worked on (BullMQ `active`). */
  busy: number;
  /** Jobs waiting for a free slot (`wait` + `prioritized`). */
  waiting: number;
  /** Jobs waiting for a retry backoff or a delay to pass. */
  delayed: number;
  /** Age of the oldest waiting job, s; 0 when none waits. */
  oldest_wait_s: number;
  /** Jobs wait (or are delayed) and no live pool serves the role: what to start, else null. */
  unserved: string | null;
}

/** Read the rows for every built-in role, every role a live pool announced and every role with a queue. */
export async function readWorkerRows(redisUrl: string, prefix: string, now = Date.now()): Promise<WorkerRow[]> {
  const redis = createRedis(redisUrl, { name: 'fleet-workers' });
  try {
    const heartbeats = await readPoolHeartbeats(redis, prefix, now);
    // Queues that ever had a job count too: a role with jobs and no pool must show up.
    const queued = await redis.smembers(agentQueuesKey(prefix));
    const roles = [...new Set([...Object.keys(BUILTIN_ROLES), ...heartbeats.map((h) => h.role), ...queued])].sort();
    const rows: WorkerRow[] = [];
    for (const role of roles) {
      const queue = new Queue(agentQueueName(role), { connection: redis, prefix });
      try {
        const [workers, counts, oldest] = await Promise.all([
          queue.getWorkers(),
          queue.getJobCounts('wait', 'prioritized', 'active', 'delayed'),
          queue.getJobs(['wait'], 0, 0, true),
        ]);
        const first = oldest[0];
        const readyAt = first ? Math.max(first.timestamp + (first.delay || 0), first.processedOn ?? 0) : now;
        const concurrency = heartbeats.filter((h) => h.role === role).reduce((sum, h) => sum + h.concurrency, 0);
        const waiting = (counts.wait ?? 0) + (counts.prioritized ?? 0);
        const delayed = counts.delayed ?? 0;
        rows.push({
          role,
          processes: workers.length,
          concurrency,
          busy: counts.active ?? 0,
          waiting,
          delayed,
          oldest_wait_s: Math.max(0, Math.round((now - readyAt) / 100) / 10),
          unserved: concurrency === 0 && waiting + delayed > 0 ? unservedMessage(role) : null,
        });
      } finally {
        await queue.close();
      }
    }
    return rows;
  } finally {
    redis.disconnect();
  }
}

/** The rows as an aligned text table. */
export function formatWorkerRows(rows: readonly WorkerRow[]): string {
  const header = ['ROLE', 'PROCESSES', 'CONCURRENCY', 'BUSY', 'WAITING', 'DELAYED', 'OLDEST WAIT', 'NOTE'];
  const cells = rows.map((r) => [r.role, String(r.processes), String(r.concurrency), `${r.busy}/${r.concurrency}`, String(r.waiting), String(r.delayed), `${r.oldest_wait_s.toFixed(1)}s`, r.unserved ? `! ${r.unserved}` : '']);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) => c.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...cells.map(line)].join('\n') + '\n';
}

/** Add `fleet workers` to the program. */
export function register(program: Command): void {
  program
    .command('workers')
    .description('per agent role: processes, concurrency, busy slots, waiting jobs, oldest wait')
    .option('--json', 'print the rows as JSON', false)
    .action(async (opts: { json: boolean }) => {
      const config = loadConfig();
      await assertRedisReachable(config.redisUrl);
      const rows = await readWorkerRows(config.redisUrl, config.queuePrefix);
      process.stdout.write(opts.json ? JSON.stringify(rows, null, 2) + '\n' : formatWorkerRows(rows));
    });
}
