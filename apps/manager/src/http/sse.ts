/**
 * Server-Sent Events from a run's event stream (a Redis Stream): every event after `afterId`, in
 * order, each with its stream id as the SSE `id` (so a client resumes with `Last-Event-ID` without
 * missing or repeating one); the stream ends after `run_finished` and, when the workflow has an end
 * action, after that end action's final `end_action` event (run-stream-end.ts). Idle streams get a
 * comment every `sseKeepAliveMs` so proxies keep them open.
 */
import { isTerminalRun } from '@agentfleet/core';
import type { FastifyReply } from 'fastify';
import type { ApiContext } from './context.js';
import { endActionSettled, RunStreamEnd } from './run-stream-end.js';

/** One SSE message. `data` is one line of JSON (JSON never holds a raw newline). */
export function sseMessage(id: string, type: string, data: unknown): string {
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

export async function streamRunEvents(ctx: ApiContext, reply: FastifyReply, runId: string, afterId: string): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
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
  let end: RunStreamEnd | undefined;
  try {
    while (!closed && !gone()) {
      let events = await ctx.store.readEvents(runId, last);
      if (events.length === 0) {
        const { state, meta } = await ctx.store.getRun(runId);
        end ??= new RunStreamEnd(meta);
        // A finished run whose final event is behind `last` (or was trimmed): nothing more will come.
        if (isTerminalRun(state.status) && (await endActionSettled(ctx.store, meta)) && (await ctx.store.readEvents(runId, last)).length === 0) break;
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
        end ??= new RunStreamEnd((await ctx.store.getRun(runId)).meta);
        if (end.isLast(e.event)) {
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
