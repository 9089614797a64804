/**
 * Settings, parsed once at start from the environment (and CLI flags layered on top by the caller).
 * Runtime code receives a {@link FleetConfig}, never raw `process.env`.
 */
import { z } from 'zod';
import { FleetError } from './errors.js';
import { DEFAULT_RUN_RETENTION_MS } from './store/retention.js';

/** Default model when `FLEET_MODEL` is unset: a current Claude model. */
export const DEFAULT_MODEL = 'claude-sonnet-5-5';

/** URL schemes `REDIS_URL` may use. */
const REDIS_SCHEMES = ['redis:', 'rediss:', 'redis+cluster:', 'rediss+cluster:'];

const envSchema = z.object({
  REDIS_URL: z
    .string()
    .url('REDIS_URL must be a URL such as redis://127.0.0.1:6379')
    // ioredis reads any other scheme as a socket path and fails with a puzzling `connect ENOENT`.
    .superRefine((url, ctx) => {
      const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
      if (!REDIS_SCHEMES.includes(scheme)) {
        ctx.addIssue({ code: 'custom', message: `the scheme "${scheme}" is not a Redis one; use redis://host:6379 (rediss:// for TLS, redis+cluster:// for a cluster)` });
      }
    })
    .default('redis://127.0.0.1:6379'),
  FLEET_QUEUE_PREFIX: z
    .string()
    .min(1)
    .regex(/^[^:\s]+$/, 'FLEET_QUEUE_PREFIX must not contain ":" or spaces')
    .default('{fleet}'),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_BASE_URL: z.string().url('ANTHROPIC_BASE_URL must be a URL').optional(),
  FLEET_MODEL: z.string().min(1).default(DEFAULT_MODEL),
  FLEET_MAX_TOKENS: z.coerce.number().int().positive().max(128_000).default(8192),
  FLEET_OFFLINE_LATENCY_MS: z.coerce.number().int().min(0).default(0),
  FLEET_OFFLINE_JITTER_MS: z.coerce.number().int().min(0).default(0),
  FLEET_PROVIDER: z.enum(['auto', 'anthropic', 'offline', 'openai-compatible'], 'FLEET_PROVIDER must be auto, anthropic, openai-compatible or offline').default('auto'),
  // Issue 8: OpenAI-compatible servers, models per role, rate limits, prices.
  FLEET_OPENAI_BASE_URL: z.string().url('FLEET_OPENAI_BASE_URL must be a URL such as http://127.0.0.1:11434/v1').optional(),
  FLEET_OPENAI_API_KEY: z.string().min(1).optional(),
  FLEET_ROLE_MODELS: z.string().optional(),
  FLEET_ROLE_EFFORT: z.string().optional(),
  FLEET_ROLE_THINKING: z.string().optional(),
  FLEET_STRICT: z.enum(['true', 'false'], 'FLEET_STRICT must be true or false').default('true'),
  FLEET_RATE_LIMIT_RPM: z.coerce.number().int().min(0, 'FLEET_RATE_LIMIT_RPM must be >= 0 (0: no limit)').default(0),
  FLEET_RATE_LIMIT_ITPM: z.coerce.number().int().min(0, 'FLEET_RATE_LIMIT_ITPM must be >= 0 (0: no limit)').default(0),
  FLEET_RATE_LIMIT_OTPM: z.coerce.number().int().min(0, 'FLEET_RATE_LIMIT_OTPM must be >= 0 (0: no limit)').default(0),
  FLEET_RATE_LIMIT_WINDOW_MS: z.coerce.number().int().positive('FLEET_RATE_LIMIT_WINDOW_MS must be a positive number of ms').default(60_000),
  FLEET_PRICES: z.string().optional(),
  FLEET_TRACE_CONTENT: z.enum(['true', 'false'], 'FLEET_TRACE_CONTENT must be true or false').default('false'),
  FLEET_RUN_RETENTION: z.string().optional(),
  FLEET_HISTORY_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'FLEET_HISTORY_URL must be a PostgreSQL URL such as postgres://user@127.0.0.1:5432/agentfleet')
    .optional(),
  FLEET_HISTORY_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'FLEET_HISTORY_SCHEMA must be a lower-case SQL identifier such as agentfleet')
    .default('public'),
  FLEET_METRICS_PORT: z.coerce.number().int().min(1, 'FLEET_METRICS_PORT must be a TCP port (1-65535)').max(65535, 'FLEET_METRICS_PORT must be a TCP port (1-65535)').optional(),
});

