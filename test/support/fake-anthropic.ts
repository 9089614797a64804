/**
 * A local HTTP server that speaks the Anthropic Messages API (`POST /v1/messages`), so the real
 * `@anthropic-ai/sdk` can be driven in tests without the internet and without mocking the SDK.
 *
 * Tests script its replies: a forced tool call, a plain text reply, an error status with the
 * API's error body and headers (`retry-after`, `anthropic-ratelimit-*`), a delay, or no answer at
 * all. It records every request it receives (body, headers, arrival time) and counts requests whose
 * socket closed before it answered, which proves that an abort reached the HTTP call.
 *
 * Like the real API (version `2026-10-21`, the one SDK 1.x sends) it rejects, before any scripted
 * reply is used: a missing `anthropic-version` header, a body that is not JSON, a body without
 * `model`, `max_tokens` or `messages`, the sampling parameters `temperature`/`top_p`/`top_k`, a
 * `tool_choice` naming a tool that is not in `tools`, `tool_choice: {type: 'any'}` without tools,
 * `tool_use` blocks not answered by `tool_result` blocks in the next message (or results answering
 * no call), and, when started with `apiKey`, a request whose `Authorization: Bearer` / `x-api-key`
 * header does not carry that key.
 *
 * For tool loops it answers with several `tool_use` blocks at once ({@link FakeToolCallsReply}); a
 * responder decides the reply from the request (the conversation so far), and {@link FakeAnthropic.billed}
 * sums the tokens it billed (4 characters of system, messages and tools an input token).
 *
 * With `batches`, it also speaks the Message Batches API (`/v1/messages/batches`: create, list,
 * retrieve, cancel, results as JSON lines), answering each batched request like a Messages request when the
 * batch is processed ({@link FakeAnthropic.endBatches}, or by itself after some retrievals). With
 * `promptCache`, it keeps a prompt cache with TTLs on a clock the test may skip.
 *
 * Run it in-process and hand its `url` to the SDK as `baseURL`, or to child processes as
 * `ANTHROPIC_BASE_URL`.
 *
 * API reference: https://docs.anthropic.com/en/api/messages, errors: https://docs.anthropic.com/en/api/errors
 *
 * @example
 * await using fake = await startFakeAnthropic();
 * fake.enqueue({ status: 429, errorType: 'rate_limit_error', message: 'slow down', headers: { 'retry-after': '1' } },
 *              { toolInput: { ok: true } });
 * const client = new Anthropic({ apiKey: 'test', baseURL: fake.url });
 */
import { compileOutputSchema } from '@agentfleet/core';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** `error.type` values of the API's error bodies. */
export type FakeErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'api_error'
  | 'overloaded_error';

/** Token counts of a reply; fields left out are estimated from the request and reply sizes. */
export interface FakeUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

/** Answer with one `tool_use` block whose `input` is `toolInput` (`stop_reason: 'tool_use'`). */
export interface FakeToolReply {
  toolInput: unknown;
  usage?: FakeUsage;
  /** Tool name of the block; defaults to the request's forced `tool_choice.name` (or its first tool). */
  toolName?: string;
  /** Defaults to `tool_use`; set `max_tokens` to imitate a tool call cut off by the token limit. */
  stopReason?: string;
  headers?: Record<string, string>;
}

/**
 * Answer with several `tool_use` blocks (the model calling tools other than the submit tool, in
 * parallel), `stop_reason: 'tool_use'`. Each call gets an id `toolu_…`; the next request must answer
 * every one with a `tool_result` block (the server checks it, as the API does).
 */
export interface FakeToolCallsReply {
  toolCalls: Array<{ name: string; input: unknown }>;
  usage?: FakeUsage;
  headers?: Record<string, string>;
}

/** Answer with one `text` block and no tool call (`stop_reason: 'end_turn'` unless given). */
export interface FakeTextReply {
  text: string;
  usage?: FakeUsage;
  stopReason?: string;
  headers?: Record<string, string>;
}

/** Answer with an HTTP error status and the API's error body. */
export interface FakeErrorReply {
  status: number;
  errorType: FakeErrorType;
  message: string;
  /** Response headers, e.g. `retry-after`, `retry-after-ms`, `x-should-retry`, `anthropic-ratelimit-*`. */
  headers?: Record<string, string>;
  /** `error.details` of the body, e.g. `{ error_code: '...' }`. */
  details?: Record<string, unknown>;
}

/** Never answer; the request stays open until the client gives up or the server closes. */
export interface FakeHangReply {
  hang: true;
}

/** Wait `delayMs` milliseconds, then answer with `then` (unless the client went away meanwhile). */
export interface FakeDelayedReply {
  delayMs: number;
  then: FakeReply;
}

/**
 * For a streaming request: start the tool call's event stream, send `afterDeltas` chunks of its
 * input, then an `error` event (HTTP 200 was already sent), as the API does when it fails mid-reply.
 */
export interface FakeStreamErrorReply {
  streamError: { errorType: FakeErrorType; message: string };
  /** Input JSON chunks sent before the error. @defaultValue 2 */
  afterDeltas?: number;
  /** The tool input whose beginning is streamed. @defaultValue `{}` */
  toolInput?: unknown;
}

/**
 * For a streaming request: the reply written piece by piece, like the API's server-sent events: an
 * optional `thinking` block (`thinking_delta`, `signature_delta`), then the tool call's input as
 * `input_json_delta` chunks (or, when the request asks for `output_config.format`, the JSON as
 * `text_delta` chunks of a text block). After `holdAfterChunks` chunks the stream stops until
 * `release` resolves, so a test can prove that a client saw output before the reply ended.
 */
export interface FakeStreamedReply {
  streamed: {
    /** The structured output (tool input, or the JSON text under `output_config.format`). */
    toolInput: unknown;
    /** Thinking text streamed first, in its own block. */
    thinking?: string;
    /** Characters per delta. @defaultValue 16 */
    chunkSize?: number;
    /** Chunks of the output sent before waiting for `release`. @defaultValue never waits */
    holdAfterChunks?: number;
    /** Resolves when the rest of the stream may be sent. */
    release?: Promise<void>;
    /** Called once the held chunks were written to the socket. */
    onHeld?: () => void;
    /** `usage.output_tokens_details.thinking_tokens` of the reply. */
    thinkingTokens?: number;
    usage?: FakeUsage;
  };
}

/**
 * A model's free answer and what grammar-constrained decoding would have produced instead. With
 * `strict: 'honour'` (see {@link FakeAnthropicOptions.strict}) a request whose forced tool is sent
 * with `strict: true` (or that asks for `output_config.format`) gets `constrained`; otherwise it gets
 * `toolInput`. For benchmarks of schema repairs with and without structured outputs.
 */
export interface FakeConstrainedToolReply {
  toolInput: unknown;
  constrained: unknown;
  usage?: FakeUsage;
}

