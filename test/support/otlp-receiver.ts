/**
 * A local OTLP/HTTP receiver: what Jaeger's OTLP endpoint is to a real deployment, for tests.
 *
 * It accepts `POST /v1/traces` in both OTLP/HTTP encodings — binary protobuf
 * (`Content-Type: application/x-protobuf`, the exporters' default) and JSON (`application/json`) —
 * optionally gzip-compressed (`OTEL_EXPORTER_OTLP_COMPRESSION=gzip`), decodes every span into a flat
 * {@link ReceivedSpan}, and answers as a collector does (200 with an empty
 * `ExportTraceServiceResponse`). `POST /v1/metrics` and `/v1/logs` are answered 200 and kept raw in
 * {@link OtlpReceiver.requests}. A body it cannot decode is answered 400 and recorded in
 * {@link OtlpReceiver.errors}, so a broken exporter fails a test loudly instead of losing spans.
 *
 * The protobuf decoder is written here from the OTLP proto definitions (opentelemetry-proto v1,
 * `collector/trace/v1/trace_service.proto`, `trace/v1/trace.proto`, `common/v1/common.proto`,
 * `resource/v1/resource.proto`); no installed package ships them any more (the exporters encode with a
 * hand-written writer in `@opentelemetry/otlp-transformer`), and decoding independently of the
 * encoder is the point of the check.
 *
 * Specification: https://opentelemetry.io/docs/specs/otlp/#otlphttp
 *
 * @example
 * await using receiver = await startOtlpReceiver();
 * process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url; // or pass it to a child process
 * // ... make spans, shut telemetry down ...
 * const spans = await receiver.waitForSpans((all) => all.some((s) => s.name === 'invoke_agent coder'));
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** An attribute value as received: scalars, arrays, key-value lists; bytes as base64. */
export type OtlpValue = string | number | boolean | null | OtlpValue[] | { [key: string]: OtlpValue };

/** An attribute map, keyed by attribute name. */
export type OtlpAttributes = Record<string, OtlpValue>;

/** OTLP `Span.SpanKind`. Note: the OTel API's `SpanKind` is this minus one (API INTERNAL = 0). */
export const OtlpSpanKind = {
  Unspecified: 0,
  Internal: 1,
  Server: 2,
  Client: 3,
  Producer: 4,
  Consumer: 5,
} as const;

/** OTLP `Status.StatusCode` (same numbers as the API's `SpanStatusCode`). */
export const OtlpStatusCode = { Unset: 0, Ok: 1, Error: 2 } as const;

/** One span event, e.g. `exception`. */
export interface ReceivedEvent {
  name: string;
  /** Nanoseconds since the epoch, as a decimal string (64-bit). */
  timeUnixNano: string;
  attributes: OtlpAttributes;
}

/** One span link. */
export interface ReceivedLink {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  traceState: string;
  attributes: OtlpAttributes;
}

/** One span as decoded, flattened with its resource and scope. */
export interface ReceivedSpan {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  /** 16 lowercase hex digits, or `''` for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP span kind, see {@link OtlpSpanKind} (API kind + 1). */
  kind: number;
  /** Nanoseconds since the epoch, as a decimal string (64-bit). */
  startTimeUnixNano: string;
  /** Nanoseconds since the epoch, as a decimal string (64-bit). */
  endTimeUnixNano: string;
  attributes: OtlpAttributes;
  /** `code` per {@link OtlpStatusCode}; `message` is `''` when none was set. */
  status: { code: number; message: string };
  events: ReceivedEvent[];
  links: ReceivedLink[];
  /** W3C trace flags in the low 8 bits; bits 8–9 tell whether the parent was remote. */
  flags: number;
  /** Attributes of the resource that sent the span (`service.name`, …). */
  resource: OtlpAttributes;
  /** The instrumentation scope (tracer) that made the span. */
  scope: { name: string; version: string };
  /** How the span arrived. */
  protocol: 'http/protobuf' | 'http/json';
}

/** One request as received, body already decompressed. */
export interface ReceivedRequest {
  /** `/v1/traces`, `/v1/metrics` or `/v1/logs`. */
  path: string;
  contentType: string;
  /** Whether the request came gzip-compressed. */
  gzip: boolean;
  body: Buffer;
}

