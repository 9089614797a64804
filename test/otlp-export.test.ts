/**
 * Real OTLP export: `startTelemetry` starts the real NodeSDK and OTLP/HTTP exporters, spans made with
 * `withSpan` go over HTTP to a local receiver that decodes the wire format (`test/support/otlp-receiver.ts`),
 * and the assertions read what a collector such as Jaeger would have received.
 *
 * Runs in-process: `startTelemetry` registers the SDK globally, and the handle's `shutdown()` unregisters
 * it again, so each test starts its own SDK with its own environment. No build is needed.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

import { SpanKind, metrics, trace } from '@opentelemetry/api';
import { TracerProvider as BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { FleetError } from '../packages/core/src/errors.js';
import {
  ErrorAttributes,
  FleetAttributes,
  GenAiAttributes,
  GenAiOperationNames,
  TRACER_NAME,
  extractTraceContext,
  injectTraceContext,
  withSpan,
} from '../packages/core/src/telemetry/index.js';
import { startTelemetry, type TelemetryHandle, type TelemetryOptions } from '../packages/host/src/index.js';
import { OtlpSpanKind, OtlpStatusCode, startOtlpReceiver } from './support/otlp-receiver.js';
import type { ReceivedSpan } from './support/otlp-receiver.js';

// Every test starts from an environment without OTEL_* variables (whatever the developer's shell
// has), sets what it needs, and gets the original back afterwards.
let savedEnv: Record<string, string | undefined> = {};
const handles: TelemetryHandle[] = [];

function clearOtelEnv(): void {
  for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_')) delete process.env[key];
}

beforeEach(() => {
  savedEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('OTEL_')));
  clearOtelEnv();
});

afterEach(async () => {
  // A failed assertion must not leave an SDK registered for the next test.
  await Promise.all(handles.splice(0).map((h) => h.shutdown()));
  clearOtelEnv();
  Object.assign(process.env, savedEnv);
});

async function start(options: TelemetryOptions): Promise<TelemetryHandle> {
  const handle = await startTelemetry(options);
  handles.push(handle);
  return handle;
}

function byName(spans: readonly ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name);
  if (found.length !== 1) {
    throw new Error(`expected one span "${name}", got ${found.length} of [${spans.map((s) => s.name).join(', ')}]`);
  }
  return found[0] as ReceivedSpan;
}

describe('startTelemetry exports over OTLP/HTTP', () => {
  it.each([
    { protocol: 'http/protobuf', endpointVar: 'OTEL_EXPORTER_OTLP_ENDPOINT', compression: 'none' },
    { protocol: 'http/json', endpointVar: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', compression: 'none' },
    { protocol: 'http/protobuf', endpointVar: 'OTEL_EXPORTER_OTLP_ENDPOINT', compression: 'gzip' },
  ] as const)(
    'a parent, its children and a consumer continued from job data arrive as one trace ($protocol, $endpointVar, compression $compression)',
    async ({ protocol, endpointVar, compression }) => {
      await using receiver = await startOtlpReceiver();
      // The base endpoint gets /v1/traces appended by the exporter; the traces endpoint is used as is.
      process.env[endpointVar] =
        endpointVar === 'OTEL_EXPORTER_OTLP_ENDPOINT' ? receiver.url : `${receiver.url}/v1/traces`;
      process.env.OTEL_EXPORTER_OTLP_PROTOCOL = protocol;
      process.env.OTEL_EXPORTER_OTLP_COMPRESSION = compression;
      process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=test,service.namespace=agentfleet';

      const telemetry = await start({ serviceName: 'agentfleet-test' });
      expect(telemetry.enabled).toBe(true);

      let jobTraceContext: Record<string, string> = {};
      const result = await withSpan(
        'invoke_workflow feature',
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            [GenAiAttributes.OperationName]: GenAiOperationNames.InvokeWorkflow,
            [FleetAttributes.RunId]: 'run-42',
            [FleetAttributes.PhaseAttempt]: 2,
            [GenAiAttributes.RequestTemperature]: 0.5,
            [FleetAttributes.Offline]: true,
            [GenAiAttributes.ResponseFinishReasons]: ['end_turn', 'tool_use'],
          },
        },
        async () => {
          jobTraceContext = injectTraceContext();
          await withSpan('chat offline', { kind: SpanKind.CLIENT }, async () => {});
          const timeout = new FleetError('PHASE_TIMEOUT', 'phase "code" timed out');
          await withSpan('timed out', {}, () => Promise.reject(timeout)).catch(() => undefined);
          return 'done';
        },
      );
      expect(result).toBe('done');
      expect(jobTraceContext.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

      // The consumer side: another "process" continues the trace from the carrier in the job data.
      const jobData = JSON.parse(JSON.stringify({ traceContext: jobTraceContext })) as {
        traceContext: Record<string, string>;
      };
      const fromJob = extractTraceContext(jobData.traceContext);
      await withSpan('process {fleet}:coder', { kind: SpanKind.CONSUMER, parent: fromJob }, async () => {});

      await telemetry.shutdown();
      // shutdown() flushed: everything is there already, no waiting on the batch delay.
      const spans = await receiver.waitForSpans((all) => all.length >= 4);
      expect(receiver.errors).toEqual([]);
      expect(spans.map((s) => s.name).sort()).toEqual([
        'chat offline',
        'invoke_workflow feature',
        'process {fleet}:coder',
        'timed out',
      ]);
      expect(spans.every((s) => s.protocol === protocol)).toBe(true);
      // Traces only (metrics and logs are off by default), compressed as asked.
      expect(receiver.requests.every((r) => r.path === '/v1/traces')).toBe(true);
      expect(receiver.requests.every((r) => r.gzip === (compression === 'gzip'))).toBe(true);

      const parent = byName(spans, 'invoke_workflow feature');
      const chat = byName(spans, 'chat offline');
      const failed = byName(spans, 'timed out');
      const consumer = byName(spans, 'process {fleet}:coder');

      expect(parent.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(parent.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(parent.parentSpanId).toBe('');
      for (const child of [chat, failed, consumer]) {
        expect(child.traceId).toBe(parent.traceId);
        expect(child.parentSpanId).toBe(parent.spanId);
      }
      expect(jobTraceContext.traceparent).toBe(`00-${parent.traceId}-${parent.spanId}-01`);

      expect(parent.kind).toBe(OtlpSpanKind.Producer);
      expect(chat.kind).toBe(OtlpSpanKind.Client);
      expect(failed.kind).toBe(OtlpSpanKind.Internal);
      expect(consumer.kind).toBe(OtlpSpanKind.Consumer);

      expect(parent.attributes).toEqual({
        'gen_ai.operation.name': 'invoke_workflow',
        'fleet.run.id': 'run-42',
        'fleet.phase.attempt': 2,
        'gen_ai.request.temperature': 0.5,
        'fleet.offline': true,
        'gen_ai.response.finish_reasons': ['end_turn', 'tool_use'],
      });
      expect(parent.status).toEqual({ code: OtlpStatusCode.Unset, message: '' });
      expect(failed.status).toEqual({ code: OtlpStatusCode.Error, message: 'phase "code" timed out' });
      expect(failed.attributes[ErrorAttributes.Type]).toBe('PHASE_TIMEOUT');
      expect(failed.events.map((e) => e.name)).toEqual(['exception']);
      expect(failed.events[0]?.attributes['exception.message']).toBe('phase "code" timed out');

      const startNanos = BigInt(parent.startTimeUnixNano);
      const endNanos = BigInt(parent.endTimeUnixNano);
      expect(startNanos > BigInt(Date.now() - 60_000) * 1_000_000n).toBe(true);
      expect(endNanos >= startNanos).toBe(true);

      expect(parent.scope.name).toBe(TRACER_NAME);
      expect(parent.resource['service.name']).toBe('agentfleet-test');
      expect(parent.resource['deployment.environment.name']).toBe('test');
      expect(parent.resource['service.namespace']).toBe('agentfleet');
      expect(parent.resource['telemetry.sdk.language']).toBe('nodejs');
      expect(parent.resource['process.pid']).toBe(process.pid);
    },
  );

  it('retries when the collector answers 503, so the span still arrives', async () => {
    await using receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    receiver.failNextTraceRequests(1, 503);

    const telemetry = await start({ serviceName: 'agentfleet-test' });
    await withSpan('retried', {}, async () => {});
    await telemetry.shutdown();

    const spans = await receiver.waitForSpans((all) => all.some((s) => s.name === 'retried'));
    expect(spans).toHaveLength(1);
  });

  it('shares one SDK between handles: it stops with the last one; OTEL_SERVICE_NAME wins over serviceName', async () => {
    await using receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_SERVICE_NAME = 'from-env';
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'service.name=from-resource-attributes';

    const [manager, agents] = await Promise.all([
      start({ serviceName: 'agentfleet-manager' }),
      start({ serviceName: 'agentfleet-agents' }),
    ]);
    expect(manager.enabled && agents.enabled).toBe(true);

    await manager.shutdown();
    await manager.shutdown(); // idempotent: must not stop the SDK the agents still use
    await withSpan('after the manager stopped', {}, async () => {});
    await agents.shutdown();

    const spans = await receiver.waitForSpans((all) => all.length >= 1);
    expect(spans.map((s) => s.name)).toEqual(['after the manager stopped']);
    expect(spans[0]?.resource['service.name']).toBe('from-env');
  });

  it('service.name from OTEL_RESOURCE_ATTRIBUTES wins over serviceName', async () => {
    await using receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'service.name=from-resource-attributes';

    const telemetry = await start({ serviceName: 'agentfleet-manager' });
    await withSpan('named', {}, async () => {});
    await telemetry.shutdown();

    const spans = await receiver.waitForSpans((all) => all.length >= 1);
    expect(spans[0]?.resource['service.name']).toBe('from-resource-attributes');
  });
});

describe('startTelemetry stays out of the way', () => {
  it.each([
    { why: 'no endpoint is set', env: {} },
    { why: 'OTEL_SDK_DISABLED is true', env: { OTEL_SDK_DISABLED: 'true' }, withEndpoint: true },
    { why: 'OTEL_TRACES_EXPORTER is none', env: { OTEL_TRACES_EXPORTER: 'none' }, withEndpoint: true },
  ])('registers nothing when $why', async ({ env, withEndpoint }) => {
    await using receiver = await startOtlpReceiver();
    if (withEndpoint === true) process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    Object.assign(process.env, env);

    const telemetry = await start({ serviceName: 'agentfleet-test' });
    expect(telemetry.enabled).toBe(false);
    const { carrier, recording } = await withSpan('not recorded', {}, (span) => Promise.resolve({ carrier: injectTraceContext(), recording: span.isRecording() }));
    expect(carrier).toEqual({}); // no propagator registered: the API no-op
    expect(recording).toBe(false); // no tracer provider registered: nothing could be exported
    await expect(withSpan('still rethrows', {}, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await telemetry.shutdown();
    await telemetry.shutdown();
    expect(receiver.requests).toEqual([]);
  });

  it('leaves a tracer provider registered by someone else in place', async () => {
    await using receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    const theirs = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: theirs })] });
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    try {
      const telemetry = await start({ serviceName: 'agentfleet-test' });
      expect(telemetry.enabled).toBe(false);
      await withSpan('goes to their provider', {}, async () => {});
      await telemetry.shutdown();
      expect(theirs.getFinishedSpans().map((s) => s.name)).toEqual(['goes to their provider']);
      expect(receiver.requests).toEqual([]);
    } finally {
      await provider.shutdown();
      trace.disable();
    }
  });

  it('shutdown() resolves within shutdownTimeoutMs when the collector accepts connections but never answers', async () => {
    await using blackhole = await startBlackhole();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = blackhole.url;
    // The exporter itself would wait a minute, past the test's timeout: shutdown() must give up on it
    // after its own 300 ms (the blackhole's sockets are destroyed when the test ends).
    process.env.OTEL_EXPORTER_OTLP_TIMEOUT = '60000';

    const telemetry = await start({ serviceName: 'agentfleet-test', shutdownTimeoutMs: 300 });
    expect(telemetry.enabled).toBe(true);
    await expect(withSpan('lost', {}, () => Promise.resolve('value'))).resolves.toBe('value');

    // Resolving at all proves the bound: the exporter alone would hold it for 60 s, past the test's timeout.
    await telemetry.shutdown();
    expect(blackhole.connections()).toBeGreaterThan(0); // the export really was attempted

    // And telemetry can start again in this process afterwards.
    await using receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    const again = await start({ serviceName: 'agentfleet-test' });
    expect(again.enabled).toBe(true);
    await withSpan('after restart', {}, async () => {});
    await again.shutdown();
    await receiver.waitForSpans((all) => all.some((s) => s.name === 'after restart'));
  });
});

describe('startTelemetry never fails silently', () => {
  /** What the code under test writes to stderr while `fn` runs (still passed through). */
  async function stderrOf(fn: () => Promise<void>): Promise<string[]> {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      await fn();
    } finally {
      spy.mockRestore();
    }
    return lines.filter((line) => line.includes('agentfleet: telemetry'));
  }

  it('OTEL_METRIC_EXPORT_INTERVAL below 30 s set alone: the export timeout defaults to it, spans and metrics both export, nothing on stderr', async () => {
    await using receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_METRICS_EXPORTER = 'otlp';
    process.env.OTEL_METRIC_EXPORT_INTERVAL = '10000';

    const problems = await stderrOf(async () => {
      const telemetry = await start({ serviceName: 'agentfleet-test', shutdownTimeoutMs: 30_000 });
      expect(telemetry.enabled).toBe(true);
      metrics.getMeter('agentfleet-test').createCounter('test_things_total').add(1);
      await withSpan('with a short metric interval', {}, async () => {});
      await telemetry.shutdown(); // flushes both the spans and the metrics
    });

    expect(problems).toEqual([]);
    await receiver.waitForSpans((all) => all.some((s) => s.name === 'with a short metric interval'));
    expect(receiver.requests.some((r) => r.path === '/v1/metrics')).toBe(true);
  });

  it('a timeout longer than the interval is reported once on stderr naming both settings; spans still export', async () => {
    await using receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_METRICS_EXPORTER = 'otlp';
    process.env.OTEL_METRIC_EXPORT_INTERVAL = '10000';
    process.env.OTEL_METRIC_EXPORT_TIMEOUT = '20000';

    const problems = await stderrOf(async () => {
      const telemetry = await start({ serviceName: 'agentfleet-test' });
      expect(telemetry.enabled).toBe(true);
      await withSpan('despite a bad metric setting', {}, async () => {});
      await telemetry.shutdown();
    });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('OTEL_METRIC_EXPORT_TIMEOUT=20000');
    expect(problems[0]).toContain('OTEL_METRIC_EXPORT_INTERVAL=10000');
    await receiver.waitForSpans((all) => all.some((s) => s.name === 'despite a bad metric setting'));
    expect(receiver.requests.some((r) => r.path === '/v1/metrics')).toBe(false);
  });

  it('a value that is not a number is reported naming the setting, and its default is used', async () => {
    await using receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_METRICS_EXPORTER = 'otlp';
    process.env.OTEL_METRIC_EXPORT_INTERVAL = 'ten seconds';

    const problems = await stderrOf(async () => {
      const telemetry = await start({ serviceName: 'agentfleet-test', shutdownTimeoutMs: 30_000 });
      expect(telemetry.enabled).toBe(true);
      metrics.getMeter('agentfleet-test').createCounter('test_things_total').add(1);
      await telemetry.shutdown();
    });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('OTEL_METRIC_EXPORT_INTERVAL="ten seconds"');
    expect(receiver.requests.some((r) => r.path === '/v1/metrics')).toBe(true);
  });
});

