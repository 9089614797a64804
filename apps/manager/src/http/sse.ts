/**
 * Server-Sent Events from a run's event stream (a Redis Stream): every event after `afterId`, in
 * order, each with its stream id as the SSE `id` (so a client resumes with `Last-Event-ID` without
 * missing or repeating one); the stream ends after `run_finished`. Idle streams get a comment every
 * `sseKeepAliveMs` so proxies keep them open.
 */
import { isTerminalRun } from '@agentfleet/core';
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

export async function streamRunEvents(ctx: ApiContext, reply: FastifyReply, runId: string, afterId: string): Promise<void> {
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
  try {
    while (!closed && !gone()) {
      let events = await ctx.store.readEvents(runId, last);
      if (events.length === 0) {
        const { state } = await ctx.store.getRun(runId);
        // A finished run whose final event is behind `last` (or was trimmed): nothing more will come.
        if (isTerminalRun(state.status) && (await ctx.store.readEvents(runId, last)).length === 0) break;
        events = await ctx.store.readEvents(runId, last, ctx.options.sseKeepAliveMs, blocking);
        if (closed || gone()) break;
        if (events.length === 0) {
          res.write(': keep-alive\n\n');
          continue;
        }
      }
      let finished = false;
      for (const e of events) {
        res.write(sseMessage(e.id, e.event.type, e.event));
        last = e.id;
        if (e.event.type === 'run_finished') {
          finished = true;
          break;
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