/** A running receiver. Close it with `close()` or `await using`. */
export interface OtlpReceiver extends AsyncDisposable {
  /** Base URL, e.g. `http://127.0.0.1:43125`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly url: string;
  /** Every span decoded so far, in arrival order. */
  readonly spans: readonly ReceivedSpan[];
  /** Every accepted request, in arrival order (traces too). */
  readonly requests: readonly ReceivedRequest[];
  /** Why requests were rejected (undecodable body, unsupported content type, …). */
  readonly errors: readonly string[];
  /**
   * Resolves with the spans received so far once `predicate(spans)` is true, checking every 20 ms.
   * A predicate that throws counts as false.
   * @param timeoutMs - @defaultValue 30000 (an export on a loaded machine can take seconds)
   * @throws Error naming the spans received (and any rejected requests) when time runs out.
   */
  waitForSpans(predicate: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /**
   * Answer the next `count` trace requests with `statusCode` instead of 200 (nothing is decoded or
   * kept), to imitate a collector that is overloaded (503, 429: the exporter retries) or that refuses
   * (400: it does not).
   */
  failNextTraceRequests(count: number, statusCode?: number): void;
  /** Forget every span, request and error received so far. */
  clear(): void;
  /** Stop listening and drop open connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start a receiver on 127.0.0.1 on a free port.
 *
 * @returns the running receiver; close it with `close()` or `await using`.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  const errors: string[] = [];
  let failures: { count: number; statusCode: number } = { count: 0, statusCode: 503 };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      errors.push(`internal receiver error: ${describe(err)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (req.method !== 'POST' || !['/v1/traces', '/v1/metrics', '/v1/logs'].includes(path)) {
      await readBody(req);
      reply(res, 404, 'text/plain', `no OTLP endpoint at ${req.method ?? '?'} ${path}`);
      return;
    }
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const gzip = (req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip';
    let body = await readBody(req);

    if (path === '/v1/traces' && failures.count > 0) {
      failures.count -= 1;
      reply(res, failures.statusCode, 'text/plain', 'failing on purpose (failNextTraceRequests)');
      return;
    }
    if (contentType !== 'application/x-protobuf' && contentType !== 'application/json') {
      const message = `${path}: unsupported Content-Type "${contentType}"; OTLP/HTTP uses application/x-protobuf or application/json`;
      errors.push(message);
      reply(res, 415, 'text/plain', message);
      return;
    }
    const json = contentType === 'application/json';
    try {
      if (gzip) body = gunzipSync(body);
      if (path === '/v1/traces') {
        spans.push(...(json ? decodeJsonTraces(JSON.parse(body.toString('utf8'))) : decodeProtobufTraces(body)));
      }
    } catch (err) {
      const message = `${path}: could not decode the ${json ? 'JSON' : 'protobuf'} body (${body.length} bytes): ${describe(err)}`;
      errors.push(message);
      reply(res, 400, 'text/plain', message);
      return;
    }
    requests.push({ path, contentType, gzip, body });
    // An empty Export*ServiceResponse: no partial success to report.
    if (json) reply(res, 200, 'application/json', '{}');
    else reply(res, 200, 'application/x-protobuf', Buffer.alloc(0));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      // The exporters keep connections alive; do not wait for them to go idle.
      server.closeAllConnections();
    }));

  return {
    url: `http://127.0.0.1:${port}`,
    get spans() {
      return spans;
    },
    get requests() {
      return requests;
    },
    get errors() {
      return errors;
    },
    async waitForSpans(predicate, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let lastThrow: unknown;
      for (;;) {
        try {
          if (predicate(spans)) return [...spans];
          lastThrow = undefined;
        } catch (err) {
          lastThrow = err;
        }
        if (Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const lines = [
        `waitForSpans: condition not met within ${timeoutMs} ms; received ${spans.length} span(s)` +
          (spans.length > 0 ? `: ${spans.map((s) => s.name).join(', ')}` : ''),
        `requests received: ${requests.map((r) => r.path).join(', ') || 'none'}`,
      ];
      if (errors.length > 0) lines.push(`rejected requests:\n  ${errors.join('\n  ')}`);
      if (lastThrow !== undefined) lines.push(`the predicate last threw: ${describe(lastThrow)}`);
      throw new Error(lines.join('\n'));
    },
    failNextTraceRequests(count, statusCode = 503) {
      failures = { count, statusCode };
    },
    clear() {
      spans.length = 0;
      requests.length = 0;
      errors.length = 0;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : (JSON.stringify(err) ?? typeof err);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, contentType: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

// ---------------------------------------------------------------------------------------------------
// OTLP/JSON. IDs are hex (not base64, unlike the generic protobuf JSON mapping), 64-bit integers may be
// strings or numbers, enums may be integers or names.
// https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding

type Json = Record<string, unknown>;

function asObject(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not an object`);
  return value as Json;
}

function asList(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Error(`${what} is not an array`);
  return value;
}

function asString(value: unknown): string {
  if (typeof value === 'string') return value;
  return value === undefined || value === null ? '' : JSON.stringify(value);
}

function asNanos(value: unknown): string {
  if (value === undefined || value === null) return '0';
  return BigInt(value as string | number).toString();
}

function enumNumber(value: unknown, names: Record<string, number>, what: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value in names) return names[value] as number;
  throw new Error(`${what} has an unknown value ${JSON.stringify(value)}`);
}

const KIND_NAMES: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

function jsonAnyValue(value: unknown): OtlpValue {
  if (value === undefined || value === null) return null;
  const v = asObject(value, 'AnyValue');
  if ('stringValue' in v) return asString(v.stringValue);
  if ('boolValue' in v) return v.boolValue === true || v.boolValue === 'true';
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return asList(asObject(v.arrayValue, 'arrayValue').values, 'arrayValue.values').map(jsonAnyValue);
  if ('kvlistValue' in v) return jsonAttributes(asObject(v.kvlistValue, 'kvlistValue').values);
  if ('bytesValue' in v) return asString(v.bytesValue);
  return null;
}

function jsonAttributes(list: unknown): OtlpAttributes {
  const attributes: OtlpAttributes = {};
  for (const item of asList(list, 'attributes')) {
    const kv = asObject(item, 'KeyValue');
    attributes[asString(kv.key)] = jsonAnyValue(kv.value);
  }
  return attributes;
}

function decodeJsonTraces(body: unknown): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of asList(asObject(body, 'ExportTraceServiceRequest').resourceSpans, 'resourceSpans')) {
    const resourceSpans = asObject(rs, 'ResourceSpans');
    const resource = resourceSpans.resource === undefined ? {} : jsonAttributes(asObject(resourceSpans.resource, 'resource').attributes);
    for (const ss of asList(resourceSpans.scopeSpans, 'scopeSpans')) {
      const scopeSpans = asObject(ss, 'ScopeSpans');
      const scopeJson = scopeSpans.scope === undefined ? {} : asObject(scopeSpans.scope, 'scope');
      const scope = { name: asString(scopeJson.name), version: asString(scopeJson.version) };
      for (const s of asList(scopeSpans.spans, 'spans')) {
        const span = asObject(s, 'Span');
        const status = span.status === undefined ? {} : asObject(span.status, 'status');
        out.push({
          traceId: asString(span.traceId).toLowerCase(),
          spanId: asString(span.spanId).toLowerCase(),
          parentSpanId: asString(span.parentSpanId).toLowerCase(),
          traceState: asString(span.traceState),
          name: asString(span.name),
          kind: enumNumber(span.kind, KIND_NAMES, 'kind'),
          startTimeUnixNano: asNanos(span.startTimeUnixNano),
          endTimeUnixNano: asNanos(span.endTimeUnixNano),
          attributes: jsonAttributes(span.attributes),
          status: { code: enumNumber(status.code, STATUS_NAMES, 'status.code'), message: asString(status.message) },
          events: asList(span.events, 'events').map((e) => {
            const event = asObject(e, 'Event');
            return { name: asString(event.name), timeUnixNano: asNanos(event.timeUnixNano), attributes: jsonAttributes(event.attributes) };
          }),
          links: asList(span.links, 'links').map((l) => {
            const link = asObject(l, 'Link');
            return {
              traceId: asString(link.traceId).toLowerCase(),
              spanId: asString(link.spanId).toLowerCase(),
              traceState: asString(link.traceState),
              attributes: jsonAttributes(link.attributes),
            };
          }),
          flags: typeof span.flags === 'number' ? span.flags : 0,
          resource,
          scope,
          protocol: 'http/json',
        });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// OTLP protobuf: a minimal proto3 wire-format reader and the OTLP trace messages.
// https://protobuf.dev/programming-guides/encoding/

/** One field as it appears on the wire. */
type WireField =
  | { field: number; wire: 0; value: bigint } // varint
  | { field: number; wire: 1; value: Buffer } // 64-bit
  | { field: number; wire: 2; value: Buffer } // length-delimited
  | { field: number; wire: 5; value: Buffer }; // 32-bit

function readVarint(buf: Buffer, start: number): [value: bigint, next: number] {
  let result = 0n;
  let shift = 0n;
  let pos = start;
  for (;;) {
    if (pos >= buf.length) throw new Error(`truncated varint at byte ${start}`);
    const byte = buf[pos] as number;
    pos += 1;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error(`varint longer than 10 bytes at byte ${start}`);
  }
}

function* fields(buf: Buffer): Generator<WireField> {
  let pos = 0;
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos);
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    pos = afterTag;
    if (field === 0) throw new Error(`field number 0 at byte ${pos}`);
    switch (wire) {
      case 0: {
        const [value, next] = readVarint(buf, pos);
        pos = next;
        yield { field, wire, value };
        break;
      }
      case 1:
      case 5: {
        const size = wire === 1 ? 8 : 4;
        if (pos + size > buf.length) throw new Error(`truncated fixed${size * 8} field ${field}`);
        yield { field, wire, value: buf.subarray(pos, pos + size) };
        pos += size;
        break;
      }
      case 2: {
        const [length, next] = readVarint(buf, pos);
        const end = next + Number(length);
        if (end > buf.length) throw new Error(`field ${field} is ${length} bytes long but only ${buf.length - next} remain`);
        yield { field, wire, value: buf.subarray(next, end) };
        pos = end;
        break;
      }
      default:
        throw new Error(`unsupported wire type ${wire} (field ${field})`);
    }
  }
}

