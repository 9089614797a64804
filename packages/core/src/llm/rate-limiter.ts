/**
 * A rate limiter in Redis shared by every worker process of a fleet, per provider and model:
 * requests, input tokens and output tokens per window (a minute by default), as providers limit
 * them (Anthropic: RPM, ITPM, OTPM; https://docs.anthropic.com/en/api/rate-limits).
 *
 * It is a sliding-window log: each admitted call is a member `<id>:<input>:<output>` of a sorted set
 * scored by its admission time (Redis `TIME`, so hosts' clocks do not matter). A call is admitted when
 * the calls of the last window plus this one stay within every limit; otherwise the caller learns how
 * long to wait (until enough old calls leave the window). Admission reserves the estimated input
 * tokens; {@link RedisRateLimiter.settle} replaces the estimate by what the provider billed.
 *
 * It adapts to the provider: `anthropic-ratelimit-*-limit` headers lower the limits (scaled to the
 * window), a `*-remaining: 0` header pauses every worker until its reset time, and a 429 pauses them
 * for its `retry-after`.
 *
 * Keys (under the fleet prefix): `<prefix>:ratelimit:<provider>:<model>` (log),
 * `…:pause` (a key whose TTL is the pause), `…:learned` (limits from headers; expires after 10 min).
 */
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { RateLimitInfo } from './types.js';

/** Limits per window; 0 or undefined is no limit. */
export interface RateLimits {
  /** Requests per window. */
  requests?: number | undefined;
  /** Input tokens (uncached input + cache writes; cache reads do not count) per window. */
  inputTokens?: number | undefined;
  /** Output tokens per window. */
  outputTokens?: number | undefined;
  /** The window, ms. @defaultValue 60000 (providers' limits are per minute) */
  windowMs?: number | undefined;
}

/** The outcome of {@link RedisRateLimiter.acquire}. */
export type RateLimitDecision =
  | { admitted: true; ticket: string }
  /** Wait `waitMs` (ms) and ask again; `limit` names what is exhausted. */
  | { admitted: false; waitMs: number; limit: 'requests' | 'input_tokens' | 'output_tokens' | 'paused' };

const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limits = { tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]) }
local learned = redis.call('HMGET', KEYS[3], 'requests', 'input_tokens', 'output_tokens')
for i = 1, 3 do
  local l = tonumber(learned[i])
  if l and l > 0 and (limits[i] == 0 or l < limits[i]) then limits[i] = l end
end
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return { pause, 'paused' } end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local n = #entries / 2
local scores, ins, outs = {}, {}, {}
local inSum, outSum = 0, 0
for i = 1, n do
  local member = entries[2 * i - 1]
  local _, _, a, b = string.find(member, ':(%d+):(%d+)$')
  scores[i] = tonumber(entries[2 * i])
  ins[i] = tonumber(a) or 0
  outs[i] = tonumber(b) or 0
  inSum = inSum + ins[i]
  outSum = outSum + outs[i]
end
local want = tonumber(ARGV[6])
local wait, which = 0, ''
local function until_k(k, name)
  if k > 0 then
    local w = scores[math.min(k, n)] + window - now + 1
    if w > wait then wait = w; which = name end
  end
end
if limits[1] > 0 and n + 1 > limits[1] then until_k(n + 1 - limits[1], 'requests') end
if limits[2] > 0 and n > 0 and inSum + want > limits[2] then
  local k, rest = 0, inSum
  while k < n and (rest + want > limits[2]) and not (rest == 0) do k = k + 1; rest = rest - ins[k] end
  until_k(k, 'input_tokens')
end
if limits[3] > 0 and outSum >= limits[3] then
  local k, rest = 0, outSum
  while k < n and rest >= limits[3] do k = k + 1; rest = rest - outs[k] end
  until_k(k, 'output_tokens')
end
if wait > 0 then return { wait, which } end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window + 1000)
return { 0, '' }
`;

const SETTLE = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[1], tonumber(score) + tonumber(ARGV[3]), ARGV[2])
end
return 0
`;

const PAUSE = `
local current = redis.call('PTTL', KEYS[1])
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 0
`;

/** Largest pause a provider header or a 429 may impose, ms (a bad header must not stall the fleet). */
const MAX_PAUSE_MS = 120_000;

/**
 * The fleet-wide limiter. One instance per process is enough; it holds no state of its own.
 *
 * @example
 * const limiter = new RedisRateLimiter(redis, '{fleet}', { inputTokens: 30_000, outputTokens: 8_000, requests: 50 });
 * const d = await limiter.acquire('anthropic', 'claude-sonnet-5-5', 1200);
 * if (!d.admitted) await sleep(d.waitMs);
 */
