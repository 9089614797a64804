/**
 * Server-Sent Events from a run's event stream (a Redis Stream): every event after `afterId`, in
 * order, each with its stream id as the SSE `id` (so a client resumes with `Last-Event-ID` without
 * missing or repeating one); the stream ends after `run_finished`. Idle streams get a comment every
 * `sseKeepAliveMs` so proxies keep them open.
 *
 * With `output: true`, the pieces of phase output being written (the run's short-lived output
 * stream, see `PhaseOutputWriter`) are merged in as `event: phase_output_delta` messages. They carry
 * no SSE `id`, so the client's last event id stays that of the last durable event and a resume with
 * `Last-Event-ID` is exact; after a reconnect the pieces still kept are sent again, and a client
 * drops the overlap by `offset`. One blocking `XREAD` waits on both streams.
 */
import { isTerminalRun, parsePhaseOutputEntries, phaseOutputKey, type StoredPhaseOutputDelta, type StoredRunEvent } from '@agentfleet/core';
import type { FastifyReply } from 'fastify';
import type { ApiContext } from './context.js';

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
 * Serve a run's events (and with `options.output` its phase output pieces) as SSE until the run
 * finishes or the client goes away.
 *
 * @param afterId - the last event id the client has (`0` for all).
 */
export async function streamRunEvents(ctx: ApiContext, reply: FastifyReply, runId: string, afterId: string, options: { output?: boolean } = {}): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, EVENT_STREAM_HEADERS);
  res.write('retry: 2000\n\n');
  const blocking = ctx.blockingConnection();
  blocking.on('error', () => {
    // Reported through the failing read below.
  });
  let closed = false;
  const onClose = () => {
    closed = true;
    blocking.disconnect();
  };
  res.on('close', onClose);
  // A client that went away before the listener was attached never fires 'close': look now, and on every turn.
  const gone = () => res.destroyed || res.socket === null || res.socket.destroyed;
  if (gone()) onClose();
  let last = afterId;
  let lastOutput = '0';
  const output = options.output === true;
  const outputKey = phaseOutputKey(ctx.store.prefix, runId);
  try {
    while (!closed && !gone()) {
      let events = await ctx.store.readEvents(runId, last);
      let pieces = output ? await readOutput(ctx, outputKey, lastOutput) : [];
      if (events.length === 0 && pieces.length === 0) {
        const { state } = await ctx.store.getRun(runId);
        // A finished run whose final event is behind `last` (or was trimmed): nothing more will come.
        if (isTerminalRun(state.status) && (await ctx.store.readEvents(runId, last)).length === 0) break;
        ({ events, pieces } = output
          ? await blockingReadBoth(blocking, ctx, runId, outputKey, last, lastOutput)
          : { events: await ctx.store.readEvents(runId, last, ctx.options.sseKeepAliveMs, blocking), pieces: [] });
        if (closed || gone()) break;
        if (events.length === 0 && pieces.length === 0) {
          res.write(': keep-alive\n\n');
          continue;
        }
      }
      // In the order Redis wrote them (both streams' ids come from the same server clock), so a
      // replay after a reconnect interleaves pieces and events as they happened.
      let finished = false;
      let i = 0;
      for (const e of events) {
        for (; i < pieces.length && compareIds((pieces[i] as StoredPhaseOutputDelta).id, e.id) < 0; i++) {
          const p = pieces[i] as StoredPhaseOutputDelta;
          res.write(sseMessageWithoutId(p.delta.type, p.delta));
          lastOutput = p.id;
        }
        res.write(sseMessage(e.id, e.event.type, e.event));
        last = e.id;
        if (e.event.type === 'run_finished') {
          finished = true;
          break;
        }
      }
      if (!finished) {
        for (; i < pieces.length; i++) {
          const p = pieces[i] as StoredPhaseOutputDelta;
          res.write(sseMessageWithoutId(p.delta.type, p.delta));
          lastOutput = p.id;
        }
      }
      if (finished) break;
    }
  } catch (err) {
    if (!closed) res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
  } finally {
    res.off('close', onClose);
    blocking.disconnect();
    res.end();
  }
}

async function readOutput(ctx: ApiContext, key: string, after: string): Promise<StoredPhaseOutputDelta[]> {
  const reply = await ctx.redis.xread('COUNT', 1000, 'STREAMS', key, after);
  return reply ? parsePhaseOutputEntries(reply[0]?.[1] ?? []) : [];
}

/** One blocking `XREAD` on the run's events and its output stream (same hash tag: one Cluster slot). */
async function blockingReadBoth(
  blocking: ReturnType<ApiContext['blockingConnection']>,
  ctx: ApiContext,
  runId: string,
  outputKey: string,
  lastEvent: string,
  lastOutput: string,
): Promise<{ events: StoredRunEvent[]; pieces: StoredPhaseOutputDelta[] }> {
  const eventsKey = ctx.store.eventsKey(runId);
  const reply = await blocking.xread('COUNT', 500, 'BLOCK', ctx.options.sseKeepAliveMs, 'STREAMS', eventsKey, outputKey, lastEvent, lastOutput);
  const events: StoredRunEvent[] = [];
  let pieces: StoredPhaseOutputDelta[] = [];
  for (const [key, entries] of reply ?? []) {
    if (key === outputKey) {
      pieces = parsePhaseOutputEntries(entries);
      continue;
    }
    for (const [id, fields] of entries) {
      const i = fields.indexOf('data');
      const data = i >= 0 ? fields[i + 1] : undefined;
      if (data) events.push({ id, event: JSON.parse(data) as StoredRunEvent['event'] });
    }
  }
  return { events, pieces };
}

/** Order of two stream ids (`<ms>-<seq>`): negative when `a` is older. */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
