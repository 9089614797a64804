/**
 * Runs: submit, list, read, follow (SSE), cancel, resume, rerun, and external events.
 *
 * A key that is not an admin key sees only the runs it started (others answer 404).
 */
import { randomUUID } from 'node:crypto';
import {
  didYouMean,
  BudgetSchema,
  ConcurrencySchema,
  PrioritySchema,
  FleetError,
  compileBudget,
  compileWorkflow,
  conversationScope,
  incomingTraceCarrier,
  isTerminalRun,
  validateEventData,
  validateRequirements,
  validateVariableLimits,
  type RunLabels,
  type RunResult,
  type RunState,
  type WorkflowDefinition,
} from '@agentfleet/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { callerOf, isAdmin, requireAdmin } from '../auth.js';
import type { RunListFilter } from '../../archive/history-store.js';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema } from '../errors.js';
import { RUN_EVENT_STREAM_EVENTS, RunEventMessage } from '../run-event-schema.js';
import { sendEventStream, sseMessage, streamRunEvents } from '../sse.js';
import { IDEMPOTENCY_HEADER, claimIdempotencyKey, repeatedRun, settleIdempotencyKey } from '../idempotency.js';
import { streamIdSchema } from '../stream-id.js';
import { LIST_SCAN_LIMIT, listIndexedRuns, listRunsByIds, makeCursor, newestFirst, parseCursor, type ListPosition } from '../run-list.js';

const RUN_STATUSES = ['created', 'queued', 'active', 'waiting', 'completed', 'failed', 'cancelled'] as const;

const RunIdParams = z.object({ id: z.string().min(1).max(128).describe('run id') });

/** The fields of a submission, for "did you mean" on an unknown one. */
const SUBMIT_FIELDS = ['requirements', 'workflow', 'template', 'template_version', 'variables', 'conversation_id', 'budget', 'mode', 'concurrency', 'priority'];

const SubmitBody = z
  .strictObject({
    requirements: z.string({ error: 'requirements must be a string: what to build, in plain language' }).describe('what to build, in plain language (at most 256 KiB)'),
    workflow: z
      .union([z.string().min(1), z.record(z.string(), z.unknown())], { error: 'workflow must be a template name or an inline workflow object' })
      .optional()
      .describe('a template or built-in workflow name, or an inline workflow definition (admin keys only)'),
    template: z.string().min(1).optional().describe('a template or built-in workflow name (same as a string `workflow`)'),
    template_version: z.number().int().min(1).optional().describe('run this version of a registered template instead of the current one'),
    variables: z.record(z.string(), z.string(), { error: 'variables must map names to strings' }).optional(),
    conversation_id: z.string().min(1).max(256).optional().describe('at most one active run per conversation: a second gets 409'),
    budget: BudgetSchema.optional().describe(
      "caps on the run's model spend (`max_tokens`: input + output + cache tokens; `max_cost_usd`: USD from the price table); the tighter of this and the workflow's `budget` applies, and a phase that would pass it fails with BUDGET_EXCEEDED",
    ),
    mode: z.enum(['direct', 'batch'], { error: 'mode must be "direct" or "batch"' }).optional().describe("`batch`: every agent phase sends its model calls through the Message Batches API (half price, results within hours)"),
    concurrency: ConcurrencySchema.optional().describe(
      'overrides the workflow\'s `concurrency`: at most `limit` runs per `key` (a template over the variables, e.g. "{{tenant}}") active at once; the rest are `queued` and start in submission order as the key\'s runs finish',
    ),
    priority: PrioritySchema.optional().describe("overrides the workflow's `priority`: 1 (least urgent) .. 10 (most urgent), default 5; the run's phase jobs are taken before those of less urgent runs"),
  }, {
    // A misspelt field ("budjet") would otherwise be dropped without a word.
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((k) => `unknown field "${k}"${didYouMean(k, SUBMIT_FIELDS)}; fields: ${SUBMIT_FIELDS.join(', ')}`).join('; ')
        : undefined,
  })
  .refine((b) => b.workflow !== undefined || b.template !== undefined, { message: 'give "template" (a name) or "workflow"', path: ['template'] })
  .refine((b) => !(b.workflow !== undefined && b.template !== undefined), { message: 'give either "template" or "workflow", not both', path: ['workflow'] });

const RunCreated = z
  .object({
    run_id: z.string(),
    status: z.string(),
    workflow: z.object({ name: z.string(), version: z.string() }),
    location: z.string(),
    events_url: z.string(),
  })
  .meta({ id: 'RunCreated' });

