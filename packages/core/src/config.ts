/**
 * Settings, parsed once at start from the environment (and CLI flags layered on top by the caller).
 * Runtime code receives a {@link FleetConfig}, never raw `process.env`.
 */
import { z } from 'zod';
import { FleetError } from './errors.js';
import { DEFAULT_RUN_RETENTION_MS } from './store/retention.js';
import { DEFAULT_INPUT_FILES_INLINE_MAX_BYTES } from './workflow/agent-tools.js';

/** Default model when `FLEET_MODEL` is unset: a current Claude model. */
export const DEFAULT_MODEL = 'claude-sonnet-5-5';

/** URL schemes `REDIS_URL` may use. */
const REDIS_SCHEMES = ['redis:', 'rediss:', 'redis+cluster:', 'rediss+cluster:'];

/**
 * What a setting's page entry says beside the zod schema: `description` (what it does), and for a
 * setting without a default, `whenUnset` (what happens without it).
 */
interface SettingMeta {
  description: string;
  whenUnset?: string;
  [key: string]: unknown;
}
const setting = (meta: SettingMeta) => meta;

/** Log levels of `FLEET_LOG_LEVEL` (pino's). */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The settings schema: every environment variable AgentFleet reads, with its type, default and
 * description. `docs/configuration.md` is generated from it (`npm run docs:config`), and a test
 * fails when the page and the schema differ, or when code reads a `FLEET_*` variable not listed here.
 */
