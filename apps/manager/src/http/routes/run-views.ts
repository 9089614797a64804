/**
 * Read-only views of runs that the console (and any client) needs beside `GET /api/runs`:
 *
 * - `GET /api/runs/progress?ids=…`: phases done / total, usage and cost, and wall time of many runs in
 *   one call (the runs list shows them per row).
 * - `GET /api/runs/:id/workflow`: the workflow definition the run executes (phases, `depends_on`,
 *   iteration caps), so a client can draw the run's graph at the version it started with.
 *
 * Same visibility as the other run routes: a key that is not an admin key sees only its own runs
 * (others are left out of `progress` and answer 404 on `workflow`).
 */
import { FleetError, fullUsage, isTerminalRun, type PhaseDefinition } from '@agentfleet/core';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { callerOf, isAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema } from '../errors.js';

/** At most this many ids per `progress` call (one page of the runs list is at most 500). */
const MAX_PROGRESS_IDS = 500;

const Usage = z.object({
  input_tokens: z.number(),
  output_tokens: z.number(),
  cache_read_input_tokens: z.number(),
  cache_creation_input_tokens: z.number(),
  cost_usd: z.number().describe('USD, from the price table'),
  thinking_tokens: z.number().optional().describe('of output_tokens, those spent thinking, when the provider reports them'),
});

const RunProgress = z
  .object({
    run_id: z.string(),
    status: z.string(),
    phases_total: z.number().int(),
    phases_done: z.number().int().describe('phases completed or skipped'),
    phases_failed: z.number().int(),
    phases_running: z.number().int(),
    duration_ms: z.number().describe('from start to finish, or to now while the run goes, ms'),
    usage: Usage,
  })
  .meta({ id: 'RunProgress' });

const RunWorkflowPhase = z.object({
  name: z.string(),
  kind: z.enum(['agent', 'approval', 'workflow', 'tool']),
  agent: z.string().describe('agent role (queue); `approval` for approval phases'),
  description: z.string(),
  depends_on: z.array(z.object({ phase: z.string(), optional: z.boolean() })),
  max_iterations: z.number().int(),
  retries: z.number().int(),
  timeout_ms: z.number().describe('per-attempt timeout, ms'),
  instructions: z.string().nullable(),
  input: z.string().nullable(),
  workflow: z.string().nullable().describe('child workflow (kind `workflow`)'),
  tool: z.string().nullable().describe('tool name (kind `tool`)'),
});

const RunWorkflow = z
  .object({
    run_id: z.string(),
    workflow: z.object({ name: z.string(), version: z.string(), description: z.string() }),
    phases: z.array(RunWorkflowPhase),
  })
  .meta({ id: 'RunWorkflow' });

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBodySchema]));

/** Register `GET /api/runs/progress` and `GET /api/runs/:id/workflow`. */
export function registerRunViewRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/api/runs/progress',
    {
      schema: {
        tags: ['runs'],
        operationId: 'getRunsProgress',
        summary: 'Progress, usage and cost of many runs',
        description: `Comma-separated run ids (at most ${MAX_PROGRESS_IDS}). Runs that do not exist, or that the key may not see, are left out.`,
        querystring: z.object({
          ids: z
            .string()
            .min(1, 'ids lists run ids separated by commas')
            .transform((s) => [...new Set(s.split(',').map((id) => id.trim()).filter((id) => id.length > 0))])
            .refine((ids) => ids.length <= MAX_PROGRESS_IDS, `ids lists at most ${MAX_PROGRESS_IDS} run ids`),
        }),
        response: { 200: z.object({ items: z.array(RunProgress) }), ...errors(400, 401, 503) },
      },
    },
    async (request) => {
      const ids = request.query.ids;
      const [labels, runs] = await Promise.all([ctx.labels.getMany(ids), Promise.all(ids.map((id) => ctx.store.getRun(id).catch(() => undefined)))]);
      const admin = isAdmin(request);
      const caller = callerOf(request).id;
      const now = Date.now();
      const items: Array<z.infer<typeof RunProgress>> = [];
      ids.forEach((id, i) => {
        const run = runs[i];
        if (!run || (!admin && labels[i]?.user_id !== caller)) return;
        const { state, meta } = run;
        const statuses = meta.workflow.phases.map((p) => state.phases[p.name]?.status ?? 'pending');
        const start = state.startedAt ?? state.createdAt;
        const end = isTerminalRun(state.status) ? (state.finishedAt ?? now) : now;
        items.push({
          run_id: id,
          status: state.status,
          phases_total: statuses.length,
          phases_done: statuses.filter((s) => s === 'completed' || s === 'skipped').length,
          phases_failed: statuses.filter((s) => s === 'failed').length,
          phases_running: statuses.filter((s) => s === 'running' || s === 'queued' || s === 'retrying').length,
          duration_ms: Math.max(0, end - start),
          usage: fullUsage(state.usage),
        });
      });
      return { items };
    },
  );

  r.get(
    '/api/runs/:id/workflow',
    {
      schema: {
        tags: ['runs'],
        operationId: 'getRunWorkflow',
        summary: 'The workflow definition a run executes (its graph)',
        description: 'Phases with `depends_on`, kinds and iteration caps, at the version the run started with.',
        params: z.object({ id: z.string().min(1).max(128).describe('run id') }),
        response: { 200: RunWorkflow, ...errors(401, 404, 503) },
      },
    },
    async (request) => {
      const id = request.params.id;
      const [{ meta }, labels] = await Promise.all([ctx.store.getRun(id), ctx.labels.get(id)]);
      if (!isAdmin(request) && labels.user_id !== callerOf(request).id) {
        throw new FleetError('RUN_NOT_FOUND', `no run "${id}" among the runs of this API key`);
      }
      const w = meta.workflow;
      return {
        run_id: id,
        workflow: { name: w.name, version: w.version, description: w.description },
        phases: w.phases.map(phaseView),
      };
    },
  );
}

function phaseView(p: PhaseDefinition): z.infer<typeof RunWorkflowPhase> {
  return {
    name: p.name,
    kind: p.kind,
    agent: p.agent,
    description: p.description,
    depends_on: p.dependsOn.map((d) => ({ phase: d.phase, optional: d.optional })),
    max_iterations: p.maxIterations,
    retries: p.retries,
    timeout_ms: p.timeoutMs,
    instructions: p.instructions ?? null,
    input: p.input ?? null,
    workflow: p.workflow ?? null,
    tool: p.tool ?? null,
  };
}
