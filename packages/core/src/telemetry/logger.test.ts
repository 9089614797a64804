import { Writable } from 'node:stream';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, trace } from '@opentelemetry/api';
import { TracerProvider as BasicTracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>>; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text, lines: () => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const provider = new BasicTracerProvider();
beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(() => {
  trace.disable();
  context.disable();
});

describe('createLogger', () => {
  it('writes JSON lines with the active trace_id and span_id', () => {
    const out = capture();
    const log = createLogger({ name: 'test', level: 'info', destination: out.stream });
    const span = trace.getTracer('t').startSpan('s');
    context.with(trace.setSpan(context.active(), span), () => log.info({ run_id: 'r1' }, 'hello'));
    span.end();
    log.info('outside');
    const [inside, outside] = out.lines();
    expect(inside).toMatchObject({ level: 'info', name: 'test', msg: 'hello', run_id: 'r1', trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId });
    expect(outside?.trace_id).toBeUndefined();
  });

  it('never writes secrets: redacted fields, known secret values, sk-ant keys and Redis URL passwords', () => {
    const out = capture();
    const key = 'sk-ant-api03-canary-key-0123';
    const log = createLogger({ name: 'test', level: 'debug', destination: out.stream, secrets: ['hunter2-secret'] });
    log.info({ apiKey: 'plain-secret-value', config: { anthropicApiKey: 'other-secret-value' }, headers: { authorization: 'Bearer x-secret' } }, 'fields');
    log.warn(`calling with ${key}`);
    log.error({ url: 'redis://default:pa55word-xyz@redis:6379/0' }, 'could not reach rediss://:other-pw-123@host:6380');
    log.info('the password is hunter2-secret');
    const text = out.text();
    for (const secret of ['plain-secret-value', 'other-secret-value', 'x-secret', key, 'pa55word-xyz', 'other-pw-123', 'hunter2-secret']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('redis://default:[redacted]@redis:6379/0');
    expect(out.lines()).toHaveLength(4);
  });
});
