/**
 * Starting and stopping the OpenTelemetry SDK for one AgentFleet process (manager, agent pool, CLI).
 *
 * Telemetry is off unless an OTLP endpoint is configured: with no endpoint nothing is registered, the
 * `@opentelemetry/api` stays a no-op and the SDK is not even loaded. When it is on, spans go out over
 * OTLP/HTTP to the endpoint (Jaeger in `docker compose`), batched, and W3C trace context propagates
 * through `injectTraceContext`/`extractTraceContext` (`@agentfleet/core`).
 */

import { context, diag, metrics, propagation, trace } from '@opentelemetry/api';
import { getBooleanFromEnv, getStringFromEnv, getStringListFromEnv } from '@opentelemetry/core';
import type { CollectionResult, MetricReader } from '@opentelemetry/sdk-metrics';
import type { NodeSDK, NodeSDKConfiguration } from '@opentelemetry/sdk-node';

import { FleetError, fleetIdGenerator } from '@agentfleet/core';
import { tracerProviderRegistered } from '@agentfleet/core/internal';

import { withUnitSuffixes } from './prometheus-names.js';

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /**
   * The `service.name` resource attribute, e.g. `agentfleet-manager`, `agentfleet-agents`.
   * `OTEL_SERVICE_NAME`, or `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, override it.
   */
  serviceName: string;
  /**
   * Upper bound on {@link TelemetryHandle.shutdown}, in ms: the last spans are flushed within it or
   * dropped. Export itself is bounded by `OTEL_EXPORTER_OTLP_TIMEOUT` (default 10000 ms).
   * @defaultValue 5000
   */
  shutdownTimeoutMs?: number | undefined;
  /**
   * Serve metrics for Prometheus at `http://<metricsHost>:<metricsPort>/metrics` (a port 1–65535).
   * Unset: no endpoint. @defaultValue undefined
   */
  metricsPort?: number | undefined;
  /** Interface the `/metrics` endpoint listens on. @defaultValue `0.0.0.0` */
  metricsHost?: string | undefined;
}

