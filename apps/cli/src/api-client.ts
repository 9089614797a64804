/**
 * A small client of the manager's HTTP API for `fleet submit` and `fleet watch`: JSON requests with
 * the API key, and a Server-Sent Events reader that resumes with `Last-Event-ID` after a dropped
 * connection.
 */
import { FleetError, incomingTraceCarrier, type FleetErrorCode, type PhaseOutputDelta, type StoredRunEvent } from '@agentfleet/core';

export interface ApiClientOptions {
  /** Base URL of the manager's HTTP API, e.g. `http://127.0.0.1:8080`. */
  managerUrl: string;
  /** API key; `FLEET_API_KEY` by default. */
  apiKey: string | undefined;
}

/**
 * Send one JSON request.
 *
 * @returns the parsed JSON body of a 2xx answer.
 * @throws FleetError with the server's error code and message for a 4xx/5xx answer;
 *   `REDIS_UNAVAILABLE`-like `INTERNAL` when the server cannot be reached.
 */
export async function apiRequest<T>(options: ApiClientOptions, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, options.managerUrl), {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
        // TRACEPARENT / TRACESTATE (the OpenTelemetry environment carrier) continue a calling script's trace.
        ...incomingTraceCarrier(process.env.TRACEPARENT, process.env.TRACESTATE),
        ...headers,
      },
      ...(body !== undefined ? { body: body instanceof RawBody ? body.text : JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new FleetError('INVALID_INPUT', `cannot reach the manager at ${options.managerUrl} (${(err as Error).message}); check --manager-url and that \`fleet manager --port\` runs`, { cause: err });
  }
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    const code = (e?.code ?? 'INTERNAL') as FleetErrorCode;
    const hint = res.status === 401 ? ' (set FLEET_API_KEY or pass --api-key)' : '';
    throw new FleetError(code in CODES ? code : 'INTERNAL', `${method} ${path} answered ${res.status}: ${e?.message ?? text}${hint}`);
  }
  return json as T;
}

/** A request body sent as it is, not JSON-serialized (a signed body must reach the server byte for byte). */
export class RawBody {
  constructor(readonly text: string) {}
}

const CODES: Record<string, true> = Object.fromEntries(
  ['INVALID_INPUT', 'INVALID_WORKFLOW', 'WORKFLOW_NOT_FOUND', 'RUN_NOT_FOUND', 'UNAUTHORIZED', 'FORBIDDEN', 'CONFLICT', 'NOT_FOUND', 'INVALID_STATE', 'REDIS_UNAVAILABLE', 'INTERNAL'].map((c) => [c, true]),
);

/**
 * Follow a run's events over SSE until `run_finished`, reconnecting (with `Last-Event-ID`) when the
 * connection drops. Each event is handed to `onEvent` once, in order. With `onOutput`, the stream
 * also carries the running phases' output pieces (`?output=true`, `event: phase_output_delta`),
 * handed to it as they come (after a reconnect, pieces may come again: dedupe by `offset`).
 */
export async function followRunEvents(
  options: ApiClientOptions,
  runId: string,
  onEvent: (e: StoredRunEvent) => void,
  onOutput?: (delta: PhaseOutputDelta) => void,
): Promise<void> {
  let last: string | undefined;
  for (let failures = 0; ; ) {
    try {
      const res = await fetch(new URL(`/api/runs/${encodeURIComponent(runId)}/events${onOutput ? '?output=true' : ''}`, options.managerUrl), {
        headers: {
          accept: 'text/event-stream',
          ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
          ...(last ? { 'last-event-id': last } : {}),
        },
      });
      if (!res.ok || !res.body) {
        const text = await res.text();
        const e = (text ? (JSON.parse(text) as { error?: { code?: string; message?: string } }) : {}).error;
        const code = (e?.code ?? 'INTERNAL') as FleetErrorCode;
        throw new FleetError(code in CODES ? code : 'INTERNAL', `GET /api/runs/${runId}/events answered ${res.status}: ${e?.message ?? text}`);
      }
      failures = 0;
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const message = parseSseBlock(block);
          if (message?.event === 'phase_output_delta' && message.data) {
            onOutput?.(JSON.parse(message.data) as PhaseOutputDelta);
            continue;
          }
          if (!message?.data || !message.id) continue;
          last = message.id;
          const event = JSON.parse(message.data) as StoredRunEvent['event'];
          onEvent({ id: message.id, event });
        }
      }
      // The server ends the stream after the final event, or at once when the run finished before `last`.
      return;
    } catch (err) {
      if (err instanceof FleetError) throw err;
      if (++failures > 5) throw new FleetError('INTERNAL', `lost the event stream of run ${runId}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 500 * failures));
    }
  }
}

/** One SSE message block (`id:`, `event:`, `data:` lines; comments ignored). */
export function parseSseBlock(block: string): { id?: string; event?: string; data?: string } | undefined {
  const out: { id?: string; event?: string; data?: string } = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'id') out.id = value;
    else if (field === 'event') out.event = value;
    else if (field === 'data') out.data = out.data === undefined ? value : `${out.data}\n${value}`;
  }
  return out.id || out.data ? out : undefined;
}
