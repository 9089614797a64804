/**
 * Fixtures for the HTTP API tests: a fleet (manager + pools) with an LLM whose phases can be held
 * open, the API on a free port, a JSON client, an SSE reader and a webhook receiver.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BUILTIN_ROLES, createLlmClient } from '@agentfleet/agents';
import { loadConfig, type LlmClient, type LlmRequest, type LlmResponse } from '@agentfleet/core';
import { startHttpApi, type HttpApi } from '@agentfleet/manager';
import { startFleet, type FleetFixture } from './fleet.js';

export const ADMIN_KEY = 'admin-key-0123456789abcdef';
export const ANALYST_KEY = 'analyst-key-0123456789abcdef';

/**
 * An offline LLM that records every system prompt and holds phases named in `held` until released
 * (or aborted), so a test can act while a run is in flight.
 */
export class GatedLlm implements LlmClient {
  readonly provider = 'offline';
  readonly model: string;
  readonly systems: Array<{ phase: string; system: string }> = [];
  private readonly inner: LlmClient;
  private held = new Map<string, { promise: Promise<void>; release: () => void; entered: Promise<void>; enter: () => void }>();

  constructor() {
    const roles = Object.values(BUILTIN_ROLES);
    this.inner = createLlmClient({ ...loadConfig({}), provider: 'offline' }, roles);
    this.model = this.inner.model;
  }

  /** Hold every call of phase `phase` until {@link release}. */
  hold(phase: string): void {
    let release = () => undefined as void;
    const promise = new Promise<void>((r) => (release = r));
    let enter = () => undefined as void;
    const entered = new Promise<void>((r) => (enter = r));
    this.held.set(phase, { promise, release, entered, enter });
  }

  release(phase: string): void {
    this.held.get(phase)?.release();
    this.held.delete(phase);
  }

  /** Resolve once a call of `phase` is being held (the test's own timeout bounds the wait). */
  async entered(phase: string): Promise<void> {
    const gate = this.held.get(phase);
    if (!gate) throw new Error(`phase "${phase}" is not held: call hold("${phase}") first`);
    await gate.entered;
  }

  async generate(request: LlmRequest): Promise<LlmResponse> {
    const phase = (request.inputs as { phase?: string }).phase ?? '';
    this.systems.push({ phase, system: request.system });
    const gate = this.held.get(phase);
    if (gate) {
      gate.enter();
      await Promise.race([
        gate.promise,
        new Promise<void>((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason as Error), { once: true })),
      ]);
    }
    return this.inner.generate(request);
  }
}

export interface ApiFixture extends AsyncDisposable {
  fleet: FleetFixture;
  api: HttpApi;
  llm: GatedLlm;
  call<T = unknown>(method: string, path: string, options?: { key?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; body: T }>;
}

export async function startApiFixture(name: string): Promise<ApiFixture> {
  const llm = new GatedLlm();
  const fleet = await startFleet({ name, llm });
  let api: HttpApi;
  try {
    api = await startHttpApi({
      redisUrl: fleet.url,
      prefix: fleet.prefix,
      port: 0,
      host: '127.0.0.1',
      adminKeys: [ADMIN_KEY],
      apiKeys: [{ key: ANALYST_KEY, userType: 'analyst' }],
      provider: 'offline',
      sseKeepAliveMs: 1000,
    });
  } catch (err) {
    await fleet.close();
    throw err;
  }
  const close = async () => {
    await api.close();
    await fleet.close();
  };
  return {
    fleet,
    api,
    llm,
    async call(method, path, options = {}) {
      const key = options.key === undefined ? ADMIN_KEY : options.key;
      const res = await fetch(api.url + path, {
        method,
        headers: {
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...options.headers,
        },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON (HTML, SSE): keep the text
      }
      return { status: res.status, headers: res.headers, body: body as never };
    },
    [Symbol.asyncDispose]: close,
  };
}

/** One SSE message as received. */
export interface SseMessage {
  id: string;
  event: string;
  data: { type: string } & Record<string, unknown>;
}

/**
 * Read SSE messages from `url` until `stop(messages)` is true (then disconnect) or the server ends
 * the stream.
 */
export async function readSse(
  url: string,
  key: string,
  options: { lastEventId?: string; stop?: (m: SseMessage[]) => boolean; /** Called once the server answered 200 and the stream is open. */ onOpen?: () => void } = {},
): Promise<{ messages: SseMessage[]; ended: boolean }> {
  const controller = new AbortController();
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream', ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}) },
    signal: controller.signal,
  });
  if (res.status !== 200 || !res.body) throw new Error(`SSE ${url} answered ${res.status}: ${await res.text()}`);
  options.onOpen?.();
  const messages: SseMessage[] = [];
  let stopped = false;
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
        if (fields.id && fields.data) messages.push({ id: fields.id, event: fields.event ?? '', data: JSON.parse(fields.data) as SseMessage['data'] });
        if (options.stop?.(messages)) {
          stopped = true;
          controller.abort();
          return { messages, ended: false };
        }
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  }
  return { messages, ended: !stopped };
}

export interface WebhookReceiver extends AsyncDisposable {
  url: string;
  requests: Array<{ headers: IncomingHttpHeaders; body: string; answered: number }>;
  /** Status codes to answer, in order; 200 after the list runs out. */
  answers: number[];
  waitFor(count: number, timeoutMs?: number): Promise<void>;
}

/** A local HTTP server that receives webhooks. */
export async function startWebhookReceiver(answers: number[] = []): Promise<WebhookReceiver> {
  const requests: WebhookReceiver['requests'] = [];
  /** Waiters of {@link WebhookReceiver.waitFor}, told on each request received. */
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const status = receiver.answers.shift() ?? 200;
      requests.push({ headers: req.headers, body, answered: status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'boom');
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${port}/hooks/run-finished`,
    requests,
    answers,
    waitFor(count, timeoutMs = 60_000) {
      // Resolved by the request that makes the count; the timer only turns a missing one into a failure.
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (requests.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`webhook received ${requests.length} of ${count} requests in ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return receiver;
}

/**
 * Resolve with what `fn` returns once it is not undefined, asking it again every 50 ms: for state that
 * no event announces (a key expiring, a row in PostgreSQL, a lock taken). A run's state is awaited
 * with `waitForRunState` (./run-events.ts), woken by the run's events instead.
 *
 * `fn` decides the outcome; the deadline only turns a state that never came into a failure naming
 * `what` (one last look is taken after it passed).
 */
export async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
