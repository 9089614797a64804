/**
 * API-key authentication. A key comes in `Authorization: Bearer <key>`, `X-API-Key: <key>`, or as the
 * password of HTTP Basic auth (so a browser can open the queue dashboard). Routes under `/api` and
 * `/admin` need a valid key; `/healthz`, `/readyz`, `/openapi.json`, `/docs` and the console's files under
 * `/ui` are public. A `POST /api/triggers/:name` that carries `X-Fleet-Signature` and no key is let
 * through to its route, which checks the signature instead (routes/triggers.ts).
 */
import { ADMIN_USER_TYPE, FleetError, SIGNATURE_HEADER, type AccessStore, type ApiKeyRecord } from '@agentfleet/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { statusOf, toHttpError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated key's record (set on `/api` and `/admin` routes). */
    apiKey: ApiKeyRecord | null;
  }
}

// `/ui` is the console's static files (no data: the page calls the API with the key it signs in with).
const PUBLIC = [/^\/healthz$/, /^\/readyz$/, /^\/openapi\.json$/, /^\/docs(\/|$)/, /^\/ui(\/|$)/];
// A trigger delivery may come signed instead of with a key: its route checks the signature (routes/triggers.ts).
const SIGNED = /^\/api\/triggers\/[^/]+$/;

/** Whether `path` (as routed, without the query) is served without an API key. The OpenAPI document's per-route `security` comes from here too. */
export function isPublicPath(path: string): boolean {
  return PUBLIC.some((p) => p.test(path));
}

/** The key a request carries, if any. */
export function keyOf(request: FastifyRequest, allowBasic = true): string | undefined {
  const auth = request.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
  if (allowBasic && auth?.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice('Basic '.length), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    return i >= 0 ? decoded.slice(i + 1) : decoded;
  }
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

/**
 * The request path decoded the way Fastify's router decodes it, so checks on it cannot be dodged by
 * percent-encoding. A path that does not decode is kept as is (the router answers 400 or 404 for it).
 */
export function routedPath(request: FastifyRequest): string {
  const raw = request.url.split('?')[0] ?? '';
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // malformed escape: keep the raw path
  }
  return decoded;
}

/** Authenticate every non-public request; 401 without a valid key. */
export function registerAuth(app: FastifyInstance, access: AccessStore): void {
  app.decorateRequest('apiKey', null);
  app.addHook('onRequest', async (request, reply) => {
    // The path as the router sees it (percent-decoded, case as routed): `/%61dmin/queues` is `/admin/queues`.
    const path = routedPath(request);
    if (isPublicPath(path)) return;
    if (request.method === 'POST' && SIGNED.test(path) && request.headers[SIGNATURE_HEADER] !== undefined && keyOf(request, false) === undefined) return;
    let record: ApiKeyRecord | undefined;
    try {
      // Basic credentials (a browser opening the dashboard caches them) count only for the dashboard, so a
      // cross-site form cannot ride on them into the API.
      record = await access.authenticate(keyOf(request, path.startsWith('/admin')));
    } catch (err) {
      const e = toHttpError(err);
      return reply.code(statusOf(e.code)).send({ error: { code: e.code, message: e.message } });
    }
    // Answered here rather than thrown: plugins with their own error handler (Bull Board) would
    // otherwise turn a 401 into their own 500.
    if (!record) {
      if (path.startsWith('/admin')) void reply.header('www-authenticate', 'Basic realm="AgentFleet admin", charset="UTF-8"');
      return reply.code(401).send({ error: { code: 'UNAUTHORIZED', message: 'a valid API key is required: send "Authorization: Bearer <key>" (or X-API-Key)' } });
    }
    if (path.startsWith('/admin') && record.user_type !== ADMIN_USER_TYPE) {
      return reply.code(403).send({ error: { code: 'FORBIDDEN', message: 'the queue dashboard needs an admin key' } });
    }
    request.apiKey = record;
  });
}

/** The request's key record. @throws FleetError `UNAUTHORIZED` when the route was not authenticated. */
export function callerOf(request: FastifyRequest): ApiKeyRecord {
  if (!request.apiKey) throw new FleetError('UNAUTHORIZED', 'a valid API key is required');
  return request.apiKey;
}

export function isAdmin(request: FastifyRequest): boolean {
  return request.apiKey?.user_type === ADMIN_USER_TYPE;
}

/** @throws FleetError `FORBIDDEN` unless the caller holds an admin key. */
export function requireAdmin(request: FastifyRequest, what: string): void {
  if (!isAdmin(request)) throw new FleetError('FORBIDDEN', `${what} needs an admin key (user type "admin")`);
}
