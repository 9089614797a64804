/**
 * OpenTelemetry server spans for the HTTP API, through `@fastify/otel` (Fastify's own
 * instrumentation; it uses the global tracer provider, so spans go wherever the process's SDK
 * exports them, and nowhere when telemetry is off).
 *
 * One SERVER span per request, named `{method} {route}` (`GET /api/runs/:id`), with the HTTP
 * semantic conventions: `http.request.method`, `http.route`, `http.response.status_code`,
 * `url.path` (without the query), `url.query`, `url.scheme`, `server.address`, `server.port`,
 * `client.address`, `network.protocol.version`, `user_agent.original`; status ERROR on a 5xx. An
 * incoming W3C `traceparent` (and `tracestate`) is continued: the span is its child.
 *
 * @see https://opentelemetry.io/docs/specs/semconv/http/http-spans/#http-server
 */
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { SpanStatusCode, type Span, type SpanStatus } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** The status each request was answered with, once known (for the span's status at its end). */
const answered = new WeakMap<FastifyRequest, number>();

/**
 * Name the span, add the attributes `@fastify/otel` leaves out or sets otherwise (`url.path` with
 * the query), and keep the span's status unset unless the answer is a 5xx: the instrumentation marks
 * every thrown error, but a 4xx is the client's error, not the server's (HTTP semconv, "Status").
 */
function describeRequest(span: Span, request: FastifyRequest): void {
  const route = request.routeOptions.url;
  span.updateName(route ? `${request.method} ${route}` : request.method);
  const [path = '', query] = request.url.split(/\?(.*)/s, 2);
  span.setAttribute(ATTR_URL_PATH, path);
  if (query) span.setAttribute(ATTR_URL_QUERY, query);
  span.setAttribute(ATTR_URL_SCHEME, request.protocol);
  span.setAttribute(ATTR_SERVER_ADDRESS, request.hostname);
  const port = request.port ?? request.socket.localPort;
  if (port) span.setAttribute(ATTR_SERVER_PORT, port);
  if (request.ip) span.setAttribute(ATTR_CLIENT_ADDRESS, request.ip);
  span.setAttribute(ATTR_NETWORK_PROTOCOL_VERSION, request.raw.httpVersion);
  const agent = request.headers['user-agent'];
  if (agent) span.setAttribute(ATTR_USER_AGENT_ORIGINAL, agent);

  let error: SpanStatus | undefined;
  const exceptions: Array<Parameters<Span['recordException']>> = [];
  const setStatus = span.setStatus.bind(span);
  const recordException = span.recordException.bind(span);
  const end = span.end.bind(span);
  span.setStatus = (status) => {
    if (status.code === SpanStatusCode.ERROR) error = status;
    else setStatus(status);
    return span;
  };
  span.recordException = (...args) => {
    exceptions.push(args);
  };
  span.end = (endTime) => {
    // Unknown status: no answer was sent (the client went away); a thrown error still counts.
    const status = answered.get(request);
    if (status === undefined ? error !== undefined : status >= 500) {
      for (const args of exceptions) recordException(...args);
      setStatus(error ?? { code: SpanStatusCode.ERROR });
    }
    end(endTime);
  };
}

/**
 * Register the server-span instrumentation on `app`. Call it before any route is added (it wraps
 * routes as they are registered).
 */
export async function registerHttpTracing(app: FastifyInstance): Promise<void> {
  const instrumentation = new FastifyOtelInstrumentation({
    // One span per request: spans per hook and handler would add several per call and tell an
    // operator little the request span and the run spans do not.
    instrumentHooks: false,
    instrumentHandler: false,
    requestHook: describeRequest,
  });
  await app.register(instrumentation.plugin());
  // Application-level onSend hooks run before the route-level one that ends the span.
  app.addHook('onSend', (request, reply, payload, done) => {
    answered.set(request, reply.statusCode);
    done(null, payload);
  });
  // A hijacked reply (the SSE stream) skips the hooks that end the span: end it when the response
  // is done, with the status that was sent.
  app.addHook('onRequest', (request, reply, done) => {
    reply.raw.once('close', () => {
      const otel = request.opentelemetry();
      const span = otel.enabled ? otel.span : null;
      if (!span?.isRecording()) return;
      if (reply.raw.headersSent) {
        answered.set(request, reply.raw.statusCode);
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, reply.raw.statusCode);
      }
      span.end();
    });
    done();
  });
}
