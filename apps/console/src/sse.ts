/**
 * Follow a run's events over the API's Server-Sent Events endpoint. `EventSource` cannot send an
 * `Authorization` header, so this reads the stream with `fetch` and parses it, sending the last id
 * seen as `Last-Event-ID` when it connects again after a dropped connection (no event is missed or
 * repeated).
 */
import { ApiError, storedKey, type RunEvent } from './api.js';

/** A piece of a running phase's output (`event: phase_output_delta`, sent without an id). */
export interface PhaseOutputDelta {
  type: 'phase_output_delta';
  run_id: string;
  phase: string;
  iteration: number;
  attempt: number;
  /** 0 for the attempt's first reply, 1.. for schema repairs. */
  call: number;
  kind: 'text' | 'tool_input' | 'thinking';
  /** Where `text` starts in this call's output of this kind (UTF-16 code units). */
  offset: number;
  text: string;
  at: number;
}

export interface FollowOptions {
  /** Resume after this stream id. */
  lastEventId?: string;
  onEvent(e: RunEvent): void;
  /** Told of each piece of phase output as it is written; asks the API for them (`output=true`). */
  onOutput?(delta: PhaseOutputDelta): void;
  /** The connection state, for the page to show. */
  onState?(state: 'connecting' | 'open' | 'reconnecting' | 'ended', detail?: string): void;
  /** Wait before reconnecting after a dropped connection, ms (the server's `retry:` when it sends one). */
  retryMs?: number;
}

/**
 * Stream events until the server ends the stream after `run_finished`, or `signal` aborts. Reconnects
 * with `Last-Event-ID` when the connection drops.
 *
 * @returns the last event id seen.
 * @throws ApiError when the API refuses the stream (401, 404): reconnecting would not help.
 */
export async function followRun(runId: string, signal: AbortSignal, options: FollowOptions): Promise<string | undefined> {
  let last = options.lastEventId;
  let retryMs = options.retryMs ?? 2000;
  let first = true;
  while (!signal.aborted) {
    options.onState?.(first ? 'connecting' : 'reconnecting');
    first = false;
    let finished = false;
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      const key = storedKey();
      if (key) headers.authorization = `Bearer ${key}`;
      if (last) headers['last-event-id'] = last;
      const query = options.onOutput ? '?output=true' : '';
      const res = await fetch(`/api/runs/${encodeURIComponent(runId)}/events${query}`, { headers, signal });
      if (!res.ok || !res.body) throw new ApiError(res.status, await res.text());
      options.onState?.('open');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const message = parseBlock(block);
          if (message.retry !== undefined) retryMs = message.retry;
          // Output pieces carry no id (the last event id stays a durable event's).
          if (message.event === 'phase_output_delta' && message.data !== undefined) {
            options.onOutput?.(JSON.parse(message.data) as PhaseOutputDelta);
            continue;
          }
          if (message.id === undefined || message.data === undefined) continue;
          last = message.id;
          const data = JSON.parse(message.data) as RunEvent['data'];
          options.onEvent({ id: message.id, type: message.event ?? data.type, data });
          if (data.type === 'run_finished') finished = true;
        }
      }
      // The server ends the stream after run_finished; anything else is a dropped connection.
      if (finished) {
        options.onState?.('ended');
        return last;
      }
    } catch (err) {
      if (signal.aborted) return last;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        options.onState?.('ended', err.apiMessage);
        throw err;
      }
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, retryMs);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  }
  return last;
}

function parseBlock(block: string): { id?: string; event?: string; data?: string; retry?: number } {
  const out: { id?: string; event?: string; data?: string; retry?: number } = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'id') out.id = value;
    else if (field === 'event') out.event = value;
    else if (field === 'data') out.data = out.data === undefined ? value : `${out.data}\n${value}`;
    else if (field === 'retry' && /^\d+$/.test(value)) out.retry = Number(value);
  }
  return out;
}
