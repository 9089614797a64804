/**
 * Permissions (which user type may run which template) and API keys. Admin keys only.
 */
import { FleetError } from '@agentfleet/core';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { ErrorBodySchema } from '../errors.js';

const USER_TYPE = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'user_type must start with a letter and use only letters, digits, "_" or "-"');
const Grant = z.object({ user_type: USER_TYPE, template: z.string().min(1).max(64) });
const KeyRecord = z
  .object({ id: z.string(), user_type: z.string(), name: z.string(), created_at: z.string(), configured: z.boolean() })
  .meta({ id: 'ApiKey' });

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBodySchema]));

export function registerAccessRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/api/permissions',
    {
      schema: {
        tags: ['permissions'],
        operationId: 'listPermissions',
        summary: 'List grants (admin)',
        querystring: z.object({ user_type: USER_TYPE.optional() }),
        response: { 200: z.object({ items: z.array(Grant) }), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => {
      requireAdmin(request, 'reading permissions');
      return { items: await ctx.access.listGrants(request.query.user_type) };
    },
  );

  r.post(
    '/api/permissions',
    {
      schema: {
        tags: ['permissions'],
        operationId: 'grantPermission',
        summary: 'Grant a user type the use of a template (admin)',
        description: 'Built-in workflows are open to every key; admins may run anything.',
        body: Grant,
        response: { 201: Grant, 200: Grant, ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'granting permissions');
      await ctx.registry.get(request.body.template);
      const added = await ctx.access.grant(request.body.user_type, request.body.template);
      void reply.code(added ? 201 : 200);
      return request.body;
    },
  );

  r.delete(
    '/api/permissions',
    {
      schema: {
        tags: ['permissions'],
        operationId: 'revokePermission',
        summary: 'Revoke a grant (admin)',
        querystring: Grant,
        response: { 204: z.null().describe('revoked'), ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'revoking permissions');
      const removed = await ctx.access.revoke(request.query.user_type, request.query.template);
      if (!removed) throw new FleetError('NOT_FOUND', `user type "${request.query.user_type}" has no grant for "${request.query.template}"`);
      return reply.code(204).send(null);
    },
  );

  r.post(
    '/api/api-keys',
    {
      schema: {
        tags: ['api-keys'],
        operationId: 'createApiKey',
        summary: 'Create an API key for a user type (admin)',
        description: 'The key is in this answer only; the server keeps its SHA-256 hash.',
        body: z.object({ user_type: USER_TYPE, name: z.string().max(200).optional() }),
        response: { 201: KeyRecord.extend({ key: z.string() }), ...errors(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'creating API keys');
      const { key, record } = await ctx.access.createKey(request.body.user_type, request.body.name ?? '');
      void reply.code(201).header('location', `/api/api-keys/${record.id}`);
      return { ...record, key };
    },
  );

  r.get(
    '/api/api-keys',
    {
      schema: { tags: ['api-keys'], operationId: 'listApiKeys', summary: 'List API keys, without the keys (admin)', response: { 200: z.object({ items: z.array(KeyRecord) }), ...errors(401, 403, 503) } },
    },
    async (request) => {
      requireAdmin(request, 'listing API keys');
      return { items: await ctx.access.listKeys() };
    },
  );

  r.delete(
    '/api/api-keys/:id',
    {
      schema: {
        tags: ['api-keys'],
        operationId: 'deleteApiKey',
        summary: 'Delete an API key (admin)',
        params: z.object({ id: z.string().min(1).max(64) }),
        response: { 204: z.null().describe('deleted'), ...errors(401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      requireAdmin(request, 'deleting API keys');
      if (!(await ctx.access.deleteKey(request.params.id))) {
        throw new FleetError('NOT_FOUND', `no API key "${request.params.id}" (configured keys cannot be deleted through the API)`);
      }
      return reply.code(204).send(null);
    },
  );
}