function expectWire<W extends WireField['wire']>(f: WireField, wire: W, what: string): Extract<WireField, { wire: W }> {
  if (f.wire !== wire) throw new Error(`${what} (field ${f.field}) has wire type ${f.wire}, expected ${wire}`);
  return f as Extract<WireField, { wire: W }>;
}

const text = (f: WireField, what: string): string => expectWire(f, 2, what).value.toString('utf8');
const hex = (f: WireField, what: string): string => expectWire(f, 2, what).value.toString('hex');
const uint = (f: WireField, what: string): number => Number(expectWire(f, 0, what).value);
const fixed64 = (f: WireField, what: string): string => expectWire(f, 1, what).value.readBigUInt64LE(0).toString();
const fixed32 = (f: WireField, what: string): number => expectWire(f, 5, what).value.readUInt32LE(0);
const message = (f: WireField, what: string): Buffer => expectWire(f, 2, what).value;

/** `AnyValue`: a oneof of string (1), bool (2), int64 (3), double (4), array (5), kvlist (6), bytes (7). */
function pbAnyValue(buf: Buffer): OtlpValue {
  let value: OtlpValue = null;
  for (const f of fields(buf)) {
    switch (f.field) {
      case 1: value = text(f, 'AnyValue.string_value'); break;
      case 2: value = expectWire(f, 0, 'AnyValue.bool_value').value !== 0n; break;
      case 3: {
        const n = BigInt.asIntN(64, expectWire(f, 0, 'AnyValue.int_value').value);
        value = Number(n);
        break;
      }
      case 4: value = expectWire(f, 1, 'AnyValue.double_value').value.readDoubleLE(0); break;
      case 5: {
        const items: OtlpValue[] = [];
        for (const item of fields(message(f, 'AnyValue.array_value'))) {
          if (item.field === 1) items.push(pbAnyValue(message(item, 'ArrayValue.values')));
        }
        value = items;
        break;
      }
      case 6: {
        const kvs: WireField[] = [...fields(message(f, 'AnyValue.kvlist_value'))].filter((kv) => kv.field === 1);
        value = pbAttributes(kvs);
        break;
      }
      case 7: value = message(f, 'AnyValue.bytes_value').toString('base64'); break;
      default: break; // unknown fields are skipped, as proto3 requires
    }
  }
  return value;
}