export class RedisRateLimiter {
  readonly windowMs: number;
  readonly limits: Required<Omit<RateLimits, 'windowMs'>>;

  /**
   * @throws TypeError when a limit or the window is negative or not a number.
   */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    limits: RateLimits,
  ) {
    this.windowMs = limits.windowMs ?? 60_000;
    this.limits = { requests: limits.requests ?? 0, inputTokens: limits.inputTokens ?? 0, outputTokens: limits.outputTokens ?? 0 };
    for (const [name, value] of Object.entries({ ...this.limits, windowMs: this.windowMs })) {
      if (!Number.isFinite(value) || value < 0) throw new TypeError(`RedisRateLimiter: ${name} must be a number >= 0, got ${value}`);
    }
    if (this.windowMs <= 0) throw new TypeError('RedisRateLimiter: windowMs must be > 0');
  }

  /**
   * The window the log keeps calls in: a little longer than the provider's, because the provider
   * counts a call when its request arrives, a few ms after admission here; without the margin, a call
   * admitted the instant an old one leaves our window could still find it in the provider's.
   */
  #effectiveWindowMs(): number {
    return this.windowMs + Math.max(100, Math.round(this.windowMs / 40));
  }

  #key(provider: string, model: string): string {
    return `${this.prefix}:ratelimit:${provider}:${model}`;
  }

  /**
   * Admit one call of `inputTokens` (estimated) input tokens, or say how long to wait.
   *
   * @returns `{admitted: true, ticket}` (pass the ticket to {@link settle}), or `{admitted: false,
   *   waitMs, limit}`. A call larger than the whole input limit is admitted once the window is empty.
   */
  async acquire(provider: string, model: string, inputTokens: number): Promise<RateLimitDecision> {
    const key = this.#key(provider, model);
    const ticket = `${randomUUID()}:${Math.max(0, Math.round(inputTokens))}:0`;
    const [wait, which] = (await this.redis.eval(
      ACQUIRE,
      3,
      key,
      `${key}:pause`,
      `${key}:learned`,
      this.#effectiveWindowMs(),
      this.limits.requests,
      this.limits.inputTokens,
      this.limits.outputTokens,
      ticket,
      Math.max(0, Math.round(inputTokens)),
    )) as [number, string];
    if (wait > 0) return { admitted: false, waitMs: wait, limit: which as 'requests' | 'input_tokens' | 'output_tokens' | 'paused' };
    return { admitted: true, ticket };
  }

  /**
   * Replace an admitted call's estimate by the tokens the provider billed (input incl. cache writes),
   * and date it `lateMs` (ms) after its admission: when its request actually went out.
   */
  async settle(provider: string, model: string, ticket: string, inputTokens: number, outputTokens: number, lateMs = 0): Promise<void> {
    const id = ticket.split(':')[0] ?? ticket;
    await this.redis.eval(SETTLE, 1, this.#key(provider, model), ticket, `${id}:${Math.round(inputTokens)}:${Math.round(outputTokens)}`, Math.max(0, Math.round(lateMs)));
  }

  /** Stop admitting calls to this model for `ms` (a 429's `retry-after`), in every process. */
  async pause(provider: string, model: string, ms: number): Promise<void> {
    const capped = Math.min(MAX_PAUSE_MS, Math.max(1, Math.round(ms)));
    await this.redis.eval(PAUSE, 1, `${this.#key(provider, model)}:pause`, capped);
  }

  /**
   * Learn from a reply's rate-limit headers: per-minute limits (scaled to the window) lower the
   * configured ones, and an exhausted `remaining` pauses until its reset time.
   */
  async observe(provider: string, model: string, info: RateLimitInfo | undefined): Promise<void> {
    if (!info) return;
    const key = this.#key(provider, model);
    const scale = this.windowMs / 60_000;
    const learned: string[] = [];
    const add = (field: string, perMinute: number | undefined) => {
      if (perMinute !== undefined && perMinute > 0) learned.push(field, String(Math.max(1, Math.floor(perMinute * scale))));
    };
    add('requests', info.requestsLimit);
    add('input_tokens', info.inputTokensLimit);
    add('output_tokens', info.outputTokensLimit);
    if (learned.length > 0) await this.redis.multi().hset(`${key}:learned`, ...learned).pexpire(`${key}:learned`, 600_000).exec();
    const now = Date.now();
    const exhausted = [
      [info.requestsRemaining, info.requestsResetAt],
      [info.inputTokensRemaining, info.inputTokensResetAt],
      [info.outputTokensRemaining, info.outputTokensResetAt],
    ] as const;
    for (const [remaining, resetAt] of exhausted) {
      if (remaining !== undefined && remaining <= 0 && resetAt !== undefined && resetAt > now) await this.pause(provider, model, resetAt - now);
    }
  }
}
