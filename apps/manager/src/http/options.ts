/**
 * Options of the HTTP API, parsed once at start: raw options (or environment) → options with defaults.
 */
import { DEFAULT_SIGNATURE_TOLERANCE_S, FleetError, parseConfiguredKeys, type ConfiguredKey } from '@agentfleet/core';
import type { HistoryStore } from '../archive/history-store.js';

export interface HttpApiOptions {
  redisUrl: string;
  /** The fleet's key prefix (`FLEET_QUEUE_PREFIX`). */
  prefix: string;
  /** TCP port; 0 picks a free one. @defaultValue 8080 */
  port?: number;
  /**
   * Address to listen on: `127.0.0.1` serves only this machine; `0.0.0.0` (or `::`) every interface,
   * as a container needs (the Docker image sets `FLEET_HTTP_HOST=0.0.0.0`). The default is not guessed
   * from container markers such as `/.dockerenv`, which sandboxes and VMs carry too.
   * @defaultValue `FLEET_HTTP_HOST`, else `127.0.0.1`
   */
  host?: string;
  /** Admin API keys (user type `admin`). At least one is needed to manage templates, keys and permissions. @defaultValue `FLEET_ADMIN_KEY` */
  adminKeys?: string[];
  /** Further configured keys and their user types. @defaultValue parsed from `FLEET_API_KEYS` (`user_type:key,…`) */
  apiKeys?: Array<{ key: string; userType: string }>;
  /** Provider recorded on runs started through the API (`anthropic` or `offline`). @defaultValue `offline` */
  provider?: string;
  /** Serve the queue dashboard (Bull Board) at `/admin/queues`. @defaultValue true */
  bullBoard?: boolean;
  /** Comment sent on idle SSE streams, ms. @defaultValue 15000 */
  sseKeepAliveMs?: number;
  /** Timeout of one Redis command of the API, ms: past it the request answers 503. @defaultValue 2000 */
  redisCommandTimeoutMs?: number;
  /** Log requests (pino, to stdout). Keys are never logged: the authorization headers are redacted. @defaultValue false */
  logger?: boolean;
  /** The run archive (`openHistoryStore`), when `FLEET_HISTORY_URL` is set: lists, finished runs and purges read and write it. */
  history?: HistoryStore;
  /**
   * How far the `X-Fleet-Timestamp` of a signed trigger delivery may be from this server's clock,
   * either way, s; older (or later) deliveries answer 401. Delivery ids are remembered for twice this
   * plus a minute. @defaultValue `FLEET_SIGNATURE_TOLERANCE_S`, else 300
   */
  signatureToleranceS?: number;
}

export interface ResolvedHttpApiOptions {
  redisUrl: string;
  prefix: string;
  port: number;
  host: string;
  keys: ConfiguredKey[];
  provider: string;
  bullBoard: boolean;
  sseKeepAliveMs: number;
  redisCommandTimeoutMs: number;
  logger: boolean;
  signatureToleranceS: number;
}

/**
 * Apply defaults and read the environment for what the caller left out.
 *
 * @throws FleetError `INVALID_INPUT` for a bad `FLEET_API_KEYS`, a key shorter than 16 characters, or a
 *   `FLEET_SIGNATURE_TOLERANCE_S` that is not a whole number of seconds from 1 to 86400.
 */
export function resolveHttpApiOptions(options: HttpApiOptions, env: NodeJS.ProcessEnv = process.env): ResolvedHttpApiOptions {
  const adminKeys = options.adminKeys ?? (env.FLEET_ADMIN_KEY ? [env.FLEET_ADMIN_KEY] : []);
  const others = options.apiKeys ?? parseConfiguredKeys(env.FLEET_API_KEYS);
  const keys: ConfiguredKey[] = [...adminKeys.map((key) => ({ key, userType: 'admin', name: 'configured admin key' })), ...others];
  for (const k of keys) {
    if (k.key.length < 16) throw new FleetError('INVALID_INPUT', `an API key for user type "${k.userType}" is shorter than 16 characters; use a long random key (openssl rand -hex 24)`);
  }
  const tolerance = options.signatureToleranceS ?? (env.FLEET_SIGNATURE_TOLERANCE_S ? Number(env.FLEET_SIGNATURE_TOLERANCE_S) : DEFAULT_SIGNATURE_TOLERANCE_S);
  if (!Number.isInteger(tolerance) || tolerance < 1 || tolerance > 86_400) {
    throw new FleetError('INVALID_INPUT', `FLEET_SIGNATURE_TOLERANCE_S (signatureToleranceS) is "${String(options.signatureToleranceS ?? env.FLEET_SIGNATURE_TOLERANCE_S)}"; give whole seconds from 1 to 86400 (default ${DEFAULT_SIGNATURE_TOLERANCE_S})`);
  }
  return {
    signatureToleranceS: tolerance,
    redisUrl: options.redisUrl,
    prefix: options.prefix,
    port: options.port ?? 8080,
    host: options.host ?? (env.FLEET_HTTP_HOST || '127.0.0.1'),
    keys,
    provider: options.provider ?? 'offline',
    bullBoard: options.bullBoard ?? true,
    sseKeepAliveMs: options.sseKeepAliveMs ?? 15_000,
    redisCommandTimeoutMs: options.redisCommandTimeoutMs ?? 2000,
    logger: options.logger ?? false,
  };
}
