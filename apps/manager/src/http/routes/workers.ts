/**
 * `GET /api/workers`: per agent role, what `fleet workers` shows — pool processes, concurrency, busy
 * slots, waiting and delayed jobs, the age of the oldest waiting job. Roles are those a live pool
 * announced (`<prefix>:pools` heartbeats) and those that ever had a job queued; `unserved` says what
 * to start when jobs wait for a role no live pool serves.
 */
import { readRoleQueueStats } from '@agentfleet/core';
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
    unserved: z.string().nullable().describe('jobs wait and no live pool serves the role: what to start; null otherwise'),
  })
  .meta({ id: 'WorkerRow' });

/** Register `GET /api/workers`. */
export function registerWorkerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/api/workers',
    {
      schema: {
        tags: ['workers'],
        operationId: 'listWorkers',
        summary: 'Agent pools per role: processes, concurrency, busy slots, waiting, delayed, oldest wait',
        response: { 200: z.object({ items: z.array(WorkerRow) }), 401: ErrorBodySchema, 503: ErrorBodySchema },
      },
    },
    async () => {
      const items = await readRoleQueueStats(ctx.redis, ctx.options.prefix);
      return { items };
    },
  );
}