/** One scripted answer to one request. */
export type FakeReply = FakeToolReply | FakeToolCallsReply | FakeTextReply | FakeErrorReply | FakeHangReply | FakeDelayedReply | FakeStreamErrorReply | FakeStreamedReply | FakeConstrainedToolReply;

/** A reply once structured outputs were applied to it (see `#constrain`). */
type ResolvedReply = Exclude<FakeReply, FakeConstrainedToolReply>;

/**
 * A tokens-per-window limit the server enforces like the API's ITPM limit: a request whose input
 * tokens (as reported in `usage.input_tokens`, plus cache writes) would take the sum over the last
 * `windowMs` past `inputTokens` is answered 429 `rate_limit_error` with `retry-after-ms` (the time
 * until enough earlier requests leave the window). Every answer carries `anthropic-ratelimit-input-tokens-*`
 * headers with the limit scaled to a minute.
 */
export interface FakeTokenLimit {
  inputTokens: number;
  windowMs: number;
}

/** One request as the server received it. */
export interface FakeRequest {
  method: string;
  /** Path and query, e.g. `/v1/messages`. */
  path: string;
  /** Header names are lower case. */
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; `undefined` when the body was empty or not JSON. */
  body: Record<string, unknown> | undefined;
  /** Arrival time, epoch ms (`Date.now()` when the body was complete). */
  receivedAtMs: number;
  /** The tool the request forces (`tool_choice: {type: 'tool', name}`), if any. */
  forcedToolName: string | undefined;
}

/** Decides the reply to a request when no scripted reply is queued. */
export type FakeResponder = (request: FakeRequest) => FakeReply | Promise<FakeReply>;

/**
 * A prompt cache the server keeps, as the API does: each `cache_control` breakpoint (in the order
 * tools, system, messages) ends a prefix; a request whose prefix up to a breakpoint was cached and not
 * expired reads those tokens from the cache (`cache_read_input_tokens`; a read refreshes the entry's
 * TTL), and the rest up to its last breakpoint is written (`cache_creation_input_tokens`, split by TTL
 * in `cache_creation`). TTL: the breakpoint's `ttl` (`5m` or `1h`), 5 minutes when absent. Tokens are
 * 4 characters of the request's JSON each, as the fake bills input. Scripted `usage` fields win.
 * See https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
 */
export interface FakePromptCache {
  /** The server's clock, epoch ms, so a test can skip time instead of waiting. @defaultValue Date.now */
  now?: () => number;
}

/**
 * How the fake's Message Batches API (`/v1/messages/batches`) processes batches. Each request of a
 * batch is answered like a Messages API request (the scripted queue, then the responder) when the
 * batch is processed; until then the batch is `in_progress`.
 * See https://docs.anthropic.com/en/api/creating-message-batches
 */
export interface FakeBatchOptions {
  /**
   * Process a batch by itself once it has been retrieved this many times (0: as soon as it is
   * created). @defaultValue never: only {@link FakeAnthropic.endBatches} processes batches
   */
  endAfterRetrievals?: number;
}

/** One batch the fake received. */
export interface FakeBatch {
  id: string;
  status: 'in_progress' | 'canceling' | 'ended';
  requests: Array<{ custom_id: string; params: Record<string, unknown> }>;
  /** Per `custom_id`, once processed: the result as the results endpoint serves it. */
  results: Map<string, Record<string, unknown>>;
  retrievals: number;
  createdAt: number;
  endedAt?: number;
  cancelled: boolean;
}

export interface FakeAnthropicOptions {
  /** Serve the Message Batches API (see {@link FakeBatchOptions}); without it, `/v1/messages/batches` answers 404. */
  batches?: FakeBatchOptions;
  /** Keep a prompt cache (see {@link FakePromptCache}); without it, cache counts are 0 unless scripted. */
  promptCache?: FakePromptCache;
  /** When set, requests must carry this key (`Authorization: Bearer <key>` or `x-api-key`), else 401. */
  apiKey?: string;
  /** Default responder; see {@link FakeAnthropic.setResponder}. */
  responder?: FakeResponder;
  /** Enforce an input-tokens-per-window limit (429 beyond it). */
  tokenLimit?: FakeTokenLimit;
  /**
   * Structured outputs. `honour`: like the API, a tool sent with `strict: true` (and an
   * `output_config.format` schema) must be compatible, else 400 `invalid_request_error` (every
   * object `additionalProperties: false`; none of `minLength`, `maxLength`, `pattern`, `minimum`,
   * `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `maxItems`, `uniqueItems`,
   * `minItems` above 1), and a scripted `toolInput` that does not match the schema is refused
   * with 500 (a strict reply always matches), unless the reply is a {@link FakeConstrainedToolReply}.
   * `ignore`: `strict` is accepted and has no effect, as on a server without structured outputs.
   * @defaultValue 'ignore'
   */
  strict?: 'honour' | 'ignore';
}

/** A running fake Messages API server. */
export interface FakeAnthropic extends AsyncDisposable {
  /** Base URL to pass to the SDK as `baseURL` (or as `ANTHROPIC_BASE_URL`), e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** Every request received, in arrival order, including rejected ones. */
  readonly requests: readonly FakeRequest[];
  /** Requests whose socket closed before the server answered them. */
  readonly aborted: number;
  /** Requests answered within the token limit: arrival (epoch ms) and input tokens counted. */
  readonly served: ReadonlyArray<{ at: number; inputTokens: number }>;
  /** Requests refused with 429 by the token limit. */
  readonly rateLimited: number;
  /** Tokens billed so far (the `usage` of every successful answer, summed), and how many answers. */
  readonly billed: { requests: number; input_tokens: number; output_tokens: number };
  /** Queue replies; each request to `/v1/messages` that passes validation takes the next one. */
  enqueue(...replies: FakeReply[]): void;
  /**
   * Set the responder used when the queue is empty; `undefined` restores the default, which answers
   * 500 `api_error` "fake-anthropic: no reply scripted" with `x-should-retry: false`, so a test that
   * forgot to script a reply fails at once instead of retrying.
   */
  setResponder(responder: FakeResponder | undefined): void;
  /** Every message batch created, in order (with `batches` set). */
  readonly batches: readonly FakeBatch[];
  /** How many times the batches were listed (`GET /v1/messages/batches`). */
  readonly batchLists: number;
  /** Process every batch still in progress: answer each of its requests, and end it. */
  endBatches(): Promise<void>;
  /** Resolve once `count` batches were created; reject after `timeoutMs` (default 20000). */
  waitForBatches(count: number, timeoutMs?: number): Promise<void>;
  /** Resolve once the batches were listed `count` times; reject after `timeoutMs` (default 20000). */
  waitForBatchLists(count: number, timeoutMs?: number): Promise<void>;
  /** Resolve once `count` requests have arrived; reject after `timeoutMs` (default 20000). */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  /** Resolve once `count` requests were aborted by the client; reject after `timeoutMs` (default 20000). */
  waitForAborted(count: number, timeoutMs?: number): Promise<void>;
  /** Requests whose whole answer was handed to the operating system (the response's `finish`). */
  readonly answered: number;
  /** Resolve once `count` requests were answered in full (see {@link answered}); reject after `timeoutMs` (default 20000). */
  waitForAnswered(count: number, timeoutMs?: number): Promise<void>;
  /** Stop listening and drop every open connection (hanging requests included). Idempotent. */
  close(): Promise<void>;
}

