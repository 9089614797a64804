/**
 * `/healthz` (Redis answers PING), `/readyz` (Redis answers and the built-in workflows load) and
 * `GET /api/analytics/workflows` (per workflow: runs by status, completion rate, time to complete,
 * tokens per run).
 */
import type { RunResult, RunState } from '@agentfleet/core';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { callerOf, isAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema, toHttpError } from '../errors.js';

/** Runs the analytics look at: the most recent ones. */
const ANALYTICS_SCAN_LIMIT = 10_000;

const Health = z.object({ status: z.enum(['ok', 'unavailable']), redis: z.enum(['ok', 'unreachable']), message: z.string().optional() }).meta({ id: 'Health' });

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
      if (problem) return reply.code(503).send({ status: 'unavailable', redis: 'unreachable', message: problem });
      return { status: 'ok', redis: 'ok' } as const;
    },
  );

  r.get(
    '/readyz',
    { schema: { tags: ['health'], operationId: 'getReadiness', summary: 'Readiness: Redis answers and built-in workflows load', response: { 200: Health, 503: Health } } },
    async (_request, reply) => {
      const problem = await ping();
      if (problem) return reply.code(503).send({ status: 'unavailable', redis: 'unreachable', message: problem });
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
        const inFlight = await ctx.store.activeRunIds();
        const active = owner === undefined ? inFlight : await ownRuns(ctx, inFlight, owner);
        const pipe = ctx.redis.pipeline();
        for (const id of active) pipe.hmget(ctx.store.runKey(id), 'state', 'meta');
        for (const [err, value] of (await pipe.exec()) ?? []) {
          if (err) throw err;
          const [stateRaw, metaRaw] = (value as Array<string | null> | undefined) ?? [];
          if (!stateRaw || !metaRaw) continue;
          const name = (JSON.parse(metaRaw) as { workflow: { name: string } }).workflow.name;
          const status = (JSON.parse(stateRaw) as RunState).status;
          let item = items.find((i) => i.workflow === name);
          if (!item) {
            item = { workflow: name, runs: 0, by_status: {}, completion_rate: null, median_ms: null, p95_ms: null, mean_tokens: null };
            items.push(item);
          }
          item.runs++;
          item.by_status[status] = (item.by_status[status] ?? 0) + 1;
        }
        items.sort((a, b) => a.workflow.localeCompare(b.workflow));
        return { items, runs_considered: items.reduce((n, i) => n + i.runs, 0) };
      }
      const recent = await ctx.store.recentRunIds(ANALYTICS_SCAN_LIMIT);
      const ids = owner === undefined ? recent : await ownRuns(ctx, recent, owner);
      const byWorkflow = new Map<string, { statuses: Record<string, number>; durations: number[]; tokens: number[] }>();
      for (let i = 0; i < ids.length; i += 500) {
        const pipe = ctx.redis.pipeline();
        for (const id of ids.slice(i, i + 500)) pipe.hmget(ctx.store.runKey(id), 'result', 'state', 'meta');
        for (const [err, value] of (await pipe.exec()) ?? []) {
          if (err) throw err;
          const [resultRaw, stateRaw, metaRaw] = (value as Array<string | null> | undefined) ?? [];
          let name: string;
          let status: string;
          let duration: number | undefined;
          let tokens: number | undefined;
          if (resultRaw) {
            const result = JSON.parse(resultRaw) as RunResult;
            name = result.workflow.name;
            status = result.status;
            duration = result.duration_ms;
            tokens = result.usage.input_tokens + result.usage.output_tokens;
          } else if (stateRaw && metaRaw) {
            name = (JSON.parse(metaRaw) as { workflow: { name: string } }).workflow.name;
            status = (JSON.parse(stateRaw) as RunState).status;
          } else {
            continue;
          }
          let s = byWorkflow.get(name);
          if (!s) {
            s = { statuses: {}, durations: [], tokens: [] };
            byWorkflow.set(name, s);
          }
          s.statuses[status] = (s.statuses[status] ?? 0) + 1;
          if (status === 'completed' && duration !== undefined) s.durations.push(duration);
          if (tokens !== undefined) s.tokens.push(tokens);
        }
      }
      const items = [...byWorkflow.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([workflow, s]) => {
          const finished = (s.statuses.completed ?? 0) + (s.statuses.failed ?? 0) + (s.statuses.cancelled ?? 0);
          const sorted = [...s.durations].sort((a, b) => a - b);
          return {
            workflow,
            runs: Object.values(s.statuses).reduce((a, b) => a + b, 0),
            by_status: s.statuses,
            completion_rate: finished > 0 ? round((s.statuses.completed ?? 0) / finished) : null,
            median_ms: percentile(sorted, 0.5),
            p95_ms: percentile(sorted, 0.95),
            mean_tokens: s.tokens.length > 0 ? round(s.tokens.reduce((a, b) => a + b, 0) / s.tokens.length) : null,
          };
        });
      return { items, runs_considered: ids.length };
    },
  );
}

/** The ids among `ids` whose run was started by the key `userId`. */
async function ownRuns(ctx: ApiContext, ids: readonly string[], userId: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const batch = ids.slice(i, i + 500);
    const labels = await ctx.labels.getMany(batch);
    batch.forEach((id, j) => {
      if (labels[j]?.user_id === userId) out.push(id);
    });
  }
  return out;
}

/** Nearest-rank percentile of sorted values; null when there are none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] ?? null;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
