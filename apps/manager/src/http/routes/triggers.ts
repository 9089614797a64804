/**
 * Triggers: runs that start from an HTTP request, and the per-template webhook secrets.
 *
 * - `POST /api/triggers/:name` starts a run of the trigger's workflow from the request's JSON body
 *   (mapped by the trigger's templates), authenticated by an API key, or by a signature of the body
 *   with the trigger's secret (`X-Fleet-Signature`, `X-Fleet-Timestamp`, `X-Fleet-Delivery`: the
 *   scheme outbound webhooks are signed with, see @agentfleet/core `signature`). A signature that does
 *   not match, a timestamp outside the tolerance, or a delivery id (or signature) seen before answers
 *   401, and nothing starts.
 * - `PUT|GET|DELETE /api/triggers/:name`, `GET /api/triggers`: define, read, remove and list triggers
 *   (admin keys). Secrets are never returned, except once when `generate_secret` made one.
 * - `PUT|DELETE /api/workflow-templates/:name/webhook-secret`: the template's own key for signing its
 *   end-action webhooks (admin keys).
 */
import { randomUUID } from 'node:crypto';
import {
  DELIVERY_HEADER,
  FleetError,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  TriggerInputSchema,
  generateTriggerSecret,
  renderTrigger,
  seenTtlS,
  validateVariables,
  verifySignature,
  viewTrigger,
  type StoredTrigger,
  type WorkflowDefinition,
} from '@agentfleet/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { callerOf, requireAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema } from '../errors.js';

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBodySchema]));
const NameParams = z.object({ name: z.string().min(1).max(64).describe('trigger name') });