const NO_REPLY_SCRIPTED: FakeResponder = () => ({
  status: 500,
  errorType: 'api_error',
  message: 'fake-anthropic: no reply scripted',
  headers: { 'x-should-retry': 'false' },
});

/** Sampling parameters that API version 2026-10-21 rejects with 400. */
const REMOVED_SAMPLING_PARAMS = ['temperature', 'top_p', 'top_k'] as const;

/**
 * Start a fake Messages API server on 127.0.0.1, on a free port.
 *
 * @returns the running server; close it with `close()` or `await using`.
 */
export async function startFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const fake = new FakeAnthropicServer(options);
  await fake.listen();
  return fake;
}

class FakeAnthropicServer implements FakeAnthropic {
  readonly requests: FakeRequest[] = [];
  #url = '';
  #aborted = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  readonly #queue: FakeReply[] = [];
  #responder: FakeResponder;
  readonly #apiKey: string | undefined;
  readonly #waiters = new Set<() => void>();
  #answered = 0;
  readonly served: Array<{ at: number; inputTokens: number }> = [];
  rateLimited = 0;
  readonly billed = { requests: 0, input_tokens: 0, output_tokens: 0 };
  readonly #tokenLimit: FakeTokenLimit | undefined;
  readonly #promptCache: PromptCacheSim | undefined;
  readonly #batchOptions: FakeBatchOptions | undefined;
  readonly batches: FakeBatch[] = [];
  batchLists = 0;
  readonly #strict: 'honour' | 'ignore';
  readonly #server = createServer((req, res) => {
    this.#handle(req, res).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        const message = `fake-anthropic: ${err instanceof Error ? err.message : String(err)}`;
        this.#sendError(res, { status: 500, errorType: 'api_error', message, headers: { 'x-should-retry': 'false' } });
      }
    });
  });

  constructor(options: FakeAnthropicOptions) {
    this.#apiKey = options.apiKey;
    this.#tokenLimit = options.tokenLimit;
    this.#promptCache = options.promptCache ? new PromptCacheSim(options.promptCache.now ?? Date.now) : undefined;
    this.#batchOptions = options.batches;
    this.#strict = options.strict ?? 'ignore';
    this.#responder = options.responder ?? NO_REPLY_SCRIPTED;
  }

  get url(): string {
    return this.#url;
  }

  get aborted(): number {
    return this.#aborted;
  }

  get answered(): number {
    return this.#answered;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${port}`;
  }

  enqueue(...replies: FakeReply[]): void {
    this.#queue.push(...replies);
  }

  setResponder(responder: FakeResponder | undefined): void {
    this.#responder = responder ?? NO_REPLY_SCRIPTED;
  }

  waitForRequests(count: number, timeoutMs = 20_000): Promise<void> {
    return this.#waitFor(() => this.requests.length >= count, timeoutMs, () => `${count} request(s), got ${this.requests.length}`);
  }

  waitForBatchLists(count: number, timeoutMs = 20_000): Promise<void> {
    return this.#waitFor(() => this.batchLists >= count, timeoutMs, () => `${count} batch list(s), got ${this.batchLists}`);
  }

  waitForBatches(count: number, timeoutMs = 20_000): Promise<void> {
    return this.#waitFor(() => this.batches.length >= count, timeoutMs, () => `${count} batch(es), got ${this.batches.length}`);
  }

  async endBatches(): Promise<void> {
    for (const batch of this.batches) if (batch.status !== 'ended') await this.#processBatch(batch);
  }

  waitForAborted(count: number, timeoutMs = 20_000): Promise<void> {
    return this.#waitFor(() => this.#aborted >= count, timeoutMs, () => `${count} aborted request(s), got ${this.#aborted}`);
  }

  waitForAnswered(count: number, timeoutMs = 20_000): Promise<void> {
    return this.#waitFor(() => this.#answered >= count, timeoutMs, () => `${count} answered request(s), got ${this.#answered}`);
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#closing = true;
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #waitFor(done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`fake-anthropic: waited ${timeoutMs} ms for ${describe()}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  #notify(): void {
    for (const check of [...this.#waiters]) check();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('finish', () => {
      this.#answered += 1;
      this.#notify();
    });
    res.on('close', () => {
      if (!res.writableFinished && !this.#closing) {
        this.#aborted += 1;
        this.#notify();
      }
    });
    const raw = await readBody(req);
    let body: Record<string, unknown> | undefined;
    let parseFailed = false;
    if (raw.length > 0) {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (isRecord(parsed)) body = parsed;
        else parseFailed = true;
      } catch {
        parseFailed = true;
      }
    }
    const request: FakeRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      body,
      receivedAtMs: Date.now(),
      forcedToolName: forcedToolName(body),
    };
    this.requests.push(request);
    this.#notify();

    if (this.#batchOptions && request.path.split('?')[0]?.startsWith('/v1/messages/batches')) {
      await this.#handleBatches(request, parseFailed, res);
      return;
    }
    const rejection = this.#validate(request, parseFailed);
    if (rejection) {
      this.#sendError(res, rejection);
      return;
    }
    const limited = this.#checkTokenLimit(request);
    if (limited) {
      this.#sendError(res, limited);
      return;
    }
    const strictRejection = this.#strict === 'honour' ? strictSchemaProblem(request.body ?? {}) : undefined;
    if (strictRejection) {
      this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: strictRejection });
      return;
    }
    const scripted = this.#queue.shift() ?? (await this.#responder(request));
    const reply = this.#constrain(request, scripted);
    await this.#reply(res, request, reply);
  }

  /** `/v1/messages/batches`: create, retrieve, cancel, results (https://docs.anthropic.com/en/api/messages-batch-examples). */
  async #handleBatches(request: FakeRequest, parseFailed: boolean, res: ServerResponse): Promise<void> {
    const path = request.path.split('?')[0] ?? '';
    const [, id, action] = /^\/v1\/messages\/batches(?:\/([^/]+))?(?:\/(cancel|results))?$/.exec(path) ?? [];
    const version = headerValue(request.headers, 'anthropic-version');
    if (version === undefined) return this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: 'anthropic-version: header is required' });
    if (id === undefined && request.method === 'GET') {
      // List, newest first; `after_id` pages on to older batches (https://docs.anthropic.com/en/api/listing-message-batches).
      const query = new URLSearchParams(request.path.split('?')[1] ?? '');
      const limit = Math.min(1000, Math.max(1, Number(query.get('limit') ?? 20)));
      const newest = [...this.batches].reverse();
      const afterId = query.get('after_id');
      const from = afterId === null ? 0 : newest.findIndex((b) => b.id === afterId) + 1;
      const page = newest.slice(from, from + limit);
      this.batchLists += 1;
      this.#notify();
      return sendJson(res, 200, { data: page.map((b) => this.#batchJson(b)), has_more: from + limit < newest.length, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null });
    }
    if (id === undefined) {
      if (request.method !== 'POST') return this.#sendError(res, { status: 405, errorType: 'invalid_request_error', message: `Method ${request.method} not allowed` });
      const list = request.body?.['requests'];
      if (parseFailed || !Array.isArray(list) || list.length === 0) return this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: 'requests: at least one request is required' });
      const requests: FakeBatch['requests'] = [];
      for (const [i, entry] of list.entries()) {
        const customId = isRecord(entry) ? entry['custom_id'] : undefined;
        const params = isRecord(entry) ? entry['params'] : undefined;
        if (typeof customId !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(customId)) {
          return this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: `requests.${i}.custom_id: 1-64 of [a-zA-Z0-9_-] required` });
        }
        if (!isRecord(params)) return this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: `requests.${i}.params: Field required` });
        const rejection = this.#validate({ ...request, path: '/v1/messages', method: 'POST', body: params, forcedToolName: forcedToolName(params) }, false);
        if (rejection) return this.#sendError(res, { ...rejection, message: `requests.${i}.params.${rejection.message}` });
        if ('stream' in params) return this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: `requests.${i}.params.stream: streaming is not supported in batches` });
        requests.push({ custom_id: customId, params });
      }
      const batch: FakeBatch = { id: newId('msgbatch_'), status: 'in_progress', requests, results: new Map(), retrievals: 0, createdAt: Date.now(), cancelled: false };
      this.batches.push(batch);
      this.#notify();
      if (this.#batchOptions?.endAfterRetrievals === 0) await this.#processBatch(batch);
      return sendJson(res, 200, this.#batchJson(batch));
    }
    const batch = this.batches.find((b) => b.id === id);
    if (!batch) return this.#sendError(res, { status: 404, errorType: 'not_found_error', message: `batch ${id} not found` });
    if (action === 'cancel') {
      if (request.method !== 'POST') return this.#sendError(res, { status: 405, errorType: 'invalid_request_error', message: `Method ${request.method} not allowed` });
      if (batch.status !== 'ended') {
        batch.cancelled = true;
        for (const r of batch.requests) if (!batch.results.has(r.custom_id)) batch.results.set(r.custom_id, { type: 'canceled' });
        batch.status = 'ended';
        batch.endedAt = Date.now();
      }
      return sendJson(res, 200, this.#batchJson(batch));
    }
    if (action === 'results') {
      if (batch.status !== 'ended') return this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: `batch ${id} has not ended` });
      const lines = batch.requests.map((r) => JSON.stringify({ custom_id: r.custom_id, result: batch.results.get(r.custom_id) }));
      res.writeHead(200, { 'content-type': 'application/binary', 'request-id': newId('req_') });
      res.end(`${lines.join('\n')}\n`);
      return;
    }
    batch.retrievals += 1;
    const after = this.#batchOptions?.endAfterRetrievals;
    if (after !== undefined && batch.status === 'in_progress' && batch.retrievals >= after) await this.#processBatch(batch);
    return sendJson(res, 200, this.#batchJson(batch));
  }

  /** Answer every request of `batch` as the Messages API would, and end it. */
  async #processBatch(batch: FakeBatch): Promise<void> {
    for (const r of batch.requests) {
      if (batch.results.has(r.custom_id)) continue;
      const request: FakeRequest = { method: 'POST', path: '/v1/messages', headers: {}, body: r.params, receivedAtMs: Date.now(), forcedToolName: forcedToolName(r.params) };
      let reply = this.#queue.shift() ?? (await this.#responder(request));
      while ('delayMs' in reply) reply = reply.then;
      batch.results.set(r.custom_id, this.#batchResult(request, this.#constrain(request, reply)));
    }
    batch.status = 'ended';
    batch.endedAt = Date.now();
  }

  /** One request's result in a batch: `succeeded` with the message, or `errored` with the API's error. */
  #batchResult(request: FakeRequest, reply: ResolvedReply): Record<string, unknown> {
    const body = request.body ?? {};
    const model = typeof body['model'] === 'string' ? body['model'] : 'claude-fake';
    const errored = (type: FakeErrorType, message: string) => ({ type: 'errored', error: { type: 'error', error: { type, message } } });
    if ('status' in reply) return errored(reply.errorType, reply.message);
    if ('hang' in reply || 'streamError' in reply || 'delayMs' in reply || 'streamed' in reply) return errored('api_error', 'fake-anthropic: this reply cannot be given in a batch');
    if ('toolCalls' in reply) {
      const content = reply.toolCalls.map((c) => ({ type: 'tool_use', id: newId('toolu_'), name: c.name, input: c.input, caller: { type: 'direct' } }));
      return { type: 'succeeded', message: message(model, content, 'tool_use', this.#bill(this.#usage(body, reply.toolCalls, reply.usage))) };
    }
    if ('toolInput' in reply) {
      const name = reply.toolName ?? request.forcedToolName ?? toolNames(body)[0] ?? 'tool';
      const content = [{ type: 'tool_use', id: newId('toolu_'), name, input: reply.toolInput, caller: { type: 'direct' } }];
      return { type: 'succeeded', message: message(model, content, reply.stopReason ?? 'tool_use', this.#bill(this.#usage(body, reply.toolInput, reply.usage))) };
    }
    return { type: 'succeeded', message: message(model, [{ type: 'text', text: reply.text, citations: null }], reply.stopReason ?? 'end_turn', this.#bill(this.#usage(body, reply.text, reply.usage))) };
  }

  /** A batch as the API describes it (`message_batch`). */
  #batchJson(batch: FakeBatch): Record<string, unknown> {
    const counts = { processing: 0, succeeded: 0, errored: 0, canceled: 0, expired: 0 };
    for (const r of batch.requests) {
      const type = batch.results.get(r.custom_id)?.['type'];
      if (type === 'succeeded') counts.succeeded += 1;
      else if (type === 'errored') counts.errored += 1;
      else if (type === 'canceled') counts.canceled += 1;
      else if (type === 'expired') counts.expired += 1;
      else counts.processing += 1;
    }
    return {
      id: batch.id,
      type: 'message_batch',
      processing_status: batch.status,
      request_counts: counts,
      created_at: new Date(batch.createdAt).toISOString(),
      expires_at: new Date(batch.createdAt + 24 * 3600_000).toISOString(),
      ended_at: batch.endedAt === undefined ? null : new Date(batch.endedAt).toISOString(),
      cancel_initiated_at: batch.cancelled ? new Date(batch.endedAt ?? Date.now()).toISOString() : null,
      archived_at: null,
      results_url: batch.status === 'ended' ? `${this.#url}/v1/messages/batches/${batch.id}/results` : null,
    };
  }

  /**
   * What a request gets under structured outputs: a {@link FakeConstrainedToolReply} resolved to
   * one of its two inputs, and (with `strict: 'honour'`) a strict reply checked against the schema.
   * Under `output_config.format` a tool reply is answered as the JSON text it would be.
   */
  #constrain(request: FakeRequest, reply: FakeReply): ResolvedReply {
    const body = request.body ?? {};
    const schema = strictSchemaOf(body, request.forcedToolName);
    const honoured = this.#strict === 'honour' && schema !== undefined;
    let resolved: ResolvedReply;
    if ('constrained' in reply) resolved = { toolInput: honoured ? reply.constrained : reply.toolInput, ...(reply.usage ? { usage: reply.usage } : {}) };
    else resolved = reply;
    if (honoured && isToolReply(resolved)) {
      const validate = compileOutputSchema(schema, 'fake-anthropic strict schema');
      if (!validate(resolved.toolInput)) {
        return { status: 500, errorType: 'api_error', message: `fake-anthropic: the scripted tool input does not match the strict schema: ${JSON.stringify(validate.errors)}`, headers: { 'x-should-retry': 'false' } };
      }
    }
    if (hasOutputFormat(body) && isToolReply(resolved)) {
      return { text: JSON.stringify(resolved.toolInput), stopReason: 'end_turn', ...(resolved.usage ? { usage: resolved.usage } : {}) };
    }
    return resolved;
  }

  /** The checks the real API makes before it runs the model; returns the error to answer with. */
  #validate(request: FakeRequest, parseFailed: boolean): FakeErrorReply | undefined {
    const invalid = (message: string): FakeErrorReply => ({ status: 400, errorType: 'invalid_request_error', message });
    const pathname = request.path.split('?')[0];
    if (pathname !== '/v1/messages') {
      return { status: 404, errorType: 'not_found_error', message: 'Not Found' };
    }
    if (request.method !== 'POST') {
      return { status: 405, errorType: 'invalid_request_error', message: `Method ${request.method} not allowed` };
    }
    if (this.#apiKey !== undefined) {
      const auth = headerValue(request.headers, 'authorization');
      const xApiKey = headerValue(request.headers, 'x-api-key');
      const presented = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : xApiKey;
      if (presented === undefined) {
        return { status: 401, errorType: 'authentication_error', message: 'x-api-key header is required' };
      }
      if (presented !== this.#apiKey) {
        return { status: 401, errorType: 'authentication_error', message: 'invalid x-api-key' };
      }
    }
    const version = headerValue(request.headers, 'anthropic-version');
    if (version === undefined) return invalid('anthropic-version: header is required');
    if (parseFailed) return invalid('There was an error parsing the body of your request');
    const body = request.body;
    if (body === undefined) return invalid('model: Field required');
    for (const field of ['model', 'max_tokens', 'messages'] as const) {
      if (body[field] === undefined) return invalid(`${field}: Field required`);
    }
    if (typeof body['max_tokens'] !== 'number' || !Number.isInteger(body['max_tokens']) || body['max_tokens'] < 1) {
      return invalid('max_tokens: Input should be a positive integer');
    }
    if (!Array.isArray(body['messages']) || body['messages'].length === 0) {
      return invalid('messages: at least one message is required');
    }
    if (version >= '2026-10-21') {
      for (const param of REMOVED_SAMPLING_PARAMS) {
        if (param in body) return invalid(`${param}: Extra inputs are not permitted`);
      }
    }
    if (request.forcedToolName !== undefined && !toolNames(body).includes(request.forcedToolName)) {
      return invalid(`tool_choice.name: tool '${request.forcedToolName}' is not in tools`);
    }
    const choice = body['tool_choice'];
    if (isRecord(choice) && choice['type'] === 'any' && toolNames(body).length === 0) {
      return invalid('tool_choice: tool_choice.type "any" requires tools');
    }
    return toolResultProblem(body['messages'] as unknown[]);
  }

  /** The token limit's verdict: a 429 to answer, or undefined (the request is counted as served). */
  #checkTokenLimit(request: FakeRequest): FakeErrorReply | undefined {
    const limit = this.#tokenLimit;
    if (!limit) return undefined;
    const now = Date.now();
    const tokens = inputTokenEstimate(request.body ?? {});
    const inWindow = this.served.filter((s) => s.at > now - limit.windowMs);
    let sum = inWindow.reduce((a, s) => a + s.inputTokens, 0);
    if (inWindow.length > 0 && sum + tokens > limit.inputTokens) {
      let waitMs = 1;
      for (const s of inWindow) {
        sum -= s.inputTokens;
        waitMs = s.at + limit.windowMs - now + 1;
        if (sum + tokens <= limit.inputTokens) break;
      }
      this.rateLimited += 1;
      return {
        status: 429,
        errorType: 'rate_limit_error',
        message: `This request would exceed the rate limit of ${limit.inputTokens} input tokens per ${limit.windowMs} ms`,
        headers: { 'retry-after-ms': String(waitMs), ...this.#limitHeaders(0, now + waitMs) },
      };
    }
    this.served.push({ at: now, inputTokens: tokens });
    return undefined;
  }

  #limitHeaders(remaining: number, resetAt: number): Record<string, string> {
    const limit = this.#tokenLimit as FakeTokenLimit;
    return {
      'anthropic-ratelimit-input-tokens-limit': String(Math.floor((limit.inputTokens * 60_000) / limit.windowMs)),
      'anthropic-ratelimit-input-tokens-remaining': String(Math.max(0, remaining)),
      'anthropic-ratelimit-input-tokens-reset': new Date(resetAt).toISOString(),
    };
  }

  async #reply(res: ServerResponse, request: FakeRequest, reply: ResolvedReply): Promise<void> {
    if (res.destroyed) return;
    if ('hang' in reply) return;
    if ('delayMs' in reply) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, reply.delayMs);
        res.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      await this.#reply(res, request, this.#constrain(request, reply.then));
      return;
    }
    if ('status' in reply) {
      this.#sendError(res, reply);
      return;
    }
    const body = request.body ?? {};
    const model = typeof body['model'] === 'string' ? body['model'] : 'claude-fake';
    if ('streamed' in reply) {
      await this.#replyStreamed(res, request, reply.streamed, model);
      return;
    }
    if ('streamError' in reply) {
      if (body['stream'] !== true) {
        this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: 'fake-anthropic: a streamError reply was scripted for a request that does not stream' });
        return;
      }
      const name = request.forcedToolName ?? toolNames(body)[0] ?? 'tool';
      const json = JSON.stringify(reply.toolInput ?? {});
      const chunks = splitChunks(json, 8).slice(0, reply.afterDeltas ?? 2);
      const events = streamEvents(model, { type: 'tool_use', id: newId('toolu_'), name, input: {} }, chunks, 'tool_use', this.#usage(body, reply.toolInput ?? {}));
      // Everything up to the deltas, then the error instead of the end of the message.
      const cut = events.slice(0, 2 + chunks.length);
      cut.push(['error', { type: 'error', error: { type: reply.streamError.errorType, message: reply.streamError.message } }]);
      sendSse(res, cut, this.#successHeaders());
      return;
    }
    if ('toolCalls' in reply) {
      const blocks = reply.toolCalls.map((c) => ({ type: 'tool_use', id: newId('toolu_'), name: c.name, input: c.input }));
      const u = this.#bill(this.#usage(body, reply.toolCalls, reply.usage));
      if (body['stream'] === true) sendSse(res, multiBlockStreamEvents(model, blocks, 'tool_use', u), { ...this.#successHeaders(), ...reply.headers });
      else sendJson(res, 200, message(model, blocks.map((b) => ({ ...b, caller: { type: 'direct' } })), 'tool_use', u), { ...this.#successHeaders(), ...reply.headers });
      return;
    }
    if (body['stream'] === true) {
      const isTool = 'toolInput' in reply;
      const name = isTool ? (reply.toolName ?? request.forcedToolName ?? toolNames(body)[0] ?? 'tool') : '';
      const payload = isTool ? reply.toolInput : reply.text;
      const block = isTool ? { type: 'tool_use', id: newId('toolu_'), name, input: {} } : { type: 'text', text: '', citations: null };
      const chunks = splitChunks(isTool ? JSON.stringify(reply.toolInput) : reply.text, 64);
      const stop = reply.stopReason ?? (isTool ? 'tool_use' : 'end_turn');
      sendSse(res, streamEvents(model, block, chunks, stop, this.#bill(this.#usage(body, payload, reply.usage))), { ...this.#successHeaders(), ...reply.headers });
      return;
    }
    if ('toolInput' in reply) {
      const name = reply.toolName ?? request.forcedToolName ?? toolNames(body)[0];
      if (name === undefined) {
        this.#sendError(res, {
          status: 400,
          errorType: 'invalid_request_error',
          message: 'fake-anthropic: a toolInput reply was scripted but the request has no tools',
        });
        return;
      }
      const content = [{ type: 'tool_use', id: newId('toolu_'), name, input: reply.toolInput, caller: { type: 'direct' } }];
      sendJson(res, 200, message(model, content, reply.stopReason ?? 'tool_use', this.#bill(this.#usage(body, reply.toolInput, reply.usage))), { ...this.#successHeaders(), ...reply.headers });
      return;
    }
    const content = [{ type: 'text', text: reply.text, citations: null }];
    sendJson(res, 200, message(model, content, reply.stopReason ?? 'end_turn', this.#bill(this.#usage(body, reply.text, reply.usage))), reply.headers);
  }

  /** A reply's usage: scripted fields, else the prompt cache's counts (when kept), else estimates. */
  #usage(body: Record<string, unknown>, output: unknown, given: FakeUsage = {}): Record<string, unknown> {
    const cached = this.#promptCache?.bill(body);
    if (!cached) return usage(body, output, given);
    return {
      ...usage(body, output, {
        input_tokens: cached.uncached,
        cache_read_input_tokens: cached.read,
        cache_creation_input_tokens: cached.write5m + cached.write1h,
        ...given,
      }),
      cache_creation: given.cache_creation_input_tokens === undefined ? { ephemeral_5m_input_tokens: cached.write5m, ephemeral_1h_input_tokens: cached.write1h } : null,
    };
  }

  /** Count a successful answer's usage in {@link FakeAnthropic.billed}. */
  #bill(u: Record<string, unknown>): Record<string, unknown> {
    this.billed.requests += 1;
    this.billed.input_tokens += Number(u['input_tokens'] ?? 0) + Number(u['cache_read_input_tokens'] ?? 0) + Number(u['cache_creation_input_tokens'] ?? 0);
    this.billed.output_tokens += Number(u['output_tokens'] ?? 0);
    return u;
  }

  /** A {@link FakeStreamedReply}: thinking, then the output in chunks, holding the stream where asked. */
  async #replyStreamed(res: ServerResponse, request: FakeRequest, spec: FakeStreamedReply['streamed'], model: string): Promise<void> {
    const body = request.body ?? {};
    if (body['stream'] !== true) {
      this.#sendError(res, { status: 400, errorType: 'invalid_request_error', message: 'fake-anthropic: a streamed reply was scripted for a request that does not stream' });
      return;
    }
    const asText = hasOutputFormat(body);
    const name = request.forcedToolName ?? toolNames(body)[0] ?? 'tool';
    const u = usage(body, spec.toolInput, spec.usage);
    const events: Array<[string, unknown]> = [['message_start', { type: 'message_start', message: message(model, [], null as unknown as string, { ...u, output_tokens: 1 }) }]];
    let index = 0;
    if (spec.thinking !== undefined) {
      events.push(
        ['content_block_start', { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } }],
        ...splitChunks(spec.thinking, spec.chunkSize ?? 16).map((c): [string, unknown] => ['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: c } }]),
        ['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: newId('sig_') } }],
        ['content_block_stop', { type: 'content_block_stop', index }],
      );
      index += 1;
    }
    const block = asText ? { type: 'text', text: '', citations: null } : { type: 'tool_use', id: newId('toolu_'), name, input: {}, caller: { type: 'direct' } };
    events.push(['content_block_start', { type: 'content_block_start', index, content_block: block }]);
    const chunks = splitChunks(JSON.stringify(spec.toolInput), spec.chunkSize ?? 16);
    const delta = (c: string) => (asText ? { type: 'text_delta', text: c } : { type: 'input_json_delta', partial_json: c });
    const outputChunks = chunks.map((c): [string, unknown] => ['content_block_delta', { type: 'content_block_delta', index, delta: delta(c) }]);
    const holdAt = spec.holdAfterChunks === undefined ? Number.POSITIVE_INFINITY : events.length + spec.holdAfterChunks;
    events.push(...outputChunks, ['content_block_stop', { type: 'content_block_stop', index }]);
    const details = spec.thinkingTokens === undefined ? {} : { output_tokens_details: { thinking_tokens: spec.thinkingTokens } };
    events.push(
      ['message_delta', { type: 'message_delta', delta: { stop_reason: asText ? 'end_turn' : 'tool_use', stop_sequence: null }, usage: { output_tokens: u['output_tokens'], ...details } }],
      ['message_stop', { type: 'message_stop' }],
    );
    if (res.destroyed || res.headersSent) return;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': newId('req_'), ...this.#successHeaders() });
    for (let i = 0; i < events.length; i++) {
      if (i === holdAt) {
        // Everything before the hold is on the socket before the test is told.
        await new Promise<void>((resolve) => res.write('', () => resolve()));
        spec.onHeld?.();
        await Promise.race([spec.release ?? Promise.resolve(), new Promise<void>((resolve) => res.once('close', () => resolve()))]);
        if (res.destroyed) return;
      }
      const [event, data] = events[i] as [string, unknown];
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    }
    res.end();
  }

  /** Rate-limit headers of a successful answer when a token limit is set. */
  #successHeaders(): Record<string, string> {
    const limit = this.#tokenLimit;
    if (!limit) return {};
    const now = Date.now();
    const inWindow = this.served.filter((s) => s.at > now - limit.windowMs);
    const used = inWindow.reduce((a, s) => a + s.inputTokens, 0);
    return this.#limitHeaders(limit.inputTokens - used, (inWindow[0]?.at ?? now) + limit.windowMs);
  }

  #sendError(res: ServerResponse, reply: FakeErrorReply): void {
    const requestId = newId('req_');
    const error = { type: reply.errorType, message: reply.message, ...(reply.details ? { details: reply.details } : {}) };
    sendJson(res, reply.status, { type: 'error', error, request_id: requestId }, reply.headers, requestId);
  }
}

function message(model: string, content: unknown[], stopReason: string, usage: Record<string, unknown>): Record<string, unknown> {
  return {
    id: newId('msg_'),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage,
  };
}

/** Input tokens the fake bills for a request: 4 characters of its system, messages and tools JSON a token. */
function inputTokenEstimate(body: Record<string, unknown>): number {
  return Math.max(1, Math.ceil((JSON.stringify([body['system'], body['messages'], body['tools']]) ?? '').length / 4));
}

function splitChunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

/** The Messages API's SSE events for one content block: https://docs.anthropic.com/en/docs/build-with-claude/streaming */
function streamEvents(model: string, block: Record<string, unknown>, chunks: string[], stopReason: string, u: Record<string, unknown>): Array<[string, unknown]> {
  const start = message(model, [], null as unknown as string, { ...u, output_tokens: 1 });
  const delta = (chunk: string) => (block['type'] === 'tool_use' ? { type: 'input_json_delta', partial_json: chunk } : { type: 'text_delta', text: chunk });
  return [
    ['message_start', { type: 'message_start', message: start }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: block }],
    ...chunks.map((c): [string, unknown] => ['content_block_delta', { type: 'content_block_delta', index: 0, delta: delta(c) }]),
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: u['output_tokens'] } }],
    ['message_stop', { type: 'message_stop' }],
  ];
}