describe('the OTLP receiver', () => {
  it('rejects what is not OTLP, loudly', async () => {
    await using receiver = await startOtlpReceiver();
    const post = (path: string, contentType: string, body: Uint8Array | string, headers: Record<string, string> = {}) =>
      fetch(`${receiver.url}${path}`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });

    expect((await post('/v1/traces', 'text/plain', 'hello')).status).toBe(415);
    expect((await post('/v2/traces', 'application/json', '{}')).status).toBe(404);
    expect((await post('/v1/traces', 'application/x-protobuf', new Uint8Array([0x0a, 0x05, 0x01]))).status).toBe(400);
    expect((await post('/v1/traces', 'application/json', '{"resourceSpans": 3}')).status).toBe(400);
    expect(receiver.errors).toHaveLength(4 - 1); // the 404 is not an OTLP request

    const metrics = await post('/v1/metrics', 'application/json', gzipSync('{"resourceMetrics":[]}'), {
      'content-encoding': 'gzip',
    });
    expect(metrics.status).toBe(200);
    expect(receiver.requests.map((r) => [r.path, r.body.toString()])).toEqual([['/v1/metrics', '{"resourceMetrics":[]}']]);

    await expect(receiver.waitForSpans((all) => all.length > 0, 100)).rejects.toThrow(
      /condition not met within 100 ms; received 0 span\(s\)[\s\S]*could not decode the protobuf body/,
    );
  });
});

/** A TCP server that accepts connections and never answers: a collector that hangs. */
async function startBlackhole(): Promise<{ url: string; connections(): number } & AsyncDisposable> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Server = createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => count,
    [Symbol.asyncDispose]: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