/** Every setting AgentFleet reads from the environment, with defaults applied. */
export interface FleetConfig {
  /** Redis connection URL (`redis://` or `rediss://`). @defaultValue `redis://127.0.0.1:6379` */
  redisUrl: string;
  /** Prefix of every Redis key; a `{hash tag}` keeps one fleet in one Cluster slot. @defaultValue `{fleet}` */
  queuePrefix: string;
  /** Which LLM provider answers: Anthropic when a key is set (`auto`), or forced. */
  provider: 'anthropic' | 'offline' | 'openai-compatible';
  /** Base URL of an OpenAI-compatible API, with `/v1` (`FLEET_OPENAI_BASE_URL`), e.g. Ollama's `http://127.0.0.1:11434/v1`. */
  openaiBaseUrl: string | undefined;
  /** API key for it (`FLEET_OPENAI_API_KEY`); local servers accept any. */
  openaiApiKey: string | undefined;
  /**
   * Model per role (`FLEET_ROLE_MODELS=planner=claude-opus-4-6,reviewer=claude-haiku-4-5`); a value
   * `openai-compatible:<model>` or `anthropic:<model>` also picks the provider. Roles not listed use `model`.
   */
  roleModels: Record<string, { provider: 'anthropic' | 'openai-compatible' | undefined; model: string }>;
  /**
   * Effort per role (`FLEET_ROLE_EFFORT=planner=high,coder=medium`; `low`, `medium`, `high`, `xhigh`,
   * `max`), sent as Anthropic `output_config.effort`; a role file's `effort` wins. Roles not listed: the provider's default.
   */
  roleEffort: Record<string, 'low' | 'medium' | 'high' | 'xhigh' | 'max'>;
  /** Roles that think before answering (`FLEET_ROLE_THINKING=planner,reviewer`: Anthropic adaptive thinking). */
  roleThinking: string[];
  /**
   * Ask providers for structured output guaranteed by the schema (`FLEET_STRICT`); `false` sends every
   * output schema as a plain tool and relies on validation and repair alone. @defaultValue true
   */
  strict: boolean;
  /**
   * Fleet-wide limits per provider and model, per `window_ms` (`FLEET_RATE_LIMIT_RPM`, `_ITPM`,
   * `_OTPM`, `_WINDOW_MS`); 0 is no limit, and all 0 turns the limiter off.
   */
  rateLimits: { requests: number; inputTokens: number; outputTokens: number; windowMs: number };
  /** Extra prices, model prefix → USD per million tokens (`FLEET_PRICES` JSON), over the built-in table. */
  prices: Record<string, { inputPerMTok: number; outputPerMTok: number; cacheWritePerMTok: number; cacheReadPerMTok: number }>;

  anthropicApiKey: string | undefined;
  anthropicBaseUrl: string | undefined;
  /** Model for Anthropic calls. @defaultValue {@link DEFAULT_MODEL} */
  model: string;
  /** Upper bound on output tokens per LLM call. @defaultValue 8192 */
  maxTokens: number;
  /** Simulated latency of the offline model, ms. @defaultValue 0 */
  offlineLatencyMs: number;
  /** Extra random latency of the offline model, uniform in [0, jitter), ms (benchmarks). @defaultValue 0 */
  offlineJitterMs: number;
  /** Record prompts and replies on `chat` spans (`FLEET_TRACE_CONTENT=true`). @defaultValue false */
  traceContent: boolean;
  /**
   * How long a finished run's keys stay in Redis, ms (`FLEET_RUN_RETENTION`: `7d`, `12h`, `30m`, `90s`);
   * 0 keeps them. With an archive, the period starts once the run is archived. @defaultValue 7 days
   */
  runRetentionMs: number;
  /** PostgreSQL URL of the run archive (`FLEET_HISTORY_URL`); undefined: Redis alone. */
  historyUrl: string | undefined;
  /** PostgreSQL schema of the run archive (`FLEET_HISTORY_SCHEMA`), created when missing. @defaultValue `public` */
  historySchema: string;
  /** Port of the Prometheus `/metrics` endpoint of `fleet manager` / `fleet agents` (`FLEET_METRICS_PORT`); undefined: none. */
  metricsPort: number | undefined;
}