/** What {@link startTelemetry} returns. */
export interface TelemetryHandle {
  /** true when this process exports spans or metrics (the SDK is started); false when telemetry is a no-op. */
  readonly enabled: boolean;
  /** The port `/metrics` listens on, when a metrics port was asked for and the SDK started. */
  readonly metricsPort?: number | undefined;
  /**
   * Flush spans not yet exported and stop the SDK. Idempotent; never rejects; resolves within
   * `shutdownTimeoutMs` even when the collector is gone. When several handles share the SDK, the SDK
   * stops with the last one.
   */
  shutdown(): Promise<void>;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5000;

const DISABLED: TelemetryHandle = Object.freeze({
  enabled: false,
  shutdown: () => Promise.resolve(),
});

interface RunningSdk {
  readonly sdk: NodeSDK;
  /** Whether we registered a global MeterProvider (a metrics port, or OTEL_METRICS_EXPORTER asks for one). */
  readonly metricsOn: boolean;
  /** The port the Prometheus endpoint listens on, when there is one. */
  readonly metricsPort: number | undefined;
}

/** The SDK of this process and the handles on it. */
interface Shared {
  /** Resolves to the started SDK, or undefined when it could not start. */
  readonly ready: Promise<RunningSdk | undefined>;
  /** Handles given out (or about to be) and not yet shut down; counted before `ready` settles. */
  refs: number;
  /** Set when the last handle shut down: settles once the SDK is stopped and the globals are free. */
  stopping?: Promise<void>;
}

/** The SDK this process started, shared by every handle; undefined when none is running. */
let shared: Shared | undefined;

/**
 * Why trace export is off, or undefined when it is on. Export is on only when an OTLP endpoint is
 * set (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_SDK_DISABLED`
 * is not `true` and `OTEL_TRACES_EXPORTER` is not `none`.
 */
function whyTracesOff(): string | undefined {
  if (getBooleanFromEnv('OTEL_SDK_DISABLED')) return 'OTEL_SDK_DISABLED is true';
  const endpoint = getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (endpoint === undefined) {
    return 'neither OTEL_EXPORTER_OTLP_ENDPOINT nor OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set';
  }
  const exporters = getStringListFromEnv('OTEL_TRACES_EXPORTER');
  if (exporters?.[0] === 'none' && exporters.length === 1) return 'OTEL_TRACES_EXPORTER is none';
  return undefined;
}

/** Metric exporters named by `OTEL_METRICS_EXPORTER` (`otlp`, `console`); empty when unset or `none`. */
function envMetricExporters(): string[] {
  const names = getStringListFromEnv('OTEL_METRICS_EXPORTER') ?? [];
  return names.includes('none') ? [] : names.filter((n) => n === 'otlp' || n === 'console');
}

async function boot(options: TelemetryOptions, tracesOn: boolean): Promise<RunningSdk | undefined> {
  if (tracerProviderRegistered()) {
    diag.warn('agentfleet: a tracer provider is already registered; startTelemetry leaves it and starts nothing');
    return undefined;
  }
  try {
    // Loaded only when telemetry is on: the SDK pulls in every exporter it can configure from env.
    const [{ NodeSDK }, { defaultResource, resourceFromAttributes }] = await Promise.all([
      import('@opentelemetry/sdk-node'),
      import('@opentelemetry/resources'),
    ]);
    // `service.name` from the caller sits in the base resource; the env detector's attributes
    // (OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME) are merged over it at start, so they win.
    const config: Partial<NodeSDKConfiguration> = {
      resource: defaultResource().merge(resourceFromAttributes({ 'service.name': options.serviceName })),
      instrumentations: [],
      // Run and phase spans are emitted when they end, under ids chosen when they began (`@agentfleet/core`'s run spans).
      idGenerator: fleetIdGenerator,
      // No `traceExporter`: the SDK builds it from env (OTEL_TRACES_EXPORTER, default otlp;
      // OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL, default http/protobuf; endpoint, headers, timeout,
      // compression) and wraps it in a BatchSpanProcessor configured by OTEL_BSP_*.
    };
    // Metrics only to readers asked for: the Prometheus endpoint (metricsPort) and the exporters
    // OTEL_METRICS_EXPORTER names. The SDK would otherwise default to OTLP, and Jaeger does not
    // accept OTLP metrics. Logs stay off unless OTEL_LOGS_EXPORTER names an exporter.
    const readers = await metricReaders(options);
    config.metricReaders = readers.list;
    const metricsOn = readers.list.length > 0;
    if (!tracesOn) config.spanProcessors = [];
    // The SDK's own health metrics, among them `otel.sdk.processor.span.processed` with
    // `error.type=queue_full`: the spans the BatchSpanProcessor dropped. Opt-in in sdk-node 0.223.
    if (metricsOn && tracesOn && process.env.OTEL_NODE_EXPERIMENTAL_SDK_METRICS === undefined) {
      process.env.OTEL_NODE_EXPERIMENTAL_SDK_METRICS = 'true';
    }
    if (getStringFromEnv('OTEL_LOGS_EXPORTER') === undefined) config.logRecordProcessors = [];

    const sdk = new NodeSDK(config);
    sdk.start();
    return { sdk, metricsOn, metricsPort: readers.port };
  } catch (err) {
    if (err instanceof FleetError) throw err;
    reportStartupProblem(
      `could not start OpenTelemetry, so no span or metric is exported: ${err instanceof Error ? err.message : String(err)}; ` +
        'check the OTEL_* settings (OTEL_LOG_LEVEL=debug shows more)',
    );
    diag.error('agentfleet: could not start OpenTelemetry; telemetry is off', err);
    return undefined;
  }
}

/** Default of `OTEL_METRIC_EXPORT_INTERVAL`, in ms (OpenTelemetry SDK environment variables spec). */
const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000;
/** Default of `OTEL_METRIC_EXPORT_TIMEOUT`, in ms (same spec). */
const DEFAULT_METRIC_EXPORT_TIMEOUT_MS = 30_000;

/**
 * Report a telemetry start-up problem on stderr, where an operator sees it whatever
 * `OTEL_LOG_LEVEL` says: the SDK's own `diag` logger is silent unless one is registered, so a bad
 * setting would otherwise switch telemetry off without a word. One line per problem; the line names
 * the setting to change.
 */
function reportStartupProblem(message: string): void {
  process.stderr.write(`agentfleet: telemetry: ${message}\n`);
}

/** A positive whole number of ms from `name`, undefined when unset; a bad value is reported and ignored. */
function envMillis(name: string): number | undefined {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (Number.isInteger(value) && value > 0) return value;
  reportStartupProblem(`${name}=${JSON.stringify(raw)} is not a positive number of milliseconds; using the default (unset it or set e.g. ${name}=60000)`);
  return undefined;
}

/**
 * Export interval and timeout of the periodic metric readers, from `OTEL_METRIC_EXPORT_INTERVAL`
 * and `OTEL_METRIC_EXPORT_TIMEOUT` (ms). When only the interval is set, the timeout defaults to the
 * smaller of the interval and 30000 ms, so an interval below 30 s is valid on its own (as the
 * OpenTelemetry spec asks: the timeout must not exceed the interval). When both are set and the
 * timeout exceeds the interval, the contradiction is reported on stderr and undefined is returned:
 * metric push stays off while spans and the Prometheus endpoint still run.
 */
function metricExportTiming(): { exportIntervalMillis: number; exportTimeoutMillis: number } | undefined {
  const interval = envMillis('OTEL_METRIC_EXPORT_INTERVAL');
  const timeout = envMillis('OTEL_METRIC_EXPORT_TIMEOUT');
  const exportIntervalMillis = interval ?? DEFAULT_METRIC_EXPORT_INTERVAL_MS;
  if (timeout === undefined) {
    return { exportIntervalMillis, exportTimeoutMillis: Math.min(exportIntervalMillis, DEFAULT_METRIC_EXPORT_TIMEOUT_MS) };
  }
  if (timeout > exportIntervalMillis) {
    reportStartupProblem(
      `OTEL_METRIC_EXPORT_TIMEOUT=${timeout} is longer than OTEL_METRIC_EXPORT_INTERVAL=${exportIntervalMillis} ms; ` +
        'metrics are not pushed (spans and /metrics still run): lower OTEL_METRIC_EXPORT_TIMEOUT or raise OTEL_METRIC_EXPORT_INTERVAL',
    );
    return undefined;
  }
  return { exportIntervalMillis, exportTimeoutMillis: timeout };
}

/** The metric readers asked for, with the Prometheus server already listening. */
async function metricReaders(options: TelemetryOptions): Promise<{ list: MetricReader[]; port: number | undefined }> {
  const list: MetricReader[] = [];
  let port: number | undefined;
  if (options.metricsPort !== undefined) {
    const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus');
    // Every scrape collects through collect(): names get their unit suffix there (./prometheus-names.ts).
    class PrometheusExporterWithUnits extends PrometheusExporter {
      override async collect(collectOptions?: Parameters<MetricReader['collect']>[0]): Promise<CollectionResult> {
        return withUnitSuffixes(await super.collect(collectOptions));
      }
    }
    const host = options.metricsHost ?? '0.0.0.0';
    const exporter = new PrometheusExporterWithUnits({ port: options.metricsPort, host, preventServerStart: true });
    try {
      await exporter.startServer();
    } catch (err) {
      throw new FleetError(
        'INVALID_INPUT',
        `metrics port ${options.metricsPort}: cannot listen on ${host}:${options.metricsPort} (${err instanceof Error ? err.message : String(err)}); choose another --metrics-port / FLEET_METRICS_PORT`,
        { cause: err },
      );
    }
    const server = (exporter as unknown as { _server?: { address(): unknown } })._server;
    const address = server?.address();
    port = typeof address === 'object' && address !== null && 'port' in address ? Number(address.port) : options.metricsPort;
    list.push(exporter);
  }
  const exporters = envMetricExporters();
  if (exporters.length > 0) {
    const { PeriodicExportingMetricReader, ConsoleMetricExporter } = await import('@opentelemetry/sdk-metrics');
    const timing = metricExportTiming();
    if (timing === undefined) return { list, port };
    for (const name of exporters) {
      if (name === 'console') {
        list.push(new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), ...timing }));
        continue;
      }
      const protocol = getStringFromEnv('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL');
      const exporter =
        protocol === 'http/json'
          ? new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter()
          : new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
      list.push(new PeriodicExportingMetricReader({ exporter, ...timing }));
    }
  }
  return { list, port };
}