const RunSummary = z
  .object({
    run_id: z.string(),
    status: z.enum(RUN_STATUSES),
    workflow: z.object({ name: z.string(), version: z.string() }),
    created_at: z.string(),
    finished_at: z.string().nullable(),
    user_id: z.string().nullable(),
    conversation_id: z.string().nullable(),
    template: z.string().nullable(),
    schedule: z.string().nullable().optional().describe('the schedule that started the run'),
  })
  .meta({ id: 'RunSummary' });

const RunDetail = z
  .looseObject({
    run_id: z.string(),
    status: z.enum(RUN_STATUSES),
    workflow: z.object({ name: z.string(), version: z.string() }),
    phases: z.array(z.looseObject({ name: z.string(), agent: z.string(), status: z.string() })),
    results: z.record(z.string(), z.unknown()),
    user_id: z.string().nullable(),
    conversation_id: z.string().nullable(),
    template: z.string().nullable(),
    parent_run_id: z.string().nullable(),
    schedule: z.string().nullable().describe('the schedule that started the run'),
    schedule_fire_time: z.string().nullable().describe('the fire time the run stands for (ISO 8601)'),
    end_action: z.looseObject({ type: z.string(), target: z.string(), status: z.string(), attempts: z.number() }).nullable(),
  })
  .describe('the result shape of `fleet run --json` (live while the run goes), plus who started it and how its end action went')
  .meta({ id: 'Run' });

const Accepted = z.object({ run_id: z.string(), status: z.string() });
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBodySchema]));

