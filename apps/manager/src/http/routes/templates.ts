/**
 * Workflow templates: code-free workflows in the registry. Changes need an admin key. An admin key
 * reads every template; any other key reads the built-ins and the templates granted to its user
 * type (others are not listed and answer 404, as unknown names do), with an `api_call` end
 * action's target shown as its origin only.
 */
import { FleetError, templateForViewer } from '@agentfleet/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { callerOf, requireAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema } from '../errors.js';

const NameParams = z.object({ name: z.string().min(1).max(64).describe('template name') });

const TemplateBody = z
  .record(z.string(), z.unknown(), { error: 'the body must be a workflow template object' })
  .describe(
    'A workflow in the file format (snake_case, durations in seconds: name, description, agents, phases, error_handling, output, variables) ' +
      'plus the template fields: category, tags, guidelines, state_schema (JSON Schema of the final context), end_action_type ' +
      '(api_call | workflow | tool_call | none) and end_action_target. The registry numbers versions itself.',
  );

const Summary = z
  .object({
    name: z.string(),
    version: z.string(),
    is_active: z.boolean(),
    builtin: z.boolean(),
    description: z.string(),
    category: z.string().nullable(),
    tags: z.array(z.string()),
    phases: z.number(),
    end_action_type: z.string(),
    created_at: z.string().nullable(),
    updated_at: z.string().nullable(),
  })
  .meta({ id: 'WorkflowTemplateSummary' });

const Detail = Summary.extend({
  template: z.record(z.string(), z.unknown()).nullable().describe('the template as posted (null for built-ins)'),
  definition: z.record(z.string(), z.unknown()).describe('the compiled definition (durations in ms)'),
  versions: z.number(),
}).meta({ id: 'WorkflowTemplate' });

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBodySchema]));

export function registerTemplateRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  /** The registered templates the caller may see: undefined for every one (an admin key). */
  async function visibleTo(request: FastifyRequest): Promise<ReadonlySet<string> | undefined> {
    const granted = await ctx.access.grantedTemplates(callerOf(request).user_type);
    return granted === 'all' ? undefined : granted;
  }

  r.post(
    '/api/workflow-templates',
    {
      schema: {
        tags: ['workflow-templates'],
        operationId: 'createWorkflowTemplate',
        summary: 'Register a template (version 1)',
        description: 'Admin key. 400 lists every problem with its path; 409 when the name is taken (or built in).',
        body: TemplateBody,
        response: { 201: Detail, ...errors(400, 401, 403, 409, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'registering a template');
      const t = await ctx.registry.create(request.body);
      void reply.code(201).header('location', `/api/workflow-templates/${t.name}`);
      return t as unknown as z.infer<typeof Detail>;
    },
  );

  r.post(
    '/api/workflow-templates/validate',
    {
      schema: {
        tags: ['workflow-templates'],
        operationId: 'validateWorkflowTemplate',
        summary: 'Check a template as registering it would, storing nothing',
        description:
          'Admin key. The same checks as POST /api/workflow-templates: 200 with the compiled definition of its version 1 when it would register now; ' +
          '400 lists every problem with its path (`issues[].path`, e.g. `phases[1].depends_on[0]`); 409 when the name is built in or registered.',
        body: TemplateBody,
        response: {
          200: z
            .object({
              valid: z.literal(true),
              name: z.string(),
              phases: z.number().describe('number of phases'),
              definition: z.record(z.string(), z.unknown()).describe('the compiled definition (durations in ms)'),
            })
            .meta({ id: 'WorkflowTemplateValidation' }),
          ...errors(400, 401, 403, 409, 503),
        },
      },
    },
    async (request) => {
      requireAdmin(request, 'validating a template');
      const definition = await ctx.registry.validate(request.body);
      return { valid: true as const, name: definition.name, phases: definition.phases.length, definition: definition as unknown as Record<string, unknown> };
    },
  );

  r.get(
    '/api/workflow-templates',
    {
      schema: {
        tags: ['workflow-templates'],
        operationId: 'listWorkflowTemplates',
        summary: 'List built-in and registered templates',
        description: 'An admin key lists every template; any other key the built-ins and the templates granted to its user type.',
        querystring: z.object({
          category: z.string().optional(),
          is_active: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
          q: z.string().max(200).optional().describe('free text over name, description, category and tags'),
          skip: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
        response: { 200: z.object({ items: z.array(Summary), total: z.number(), skip: z.number(), limit: z.number() }), ...errors(400, 401, 503) },
      },
    },
    async (request) => {
      const q = request.query;
      const { items, total } = await ctx.registry.list({ ...q, registered: await visibleTo(request) });
      return { items, total, skip: q.skip, limit: q.limit };
    },
  );

  r.get(
    '/api/workflow-templates/:name',
    {
      schema: {
        tags: ['workflow-templates'],
        operationId: 'getWorkflowTemplate',
        summary: 'A template, at its current version or at ?version=n',
        description: 'Any other key than an admin key: 404 for a template not granted to its user type, and an api_call end_action_target shown as its origin only.',
        params: NameParams,
        querystring: z.object({ version: z.coerce.number().int().min(1).optional() }),
        response: { 200: Detail, ...errors(401, 404, 503) },
      },
    },
    async (request) => {
      const visible = await visibleTo(request);
      const t = await ctx.registry.get(request.params.name, request.query.version);
      if (visible === undefined) return t as unknown as z.infer<typeof Detail>;
      // Not granted: answered as an unknown name is, so a key cannot learn which templates exist.
      if (!t.builtin && !visible.has(t.name)) {
        throw new FleetError('WORKFLOW_NOT_FOUND', `no workflow template "${request.params.name}"; list them with GET /api/workflow-templates or \`fleet workflows list\``);
      }
      return templateForViewer(t) as unknown as z.infer<typeof Detail>;
    },
  );

  r.put(
    '/api/workflow-templates/:name',
    {
      schema: {
        tags: ['workflow-templates'],
        operationId: 'updateWorkflowTemplate',
        summary: 'Store a new version (runs keep the version they started with)',
        description: 'Admin key. Also activates a deactivated template.',
        params: NameParams,
        body: TemplateBody,
        response: { 200: Detail, ...errors(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      requireAdmin(request, 'changing a template');
      return (await ctx.registry.update(request.params.name, request.body)) as unknown as z.infer<typeof Detail>;
    },
  );

  r.delete(
    '/api/workflow-templates/:name',
    {
      schema: {
        tags: ['workflow-templates'],
        operationId: 'deactivateWorkflowTemplate',
        summary: 'Deactivate a template (its versions are kept)',
        description: 'Admin key. Built-in workflows cannot be deleted (409).',
        params: NameParams,
        response: { 204: z.null().describe('deactivated'), ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'deleting a template');
      await ctx.registry.deactivate(request.params.name);
      return reply.code(204).send(null);
    },
  );
}
