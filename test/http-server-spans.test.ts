/**
 * The HTTP API's OpenTelemetry server spans, exported for real: the process's SDK (`startTelemetry`)
 * sends over OTLP/HTTP to a local receiver that decodes the wire format, and the assertions read
 * what Jaeger would show for requests to a real manager (fleet + HTTP API on real Redis).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTelemetry, type TelemetryHandle } from '../packages/host/src/index.js';
import { startHttpApi } from '@agentfleet/manager';

import { ADMIN_KEY, readSse, startApiFixture, type ApiFixture } from './support/http-api.js';
import { OtlpSpanKind, OtlpStatusCode, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';
import { startRedisServer } from './support/redis.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN_ID = '00f067aa0ba902b7';

let receiver: OtlpReceiver;
let telemetry: TelemetryHandle;
let fx: ApiFixture;
let server: ReceivedSpan[] = [];
let runId = '';
const saved = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('OTEL_')));

beforeAll(async () => {
  for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_')) delete process.env[key];
  receiver = await startOtlpReceiver();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  telemetry = await startTelemetry({ serviceName: 'agentfleet-manager' });
  expect(telemetry.enabled).toBe(true);
  fx = await startApiFixture('http-spans');

  // The calls a user makes; the spans are read once the SDK has flushed them all.
  expect((await fx.call('GET', '/api/runs/no-such-run?view=full', { headers: { traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-01` } })).status).toBe(404);
  expect((await fx.call('GET', '/api/runs', { key: null })).status).toBe(401);
  expect((await fx.call('GET', '/healthz', { key: null })).status).toBe(200);
  const submitted = await fx.call<{ run_id: string }>('POST', '/api/runs', { body: { requirements: 'Build a tiny todo API', template: 'software-delivery' } });
  expect(submitted.status).toBe(201);
  runId = submitted.body.run_id;
  const stream = await readSse(`${fx.api.url}/api/runs/${runId}/events`, ADMIN_KEY);
  expect(stream.ended).toBe(true);

  // A second API on a Redis of its own, stopped once it listens: its answers are 503s.
  const lost = await startRedisServer();
  const outage = await startHttpApi({ redisUrl: lost.url, prefix: '{http-spans-outage}', port: 0, host: '127.0.0.1', adminKeys: [ADMIN_KEY], bullBoard: false, redisCommandTimeoutMs: 500 });
  await lost.stop();
  expect((await fetch(`${outage.url}/readyz`)).status).toBe(503);
  await outage.close();

  await fx.api.close();
  await telemetry.shutdown();
  server = receiver.spans.filter((s) => s.kind === OtlpSpanKind.Server);
});
afterAll(async () => {
  await telemetry?.shutdown();
  await fx?.[Symbol.asyncDispose]();
  await receiver?.[Symbol.asyncDispose]();
  for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_')) delete process.env[key];
  Object.assign(process.env, saved);
});

function only(name: string): ReceivedSpan {
  const found = server.filter((s) => s.name === name);
  expect(found.map((s) => s.name), `one server span "${name}" among ${server.map((s) => s.name).join(', ')}`).toEqual([name]);
  return found[0] as ReceivedSpan;
}

describe('HTTP server spans', () => {
  it('one SERVER span per request, named by method and route, with the HTTP semantic conventions', () => {
    const span = only('GET /api/runs/:id');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/api/runs/:id',
      'http.response.status_code': 404,
      'url.path': '/api/runs/no-such-run',
      'url.query': 'view=full',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': fx.api.port,
      'client.address': '127.0.0.1',
      'network.protocol.version': '1.1',
    });
    expect(span.resource['service.name']).toBe('agentfleet-manager');
    // A 4xx is the client's error: the server span's status stays unset (HTTP semconv).
    expect(span.status.code).toBe(OtlpStatusCode.Unset);
    expect(span.events.filter((e) => e.name === 'exception')).toEqual([]);
    expect(server).toHaveLength(6);
  });

  it("continues the caller's trace from an incoming traceparent, and starts a new one without it", () => {
    const joined = only('GET /api/runs/:id');
    expect(joined.traceId).toBe(TRACE_ID);
    expect(joined.parentSpanId).toBe(CALLER_SPAN_ID);
    const own = only('GET /healthz');
    expect(own.traceId).not.toBe(TRACE_ID);
    expect(own.parentSpanId).toBe('');
  });

  it('marks a 5xx answer as an error of the server', () => {
    const failed = only('GET /readyz');
    expect(failed.attributes['http.response.status_code']).toBe(503);
    expect(failed.status.code).toBe(OtlpStatusCode.Error);
    expect(only('GET /healthz').status.code).toBe(OtlpStatusCode.Unset);
  });

  it('records refused and open requests with their status, and the SSE stream once it ends', () => {
    expect(only('GET /api/runs').attributes['http.response.status_code']).toBe(401);
    expect(only('GET /healthz').attributes['http.response.status_code']).toBe(200);
    expect(only('POST /api/runs').attributes['http.response.status_code']).toBe(201);
    const sse = only('GET /api/runs/:id/events');
    expect(sse.attributes).toMatchObject({ 'http.response.status_code': 200, 'url.path': `/api/runs/${runId}/events`, 'http.route': '/api/runs/:id/events' });
    expect(BigInt(sse.endTimeUnixNano)).toBeGreaterThan(BigInt(sse.startTimeUnixNano));
  });
});
