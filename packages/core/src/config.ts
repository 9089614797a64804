/**
 * Settings, parsed once at start from the environment (and CLI flags layered on top by the caller).
 * Runtime code receives a {@link FleetConfig}, never raw `process.env`.
 */
import { z } from 'zod';
import { FleetError } from './errors.js';

/** Default model when `FLEET_MODEL` is unset: a current Claude model. */
export const DEFAULT_MODEL = 'claude-sonnet-5-5';

const envSchema = z.object({
  REDIS_URL: z.string().url('REDIS_URL must be a URL such as redis://127.0.0.1:6379').default('redis://127.0.0.1:6379'),
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
  FLEET_PROVIDER: z.enum(['auto', 'anthropic', 'offline']).default('auto'),
  FLEET_TRACE_CONTENT: z.enum(['true', 'false'], 'FLEET_TRACE_CONTENT must be true or false').default('false'),
  FLEET_METRICS_PORT: z.coerce.number().int().min(1, 'FLEET_METRICS_PORT must be a TCP port (1-65535)').max(65535, 'FLEET_METRICS_PORT must be a TCP port (1-65535)').optional(),
});

/** Every setting AgentFleet reads from the environment, with defaults applied. */
export interface FleetConfig {
  /** Redis connection URL (`redis://` or `rediss://`). @defaultValue `redis://127.0.0.1:6379` */
  redisUrl: string;
  /** Prefix of every Redis key; a `{hash tag}` keeps one fleet in one Cluster slot. @defaultValue `{fleet}` */
  queuePrefix: string;
  /** Which LLM provider answers: Anthropic when a key is set (`auto`), or forced. */
  provider: 'anthropic' | 'offline';
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
  };
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