/** Resolves when `promise` settles or after `ms`, whichever comes first; never rejects. */
function settleWithin(promise: Promise<unknown>, ms: number, what: string): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      diag.warn(`agentfleet: ${what} did not finish within ${ms} ms; giving up on it`);
      resolve();
    }, ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (err: unknown) => {
        clearTimeout(timer);
        diag.warn(`agentfleet: ${what} failed`, err);
        resolve();
      },
    );
  });
}

async function stop(current: Shared, shutdownTimeoutMs: number): Promise<void> {
  const state = await current.ready;
  if (state !== undefined) {
    let stopping: Promise<void>;
    try {
      stopping = state.sdk.shutdown();
    } catch (err) {
      stopping = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    await settleWithin(stopping, shutdownTimeoutMs, 'OpenTelemetry shutdown');
    // Unregister what the SDK registered, so a stopped SDK is not left behind as the global and a
    // later startTelemetry in the same process (tests, a CLI that restarts a component) can register.
    trace.disable();
    propagation.disable();
    context.disable();
    if (state.metricsOn) metrics.disable();
  }
  if (shared === current) shared = undefined;
}

function release(current: Shared, shutdownTimeoutMs: number): Promise<void> {
  current.refs -= 1;
  if (current.refs > 0) return Promise.resolve();
  current.stopping = stop(current, shutdownTimeoutMs).catch((err: unknown) => {
    diag.warn('agentfleet: OpenTelemetry shutdown failed', err);
  });
  return current.stopping;
}

/**
 * Start OpenTelemetry for this process, when the environment asks for it.
 *
 * With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set and
 * `OTEL_SDK_DISABLED` not `true`, starts the NodeSDK: spans export over OTLP/HTTP (protocol from
 * `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `http/json`) through a batch
 * processor (`OTEL_BSP_*`), W3C `traceparent` propagation and an AsyncLocalStorage context manager
 * are registered, and the resource carries `service.name`, `OTEL_RESOURCE_ATTRIBUTES`, process and
 * host attributes. No auto-instrumentation. Otherwise registers nothing and returns
 * `{ enabled: false }`: the API stays a no-op.
 *
 * Metrics: with `metricsPort`, a Prometheus endpoint serves them at `/metrics` (also with no OTLP
 * endpoint: then only metrics are on); with `OTEL_METRICS_EXPORTER=otlp` they are also pushed over
 * OTLP (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` or the common endpoint; every
 * `OTEL_METRIC_EXPORT_INTERVAL` ms, default 60000; the export timeout `OTEL_METRIC_EXPORT_TIMEOUT` defaults
 * to the smaller of the interval and 30000 ms). When both spans and metrics are on,
 * `OTEL_NODE_EXPERIMENTAL_SDK_METRICS` defaults to true so the SDK counts the spans its
 * BatchSpanProcessor drops (`otel.sdk.processor.span.processed{error.type="queue_full"}`). Logs are
 * not exported unless `OTEL_LOGS_EXPORTER` names an exporter. Export failures are swallowed by the
 * SDK; set `OTEL_LOG_LEVEL=warn` to see them. A start-up problem (a bad or contradictory setting, an
 * SDK that does not start) is written once to stderr naming the setting to change, and what is
 * still valid runs: a contradictory metric export timeout turns off only metric push.
 *
 * One SDK per process: a second call while it runs returns another handle on the same SDK (its
 * `serviceName` is ignored) and the SDK stops with the last handle's `shutdown()`. When some other
 * tracer provider is already registered, nothing is started and `enabled` is false.
 *
 * Never rejects, except with FleetError `INVALID_INPUT` when `metricsPort` cannot be listened on.
 *
 * @example
 * const telemetry = await startTelemetry({ serviceName: 'agentfleet-manager' });
 * process.once('SIGTERM', () => void telemetry.shutdown().then(() => process.exit(0)));
 */
export async function startTelemetry(options: TelemetryOptions): Promise<TelemetryHandle> {
  const tracesOff = whyTracesOff();
  const metricsWanted = options.metricsPort !== undefined || envMetricExporters().length > 0;
  if (getBooleanFromEnv('OTEL_SDK_DISABLED') || (tracesOff !== undefined && !metricsWanted)) {
    diag.debug(`agentfleet: telemetry is off: ${tracesOff ?? 'OTEL_SDK_DISABLED is true'}`);
    return DISABLED;
  }
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  // A previous SDK is still stopping: wait until it has let go of the globals.
  while (shared?.stopping !== undefined) await shared.stopping;
  const current = (shared ??= { ready: boot(options, tracesOff === undefined), refs: 0 });
  current.refs += 1;
  let state: RunningSdk | undefined;
  try {
    state = await current.ready;
  } catch (err) {
    current.refs -= 1;
    if (shared === current) shared = undefined;
    throw err;
  }
  if (state === undefined) {
    current.refs -= 1;
    if (shared === current) shared = undefined;
    return DISABLED;
  }
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    metricsPort: state.metricsPort,
    shutdown: () => (stopped ??= release(current, shutdownTimeoutMs)),
  };
}
