/**
 * What `fleet workers` and `GET /api/workers` show per agent role, read from Redis: the pool
 * processes on the role's queue, the concurrency live pools announced (`<prefix>:pools` heartbeats),
 * busy slots, waiting and delayed jobs, the age of the oldest waiting job, and whether jobs wait for
 * a role no live pool serves.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { agentQueueName, agentQueuesKey } from '../queues/contracts.js';
import { readPoolHeartbeats } from '../queues/pool-heartbeat.js';
import { longestWaitingJob } from '../queues/longest-waiting.js';
import { unservedMessage } from './unserved-roles.js';

/** One agent role's queue and pools. */
export interface RoleQueueStats {
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
  /** Age of the oldest waiting job, s (one decimal); 0 when none waits. */
  oldest_wait_s: number;
  /** Jobs wait (or are delayed) and no live pool serves the role: what to start, else null. */
  unserved: string | null;
}

/**
 * Read the stats of every role in `roles`, every role a live pool announced and every role that
 * ever had a job queued (`<prefix>:agent-queues`), sorted by name.
 *
 * @param now - epoch ms, for heartbeat liveness and the oldest job's age.
 * @throws whatever ioredis throws when Redis cannot be read.
 */
export async function readRoleQueueStats(redis: Redis, prefix: string, roles: readonly string[] = [], now = Date.now()): Promise<RoleQueueStats[]> {
  const heartbeats = await readPoolHeartbeats(redis, prefix, now);
  const queued = await redis.smembers(agentQueuesKey(prefix));
  const all = [...new Set([...roles, ...heartbeats.map((h) => h.role), ...queued])].sort();
  const rows: RoleQueueStats[] = [];
  for (const role of all) {
    const queue = new Queue(agentQueueName(role), { connection: redis, prefix });
    try {
      const [workers, counts, oldest] = await Promise.all([
        queue.getWorkers(),
        queue.getJobCounts('wait', 'prioritized', 'active', 'delayed'),
        longestWaitingJob(queue),
      ]);
      const first = oldest;
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
}