export const SETTINGS_SCHEMA = z.object({
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
    .default('redis://127.0.0.1:6379')
    .meta(
      setting({
        description:
          'Redis: `redis://` or `rediss://` (TLS), with user and password if needed; `redis+cluster://` (or `rediss+cluster://`) for a Redis Cluster. Redis must run with `maxmemory-policy noeviction`; the manager warns otherwise.',
      }),
    ),
  FLEET_QUEUE_PREFIX: z
    .string()
    .min(1)
    .regex(/^[^:\s]+$/, 'FLEET_QUEUE_PREFIX must not contain ":" or spaces')
    .default('{fleet}')
    .meta(setting({ description: 'Prefix of every Redis key, a Redis Cluster hash tag. Fleets (or test files) with different prefixes share one Redis without seeing each other.' })),
  ANTHROPIC_API_KEY: z.string().min(1).optional().meta(setting({ description: 'Anthropic API key: the agents call Claude.', whenUnset: 'the offline model answers (clearly labelled in every output)' })),
  ANTHROPIC_BASE_URL: z.string().url('ANTHROPIC_BASE_URL must be a URL').optional().meta(setting({ description: 'Another endpoint that speaks the Anthropic Messages API.', whenUnset: "Anthropic's API" })),
  FLEET_MODEL: z.string().min(1).default(DEFAULT_MODEL).meta(setting({ description: 'Model of the LLM calls (of the chosen provider); `FLEET_ROLE_MODELS` overrides it per role.' })),
  FLEET_MAX_TOKENS: z.coerce.number().int().positive().max(128_000).default(8192).meta(setting({ description: 'Output token cap of one LLM call, tokens.' })),
  FLEET_OFFLINE_LATENCY_MS: z.coerce.number().int().min(0).default(0).meta(setting({ description: 'Simulated latency of the offline model, ms (benchmarks).' })),
  FLEET_OFFLINE_JITTER_MS: z.coerce.number().int().min(0).default(0).meta(setting({ description: 'Extra random latency of the offline model, uniform in [0, jitter), ms (benchmarks).' })),
  FLEET_PROVIDER: z
    .enum(['auto', 'anthropic', 'offline', 'openai-compatible'], 'FLEET_PROVIDER must be auto, anthropic, openai-compatible or offline')
    .default('auto')
    .meta(setting({ description: '`auto`: Anthropic when `ANTHROPIC_API_KEY` is set, else offline; or force `anthropic`, `openai-compatible` (needs `FLEET_OPENAI_BASE_URL`) or `offline`.' })),
  FLEET_OPENAI_BASE_URL: z
    .string()
    .url('FLEET_OPENAI_BASE_URL must be a URL such as http://127.0.0.1:11434/v1')
    .optional()
    .meta(setting({ description: 'Base URL, with `/v1`, of a server that speaks the OpenAI API (Ollama, vLLM, …), for `FLEET_PROVIDER=openai-compatible` or `openai-compatible:` role models.', whenUnset: 'no OpenAI-compatible provider' })),
  FLEET_OPENAI_API_KEY: z.string().min(1).optional().meta(setting({ description: 'API key for `FLEET_OPENAI_BASE_URL`; local servers accept any.', whenUnset: 'no key is sent' })),
  FLEET_ROLE_MODELS: z
    .string()
    .optional()
    .meta(setting({ description: 'Model per role, `role=model,…` (e.g. `planner=claude-opus-4-6,reviewer=openai-compatible:qwen3:8b`); a `provider:` prefix also picks the provider.', whenUnset: 'every role uses `FLEET_MODEL`' })),
  FLEET_ROLE_EFFORT: z
    .string()
    .optional()
    .meta(setting({ description: 'Effort per role, `role=effort,…` with `low`, `medium`, `high`, `xhigh` or `max` (Anthropic `output_config.effort`); a role file\'s `effort` wins.', whenUnset: "the provider's default" })),
  FLEET_ROLE_THINKING: z
    .string()
    .optional()
    .meta(setting({ description: 'Roles that think before they answer, `planner,reviewer` (Anthropic adaptive thinking; the output then comes as `output_config.format` JSON).', whenUnset: 'no role thinks' })),
  FLEET_STRICT: z
    .enum(['true', 'false'], 'FLEET_STRICT must be true or false')
    .default('true')
    .meta(setting({ description: 'Structured outputs: send every output schema with `strict` (in its compatible form), so replies match it by construction; `false` relies on validation and repair alone.' })),
  FLEET_RATE_LIMIT_RPM: z.coerce.number().int().min(0, 'FLEET_RATE_LIMIT_RPM must be >= 0 (0: no limit)').default(0).meta(setting({ description: 'Fleet-wide requests per window, per provider and model, shared through Redis; 0: no limit.' })),
  FLEET_RATE_LIMIT_ITPM: z.coerce.number().int().min(0, 'FLEET_RATE_LIMIT_ITPM must be >= 0 (0: no limit)').default(0).meta(setting({ description: 'Fleet-wide input tokens per window, per provider and model; 0: no limit.' })),
  FLEET_RATE_LIMIT_OTPM: z.coerce.number().int().min(0, 'FLEET_RATE_LIMIT_OTPM must be >= 0 (0: no limit)').default(0).meta(setting({ description: 'Fleet-wide output tokens per window, per provider and model; 0: no limit.' })),
  FLEET_RATE_LIMIT_WINDOW_MS: z.coerce.number().int().positive('FLEET_RATE_LIMIT_WINDOW_MS must be a positive number of ms').default(60_000).meta(setting({ description: 'The window of the rate limits, ms.' })),
  FLEET_PRICES: z
    .string()
    .optional()
    .meta(setting({ description: 'JSON price overrides, model prefix → USD per million tokens: `{"my-model": {"input": 0.5, "output": 1.5, "cache_write": 0.6, "cache_write_1h": 1.0, "cache_read": 0.05}}`; cache prices default to 1.25× (`cache_write`), 2× (`cache_write_1h`) and 0.1× (`cache_read`) input.', whenUnset: 'the built-in price table' })),
  FLEET_TRACE_CONTENT: z.enum(['true', 'false'], 'FLEET_TRACE_CONTENT must be true or false').default('false').meta(setting({ description: 'Record prompt and completion text on `chat` spans.' })),
  FLEET_RUN_RETENTION: z
    .string()
    .optional()
    .meta(setting({ description: 'How long a finished run stays in Redis: `7d`, `12h`, `30m`, `90s`; `0` keeps runs forever. With the archive, the period starts once the run is archived.', whenUnset: '`7d`' })),
  FLEET_HISTORY_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'FLEET_HISTORY_URL must be a PostgreSQL URL such as postgres://user@127.0.0.1:5432/agentfleet')
    .optional()
    .meta(setting({ description: 'PostgreSQL URL of the run archive (run history); the manager applies its migrations at start.', whenUnset: 'Redis alone holds runs, until their retention passes' })),
  FLEET_HISTORY_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'FLEET_HISTORY_SCHEMA must be a lower-case SQL identifier such as agentfleet')
    .default('public')
    .meta(setting({ description: 'PostgreSQL schema of the run archive, created when missing.' })),
  FLEET_METRICS_PORT: z.coerce
    .number()
    .int()
    .min(1, 'FLEET_METRICS_PORT must be a TCP port (1-65535)')
    .max(65535, 'FLEET_METRICS_PORT must be a TCP port (1-65535)')
    .optional()
    .meta(setting({ description: 'Port of the Prometheus `/metrics` endpoint of `fleet manager` and `fleet agents` (`--metrics-port`).', whenUnset: 'no endpoint' })),
  FLEET_METRICS_POLL_MS: z.coerce.number().int().positive('FLEET_METRICS_POLL_MS must be a positive number of ms').default(5000).meta(setting({ description: 'How often the queue gauges (waiting jobs, oldest wait) are read, ms.' })),
  FLEET_LOG_LEVEL: z
    .enum(LOG_LEVELS, `FLEET_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)
    .optional()
    .meta(setting({ description: 'Level of the JSON logs (pino) on stdout; `debug` also prints the stack of a start-up error.', whenUnset: '`info` (`warn` under `fleet run`)' })),
  FLEET_LOG_FORMAT: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['json', 'human'], 'FLEET_LOG_FORMAT must be json or human'))
    .optional()
    .meta(
      setting({
        description:
          '`human`: `fleet` commands print warnings and errors as one short line each, once; `json`: the JSON log lines (pino), for a log pipeline (`--log-json`; the container image sets it).',
        whenUnset: '`human` (JSON lines with `FLEET_LOG_LEVEL=debug` or `trace`)',
      }),
    ),
  FLEET_HTTP_PORT: z.coerce
    .number()
    .int()
    .min(0, 'FLEET_HTTP_PORT must be a TCP port (0-65535)')
    .max(65535, 'FLEET_HTTP_PORT must be a TCP port (0-65535)')
    .optional()
    .meta(setting({ description: 'Serve the HTTP API (and `/docs`, the console under `/ui/`) on this port (`fleet manager --port`).', whenUnset: 'no HTTP API' })),
  FLEET_HTTP_HOST: z
    .string()
    .min(1)
    .optional()
    .meta(setting({ description: 'Address the HTTP API listens on (`--host`); `0.0.0.0` serves every interface (the Docker image sets it). The manager prints the address it bound.', whenUnset: '`127.0.0.1`' })),
  FLEET_ADMIN_KEY: z
    .string()
    .optional()
    .meta(setting({ description: 'Admin API key of the HTTP API (user type `admin`, at least 16 characters): manages templates, keys and permissions.', whenUnset: 'no admin key: nothing can be managed' })),
  FLEET_API_KEYS: z
    .string()
    .optional()
    .meta(setting({ description: 'Further API keys with their user types, `user_type:key,…`.', whenUnset: 'only keys made with `POST /api/api-keys`' })),
  FLEET_MANAGER_URL: z
    .string()
    .url('FLEET_MANAGER_URL must be a URL such as http://127.0.0.1:8080')
    .default('http://127.0.0.1:8080')
    .meta(setting({ description: 'Base URL of the manager HTTP API that `fleet submit` and the other HTTP commands call (`--manager-url`).' })),
  FLEET_API_KEY: z.string().optional().meta(setting({ description: 'API key `fleet submit` and the other HTTP commands send (`--api-key`).', whenUnset: 'no key is sent (the API answers 401)' })),
  FLEET_WEBHOOK_SECRET: z
    .string()
    .min(1)
    .optional()
    .meta(setting({ description: 'Secret that signs `api_call` end-action webhooks (HMAC-SHA256 in `X-Fleet-Signature`).', whenUnset: 'webhooks are sent unsigned' })),
  FLEET_ROLE_MODULES: z.string().optional().meta(setting({ description: 'Comma-separated TypeScript or JavaScript modules that define agent roles.', whenUnset: 'the built-in roles only' })),
  FLEET_TOOL_MODULES: z.string().optional().meta(setting({ description: 'Comma-separated TypeScript or JavaScript modules that define tools for the tools pool.', whenUnset: 'the built-in tools only' })),
  FLEET_TOOL_ALLOWED_HOSTS: z
    .string()
    .optional()
    .meta(
      setting({
        description:
          'Comma-separated hosts (`host` or `host:port`) the `http_request` tool and streamable HTTP MCP servers may reach. `*` is any host outside this machine and its networks; loopback, private and link-local addresses are reached only when named here.',
        whenUnset: 'no host: only `data:` URLs',
      }),
    ),
  FLEET_SSE_MAX_STREAMS_PER_KEY: z.coerce
    .number()
    .int()
    .min(1, 'FLEET_SSE_MAX_STREAMS_PER_KEY must be a positive integer')
    .optional()
    .meta(setting({ description: 'Open run event streams (SSE) one API key may hold at once, per API process; one more answers 429 TOO_MANY_STREAMS.', whenUnset: '32' })),
  FLEET_MCP_ALLOWED_COMMANDS: z
    .string()
    .optional()
    .meta(setting({ description: 'Comma-separated executables that stdio MCP servers (`mcp_servers: [{command}]`) may be started with, on the agent pools.', whenUnset: 'no stdio MCP server may start (streamable HTTP servers follow FLEET_TOOL_ALLOWED_HOSTS)' })),
  FLEET_SIGNATURE_TOLERANCE_S: z.coerce
    .number()
    .int()
    .min(1, 'FLEET_SIGNATURE_TOLERANCE_S must be whole seconds from 1 to 86400')
    .max(86_400, 'FLEET_SIGNATURE_TOLERANCE_S must be whole seconds from 1 to 86400')
    .optional()
    .meta(setting({ description: 'How far (seconds) the `X-Fleet-Timestamp` of a signed trigger delivery may be from the manager clock before it is refused as stale.', whenUnset: '300' })),
  FLEET_ARTIFACTS_DIR: z.string().optional().meta(setting({ description: 'Where the `write_file` tool writes; `<run_id>` is replaced by the run id.', whenUnset: '`runs/<run_id>`' })),
  FLEET_BATCH_POLL_MS: z.coerce
    .number()
    .int()
    .min(100, 'FLEET_BATCH_POLL_MS must be at least 100 (ms between polls of open message batches)')
    .default(30_000)
    .meta(setting({ description: 'How often the manager asks the Anthropic Message Batches API about open message batches of `mode: batch` phases, ms; also how often an agent worker that took over a call whose batch id was never recorded looks again for that batch.' })),
  FLEET_INPUT_FILES_INLINE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(0, 'FLEET_INPUT_FILES_INLINE_MAX_BYTES must be a whole number of bytes, 0 or more')
    .default(DEFAULT_INPUT_FILES_INLINE_MAX_BYTES)
    .meta(
      setting({
        description:
          'The most bytes of input files (outputs shaped like the coder\'s) a phase with `input_files: auto` (the built-in `software-delivery` coder and reviewer) gets inline in its prompt; above it the prompt names the files and the agent reads them with `read_file`. `0`: always by reference; a very large number: always inline.',
      }),
    ),
});

const envSchema = SETTINGS_SCHEMA;

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
  /** How often the manager asks the Batches API about open message batches, ms (`FLEET_BATCH_POLL_MS`). @defaultValue 30000 */
  batchPollMs: number;
  /** Bytes of input files an `input_files: auto` phase gets inline at most (`FLEET_INPUT_FILES_INLINE_MAX_BYTES`). @defaultValue 49152 */
  inputFilesInlineMaxBytes: number;
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
    batchPollMs: e.FLEET_BATCH_POLL_MS,
    inputFilesInlineMaxBytes: e.FLEET_INPUT_FILES_INLINE_MAX_BYTES,
  };
}

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * The settings read where no {@link FleetConfig} is handed in: by every logger (`createLogger`), the
 * queue gauges (`observeQueues`) and a `FleetClient`. Each reads `env` when called, so a process
 * (or a test) that sets a variable later is followed; the apps pass what they parsed with
 * {@link loadConfig} as options instead where they can.
 */

/** `FLEET_LOG_LEVEL` as set (pino refuses a level it does not know), undefined when unset or empty. */
export function logLevelSetting(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.FLEET_LOG_LEVEL || undefined;
}

/**
 * The secret values the settings hold, for loggers to scrub: `ANTHROPIC_API_KEY`, and the password
 * of `REDIS_URL` (decoded and percent-encoded). Empty when neither is set.
 */
export function secretSettings(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  const key = env.ANTHROPIC_API_KEY;
  if (key) out.push(key);
  const url = env.REDIS_URL;
  if (url) {
    try {
      const password = decodeURIComponent(new URL(url).password);
      if (password) out.push(password, encodeURIComponent(password));
    } catch {
      // Not a URL: nothing to take from it.
    }
  }
  return out;
}

/** `FLEET_METRICS_POLL_MS` in ms; 5000 when unset or not a positive number. */
export function metricsPollMsSetting(env: NodeJS.ProcessEnv = process.env): number {
  return Number(env.FLEET_METRICS_POLL_MS) || 5000;
}

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
 * USD per million tokens; cache prices default to 1.25× (`cache_write`), 2× (`cache_write_1h`) and 0.1× (`cache_read`) input.
 *
 * @throws FleetError `INVALID_INPUT` when it is not such an object.
 */
export function parsePrices(text: string | undefined): FleetConfig['prices'] {
  if (!text) return {};
  const entry = z.object({ input: z.number().min(0), output: z.number().min(0), cache_write: z.number().min(0).optional(), cache_read: z.number().min(0).optional(), cache_write_1h: z.number().min(0).optional() });
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
      { inputPerMTok: p.input, outputPerMTok: p.output, cacheWritePerMTok: p.cache_write ?? p.input * 1.25, cacheReadPerMTok: p.cache_read ?? p.input * 0.1, cacheWrite1hPerMTok: p.cache_write_1h ?? p.input * 2 },
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
