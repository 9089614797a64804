/**
 * The OpenAPI 3.1 document of the HTTP API, as `@fastify/swagger` builds it from the routes' zod
 * schemas: document-level fields (servers, tags, security schemes), and two transforms that apply
 * the rules every route shares, so a new route follows them without repeating them:
 *
 * - `security` per operation from the same list of public paths the authentication hook uses
 *   (`auth.ts`): public routes `[]`, every other route a key as Bearer token or `X-API-Key`.
 * - components no operation references are dropped (zod gives every named schema an input and an
 *   output variant; only the ones in use belong in the document).
 *
 * Spec: https://spec.openapis.org/oas/v3.1.1.html
 */
import type { SwaggerOptions } from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { isPublicPath } from './auth.js';

/** Security requirements of a route that needs an API key: either scheme will do. */
export const KEY_SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKeyHeader: [] }];

/** Tags of the document, each with what its operations do. A route's tags must be listed here. */
export const OPENAPI_TAGS = [
  { name: 'runs', description: 'Start runs, list and read them, follow their events live (SSE), cancel, resume, re-run, send external events' },
  { name: 'workflow-templates', description: 'Built-in workflows and registered, versioned workflow templates' },
  { name: 'schedules', description: 'Runs that start themselves on a cron or an interval, with overlap and catch-up policies' },
  { name: 'triggers', description: 'Inbound triggers: start a run from a signed (HMAC) or keyed HTTP delivery' },
  { name: 'permissions', description: 'Which user types may run which templates (admin)' },
  { name: 'api-keys', description: 'API keys and the user type each belongs to (admin)' },
  { name: 'analytics', description: 'Figures over many runs' },
  { name: 'workers', description: 'Agent pools and their queues' },
  { name: 'health', description: 'Liveness and readiness probes (no key needed)' },
  { name: 'docs', description: 'This document (no key needed)' },
];

type OpenApiOptions = NonNullable<Extract<SwaggerOptions, { openapi?: unknown }>['openapi']>;

/** The document-level fields handed to `@fastify/swagger`. */
export const OPENAPI_DOCUMENT: OpenApiOptions = {
  openapi: '3.1.0',
  info: {
    title: 'AgentFleet manager API',
    version: '0.1.0',
    description:
      'Runs, live events (SSE), workflow templates, permissions and analytics. Send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`; `/healthz`, `/readyz` and this document need none.',
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
  },
  // Relative to where this document is served: the manager that serves it (https://spec.openapis.org/oas/v3.1.1.html#relative-references-in-api-urls).
  servers: [{ url: '/', description: 'the manager serving this document' }],
  components: {
    securitySchemes: {
      bearerAuth: { type: 'http', scheme: 'bearer', description: 'an AgentFleet API key (`FLEET_ADMIN_KEY`, `FLEET_API_KEYS`, or one made with POST /api/api-keys)' },
      apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'the same API key in the X-API-Key header' },
    },
  },
  tags: OPENAPI_TAGS,
};

type RouteTransform = typeof jsonSchemaTransform;
type DocumentTransform = typeof jsonSchemaTransformObject;

/** What an error status means on this API (the body is always the `Error` schema). */
const ERROR_DESCRIPTIONS: Record<string, string> = {
  400: 'The request is not valid: `error.issues` names each bad field',
  401: 'No valid API key was sent',
  403: "The key's user type may not do this",
  404: 'No such resource among those this key may see',
  409: 'The request conflicts with the current state (a taken name, a run in the wrong status, a busy conversation)',
  503: 'Redis is not answering; try again shortly',
};

/**
 * {@link jsonSchemaTransform}, then each operation's `security` from whether its path is public, and
 * a description for each error response.
 */
export const transformRoute: RouteTransform = (input) => {
  const out = jsonSchemaTransform(input);
  const schema = out.schema as Record<string, unknown> | undefined;
  if (!schema || schema.hide === true) return out;
  const responses = schema.response as Record<string, Record<string, unknown>> | undefined;
  const described = responses
    ? Object.fromEntries(
        Object.entries(responses).map(([status, response]) => {
          const description = ERROR_DESCRIPTIONS[status];
          if (!description || 'content' in response || response.description !== undefined) return [status, response];
          return [status, { description, content: { 'application/json': { schema: response } } }];
        }),
      )
    : undefined;
  return { ...out, schema: { ...schema, ...(described ? { response: described } : {}), security: isPublicPath(out.url) ? [] : KEY_SECURITY } };
};

/** {@link jsonSchemaTransformObject}, then without the component schemas nothing references. */
export const transformDocument: DocumentTransform = (input) => {
  const doc = jsonSchemaTransformObject(input) as { components?: { schemas?: Record<string, unknown> } } & Record<string, unknown>;
  const schemas = doc.components?.schemas;
  if (!schemas) return doc as ReturnType<DocumentTransform>;
  const used = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
          const name = decodeURIComponent(v.slice('#/components/schemas/'.length));
          if (!used.has(name)) {
            used.add(name);
            visit(schemas[name]);
          }
        } else {
          visit(v);
        }
      }
    }
  };
  const { components, ...rest } = doc;
  visit(rest);
  const kept = Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)));
  return { ...doc, components: { ...components, schemas: kept } } as ReturnType<DocumentTransform>;
};
