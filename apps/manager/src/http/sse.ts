/**
 * Server-Sent Events from a run's event stream (a Redis Stream): every event after `afterId`, in
 * order, each with its stream id as the SSE `id` (so a client resumes with `Last-Event-ID` without
 * missing or repeating one); the stream ends after `run_finished`. Idle streams get a comment every
 * `sseKeepAliveMs` so proxies keep them open.
 *
 * What is already in the stream is read on the API's ordinary connection; what comes after is
 * delivered by the process's one shared blocking reader (./run-event-hub.ts), so an open stream
 * holds no Redis connection of its own. Each API key may hold `sseMaxStreamsPerKey` streams open at
 * once in one API process; one more answers 429 `TOO_MANY_STREAMS`.
 */
import { FleetError, isTerminalRun, type StoredRunEvent } from '@agentfleet/core';
import type { FastifyReply } from 'fastify';
import type { ApiContext } from './context.js';
import type { RunEventSubscription } from './run-event-hub.js';

/** One SSE message. `data` is one line of JSON (JSON never holds a raw newline). */
export function sseMessage(id: string, type: string, data: unknown): string {
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

const EVENT_STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** Answer with a finished event stream: `messages` (SSE messages, e.g. from {@link sseMessage}) and the end. */
export function sendEventStream(reply: FastifyReply, messages: string): void {
  reply.hijack();
  reply.raw.writeHead(200, EVENT_STREAM_HEADERS);
  reply.raw.end(messages);
}

/** Open SSE streams per API key in this process, against a cap. */
export class StreamCounter {
  private readonly open = new Map<string, number>();

  /** @param max - streams one key may hold open at once. */
  constructor(readonly max: number) {}

  /**
   * Count one more stream for `keyId`.
   *
   * @returns the release function (idempotent).
   * @throws FleetError `TOO_MANY_STREAMS` (429) when the key already holds `max` streams.
   */
  acquire(keyId: string): () => void {
    const n = this.open.get(keyId) ?? 0;
    if (n >= this.max) {
      throw new FleetError(
        'TOO_MANY_STREAMS',
        `this API key already holds ${n} open event streams, the most one key may hold (FLEET_SSE_MAX_STREAMS_PER_KEY=${this.max}); close one, or follow several runs from one client`,
        { details: { open_streams: n, limit: this.max } },
      );
    }
    this.open.set(keyId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(keyId) ?? 1) - 1;
      if (left <= 0) this.open.delete(keyId);
      else this.open.set(keyId, left);
    };
  }

  /** Streams `keyId` holds open now. */
  count(keyId: string): number {
    return this.open.get(keyId) ?? 0;
  }
}

/**
 * Answer the request with the run's events as SSE.
 *
 * @param keyId - the caller's API key id, counted against `sseMaxStreamsPerKey`.
 * @throws FleetError `TOO_MANY_STREAMS` before anything is sent, when the key holds too many streams.
 */
export async function streamRunEvents(ctx: ApiContext, reply: FastifyReply, runId: string, afterId: string, keyId: string): Promise<void> {
  const release = ctx.sseStreams.acquire(keyId);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, EVENT_STREAM_HEADERS);
  res.write('retry: 2000\n\n');

  let last = afterId;
  let ended = false;
  let subscription: RunEventSubscription | undefined;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const keepAlive = setInterval(() => {
    if (!ended) res.write(': keep-alive\n\n');
  }, ctx.options.sseKeepAliveMs);
  keepAlive.unref();
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(keepAlive);
    subscription?.close();
    res.off('close', end);
    release();
    res.end();
    resolveDone();
  };
  res.on('close', end);
  // A client that went away before the listener was attached never fires 'close': look now.
  if (res.destroyed || res.socket === null || res.socket.destroyed) end();

  /** Write events in order; true once `run_finished` was written (the stream then ends). */
  const write = (events: readonly StoredRunEvent[]): boolean => {
    for (const e of events) {
      if (ended) return true;
      res.write(sseMessage(e.id, e.event.type, e.event));
      last = e.id;
      if (e.event.type === 'run_finished') {
        end();
        return true;
      }
    }
    return false;
  };
  const fail = (err: Error) => {
    if (!ended) res.write(`event: error\ndata: ${JSON.stringify({ message: err.message })}\n\n`);
    end();
  };

  try {
    // What is there already, on the ordinary connection.
    for (;;) {
      if (ended) return;
      const events = await ctx.store.readEvents(runId, last);
      if (events.length === 0) break;
      if (write(events)) return;
    }
    const { state } = await ctx.store.getRun(runId);
    // A finished run whose final event is behind `last` (or was trimmed): nothing more will come.
    if (isTerminalRun(state.status)) {
      const more = await ctx.store.readEvents(runId, last);
      if (!write(more)) end();
      return;
    }
    if (ended) return;
    // Whatever comes next, from the shared reader (it starts at `last`, so nothing is missed in between).
    subscription = ctx.runEvents.subscribe(runId, last, { onEvents: (events) => { write(events); }, onError: fail });
    await done;
  } catch (err) {
    fail(err as Error);
  }
}