/** Repeated `KeyValue` fields (key = 1, value = 2) into an attribute map. */
function pbAttributes(kvFields: WireField[]): OtlpAttributes {
  const attributes: OtlpAttributes = {};
  for (const kvField of kvFields) {
    let key = '';
    let value: OtlpValue = null;
    for (const f of fields(message(kvField, 'KeyValue'))) {
      if (f.field === 1) key = text(f, 'KeyValue.key');
      else if (f.field === 2) value = pbAnyValue(message(f, 'KeyValue.value'));
    }
    attributes[key] = value;
  }
  return attributes;
}

function pbEvent(buf: Buffer): ReceivedEvent {
  const event: ReceivedEvent = { name: '', timeUnixNano: '0', attributes: {} };
  const attrs: WireField[] = [];
  for (const f of fields(buf)) {
    if (f.field === 1) event.timeUnixNano = fixed64(f, 'Event.time_unix_nano');
    else if (f.field === 2) event.name = text(f, 'Event.name');
    else if (f.field === 3) attrs.push(f);
  }
  event.attributes = pbAttributes(attrs);
  return event;
}

function pbLink(buf: Buffer): ReceivedLink {
  const link: ReceivedLink = { traceId: '', spanId: '', traceState: '', attributes: {} };
  const attrs: WireField[] = [];
  for (const f of fields(buf)) {
    if (f.field === 1) link.traceId = hex(f, 'Link.trace_id');
    else if (f.field === 2) link.spanId = hex(f, 'Link.span_id');
    else if (f.field === 3) link.traceState = text(f, 'Link.trace_state');
    else if (f.field === 4) attrs.push(f);
  }
  link.attributes = pbAttributes(attrs);
  return link;
}