export function registerRunRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  /** The run's labels, or 404 when the caller may not see it. */
  async function visibleRun(request: FastifyRequest, id: string): Promise<{ state: RunState; labels: Awaited<ReturnType<typeof ctx.labels.get>> }> {
    const [{ state }, labels] = await Promise.all([ctx.store.getRun(id), ctx.labels.get(id)]);
    if (!isAdmin(request) && labels.user_id !== callerOf(request).id) {
      throw new FleetError('RUN_NOT_FOUND', `no run "${id}" among the runs of this API key`);
    }
    return { state, labels };
  }

  /** A run Redis no longer holds (its retention passed), from the archive; undefined without one. */
  async function visibleArchivedRun(request: FastifyRequest, id: string): Promise<{ result: RunResult; labels: Record<string, unknown> } | undefined> {
    const archived = await ctx.history?.get(id);
    if (!archived) return undefined;
    if (!isAdmin(request) && archived.labels.user_id !== callerOf(request).id) return undefined;
    return archived;
  }

  /**
   * Running a run's workflow again (resume, rerun) needs the same right as starting it: the caller's
   * user type must still be granted its template, and the template must still be active.
   */
  async function mayRunAgain(request: FastifyRequest, labels: Awaited<ReturnType<typeof ctx.labels.get>>): Promise<void> {
    if (isAdmin(request) || !labels.template) return;
    const t = await ctx.registry.get(labels.template).catch(() => undefined);
    if (!t?.is_active) throw new FleetError('FORBIDDEN', `template "${labels.template}" is no longer active; an admin can PUT it to use it again`);
    const caller = callerOf(request);
    if (!(await ctx.access.canUse(caller.user_type, t.name, t.builtin))) {
      throw new FleetError('FORBIDDEN', `user type "${caller.user_type}" may no longer run template "${t.name}"; an admin can grant it with POST /api/permissions`);
    }
  }

  async function resolveWorkflow(request: FastifyRequest, body: z.infer<typeof SubmitBody>): Promise<{ workflow: WorkflowDefinition; template: string }> {
    const caller = callerOf(request);
    if (typeof body.workflow === 'object') {
      requireAdmin(request, 'an inline workflow definition');
      const workflow = compileWorkflow(body.workflow);
      return { workflow, template: workflow.name };
    }
    const name = (body.template ?? body.workflow) as string;
    const t = await ctx.registry.get(name, body.template_version);
    if (!t.is_active) throw new FleetError('WORKFLOW_NOT_FOUND', `template "${name}" is deactivated; an admin can PUT it to use it again`);
    if (!(await ctx.access.canUse(caller.user_type, t.name, t.builtin))) {
      throw new FleetError('FORBIDDEN', `user type "${caller.user_type}" may not run template "${t.name}"; an admin can grant it with POST /api/permissions`);
    }
    return { workflow: t.definition, template: t.name };
  }

  r.post(
    '/api/runs',
    {
      schema: {
        tags: ['runs'],
        operationId: 'submitRun',
        summary: 'Start a run',
        description:
          'Validates everything before anything is enqueued. Answers 201 with a Location header. With an `Idempotency-Key` header, a repeat of the same body within 24 h answers 200 with the first run (same id), and the same key with a different body answers 409.',
        body: SubmitBody,
        headers: z
          .object({
            [IDEMPOTENCY_HEADER]: z.string().min(1).max(200).optional().describe("retry this request safely: a repeat within 24 h gets the first run back (200); scoped to the API key's user"),
          })
          .catchall(z.union([z.string(), z.array(z.string())]).optional()),
        response: { 200: RunCreated, 201: RunCreated, ...errors(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      try {
        validateRequirements(body.requirements);
      } catch (err) {
        const message = (err as Error).message;
        throw new FleetError('INVALID_INPUT', `body.requirements: ${message}`, { details: { issues: [{ path: 'body.requirements', message }] } });
      }
      validateVariableLimits(body.variables ?? {}, 'body.variables');
      const { workflow, template } = await resolveWorkflow(request, body);
      // Everything the submission checks is checked before the first write (idempotency key, run
      // labels, conversation), so a refused request leaves nothing in Redis.
      const budget = compileBudget(body.budget);
      ctx.client.validateSubmission({
        workflow,
        requirements: body.requirements,
        variables: body.variables ?? {},
        ...(body.concurrency ? { concurrency: body.concurrency } : {}),
        ...(body.priority !== undefined ? { priority: body.priority } : {}),
      });
      const idempotency = await claimIdempotencyKey(ctx, request, body, randomUUID());
      if (idempotency.repeatOf) {
        const first = await repeatedRun(ctx, idempotency.repeatOf, workflow);
        void reply.code(200).header('location', first.location);
        return first;
      }
      const runId = idempotency.held?.claim.runId ?? randomUUID();
      const labels: RunLabels = { user_id: callerOf(request).id, template, ...(body.conversation_id ? { conversation_id: body.conversation_id } : {}) };
      if (body.conversation_id) {
        // Conversations belong to the key's user: another user's conversation of the same name is a different one.
        const holder = await ctx.labels.claimConversation(conversationScope(callerOf(request).id, body.conversation_id), runId);
        if (holder) {
          await settleIdempotencyKey(ctx, idempotency.held, false);
          throw new FleetError('CONFLICT', `conversation "${body.conversation_id}" already has an active run: ${holder}; wait for it to finish or cancel it`, {
            details: { active_run_id: holder },
          });
        }
      }
      let created = false;
      try {
        await ctx.labels.set(runId, labels);
        // A caller's W3C trace context continues into the run: its span becomes the run span's parent.
        const trace = incomingTraceCarrier(request.headers.traceparent, request.headers.tracestate);
        await ctx.client.submit({
          runId, workflow, requirements: body.requirements, variables: body.variables ?? {}, provider: ctx.options.provider, trace,
          ...(budget ? { budget } : {}),
          ...(body.mode === 'batch' ? { callMode: 'batch' as const } : {}),
          ...(body.concurrency ? { concurrency: body.concurrency } : {}),
          ...(body.priority !== undefined ? { priority: body.priority } : {}),
        });
        created = true;
      } finally {
        if (body.conversation_id) await ctx.labels.settleConversation(conversationScope(callerOf(request).id, body.conversation_id), runId, created);
        await settleIdempotencyKey(ctx, idempotency.held, created);
      }
      const location = `/api/runs/${runId}`;
      void reply.code(201).header('location', location);
      // A run over its concurrency key's limit answers `queued` (it waits for a slot).
      const queued = (body.concurrency ?? workflow.concurrency)?.limit !== undefined && (await ctx.store.getRun(runId)).state.status === 'queued';
      return { run_id: runId, status: queued ? 'queued' : 'created', workflow: { name: workflow.name, version: workflow.version }, location, events_url: `${location}/events` };
    },
  );

  r.get(
    '/api/runs',
    {
      schema: {
        tags: ['runs'],
        operationId: 'listRuns',
        summary: 'List runs, newest first',
        description:
          `With the run archive (FLEET_HISTORY_URL): archived runs from PostgreSQL (indexed, no scan limit) and runs not archived yet from Redis. ` +
          `Without it, runs come from Redis's run index (newest first, by creation time): a page reads the index from its cursor on and stops once it is full, ` +
          `looking at ${LIST_SCAN_LIMIT} runs at most; a page cut short there has fewer than \`limit\` items, \`has_more\` true and a \`next_cursor\` that goes on after the last run looked at. ` +
          `Page with \`cursor\` (the previous page's \`next_cursor\`); \`skip\` is for small offsets. Filters combine with AND. Keys that are not admin keys see only their own runs (\`user_id\` of another user answers an empty page).`,
        querystring: z.object({
          status: z.enum(RUN_STATUSES).optional(),
          workflow: z.string().optional().describe('workflow (template) name'),
          user_id: z.string().optional().describe('id of the API key that started the run (`user_id` of a run)'),
          conversation_id: z.string().optional().describe('only runs of this conversation (`conversation_id` given at submit)'),
          schedule: z.string().optional().describe('only runs started by this schedule'),
          created_after: z.iso.datetime({ offset: true }).optional().describe('only runs created at or after this time (ISO 8601)'),
          created_before: z.iso.datetime({ offset: true }).optional().describe('only runs created before this time (ISO 8601)'),
          q: z
            .string()
            .min(1)
            .max(500)
            .optional()
            .describe('search: runs whose requirements hold every word (case-insensitive), or, for one word, whose run id starts with it'),
          cursor: z.string().max(512).optional().describe('`next_cursor` of the previous page: the page after it'),
          skip: z.coerce.number().int().min(0).max(10_000).default(0),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
        response: {
          200: z.object({ items: z.array(RunSummary), skip: z.number(), limit: z.number(), has_more: z.boolean(), next_cursor: z.string().nullable() }),
          ...errors(400, 401, 503),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const userId = isAdmin(request) ? q.user_id : callerOf(request).id;
      if (!isAdmin(request) && q.user_id !== undefined && q.user_id !== userId) return { items: [], skip: q.skip, limit: q.limit, has_more: false, next_cursor: null };
      const filter: RunListFilter = {
        status: q.status,
        workflow: q.workflow,
        userId,
        conversationId: q.conversation_id,
        schedule: q.schedule,
        createdFrom: q.created_after === undefined ? undefined : Date.parse(q.created_after),
        createdTo: q.created_before === undefined ? undefined : Date.parse(q.created_before),
        text: q.q,
        before: q.cursor === undefined ? undefined : parseCursor(q.cursor),
      };
      const wanted = q.skip + q.limit + 1;
      let rows: Array<z.infer<typeof RunSummary>>;
      let scannedTo: ListPosition | undefined;
      if (ctx.history) {
        // Runs not archived yet (in flight, or finished and waiting for the archive) come from Redis.
        const hot = [...new Set([...(await ctx.store.activeRunIds()), ...(await ctx.redis.zrange(ctx.store.archivePendingKey, '0', '-1'))])];
        const [fromRedis, fromArchive] = await Promise.all([listRunsByIds(ctx, hot, filter, wanted), ctx.history.list(filter, wanted)]);
        const seen = new Set(fromRedis.map((r) => r.run_id));
        rows = [...fromRedis, ...fromArchive.filter((r) => !seen.has(r.run_id))].sort(newestFirst).slice(0, wanted);
      } else {
        ({ rows, scannedTo } = await listIndexedRuns(ctx, filter, wanted));
      }
      const items = rows.slice(q.skip, q.skip + q.limit);
      const last = items[items.length - 1];
      // A full page goes on after its last row; a page cut short by the scan limit goes on after the last run looked at.
      const next = rows.length > q.skip + q.limit && last ? { createdAt: Date.parse(last.created_at), runId: last.run_id } : scannedTo;
      return { items, skip: q.skip, limit: q.limit, has_more: next !== undefined, next_cursor: next ? makeCursor(next) : null };
    },
  );

  r.get(
    '/api/runs/:id',
    {
      schema: { tags: ['runs'], operationId: 'getRun', summary: "A run's result (live while it runs)", params: RunIdParams, response: { 200: RunDetail, ...errors(401, 404, 503) } },
    },
    async (request) => {
      let labels: Awaited<ReturnType<typeof ctx.labels.get>>;
      try {
        ({ labels } = await visibleRun(request, request.params.id));
      } catch (err) {
        if (!(err instanceof FleetError && err.code === 'RUN_NOT_FOUND')) throw err;
        const archived = await visibleArchivedRun(request, request.params.id);
        if (!archived) throw err;
        const l = archived.labels;
        const detail = {
          ...archived.result,
          user_id: l.user_id ?? null,
          conversation_id: l.conversation_id ?? null,
          template: l.template ?? null,
          parent_run_id: l.parent_run_id ?? null,
          schedule: l.schedule ?? null,
          schedule_fire_time: l.schedule_fire_time ?? null,
          end_action: l.end_action ?? null,
          ...(l.trigger ? { trigger: l.trigger } : {}),
        };
        return detail as unknown as z.infer<typeof RunDetail>;
      }
      const result = await ctx.client.result(request.params.id);
      const detail = {
        ...result,
        user_id: labels.user_id ?? null,
        conversation_id: labels.conversation_id ?? null,
        template: labels.template ?? null,
        parent_run_id: labels.parent_run_id ?? null,
        schedule: labels.schedule ?? null,
        schedule_fire_time: labels.schedule_fire_time ?? null,
        end_action: labels.end_action ?? null,
        // The trigger whose delivery started the run (POST /api/triggers/:name), when one did.
        ...(labels.trigger ? { trigger: labels.trigger } : {}),
      };
      return detail as unknown as z.infer<typeof RunDetail>;
    },
  );

  r.get(
    '/api/runs/:id/events',
    {
      schema: {
        tags: ['runs'],
        operationId: 'streamRunEvents',
        summary: "Follow a run's events (Server-Sent Events)",
        description:
          'text/event-stream: one message per run event (`id` = stream id, `event` = type, `data` = JSON), from the start or after `Last-Event-ID` (header, or `last_event_id` query), ending after `run_finished` and, when the workflow has an end action, after its final `end_action` event (outcome succeeded, failed or skipped). With `output=true`, also `phase_output_delta` messages (no `id`): the output of running phases as the model writes it. 429 TOO_MANY_STREAMS when the key already holds FLEET_SSE_MAX_STREAMS_PER_KEY open streams on this API process.',
        params: RunIdParams,
        querystring: z.object({
          last_event_id: streamIdSchema('last_event_id').optional(),
          output: z.enum(['true', 'false'], 'output must be true or false').optional().describe('also stream phase_output_delta messages'),
        }),
        headers: z.looseObject({ 'last-event-id': streamIdSchema('Last-Event-ID').optional() }),
        response: {
          200: { description: `Server-Sent Events; \`event\` is one of: ${RUN_EVENT_STREAM_EVENTS.join(', ')}`, content: { 'text/event-stream': { schema: RunEventMessage } } },
          ...errors(400, 401, 404, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const after = request.headers['last-event-id'] ?? request.query.last_event_id ?? '0';
      try {
        await visibleRun(request, request.params.id);
      } catch (err) {
        if (!(err instanceof FleetError && err.code === 'RUN_NOT_FOUND') || !(await visibleArchivedRun(request, request.params.id)) || !ctx.history) throw err;
        // Past its retention in Redis: the archived events after `after`, then the stream ends.
        const events = (await ctx.history.events(request.params.id)).filter((e) => after === '0' || compareStreamIds(e.id, after) > 0);
        sendEventStream(reply, events.map((e) => sseMessage(e.id, e.event.type, e.event)).join(''));
        return reply;
      }
      await streamRunEvents(ctx, reply, request.params.id, after, callerOf(request).id, { output: request.query.output === 'true' });
      return reply;
    },
  );

  r.post(
    '/api/runs/:id/cancel',
    {
      schema: {
        tags: ['runs'],
        operationId: 'cancelRun',
        summary: 'Cancel a run',
        description: 'Phases in flight are aborted and nothing else is enqueued. 409 when the run already finished.',
        params: RunIdParams,
        body: z.object({ reason: z.string().max(1000).optional() }).nullish(),
        response: { 202: Accepted, ...errors(401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { state } = await visibleRun(request, request.params.id);
      if (isTerminalRun(state.status)) throw new FleetError('INVALID_STATE', `run ${request.params.id} is ${state.status}; only runs that are still going can be cancelled`);
      await ctx.client.cancel(request.params.id, request.body?.reason ?? `cancelled through the API by ${callerOf(request).id}`);
      void reply.code(202);
      return { run_id: request.params.id, status: 'cancelling' };
    },
  );

  r.post(
    '/api/runs/:id/resume',
    {
      schema: {
        tags: ['runs'],
        operationId: 'resumeRun',
        summary: 'Resume a failed or cancelled run',
        description: 'Completed phases keep their outputs and are not run again. 409 unless the run failed or was cancelled.',
        params: RunIdParams,
        response: { 202: Accepted, ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { labels } = await visibleRun(request, request.params.id);
      await mayRunAgain(request, labels);
      await ctx.client.resume(request.params.id);
      void reply.code(202);
      return { run_id: request.params.id, status: 'resuming' };
    },
  );

  r.post(
    '/api/runs/:id/rerun',
    {
      schema: {
        tags: ['runs'],
        operationId: 'rerunRun',
        summary: 'Re-run from a phase, with edited requirements',
        description: 'Starts a new run of the same workflow version that reuses the outputs of the phases before `from`.',
        params: RunIdParams,
        body: z.object({
          from: z.string().min(1).describe('the phase to run again (and everything after it)'),
          requirements: z.string().optional().describe('edited requirements; the original ones by default'),
        }),
        response: { 201: RunCreated, ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const { labels } = await visibleRun(request, request.params.id);
      await mayRunAgain(request, labels);
      if (request.body.requirements !== undefined) validateRequirements(request.body.requirements);
      const newId = await ctx.client.rerun(request.params.id, {
        from: request.body.from,
        ...(request.body.requirements !== undefined ? { requirements: request.body.requirements } : {}),
      });
      await ctx.labels.set(newId, { user_id: callerOf(request).id, ...(labels.template ? { template: labels.template } : {}) });
      const result = await ctx.client.result(newId);
      const location = `/api/runs/${newId}`;
      void reply.code(201).header('location', location);
      return { run_id: newId, status: result.status, workflow: result.workflow, location, events_url: `${location}/events` };
    },
  );

  r.delete(
    '/api/runs/:id',
    {
      schema: {
        tags: ['runs'],
        operationId: 'deleteRun',
        summary: 'Delete a run from Redis and the archive (admin)',
        description: 'Removes every Redis key of the run and its archived rows. 409 while the run is still going (cancel it first).',
        params: RunIdParams,
        response: { 200: z.object({ run_id: z.string(), deleted: z.object({ redis: z.boolean(), archive: z.boolean() }) }), ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      requireAdmin(request, 'deleting a run');
      const id = request.params.id;
      const state = await ctx.store.getRun(id).then(
        (r) => r.state,
        () => undefined,
      );
      if (state && !isTerminalRun(state.status)) throw new FleetError('INVALID_STATE', `run ${id} is ${state.status}; cancel it before deleting it`);
      const redis = await ctx.store.purgeRun(id);
      const archive = ctx.history ? (await ctx.history.delete([id])) > 0 : false;
      if (!redis && !archive) throw new FleetError('RUN_NOT_FOUND', `no run "${id}" in Redis${ctx.history ? ' or the archive' : ''}`);
      return { run_id: id, deleted: { redis, archive } };
    },
  );

  r.post(
    '/api/runs/:id/events',
    {
      schema: {
        tags: ['runs'],
        operationId: 'sendRunEvent',
        summary: 'Send an external event (approval, answers) to a run',
        description:
          'For phases waiting on an event: `approval` with `{"approved": true|false}`, `approve`, `reject`, `budget` with `{"add_usd": 2}` and/or `{"add_tokens": 10000}` (raises the budget a phase waits on; 400 for anything else), or the type an agent asked for: a planner\'s open questions (`waiting_for[].prompt`, a list) are answered with `answers` and `{"answers": {"<question>": "<answer>"}}`, and the phase runs again with them. 409 when the run finished.',
        params: RunIdParams,
        body: z.object({
          type: z.string().min(1).max(64).describe('event type'),
          data: z.unknown().optional(),
          id: z
            .string()
            .regex(/^[A-Za-z0-9_-]{1,64}$/)
            .optional()
            .describe('idempotency key: an event with an id the run already received is applied once (retry a POST safely with the same id)'),
        }),
        response: { 202: Accepted, ...errors(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      validateEventData(request.body.data, 'body.data');
      await visibleRun(request, request.params.id);
      await ctx.client.sendEvent(request.params.id, request.body.type, request.body.data ?? {}, request.body.id);
      void reply.code(202);
      return { run_id: request.params.id, status: 'event_accepted' };
    },
  );
}

/** Order of two Redis stream ids (`<ms>-<seq>`). */
function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}