const TriggerSchema = z
  .object({
    name: z.string(),
    workflow: z.string(),
    requirements_template: z.string(),
    variables: z.record(z.string(), z.string()),
    debounce: z.object({ key: z.string(), period_s: z.number() }).nullable(),
    description: z.string(),
    has_secret: z.boolean().describe('whether signed deliveries are accepted (the secret itself is never shown)'),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Trigger' });

const TriggerPutBody = TriggerInputSchema.extend({
  generate_secret: z.boolean().optional().describe('make a new random secret and return it in this answer (only here, only once)'),
});

const TriggerFired = z
  .object({
    run_id: z.string(),
    status: z.string(),
    workflow: z.object({ name: z.string(), version: z.string() }),
    trigger: z.string(),
    delivery_id: z.string(),
    debounced: z.boolean().describe('true when the delivery joined the run of a burst already going (200) instead of starting one (201)'),
    location: z.string(),
    events_url: z.string(),
  })
  .meta({ id: 'TriggerFired' });

declare module 'fastify' {
  interface FastifyRequest {
    /** The body as received (set on the trigger route, whose signature covers these exact bytes). */
    rawBody?: string;
  }
}

export async function registerTriggerRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const toleranceS = ctx.options.signatureToleranceS;

  /** The trigger's workflow, checked the way `POST /api/runs` checks a template (active; granted to a key's user type). */
  async function workflowOf(request: FastifyRequest, trigger: StoredTrigger): Promise<{ workflow: WorkflowDefinition; template: string }> {
    const t = await ctx.registry.get(trigger.workflow);
    if (!t.is_active) throw new FleetError('WORKFLOW_NOT_FOUND', `trigger "${trigger.name}": template "${trigger.workflow}" is deactivated; an admin can PUT it to use it again`);
    if (request.apiKey && !(await ctx.access.canUse(request.apiKey.user_type, t.name, t.builtin))) {
      throw new FleetError('FORBIDDEN', `user type "${request.apiKey.user_type}" may not run template "${t.name}"; an admin can grant it with POST /api/permissions`);
    }
    return { workflow: t.definition, template: t.name };
  }

  // The delivery route parses its own JSON, keeping the raw text its signature covers.
  await app.register((scope, _opts, done) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (request, text, done) => {
      const raw = typeof text === 'string' ? text : text.toString('utf8');
      request.rawBody = raw;
      try {
        done(null, raw.trim() === '' ? {} : JSON.parse(raw));
      } catch (err) {
        done(Object.assign(new Error(`the body is not JSON: ${(err as Error).message}`), { statusCode: 400 }), undefined);
      }
    });
    scope.withTypeProvider<ZodTypeProvider>().post(
      '/api/triggers/:name',
      {
        schema: {
          tags: ['triggers'],
          summary: "Start a run of the trigger's workflow from this request",
          description: `The JSON body is mapped into the run's requirements and variables by the trigger's templates. Authenticate with an API key, or sign the raw body with the trigger's secret: \`${TIMESTAMP_HEADER}: <unix s>\`, \`${DELIVERY_HEADER}: <id, the same across retries>\`, \`${SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>\`. A bad signature, a timestamp more than ${toleranceS} s from the server's clock, or a delivery id or signature seen before answers 401. 201 with the new run; 200 when a debounced trigger's delivery joined the run of its burst.`,
          params: NameParams,
          body: z.unknown().describe('any JSON: the trigger\'s templates read it as {{body.<path>}}'),
          headers: z.looseObject({
            [DELIVERY_HEADER]: z.string().max(128).optional().describe('delivery id: required with a signature; with an API key, a repeat of one is refused'),
            [TIMESTAMP_HEADER]: z.string().optional(),
            [SIGNATURE_HEADER]: z.string().optional(),
          }),
          security: [{ apiKey: [] }, {}],
          response: { 200: TriggerFired, 201: TriggerFired, ...errors(400, 401, 403, 404, 409, 503) },
        },
      },
      async (request, reply) => {
        const name = request.params.name;
        const trigger = await ctx.triggers.find(name);
        let deliveryId: string;
        let signature: string | undefined;
        if (request.apiKey) {
          if (!trigger) await ctx.triggers.get(name);
          deliveryId = request.headers[DELIVERY_HEADER] ?? randomUUID();
        } else {
          // Signed: nothing about the trigger is told before the signature checks out.
          if (!trigger?.secret) throw new FleetError('UNAUTHORIZED', `the signature does not match (no trigger "${name}" takes signed deliveries); send an API key, or define the trigger with a secret`);
          const check = verifySignature(trigger.secret, request.headers, request.rawBody ?? '', { toleranceS });
          if (!check.ok) throw new FleetError('UNAUTHORIZED', `trigger "${name}": ${check.reason}`);
          deliveryId = check.deliveryId;
          signature = check.signature;
        }
        const t = trigger as StoredTrigger;
        const rendered = renderTrigger(t, request.body, deliveryId);
        const { workflow, template } = await workflowOf(request, t);
        const seen = await ctx.triggers.markSeen(name, deliveryId, signature, seenTtlS(toleranceS));
        if (seen) {
          throw new FleetError('UNAUTHORIZED', `trigger "${name}": ${seen === 'delivery' ? `delivery ${deliveryId} was received before` : 'this signed request was received before (under another delivery id)'}; a replay is refused (sign each new delivery with a new ${DELIVERY_HEADER})`);
        }
        const runId = randomUUID();
        let joined: string | undefined;
        try {
          if (rendered.debounceKey !== undefined && t.debounce) joined = await ctx.triggers.debounce(name, rendered.debounceKey, runId, t.debounce.period_s * 1000);
          if (joined === undefined) {
            await ctx.labels.set(runId, { user_id: request.apiKey ? callerOf(request).id : `trigger:${name}`, template, trigger: name });
            await ctx.client.submit({ runId, workflow, requirements: rendered.requirements, variables: rendered.variables, provider: ctx.options.provider });
          }
        } catch (err) {
          // Not started: the sender's retry of this delivery must be accepted, and a burst it began must not point at nothing.
          await ctx.triggers.unmarkSeen(name, deliveryId, signature).catch(() => undefined);
          if (joined === undefined && rendered.debounceKey !== undefined) await ctx.triggers.releaseDebounce(name, rendered.debounceKey, runId).catch(() => undefined);
          throw err;
        }
        const id = joined ?? runId;
        const status = joined ? (await ctx.store.getRun(joined).then((x) => x.state.status, () => 'created')) : 'created';
        const location = `/api/runs/${id}`;
        void reply.code(joined ? 200 : 201).header('location', location);
        return { run_id: id, status, workflow: { name: workflow.name, version: workflow.version }, trigger: name, delivery_id: deliveryId, debounced: joined !== undefined, location, events_url: `${location}/events` };
      },
    );
    done();
  });

  r.get(
    '/api/triggers',
    { schema: { tags: ['triggers'], summary: 'List triggers (admin)', response: { 200: z.object({ items: z.array(TriggerSchema) }), ...errors(401, 403, 503) } } },
    async (request) => {
      requireAdmin(request, 'listing triggers');
      return { items: (await ctx.triggers.list()).map(viewTrigger) };
    },
  );

  r.get(
    '/api/triggers/:name',
    { schema: { tags: ['triggers'], summary: 'A trigger (admin; never its secret)', params: NameParams, response: { 200: TriggerSchema, ...errors(401, 403, 404, 503) } } },
    async (request) => {
      requireAdmin(request, 'reading a trigger');
      return viewTrigger(await ctx.triggers.get(request.params.name));
    },
  );

  r.put(
    '/api/triggers/:name',
    {
      schema: {
        tags: ['triggers'],
        summary: 'Define or replace a trigger (admin)',
        description: 'Templates may refer to `{{body.<path>}}`, `{{trigger.name}}` and `{{delivery_id}}`. Replacing a trigger without `secret` or `generate_secret` keeps its secret. 201 when created, 200 when replaced; `secret` is in the answer only when `generate_secret` made it.',
        params: NameParams,
        body: TriggerPutBody,
        response: { 200: TriggerSchema.extend({ secret: z.string().optional() }), 201: TriggerSchema.extend({ secret: z.string().optional() }), ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'defining a trigger');
      const { generate_secret: generate, ...input } = request.body;
      if (generate && input.secret !== undefined) throw new FleetError('INVALID_INPUT', 'give "secret" or "generate_secret", not both');
      // Variables that would hide a phase's output are refused now, not at the first delivery.
      validateVariables((await ctx.registry.get(input.workflow)).definition, input.variables ?? {});
      const secret = generate ? generateTriggerSecret() : input.secret;
      const { trigger, created } = await ctx.triggers.put(request.params.name, { ...input, ...(secret !== undefined ? { secret } : {}) });
      void reply.code(created ? 201 : 200);
      return { ...viewTrigger(trigger), ...(generate ? { secret } : {}) };
    },
  );

  r.delete(
    '/api/triggers/:name',
    { schema: { tags: ['triggers'], summary: 'Remove a trigger (admin)', params: NameParams, response: { 200: z.object({ name: z.string(), deleted: z.literal(true) }), ...errors(401, 403, 404, 503) } } },
    async (request) => {
      requireAdmin(request, 'removing a trigger');
      if (!(await ctx.triggers.remove(request.params.name))) await ctx.triggers.get(request.params.name);
      return { name: request.params.name, deleted: true as const };
    },
  );

  const TemplateParams = z.object({ name: z.string().min(1).max(128).describe('template name') });
  r.put(
    '/api/workflow-templates/:name/webhook-secret',
    {
      schema: {
        tags: ['workflow-templates'],
        summary: "Set the template's own webhook signing secret (admin)",
        description: "The `api_call` end actions of this template's runs are signed with it instead of FLEET_WEBHOOK_SECRET. Send `secret`, or `generate: true` to get a random one back (only in this answer).",
        params: TemplateParams,
        body: z.strictObject({ secret: z.string().min(16).max(512).optional(), generate: z.boolean().optional() }),
        response: { 200: z.object({ template: z.string(), secret: z.string().optional() }), ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      requireAdmin(request, 'setting a webhook secret');
      const { secret, generate } = request.body;
      if ((secret === undefined) === !generate) throw new FleetError('INVALID_INPUT', 'give "secret" (at least 16 characters) or "generate": true, one of them');
      const t = await ctx.registry.get(request.params.name);
      const value = secret ?? generateTriggerSecret();
      await ctx.webhookSecrets.set(t.name, value);
      return { template: t.name, ...(generate ? { secret: value } : {}) };
    },
  );

  r.delete(
    '/api/workflow-templates/:name/webhook-secret',
    {
      schema: {
        tags: ['workflow-templates'],
        summary: "Drop the template's own webhook secret (admin): its webhooks are signed with FLEET_WEBHOOK_SECRET again",
        params: TemplateParams,
        response: { 200: z.object({ template: z.string(), deleted: z.boolean() }), ...errors(401, 403, 503) },
      },
    },
    async (request) => {
      requireAdmin(request, 'removing a webhook secret');
      return { template: request.params.name, deleted: await ctx.webhookSecrets.remove(request.params.name) };
    },
  );
}
