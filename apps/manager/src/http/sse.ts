/**
 * Server-Sent Events from a run's event stream (a Redis Stream): every event after `afterId`, in
 * order, each with its stream id as the SSE `id` (so a client resumes with `Last-Event-ID` without
 * missing or repeating one); the stream ends after `run_finished` and, when the workflow has an end
 * action, after that end action's final `end_action` event (run-stream-end.ts). Idle streams get a
 * comment every `sseKeepAliveMs` so proxies keep them open.
 *
 * What is already in the stream is read on the API's ordinary connection; what comes after is
 * delivered by the process's one shared blocking reader (./run-event-hub.ts), so an open stream
 * holds no Redis connection of its own. Each API key may hold `sseMaxStreamsPerKey` streams open at
 * once in one API process; one more answers 429 `TOO_MANY_STREAMS`.
 *
 * With `output: true`, the pieces of phase output being written (the run's short-lived output
 * stream, see `PhaseOutputWriter`) are merged in as `event: phase_output_delta` messages. They carry
 * no SSE `id`, so the client's last event id stays that of the last durable event and a resume with
 * `Last-Event-ID` is exact; after a reconnect the pieces still kept are sent again, and a client
 * drops the overlap by `offset`.
 */
import { isTerminalRun, parsePhaseOutputEntries, phaseOutputKey, type StoredPhaseOutputDelta, type StoredRunEvent } from '@agentfleet/core';
import type { FastifyReply } from 'fastify';
import type { ApiContext } from './context.js';
import { streamIdAfter, type RunEventSubscription } from './run-event-hub.js';
import { endActionSettled, RunStreamEnd } from './run-stream-end.js';

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

/** An SSE message without an `id` (phase output pieces: the client's last event id is left alone). */
export function sseMessageWithoutId(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Answer the request with the run's events as SSE (and, with `options.output`, its phase output
 * pieces as `phase_output_delta` messages without an id).
 *
 * @param afterId - the last event id the client has (`0` for all).
 * @param keyId - the caller's API key id, counted against `sseMaxStreamsPerKey`.
 * @throws FleetError `TOO_MANY_STREAMS` before anything is sent, when the key holds too many streams.
 */
export async function streamRunEvents(ctx: ApiContext, reply: FastifyReply, runId: string, afterId: string, keyId: string, options: { output?: boolean } = {}): Promise<void> {
  const release = ctx.sseStreams.acquire(keyId);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, EVENT_STREAM_HEADERS);
  res.write('retry: 2000\n\n');

  const output = options.output === true;
  const outputKey = phaseOutputKey(ctx.store.prefix, runId);
  let last = afterId;
  let lastOutput = '0';
  let streamEnd: RunStreamEnd | undefined;
  let ended = false;
  const subscriptions: RunEventSubscription[] = [];
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
    for (const s of subscriptions) s.close();
    res.off('close', end);
    release();
    res.end();
    resolveDone();
  };
  res.on('close', end);
  // A client that went away before the listener was attached never fires 'close': look now.
  if (res.destroyed || res.socket === null || res.socket.destroyed) end();

  const writePieces = (pieces: readonly StoredPhaseOutputDelta[]): void => {
    for (const p of pieces) {
      if (ended) return;
      res.write(sseMessageWithoutId(p.delta.type, p.delta));
      lastOutput = p.id;
    }
  };
  /**
   * Write events, and pieces written before each of them (both streams' ids come from the same
   * Redis clock, so a replay interleaves them as they happened); true once the stream's last event
   * was written (it then ends).
   */
  const write = (events: readonly StoredRunEvent[], pieces: readonly StoredPhaseOutputDelta[] = []): boolean => {
    let i = 0;
    for (const e of events) {
      if (ended) return true;
      for (; i < pieces.length && streamIdAfter(e.id, (pieces[i] as StoredPhaseOutputDelta).id); i++) writePieces([pieces[i] as StoredPhaseOutputDelta]);
      res.write(sseMessage(e.id, e.event.type, e.event));
      last = e.id;
      if (streamEnd?.isLast(e.event)) {
        end();
        return true;
      }
    }
    writePieces(pieces.slice(i));
    return false;
  };
  const fail = (err: Error) => {
    if (!ended) res.write(`event: error\ndata: ${JSON.stringify({ message: err.message })}\n\n`);
    end();
  };

  try {
    // Which event is the stream's last: `run_finished`, or the end action's final event after it.
    const { meta } = await ctx.store.getRun(runId);
    streamEnd = new RunStreamEnd(meta);
    // What is there already, on the ordinary connection.
    for (;;) {
      if (ended) return;
      const events = await ctx.store.readEvents(runId, last);
      const pieces = output ? await readOutput(ctx, outputKey, lastOutput) : [];
      if (events.length === 0 && pieces.length === 0) break;
      if (write(events, pieces)) return;
    }
    const { state } = await ctx.store.getRun(runId);
    // A finished run whose final event is behind `last` (or was trimmed), with its end action (if
    // any) settled: nothing more will come.
    if (isTerminalRun(state.status) && (await endActionSettled(ctx.store, meta))) {
      const more = await ctx.store.readEvents(runId, last);
      if (!write(more)) end();
      return;
    }
    if (ended) return;
    // Whatever comes next, from the shared reader (it starts at `last`, so nothing is missed in between).
    subscriptions.push(ctx.runEvents.subscribe(runId, last, { onEvents: (events) => { write(events); }, onError: fail }));
    if (output) subscriptions.push(ctx.runEvents.subscribeStream(outputKey, lastOutput, { onEntries: (entries) => writePieces(parsePhaseOutputEntries(entries)), onError: fail }));
    await done;
  } catch (err) {
    fail(err as Error);
  }
}

async function readOutput(ctx: ApiContext, key: string, after: string): Promise<StoredPhaseOutputDelta[]> {
  const reply = await ctx.redis.xread('COUNT', 1000, 'STREAMS', key, after);
  return reply ? parsePhaseOutputEntries(reply[0]?.[1] ?? []) : [];
}