/** The SSE events of a message with several tool_use blocks, each streamed as input_json_delta chunks. */
function multiBlockStreamEvents(model: string, blocks: Array<Record<string, unknown>>, stopReason: string, u: Record<string, unknown>): Array<[string, unknown]> {
  const events: Array<[string, unknown]> = [['message_start', { type: 'message_start', message: message(model, [], null as unknown as string, { ...u, output_tokens: 1 }) }]];
  blocks.forEach((block, index) => {
    events.push(['content_block_start', { type: 'content_block_start', index, content_block: { ...block, input: {} } }]);
    for (const chunk of splitChunks(JSON.stringify(block['input'] ?? {}), 64)) {
      events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: chunk } }]);
    }
    events.push(['content_block_stop', { type: 'content_block_stop', index }]);
  });
  events.push(['message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: u['output_tokens'] } }]);
  events.push(['message_stop', { type: 'message_stop' }]);
  return events;
}

/**
 * The API's check of tool results: a user message's `tool_result` blocks must answer `tool_use`
 * blocks of the assistant message just before it, every one of them, and an assistant message with
 * `tool_use` blocks must be followed by their results.
 * https://docs.anthropic.com/en/docs/build-with-claude/tool-use#handling-tool-use-and-tool-result-content-blocks
 */
function toolResultProblem(messages: unknown[]): FakeErrorReply | undefined {
  const invalid = (message: string): FakeErrorReply => ({ status: 400, errorType: 'invalid_request_error', message });
  const blocks = (m: unknown): Array<Record<string, unknown>> => (isRecord(m) && Array.isArray(m['content']) ? (m['content'] as unknown[]).filter(isRecord) : []);
  for (let i = 0; i < messages.length; i++) {
    const uses = blocks(messages[i]).filter((b) => b['type'] === 'tool_use').map((b) => String(b['id']));
    const results = blocks(messages[i + 1]).filter((b) => b['type'] === 'tool_result').map((b) => String(b['tool_use_id']));
    const role = isRecord(messages[i]) ? messages[i] && (messages[i] as Record<string, unknown>)['role'] : undefined;
    if (role === 'assistant' && uses.length > 0) {
      if (i + 1 >= messages.length) return invalid(`messages.${i}: the last message may not be an assistant message with tool_use blocks`);
      const missing = uses.filter((id) => !results.includes(id));
      if (missing.length > 0) return invalid(`messages.${i + 1}: tool_use ids were found without tool_result blocks immediately after: ${missing.join(', ')}`);
    }
    if (role === 'user') {
      const answered = blocks(messages[i]).filter((b) => b['type'] === 'tool_result').map((b) => String(b['tool_use_id']));
      const before = new Set(blocks(messages[i - 1]).filter((b) => b['type'] === 'tool_use').map((b) => String(b['id'])));
      const unknown = answered.filter((id) => !before.has(id));
      if (unknown.length > 0) return invalid(`messages.${i}.content: unexpected tool_use_id found in tool_result blocks: ${unknown.join(', ')}. Each tool_result block must have a corresponding tool_use block in the previous message.`);
    }
  }
  return undefined;
}

function sendSse(res: ServerResponse, events: Array<[string, unknown]>, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': newId('req_'), ...headers });
  for (const [event, data] of events) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  res.end();
}

function usage(body: Record<string, unknown>, output: unknown, given: FakeUsage = {}): Record<string, unknown> {
  const estimate = (value: unknown): number => Math.max(1, Math.ceil((JSON.stringify(value) ?? '').length / 4));
  return {
    input_tokens: given.input_tokens ?? inputTokenEstimate(body),
    output_tokens: given.output_tokens ?? estimate(output),
    cache_creation_input_tokens: given.cache_creation_input_tokens ?? 0,
    cache_read_input_tokens: given.cache_read_input_tokens ?? 0,
    cache_creation: null,
    server_tool_use: null,
    service_tier: 'standard',
  };
}

function sendJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
  requestId: string = newId('req_'),
): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'request-id': requestId,
    ...headers,
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function forcedToolName(body: Record<string, unknown> | undefined): string | undefined {
  const choice = body?.['tool_choice'];
  if (!isRecord(choice) || choice['type'] !== 'tool') return undefined;
  return typeof choice['name'] === 'string' ? choice['name'] : undefined;
}

