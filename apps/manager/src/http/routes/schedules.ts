/**
 * Schedules: runs that start themselves on a cron or an interval. Reading needs any key; adding,
 * pausing, resuming, removing and triggering need an admin key. The manager's schedule worker
 * starts the runs of the fires (see ../../schedules.ts); a trigger starts its run here, at once.
 */
import { CATCH_UP_POLICIES, FleetError, OVERLAP_POLICIES, ScheduleInputSchema, ScheduleRunner, type ValidationIssue } from '@agentfleet/core';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { callerOf, requireAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema } from '../errors.js';

const NameParams = z.object({ name: z.string().min(1).max(64).describe('schedule name') });

const Schedule = z
  .object({
    name: z.string(),
    workflow: z.string(),
    cron: z.string().nullable(),
    every: z.string().nullable().describe('interval such as "15m" (null for a cron schedule)'),
    tz: z.string(),
    requirements: z.string(),
    variables: z.record(z.string(), z.string()),
    overlap: z.enum(OVERLAP_POLICIES),
    catch_up: z.enum(CATCH_UP_POLICIES),
    misfire_grace: z.string(),
    status: z.enum(['active', 'paused']),
    created_by: z.string().describe('id of the API key that added it; its runs carry it as user_id'),
    created_at: z.string(),
    updated_at: z.string(),
    next_fire_at: z.string().nullable().describe('ISO 8601; null while paused'),
    last_fire_at: z.string().nullable(),
    last_outcome: z.enum(['start', 'skipped', 'missed']).nullable(),
    last_run_id: z.string().nullable(),
    last_error: z.string().nullable().describe('why the last run could not be started (e.g. its workflow was deleted)'),
    fires: z.object({ start: z.number(), skipped: z.number(), missed: z.number() }).describe('fires that started a run, were skipped (overlap) or missed (catch_up none)'),
  })
  .meta({ id: 'Schedule' });

const ScheduleDetail = Schedule.extend({
  runs: z.array(z.object({ run_id: z.string(), fire_time: z.string(), status: z.string().nullable().describe('null once the run left Redis') })).describe('the newest runs it started (at most 20)'),
}).meta({ id: 'ScheduleDetail' });

const FireResult = z
  .object({
    action: z.enum(['start', 'skipped', 'missed', 'dropped']).describe('start: a run was started; skipped: the previous run is still going and overlap is skip'),
    run_id: z.string().optional(),
    previous_run_id: z.string().optional(),
    cancel_run_id: z.string().optional(),
    fire_time: z.number().optional().describe('epoch ms'),
    manual: z.boolean().optional(),
    reason: z.string().optional(),
    location: z.string().optional().describe('the started run'),
  })
  .meta({ id: 'ScheduleFire' });

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBodySchema]));

/** Register the `/api/schedules` routes. */
export function registerScheduleRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const runner = new ScheduleRunner(ctx.redis, ctx.options.prefix, ctx.client, { resolveWorkflow: (name) => ctx.registry.resolve(name) });
  app.addHook('onClose', async () => runner.close());
  const view = async (name: string) => runner.store.view(await runner.store.get(name));

  r.post(
    '/api/schedules',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Add a schedule',
        description:
          'Admin key. Exactly one of `cron` (5 fields, or 6 with seconds first, read in `tz`) and `every` ("15m"). The workflow must exist. 400 names each bad field; 409 when the name is taken.',
        body: ScheduleInputSchema,
        response: { 201: Schedule, ...errors(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'adding a schedule');
      let record;
      try {
        record = await runner.add(request.body, { createdBy: callerOf(request).id, provider: ctx.options.provider });
      } catch (err) {
        throw underBody(err);
      }
      void reply.code(201).header('location', `/api/schedules/${record.definition.name}`);
      return runner.store.view(record);
    },
  );

  r.get(
    '/api/schedules',
    { schema: { tags: ['schedules'], summary: 'List schedules', response: { 200: z.object({ items: z.array(Schedule) }), ...errors(401, 503) } } },
    async () => ({ items: await Promise.all((await runner.store.list()).map((rec) => runner.store.view(rec))) }),
  );

  r.get(
    '/api/schedules/:name',
    { schema: { tags: ['schedules'], summary: 'A schedule, with the newest runs it started', params: NameParams, response: { 200: ScheduleDetail, ...errors(401, 404, 503) } } },
    async (request) => {
      const detail = await view(request.params.name);
      const runs = await runner.store.runs(request.params.name, 20);
      const statuses = await Promise.all(runs.map((run) => ctx.store.getResult(run.run_id).then((res) => res.status, () => null)));
      return { ...detail, runs: runs.map((run, i) => ({ run_id: run.run_id, fire_time: new Date(run.fire_time).toISOString(), status: statuses[i] ?? null })) };
    },
  );

  r.post(
    '/api/schedules/:name/pause',
    { schema: { tags: ['schedules'], summary: 'Pause a schedule (no fires until resumed)', params: NameParams, response: { 200: Schedule, ...errors(401, 403, 404, 503) } } },
    async (request) => {
      requireAdmin(request, 'pausing a schedule');
      return runner.store.view(await runner.store.pause(request.params.name));
    },
  );

  r.post(
    '/api/schedules/:name/resume',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Resume a paused schedule',
        description: 'Fires again from the next fire time on; fires that came due while paused are not made up.',
        params: NameParams,
        response: { 200: Schedule, ...errors(401, 403, 404, 503) },
      },
    },
    async (request) => {
      requireAdmin(request, 'resuming a schedule');
      return runner.store.view(await runner.store.resume(request.params.name));
    },
  );

  r.post(
    '/api/schedules/:name/trigger',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Fire a schedule now',
        description: "Starts a run now (201 with a Location header), under the schedule's overlap policy: with `skip` while its previous run is still going, nothing starts (200, action `skipped`). Works on paused schedules too.",
        params: NameParams,
        response: { 200: FireResult, 201: FireResult, ...errors(401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'triggering a schedule');
      const outcome = await runner.fire({ schedule: request.params.name });
      if (outcome.action === 'start' && outcome.run_id) {
        const location = `/api/runs/${outcome.run_id}`;
        void reply.code(201).header('location', location);
        return { ...outcome, location };
      }
      return outcome;
    },
  );

  r.delete(
    '/api/schedules/:name',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Remove a schedule',
        description: 'Its job scheduler and fire history go; the runs it started stay.',
        params: NameParams,
        response: { 200: z.object({ name: z.string(), removed: z.literal(true) }), ...errors(401, 403, 404, 503) },
      },
    },
    async (request) => {
      requireAdmin(request, 'removing a schedule');
      await runner.store.remove(request.params.name);
      return { name: request.params.name, removed: true as const };
    },
  );
}

/** Validation issues of a schedule named as fields of the request body (`body.cron`). */
function underBody(err: unknown): unknown {
  if (!(err instanceof FleetError) || err.code !== 'INVALID_INPUT') return err;
  const issues = ((err.details?.issues as ValidationIssue[] | undefined) ?? []).map((i) => ({ path: `body.${i.path}`, message: i.message }));
  if (issues.length === 0) return err;
  return new FleetError('INVALID_INPUT', issues.map((i) => `${i.path}: ${i.message}`).join('\n'), { details: { issues } });
}