/**
 * Parse settings from an environment.
 *
 * @throws FleetError `INVALID_INPUT` naming the variable and the fix, e.g. `FLEET_PROVIDER=anthropic`
 *   without `ANTHROPIC_API_KEY`.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): FleetConfig {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new FleetError('INVALID_INPUT', `invalid environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.FLEET_PROVIDER === 'openai-compatible' && !e.FLEET_OPENAI_BASE_URL) {
    throw new FleetError('INVALID_INPUT', 'FLEET_PROVIDER=openai-compatible needs FLEET_OPENAI_BASE_URL (e.g. http://127.0.0.1:11434/v1 for Ollama) and FLEET_MODEL');
  }
  if (e.FLEET_PROVIDER === 'anthropic' && !e.ANTHROPIC_API_KEY) {
    throw new FleetError('INVALID_INPUT', 'FLEET_PROVIDER=anthropic needs ANTHROPIC_API_KEY; set the key or unset FLEET_PROVIDER to use the offline model');
  }
  const provider = e.FLEET_PROVIDER === 'auto' ? (e.ANTHROPIC_API_KEY ? 'anthropic' : 'offline') : e.FLEET_PROVIDER;
  return {
    redisUrl: e.REDIS_URL,
    queuePrefix: e.FLEET_QUEUE_PREFIX,
    provider,
    anthropicApiKey: e.ANTHROPIC_API_KEY,
    anthropicBaseUrl: e.ANTHROPIC_BASE_URL,
    model: e.FLEET_MODEL,
    maxTokens: e.FLEET_MAX_TOKENS,
    offlineLatencyMs: e.FLEET_OFFLINE_LATENCY_MS,
    offlineJitterMs: e.FLEET_OFFLINE_JITTER_MS,
    traceContent: e.FLEET_TRACE_CONTENT === 'true',
    metricsPort: e.FLEET_METRICS_PORT,
    runRetentionMs: e.FLEET_RUN_RETENTION === undefined ? DEFAULT_RUN_RETENTION_MS : parseDuration(e.FLEET_RUN_RETENTION, 'FLEET_RUN_RETENTION'),
    historyUrl: e.FLEET_HISTORY_URL,
    historySchema: e.FLEET_HISTORY_SCHEMA,
    openaiBaseUrl: e.FLEET_OPENAI_BASE_URL,
    openaiApiKey: e.FLEET_OPENAI_API_KEY,
    roleModels: parseRoleModels(e.FLEET_ROLE_MODELS),
    roleEffort: parseRoleEffort(e.FLEET_ROLE_EFFORT),
    roleThinking: (e.FLEET_ROLE_THINKING ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    strict: e.FLEET_STRICT === 'true',
    rateLimits: {
      requests: e.FLEET_RATE_LIMIT_RPM,
      inputTokens: e.FLEET_RATE_LIMIT_ITPM,
      outputTokens: e.FLEET_RATE_LIMIT_OTPM,
      windowMs: e.FLEET_RATE_LIMIT_WINDOW_MS,
    },
    prices: parsePrices(e.FLEET_PRICES),
  };
}

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A duration such as `7d`, `12h`, `30m`, `90s` or `250ms` (or `0`), in ms.
 *
 * @param setting - named in the error.
 * @throws FleetError `INVALID_INPUT` naming the setting, for anything else.
 */
