/**
 * The manager's HTTP API (Fastify 5, zod request schemas, OpenAPI 3.1 at `/openapi.json`, docs at
 * `/docs`, Bull Board at `/admin/queues`). It talks only to Redis: run store, manager queue, template
 * registry, keys and permissions; any number of API processes can serve one fleet.
 *
 * Routes: see {@link startHttpApi} and docs/http-api.md.
 */
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { AccessStore, FleetClient, FleetError, RunLabelStore, TemplateRegistry, TriggerRegistry, WebhookSecretStore, createRedis, redactRedisUrl } from '@agentfleet/core';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { Queue } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { registerAuth } from './auth.js';
import { registerConsole } from './console.js';
import type { ApiContext } from './context.js';
import { errorHandler } from './errors.js';
import { OPENAPI_DOCUMENT, transformDocument, transformRoute } from './openapi.js';
import { registerJsonBodyParser } from './json-body.js';
import { resolveHttpApiOptions, type HttpApiOptions } from './options.js';
import { registerHttpTracing } from './tracing.js';
import { registerAccessRoutes } from './routes/access.js';
import { registerAnalyticsRoutes } from './routes/analytics.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerRunViewRoutes } from './routes/run-views.js';
import { registerRunRoutes } from './routes/runs.js';
import { registerScheduleRoutes } from './routes/schedules.js';
import { registerTemplateRoutes } from './routes/templates.js';
import { registerTriggerRoutes } from './routes/triggers.js';
import { registerWorkerRoutes } from './routes/workers.js';
import { RunEventHub } from './run-event-hub.js';
import { StreamCounter } from './stream-counter.js';

export interface HttpApi {
  /** `http://<host>:<port>` to reach the API from this machine (127.0.0.1 when bound to every interface). */
  url: string;
  /** The address actually bound, as `<address>:<port>` (`[::]:<port>` style for IPv6), e.g. `127.0.0.1:8080` or `0.0.0.0:8080`. */
  listening: string;
  port: number;
  app: FastifyInstance;
  /** Every public route as `METHOD /path` (Fastify's `:param` syntax), for checks against the OpenAPI document. */
  routes: string[];
  close(): Promise<void>;
}

/**
 * Start the HTTP API and listen.
 *
 * @example
 * const api = await startHttpApi({ redisUrl: 'redis://127.0.0.1:6379', prefix: '{fleet}', port: 8080, adminKeys: [process.env.FLEET_ADMIN_KEY!] });
 * // curl -H "Authorization: Bearer $FLEET_ADMIN_KEY" http://127.0.0.1:8080/api/runs
 * @throws FleetError `REDIS_UNAVAILABLE` when Redis does not answer at start; `INVALID_INPUT` for bad keys.
 */
export async function startHttpApi(raw: HttpApiOptions): Promise<HttpApi> {
  const options = resolveHttpApiOptions(raw);
  // A request must not wait for a Redis that is down: fail the command at once (503). The same
  // factory as everywhere else, so `redis+cluster://` URLs work here too.
  const redis = createRedis(options.redisUrl, { lazy: true, name: 'fleet-http', failFastMs: options.redisCommandTimeoutMs });
  redis.on('error', () => {
    // Each failed command answers 503; reconnection is automatic.
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new FleetError('REDIS_UNAVAILABLE', `HTTP API: Redis is unreachable at ${redactRedisUrl(options.redisUrl)} (${(err as Error).message})`, { cause: err });
  }

  const client = new FleetClient(redis, options.prefix);
  // One blocking connection for every SSE client of this process (see ./run-event-hub.ts).
  const runEvents = new RunEventHub({
    store: client.store,
    redis,
    blockMs: options.sseKeepAliveMs,
    connect: () => redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: options.sseKeepAliveMs + 10_000, connectionName: 'fleet-http-sse' }),
  });
  const ctx: ApiContext = {
    redis,
    runEvents,
    sseStreams: new StreamCounter(options.sseMaxStreamsPerKey),
    client,
    store: client.store,
    registry: new TemplateRegistry(redis, options.prefix),
    access: new AccessStore(redis, options.prefix, options.keys),
    labels: new RunLabelStore(redis, options.prefix),
    triggers: new TriggerRegistry(redis, options.prefix),
    webhookSecrets: new WebhookSecretStore(redis, options.prefix),
    history: raw.history,
    options,
  };

  const app = Fastify({
    logger: options.logger ? { redact: ['req.headers.authorization', 'req.headers["x-api-key"]'] } : false,
    exposeHeadRoutes: false,
    // SSE streams never go idle: close() ends them instead of waiting.
    forceCloseConnections: true,
    bodyLimit: 2 * 1024 * 1024,
  });
  // First, so every route registered after it gets its server span.
  await registerHttpTracing(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  registerJsonBodyParser(app);
  const routes: string[] = [];
  app.addHook('onRoute', (route) => {
    const hidden = route.schema?.hide === true;
    if (hidden || route.url.startsWith('/docs') || route.url.startsWith('/admin')) return;
    for (const m of Array.isArray(route.method) ? route.method : [route.method]) routes.push(`${m} ${route.url}`);
  });

  await app.register(fastifySwagger, {
    openapi: OPENAPI_DOCUMENT,
    hideUntagged: true,
    transform: transformRoute,
    transformObject: transformDocument,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  registerAuth(app, ctx.access);
  registerHealthRoutes(app, ctx);
  registerAnalyticsRoutes(app, ctx);
  registerRunRoutes(app, ctx);
  registerRunViewRoutes(app, ctx);
  registerWorkerRoutes(app, ctx);
  registerTemplateRoutes(app, ctx);
  registerScheduleRoutes(app, ctx);
  registerAccessRoutes(app, ctx);
  await registerTriggerRoutes(app, ctx);
  await registerConsole(app);
  app.get('/openapi.json', { schema: { tags: ['docs'], operationId: 'getOpenApiDocument', summary: 'This OpenAPI 3.1 document' } }, () => app.swagger());

  const boardQueues: Queue[] = [];
  if (options.bullBoard) {
    for (const name of await queueNames(redis, options.prefix)) boardQueues.push(new Queue(name, { connection: redis, prefix: options.prefix }));
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath('/admin/queues');
    createBullBoard({ queues: boardQueues.map((q) => new BullMQAdapter(q, { readOnlyMode: false })), serverAdapter });
    await app.register(serverAdapter.registerPlugin(), { prefix: '/admin/queues' });
  }

  await app.listen({ port: options.port, host: options.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const bound = typeof address === 'object' && address ? address.address : options.host;
  const host = bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound.includes(':') ? `[${bound}]` : bound;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    listening: `${bound.includes(':') ? `[${bound}]` : bound}:${port}`,
    port,
    app,
    routes,
    close() {
      closing ??= (async () => {
        await app.close();
        await runEvents.close();
        await Promise.all(boardQueues.map((q) => q.close()));
        await client.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}

/** BullMQ queues of the fleet, found by their `meta` keys, plus the manager and end-action queues. */
async function queueNames(redis: Redis, prefix: string): Promise<string[]> {
  const names = new Set<string>(['manager', 'end-actions']);
  let cursor = '0';
  const escaped = prefix.replace(/[*?[\]\\]/g, '\\$&');
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${escaped}:*:meta`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const name = key.slice(prefix.length + 1, -':meta'.length);
      if (name && !name.includes(':')) names.add(name);
    }
  } while (cursor !== '0');
  return [...names].sort();
}
