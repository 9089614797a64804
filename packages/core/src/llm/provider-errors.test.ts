/**
 * One status mapping and one `retry-after` reading for every provider: the unit rules, and both real
 * SDK clients (Anthropic's and OpenAI's) against one local server that answers each status.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { AnthropicLlmClient } from './anthropic.js';
import { OpenAiCompatibleLlmClient } from './openai-compatible.js';
import { parseRetryAfterMs, providerCodeForStatus } from './provider-errors.js';
import type { LlmClient, LlmRequest } from './types.js';

describe('providerCodeForStatus', () => {
  it('maps each status class onto one code', () => {
    expect(providerCodeForStatus(429)).toBe('PROVIDER_RATE_LIMITED');
    for (const s of [500, 502, 503, 529, 409]) expect(providerCodeForStatus(s)).toBe('PROVIDER_OVERLOADED');
    expect(providerCodeForStatus(408)).toBe('PROVIDER_CONNECTION');
    for (const s of [401, 402, 403]) expect(providerCodeForStatus(s)).toBe('PROVIDER_AUTH');
    for (const s of [400, 404, 413, 422, 418]) expect(providerCodeForStatus(s)).toBe('PROVIDER_BAD_REQUEST');
  });
});

describe('parseRetryAfterMs', () => {
  const now = Date.parse('Wed, 21 Oct 2026 07:27:30 GMT');
  it('reads delay-seconds, fractional ones included', () => {
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '0' }), now)).toBe(0);
  });
  it('reads an HTTP date as the time from now until then, and a past date as 0', () => {
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'Wed, 21 Oct 2026 07:28:00 GMT' }), now)).toBe(30_000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'Wed, 21 Oct 2026 07:00:00 GMT' }), now)).toBe(0);
  });
  it('prefers retry-after-ms, and ignores what it cannot read', () => {
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '3', 'retry-after-ms': '2500' }), now)).toBe(2500);
    expect(parseRetryAfterMs(new Headers({ 'retry-after-ms': 'soon', 'retry-after': '1' }), now)).toBe(1000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '-1' }), now)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'later' }), now)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers(), now)).toBeUndefined();
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
  });
});

// One server for both SDKs: each request is answered with the next scripted status, in a body both
// read (Anthropic's `{type: 'error', error: {type, message}}` carries OpenAI's `error.message`).
const script: Array<{ status: number; headers?: Record<string, string> }> = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  req.on('end', () => {
    const next = script.shift() ?? { status: 500 };
    res
      .writeHead(next.status, { 'content-type': 'application/json', ...next.headers })
      .end(JSON.stringify({ type: 'error', error: { type: 'some_error', message: `scripted ${next.status}` } }));
  });
});
let origin = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const request = (): LlmRequest => ({
  role: 'planner',
  system: 'You plan.',
  messages: [{ role: 'user', content: 'Plan a CLI.' }],
  tool: { name: 'submit_plan', description: 'Submit the plan.', inputSchema: { type: 'object', properties: {} } },
  maxTokens: 256,
  signal: new AbortController().signal,
  inputs: {},
});

async function failure(llm: LlmClient, status: number, headers?: Record<string, string>): Promise<FleetError> {
  script.push({ status, ...(headers ? { headers } : {}) });
  const err = await llm.generate(request()).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FleetError)) throw new Error(`status ${status}: expected a FleetError, got ${String(err)}`);
  return err;
}

describe('every provider maps an HTTP status the same way', () => {
  const clients = (): Record<string, LlmClient> => ({
    anthropic: new AnthropicLlmClient({ apiKey: 'sk-test', baseURL: origin, model: 'claude-test', maxRetries: 0 }),
    'openai-compatible': new OpenAiCompatibleLlmClient({ baseURL: `${origin}/v1`, model: 'qwen3:8b' }),
  });

  it('gives the same code and retry decision for each status, 402 as PROVIDER_AUTH', async () => {
    const statuses = [400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 529];
    const seen: Record<string, Array<[number, string, boolean]>> = {};
    for (const [name, llm] of Object.entries(clients())) {
      seen[name] = [];
      for (const status of statuses) {
        const err = await failure(llm, status);
        seen[name].push([status, err.code, err.retryable]);
      }
    }
    const expected = statuses.map((s) => [s, providerCodeForStatus(s), ['PROVIDER_RATE_LIMITED', 'PROVIDER_OVERLOADED', 'PROVIDER_CONNECTION'].includes(providerCodeForStatus(s))]);
    expect(seen.anthropic).toEqual(expected);
    expect(seen['openai-compatible']).toEqual(expected);
    expect(seen.anthropic?.find(([s]) => s === 402)).toEqual([402, 'PROVIDER_AUTH', false]);
  });

  it('takes retryAfterMs from a retry-after HTTP date, in both', async () => {
    for (const llm of Object.values(clients())) {
      // A date a minute ahead: whole seconds are what an HTTP date holds.
      const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 60_000).toUTCString();
      const err = await failure(llm, 429, { 'retry-after': at });
      expect(err.code).toBe('PROVIDER_RATE_LIMITED');
      expect(err.retryAfterMs).toBeGreaterThan(55_000);
      expect(err.retryAfterMs).toBeLessThanOrEqual(61_000);
      expect(err.details?.retry_after_ms).toBe(err.retryAfterMs);
    }
  });

  it('takes retry-after-ms over retry-after, in both', async () => {
    for (const llm of Object.values(clients())) {
      const err = await failure(llm, 503, { 'retry-after': '9', 'retry-after-ms': '1250' });
      expect([err.code, err.retryAfterMs]).toEqual(['PROVIDER_OVERLOADED', 1250]);
    }
  });
});
