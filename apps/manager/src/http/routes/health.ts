/**
 * `/healthz` (Redis answers PING), `/readyz` (Redis answers, takes a write, and the built-in
 * workflows load: a Redis at its maxmemory answers PING but refuses every write, so it is not ready) and
 * `GET /api/analytics/workflows` (per workflow: runs by status, completion rate, time to complete,
 * tokens per run).
 */
import { isRedisOutOfMemory, redisOutOfMemoryError } from '@agentfleet/core';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { callerOf, isAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema, toHttpError } from '../errors.js';
import { workflowStats } from '../../archive/run-analytics.js';
import { runFacts } from '../run-facts.js';

/** Runs the analytics look at: the most recent ones. */
const ANALYTICS_SCAN_LIMIT = 10_000;

const Health = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    redis: z.enum(['ok', 'unreachable', 'full']).describe('full: Redis answers but refuses writes (used memory over maxmemory)'),
    code: z.string().optional().describe('REDIS_UNAVAILABLE or REDIS_OUT_OF_MEMORY when not ok'),
    message: z.string().optional(),
  })
  .meta({ id: 'Health' });

const WorkflowStats = z
  .object({
    workflow: z.string(),
    runs: z.number(),
    by_status: z.record(z.string(), z.number()),
    completion_rate: z.number().nullable().describe('completed / finished runs; null before any finished'),
    median_ms: z.number().nullable().describe('median time to complete of completed runs, ms'),
    p95_ms: z.number().nullable().describe('95th percentile time to complete of completed runs, ms'),
    mean_tokens: z.number().nullable().describe('mean input+output tokens per finished run'),
  })
  .meta({ id: 'WorkflowStats' });

export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  const ping = async (): Promise<string | undefined> => {
    try {
      await ctx.redis.ping();
      return undefined;
    } catch (err) {
      return toHttpError(err).message;
    }
  };

  r.get(
    '/healthz',
    { schema: { tags: ['health'], operationId: 'getLiveness', summary: 'Liveness: Redis answers', response: { 200: Health, 503: Health } } },
    async (_request, reply) => {
      const problem = await ping();
      if (problem) return reply.code(503).send({ status: 'unavailable', redis: 'unreachable', code: 'REDIS_UNAVAILABLE', message: problem });
      return { status: 'ok', redis: 'ok' } as const;
    },
  );

  // A write Redis refuses when it is full (SET is a denyoom command); it expires on its own.
  const probeKey = `${ctx.options.prefix}:readyz-probe`;
  const writeProblem = async (): Promise<string | undefined> => {
    try {
      await ctx.redis.set(probeKey, '1', 'PX', 5000);
      return undefined;
    } catch (err) {
      return isRedisOutOfMemory(err) ? redisOutOfMemoryError(err).message : undefined;
    }
  };

  r.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        operationId: 'getReadiness',
        summary: 'Readiness: Redis answers and takes writes, and built-in workflows load',
        description: '503 with redis "unreachable" when Redis does not answer, "full" (code REDIS_OUT_OF_MEMORY) when it answers but refuses writes.',
        response: { 200: Health, 503: Health },
      },
    },
    async (_request, reply) => {
      const problem = await ping();
      if (problem) return reply.code(503).send({ status: 'unavailable', redis: 'unreachable', code: 'REDIS_UNAVAILABLE', message: problem });
      const full = await writeProblem();
      if (full) return reply.code(503).send({ status: 'unavailable', redis: 'full', code: 'REDIS_OUT_OF_MEMORY', message: full });
      await ctx.registry.builtins();
      return { status: 'ok', redis: 'ok' } as const;
    },
  );

  r.get(
    '/api/analytics/workflows',
    {
      schema: {
        tags: ['analytics'],
        operationId: 'getWorkflowAnalytics',
        summary: 'Per workflow: runs by status, completion rate, median and p95 time to complete, mean tokens per run',
        description: `With the run archive (FLEET_HISTORY_URL): every archived run, in SQL, plus the runs in flight. Without it: the ${ANALYTICS_SCAN_LIMIT} most recent runs in Redis. An admin key sees every run; any other key only the runs it started.`,
        response: { 200: z.object({ items: z.array(WorkflowStats), runs_considered: z.number() }), 401: ErrorBodySchema, 503: ErrorBodySchema },
      },
    },
    async (request) => {
      // A non-admin key sees figures of its own runs only, as it sees only its own runs in the list.
      const owner = isAdmin(request) ? undefined : callerOf(request).id;
      if (ctx.history) {
        const items = await ctx.history.workflowStats(owner);
        // Runs in flight are not archived yet: they count by status only.
        const { facts } = await runFacts(ctx, await ctx.store.activeRunIds(), owner);
        for (const f of facts) {
          let item = items.find((i) => i.workflow === f.workflow);
          if (!item) {
            item = { workflow: f.workflow, runs: 0, by_status: {}, completion_rate: null, median_ms: null, p95_ms: null, mean_tokens: null };
            items.push(item);
          }
          item.runs++;
          item.by_status[f.status] = (item.by_status[f.status] ?? 0) + 1;
        }
        items.sort((a, b) => a.workflow.localeCompare(b.workflow));
        return { items, runs_considered: items.reduce((n, i) => n + i.runs, 0) };
      }
      const { facts, owned } = await runFacts(ctx, await ctx.store.recentRunIds(ANALYTICS_SCAN_LIMIT), owner);
      return { items: workflowStats(facts), runs_considered: owned };
    },
  );
}