export function parseDuration(text: string, setting: string): number {
  const m = /^\s*(\d+)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m || (m[2] === undefined && m[1] !== '0')) {
    throw new FleetError('INVALID_INPUT', `${setting}: "${text}" is not a duration; write e.g. 7d, 12h, 30m or 90s (0 keeps runs forever)`);
  }
  return Number(m[1]) * DURATION_UNITS_MS[(m[2] ?? 'ms') as keyof typeof DURATION_UNITS_MS];
}

/** A Redis URL with any password replaced by `***`, safe for logs and error messages. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable Redis URL)';
  }
}

/**
 * `planner=claude-opus-4-6,reviewer=openai-compatible:qwen3:8b` → role → provider and model.
 *
 * @throws FleetError `INVALID_INPUT` naming the bad entry.
 */
export function parseRoleModels(text: string | undefined): FleetConfig['roleModels'] {
  const out: FleetConfig['roleModels'] = {};
  for (const entry of (text ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const role = entry.slice(0, eq).trim();
    let model = entry.slice(eq + 1).trim();
    if (eq <= 0 || !model) throw new FleetError('INVALID_INPUT', `FLEET_ROLE_MODELS: "${entry}" is not role=model; write e.g. planner=claude-opus-4-6,reviewer=claude-haiku-4-5`);
    let provider: 'anthropic' | 'openai-compatible' | undefined;
    for (const p of ['anthropic', 'openai-compatible'] as const) {
      if (model.startsWith(`${p}:`)) {
        provider = p;
        model = model.slice(p.length + 1);
      }
    }
    out[role] = { provider, model };
  }
  return out;
}

/**
 * `FLEET_PRICES` JSON: `{"my-model": {"input": 0.5, "output": 1.5, "cache_write": 0.6, "cache_read": 0.05}}`,
 * USD per million tokens; cache prices default to 1.25× and 0.1× input.
 *
 * @throws FleetError `INVALID_INPUT` when it is not such an object.
 */
export function parsePrices(text: string | undefined): FleetConfig['prices'] {
  if (!text) return {};
  const entry = z.object({ input: z.number().min(0), output: z.number().min(0), cache_write: z.number().min(0).optional(), cache_read: z.number().min(0).optional() });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FleetError('INVALID_INPUT', 'FLEET_PRICES is not JSON; write {"model-prefix": {"input": 3, "output": 15}} (USD per million tokens)');
  }
  const parsed = z.record(z.string().min(1), entry).safeParse(raw);
  if (!parsed.success) {
    throw new FleetError('INVALID_INPUT', `FLEET_PRICES: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}; write {"model-prefix": {"input": 3, "output": 15}}`);
  }
  return Object.fromEntries(
    Object.entries(parsed.data).map(([model, p]) => [
      model,
      { inputPerMTok: p.input, outputPerMTok: p.output, cacheWritePerMTok: p.cache_write ?? p.input * 1.25, cacheReadPerMTok: p.cache_read ?? p.input * 0.1 },
    ]),
  );
}

const EFFORTS = ['low', 'medium', 'high', 'xhigh', 'max'] as const;

/**
 * `planner=high,coder=medium` → role → effort.
 *
 * @throws FleetError `INVALID_INPUT` naming the bad entry.
 */
export function parseRoleEffort(text: string | undefined): FleetConfig['roleEffort'] {
  const out: FleetConfig['roleEffort'] = {};
  for (const entry of (text ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [role, effort] = entry.split('=').map((s) => s.trim());
    if (!role || !effort || !(EFFORTS as readonly string[]).includes(effort)) {
      throw new FleetError('INVALID_INPUT', `FLEET_ROLE_EFFORT: "${entry}" is not role=effort with effort one of ${EFFORTS.join(', ')}; write e.g. planner=high,coder=medium`);
    }
    out[role] = effort as (typeof EFFORTS)[number];
  }
  return out;
}
