/**
 * `GET /api/workers`: per agent role, what `fleet workers` shows — pool processes, concurrency, busy
 * slots, waiting and delayed jobs, the age of the oldest waiting job. Roles are those a live pool
 * announced (`<prefix>:pools` heartbeats) and those with an agent queue in Redis.
 */
import { agentQueueName, readPoolHeartbeats } from '@agentfleet/core';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema } from '../errors.js';

const WorkerRow = z
  .object({
    role: z.string(),
    processes: z.number().int().describe('worker connections on the role queue: one per pool process serving the role'),
    concurrency: z.number().int().describe('sum of the concurrency the live pool processes announced'),
    busy: z.number().int().describe('jobs being worked on'),
    waiting: z.number().int().describe('jobs waiting for a free slot'),
    delayed: z.number().int().describe('jobs waiting for a retry backoff or a delay'),
    oldest_wait_s: z.number().describe('age of the oldest waiting job, s; 0 when none waits'),
  })
  .meta({ id: 'WorkerRow' });

/** Register `GET /api/workers`. */
export function registerWorkerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/workers',
    {
      schema: {
        tags: ['workers'],
        summary: 'Agent pools per role: processes, concurrency, busy slots, waiting, delayed, oldest wait',
        response: { 200: z.object({ items: z.array(WorkerRow) }), 401: ErrorBodySchema, 503: ErrorBodySchema },
      },
    },
    async () => {
      const now = Date.now();
      const prefix = ctx.options.prefix;
      const heartbeats = await readPoolHeartbeats(ctx.redis, prefix, now);
      const roles = new Set(heartbeats.map((h) => h.role));
      const escaped = prefix.replace(/[*?[\]\\]/g, '\\$&');
      let cursor = '0';
      do {
        const [next, keys] = await ctx.redis.scan(cursor, 'MATCH', `${escaped}:agent-*:meta`, 'COUNT', 500);
        cursor = next;
        for (const key of keys) roles.add(key.slice(prefix.length + 1 + 'agent-'.length, -':meta'.length));
      } while (cursor !== '0');
      const items: Array<z.infer<typeof WorkerRow>> = [];
      for (const role of [...roles].sort()) {
        const queue = new Queue(agentQueueName(role), { connection: ctx.redis, prefix });
        try {
          const [workers, counts, oldest] = await Promise.all([
            queue.getWorkers(),
            queue.getJobCounts('wait', 'prioritized', 'active', 'delayed'),
            queue.getJobs(['wait'], 0, 0, true),
          ]);
          const first = oldest[0];
          const readyAt = first ? Math.max(first.timestamp + (first.delay || 0), first.processedOn ?? 0) : now;
          items.push({
            role,
            processes: workers.length,
            concurrency: heartbeats.filter((h) => h.role === role).reduce((sum, h) => sum + h.concurrency, 0),
            busy: counts.active ?? 0,
            waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0),
            delayed: counts.delayed ?? 0,
            oldest_wait_s: Math.max(0, Math.round((now - readyAt) / 100) / 10),
          });
        } finally {
          await queue.close();
        }
      }
      return { items };
    },
  );
}
