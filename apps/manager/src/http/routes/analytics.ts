/**
 * Analytics over time and failures: `GET /api/analytics/daily` (runs per UTC day: by status,
 * completion rate, p50/p95 time to complete, tokens and cost) and `GET /api/analytics/failures`
 * (failed runs by the code of their first error, per workflow).
 *
 * With the run archive (FLEET_HISTORY_URL) the figures are SQL over every archived run, plus the runs
 * in flight in Redis (counted by status); without it, over the most recent runs in Redis. An admin key
 * sees every run, any other key only the runs it started.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { dailyStats, failureStats, utcDay, type AnalyticsFilter, type DailyStats, type RunFact } from '../../archive/run-analytics.js';
import { callerOf, isAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { runFacts } from '../run-facts.js';
import { ErrorBodySchema } from '../errors.js';

/** Runs looked at without an archive: the most recent ones. */
const SCAN_LIMIT = 10_000;
const DAY_MS = 86_400_000;

const Query = z.strictObject({
  days: z.coerce.number().int().min(1).max(3660).default(30).describe('the last N UTC days, today included'),
  workflow: z.string().min(1).max(256).optional().describe('only runs of this workflow'),
});

const DailyStatsSchema = z
  .object({
    day: z.string().describe('YYYY-MM-DD, UTC, the day the runs were created'),
    runs: z.number(),
    by_status: z.record(z.string(), z.number()),
    completion_rate: z.number().nullable().describe('completed / finished runs of the day; null before any finished'),
    median_ms: z.number().nullable().describe("median time to complete of the day's completed runs, ms"),
    p95_ms: z.number().nullable().describe("95th percentile time to complete of the day's completed runs, ms"),
    tokens: z.number().describe("input + output tokens of the day's finished runs"),
    cost_usd: z.number().describe("USD of the day's finished runs, from the price table"),
  })
  .meta({ id: 'DailyStats' });

const FailureStatsSchema = z
  .object({
    error_code: z.string().describe('the code of the first error of the failed runs (`UNKNOWN` when none was recorded)'),
    runs: z.number(),
    by_workflow: z.record(z.string(), z.number()),
    last_created_at: z.string().describe('when the newest of them was created, ISO 8601'),
  })
  .meta({ id: 'FailureStats' });

export function registerAnalyticsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const filterOf = (request: Parameters<typeof isAdmin>[0], query: z.infer<typeof Query>): AnalyticsFilter => ({
    userId: isAdmin(request) ? undefined : callerOf(request).id,
    workflow: query.workflow,
    // Midnight UTC of the first day of the window.
    createdFrom: Date.parse(utcDay(Date.now() - (query.days - 1) * DAY_MS)),
  });

  r.get(
    '/api/analytics/daily',
    {
      schema: {
        tags: ['analytics'],
        operationId: 'getDailyAnalytics', summary: 'Runs per UTC day: by status, completion rate, p50 and p95 time to complete, tokens and cost',
        description: `Newest day first; days without runs are left out. With the run archive (FLEET_HISTORY_URL): every archived run, in SQL, plus the runs in flight. Without it: the ${SCAN_LIMIT} most recent runs in Redis.`,
        querystring: Query,
        response: { 200: z.object({ items: z.array(DailyStatsSchema) }), 400: ErrorBodySchema, 401: ErrorBodySchema, 503: ErrorBodySchema },
      },
    },
    async (request) => {
      const filter = filterOf(request, request.query);
      if (!ctx.history) return { items: dailyStats(await recentFacts(ctx, filter.userId), filter) };
      const items = await ctx.history.dailyStats(filter);
      addInFlight(items, dailyStats(await inFlightFacts(ctx, filter.userId), filter));
      return { items };
    },
  );

  r.get(
    '/api/analytics/failures',
    {
      schema: {
        tags: ['analytics'],
        operationId: 'getFailureAnalytics', summary: 'Failed runs by the code of their first error, with the workflows they belong to',
        description: `Most frequent code first. With the run archive (FLEET_HISTORY_URL): every archived run, in SQL. Without it: the ${SCAN_LIMIT} most recent runs in Redis.`,
        querystring: Query,
        response: { 200: z.object({ items: z.array(FailureStatsSchema) }), 400: ErrorBodySchema, 401: ErrorBodySchema, 503: ErrorBodySchema },
      },
    },
    async (request) => {
      const filter = filterOf(request, request.query);
      // A run in flight has not failed yet: the archive holds every failed run once it is archived.
      return { items: ctx.history ? await ctx.history.failureStats(filter) : failureStats(await recentFacts(ctx, filter.userId), filter) };
    },
  );
}

/** Count runs in flight (by status only) into the archive's days. */
function addInFlight(items: DailyStats[], inFlight: DailyStats[]): void {
  for (const day of inFlight) {
    const into = items.find((i) => i.day === day.day);
    if (!into) {
      items.push(day);
      continue;
    }
    into.runs += day.runs;
    for (const [status, n] of Object.entries(day.by_status)) into.by_status[status] = (into.by_status[status] ?? 0) + n;
  }
  items.sort((a, b) => (a.day < b.day ? 1 : a.day > b.day ? -1 : 0));
}

async function recentFacts(ctx: ApiContext, userId: string | undefined): Promise<RunFact[]> {
  return (await runFacts(ctx, await ctx.store.recentRunIds(SCAN_LIMIT), userId)).facts;
}

async function inFlightFacts(ctx: ApiContext, userId: string | undefined): Promise<RunFact[]> {
  return (await runFacts(ctx, await ctx.store.activeRunIds(), userId)).facts;
}