function toolNames(body: Record<string, unknown>): string[] {
  const tools = body['tools'];
  if (!Array.isArray(tools)) return [];
  return tools.flatMap((tool: unknown) => (isRecord(tool) && typeof tool['name'] === 'string' ? [tool['name']] : []));
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function newId(prefix: string): string {
  return `${prefix}01${randomBytes(11).toString('hex')}`;
}

/** The prompt cache of {@link FakePromptCache}: prefix hash → expiry (epoch ms) and TTL (ms). */
class PromptCacheSim {
  readonly #entries = new Map<string, { expiresAt: number; ttlMs: number }>();
  constructor(private readonly now: () => number) {}

  /** Bill one request: tokens read from the cache, written (by TTL), and not cached. */
  bill(body: Record<string, unknown>): { read: number; write5m: number; write1h: number; uncached: number } {
    const pieces: unknown[] = [];
    const breakpoints: Array<{ end: number; ttlMs: number; ttl: '5m' | '1h' }> = [];
    const add = (piece: unknown): void => {
      pieces.push(stripCacheControl(piece));
      const control = isRecord(piece) ? piece['cache_control'] : undefined;
      if (isRecord(control)) {
        const ttl = control['ttl'] === '1h' ? '1h' : '5m';
        breakpoints.push({ end: pieces.length, ttl, ttlMs: ttl === '1h' ? 3_600_000 : 300_000 });
      }
    };
    for (const tool of Array.isArray(body['tools']) ? body['tools'] : []) add(tool);
    const system = body['system'];
    if (typeof system === 'string') pieces.push(system);
    else for (const block of Array.isArray(system) ? system : []) add(block);
    for (const m of Array.isArray(body['messages']) ? body['messages'] : []) {
      const content = isRecord(m) ? m['content'] : undefined;
      if (typeof content === 'string' || !Array.isArray(content)) pieces.push(content);
      else for (const block of content) add(block);
    }
    const tokens = (n: number): number => Math.ceil((JSON.stringify(pieces.slice(0, n)) ?? '').length / 4);
    const total = Math.max(1, tokens(pieces.length));
    const key = (n: number): string => JSON.stringify(pieces.slice(0, n));
    const now = this.now();
    let read = 0;
    let readEnd = 0;
    for (const b of breakpoints) {
      const hit = this.#entries.get(key(b.end));
      if (hit && hit.expiresAt > now) {
        read = tokens(b.end);
        readEnd = b.end;
        hit.expiresAt = now + hit.ttlMs;
      }
    }
    let write5m = 0;
    let write1h = 0;
    let written = read;
    for (const b of breakpoints) {
      if (b.end <= readEnd) continue;
      const upTo = tokens(b.end);
      if (b.ttl === '1h') write1h += upTo - written;
      else write5m += upTo - written;
      written = upTo;
      this.#entries.set(key(b.end), { expiresAt: now + b.ttlMs, ttlMs: b.ttlMs });
    }
    return { read, write5m, write1h, uncached: Math.max(0, total - written) };
  }
}

function stripCacheControl(piece: unknown): unknown {
  if (!isRecord(piece) || !('cache_control' in piece)) return piece;
  const { cache_control: _dropped, ...rest } = piece;
  return rest;
}

/** Whether the request asks for its reply in a JSON format (`output_config.format`) rather than a tool call. */
function hasOutputFormat(body: Record<string, unknown>): boolean {
  const config = body['output_config'];
  return isRecord(config) && isRecord(config['format']);
}

/** The schema a strict request constrains its reply to: the forced strict tool's, or `output_config.format`'s. */
function strictSchemaOf(body: Record<string, unknown>, forced: string | undefined): Record<string, unknown> | undefined {
  const config = body['output_config'];
  if (isRecord(config) && isRecord(config['format']) && isRecord(config['format']['schema'])) return config['format']['schema'];
  const tools = Array.isArray(body['tools']) ? (body['tools'] as unknown[]) : [];
  const tool = tools.find((t): t is Record<string, unknown> => isRecord(t) && t['name'] === forced);
  return tool && tool['strict'] === true && isRecord(tool['input_schema']) ? tool['input_schema'] : undefined;
}

const STRICT_UNSUPPORTED = ['minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'maxItems', 'uniqueItems'];

/** What the API says of a strict schema it cannot compile, or undefined when every strict schema is fine. */
function strictSchemaProblem(body: Record<string, unknown>): string | undefined {
  const schemas: Array<[string, unknown]> = [];
  for (const tool of Array.isArray(body['tools']) ? (body['tools'] as unknown[]) : []) {
    if (isRecord(tool) && tool['strict'] === true) schemas.push([`tools.${String(tool['name'])}.input_schema`, tool['input_schema']]);
  }
  const config = body['output_config'];
  if (isRecord(config) && isRecord(config['format'])) schemas.push(['output_config.format.schema', config['format']['schema']]);
  for (const [where, schema] of schemas) {
    const problem = schemaProblem(schema, where);
    if (problem) return problem;
  }
  return undefined;
}

function schemaProblem(node: unknown, at: string): string | undefined {
  if (Array.isArray(node)) {
    for (const [i, child] of node.entries()) {
      const p = schemaProblem(child, `${at}.${i}`);
      if (p) return p;
    }
    return undefined;
  }
  if (!isRecord(node)) return undefined;
  for (const keyword of STRICT_UNSUPPORTED) {
    if (keyword in node) return `${at}: '${keyword}' is not supported in strict mode schemas`;
  }
  if (typeof node['minItems'] === 'number' && node['minItems'] > 1) return `${at}: 'minItems' values other than 0 or 1 are not supported`;
  if ((node['type'] === 'object' || isRecord(node['properties'])) && node['additionalProperties'] !== false) {
    return `${at}: 'additionalProperties' must be explicitly set to false for objects`;
  }
  for (const [key, child] of Object.entries(node)) {
    if (key === 'properties' || key === '$defs') {
      for (const [name, sub] of Object.entries(isRecord(child) ? child : {})) {
        const p = schemaProblem(sub, `${at}.${key}.${name}`);
        if (p) return p;
      }
    } else if (key === 'items' || key === 'anyOf' || key === 'allOf') {
      const p = schemaProblem(child, `${at}.${key}`);
      if (p) return p;
    }
  }
  return undefined;
}

function isToolReply(reply: ResolvedReply): reply is FakeToolReply {
  return 'toolInput' in reply && !('streamError' in reply);
}