function pbSpan(buf: Buffer, resource: OtlpAttributes, scope: ReceivedSpan['scope']): ReceivedSpan {
  const span: ReceivedSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    traceState: '',
    name: '',
    kind: 0,
    startTimeUnixNano: '0',
    endTimeUnixNano: '0',
    attributes: {},
    status: { code: 0, message: '' },
    events: [],
    links: [],
    flags: 0,
    resource,
    scope,
    protocol: 'http/protobuf',
  };
  const attrs: WireField[] = [];
  for (const f of fields(buf)) {
    switch (f.field) {
      case 1: span.traceId = hex(f, 'Span.trace_id'); break;
      case 2: span.spanId = hex(f, 'Span.span_id'); break;
      case 3: span.traceState = text(f, 'Span.trace_state'); break;
      case 4: span.parentSpanId = hex(f, 'Span.parent_span_id'); break;
      case 5: span.name = text(f, 'Span.name'); break;
      case 6: span.kind = uint(f, 'Span.kind'); break;
      case 7: span.startTimeUnixNano = fixed64(f, 'Span.start_time_unix_nano'); break;
      case 8: span.endTimeUnixNano = fixed64(f, 'Span.end_time_unix_nano'); break;
      case 9: attrs.push(f); break;
      case 11: span.events.push(pbEvent(message(f, 'Span.events'))); break;
      case 13: span.links.push(pbLink(message(f, 'Span.links'))); break;
      case 15:
        for (const s of fields(message(f, 'Span.status'))) {
          if (s.field === 2) span.status.message = text(s, 'Status.message');
          else if (s.field === 3) span.status.code = uint(s, 'Status.code');
        }
        break;
      case 16: span.flags = fixed32(f, 'Span.flags'); break;
      default: break; // dropped_*_count (10, 12, 14) and unknown fields
    }
  }
  span.attributes = pbAttributes(attrs);
  return span;
}

/** `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }` */
function decodeProtobufTraces(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rsField of fields(body)) {
    if (rsField.field !== 1) continue;
    // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
    let resource: OtlpAttributes = {};
    const scopeSpansFields: WireField[] = [];
    for (const f of fields(message(rsField, 'ResourceSpans'))) {
      if (f.field === 1) {
        // Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
        resource = pbAttributes([...fields(message(f, 'Resource'))].filter((a) => a.field === 1));
      } else if (f.field === 2) {
        scopeSpansFields.push(f);
      }
    }
    for (const ssField of scopeSpansFields) {
      // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
      const scope = { name: '', version: '' };
      const spanFields: WireField[] = [];
      for (const f of fields(message(ssField, 'ScopeSpans'))) {
        if (f.field === 1) {
          for (const s of fields(message(f, 'InstrumentationScope'))) {
            if (s.field === 1) scope.name = text(s, 'InstrumentationScope.name');
            else if (s.field === 2) scope.version = text(s, 'InstrumentationScope.version');
          }
        } else if (f.field === 2) {
          spanFields.push(f);
        }
      }
      for (const f of spanFields) out.push(pbSpan(message(f, 'Span'), resource, scope));
    }
  }
  return out;
}
