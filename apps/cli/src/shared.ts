import { BUILTIN_ROLES, type AgentRole } from '@agentfleet/agents';
import { FleetClient, FleetError, assertRedisReachable, createRedis, loadConfig, type FleetConfig } from '@agentfleet/core';

/** Exit statuses of every `fleet` command. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Write one line to stderr. */
export function say(line: string): void {
  process.stderr.write(line + '\n');
}

/**
 * The built-in roles named in `names`.
 *
 * @throws FleetError `UNKNOWN_ROLE` naming the unknown role and the roles there are.
 */
export function resolveRoles(names: readonly string[]): AgentRole[] {
  return names.map((name) => {
    const role = BUILTIN_ROLES[name];
    if (!role) {
      throw new FleetError('UNKNOWN_ROLE', `no built-in agent role "${name}"; roles: ${Object.keys(BUILTIN_ROLES).join(', ')}`);
    }
    return role;
  });
}

/** Parse `--var key=value` into a map. @throws FleetError `INVALID_INPUT` naming the flag. */
export function parseVars(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new FleetError('INVALID_INPUT', `--var "${pair}" must look like key=value`);
    const key = pair.slice(0, i);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new FleetError('INVALID_INPUT', `--var key "${key}" must be letters, digits and "_"`);
    out[key] = pair.slice(i + 1);
  }
  return out;
}

/** Parse a positive integer flag. @throws FleetError `INVALID_INPUT` naming the flag. */
export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new FleetError('INVALID_INPUT', `${flag} must be a whole number ≥ 1, got "${value}"`);
    return n;
  };
}

/** Resolve after the first of SIGINT/SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.removeListener('SIGINT', on);
      process.removeListener('SIGTERM', on);
      resolve(signal);
    };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
}

/**
 * Run `fn` with a {@link FleetClient} on the configured Redis, closing it afterwards.
 *
 * @throws FleetError `REDIS_UNAVAILABLE` (exit 2) when Redis does not answer.
 */
export async function withClient<T>(fn: (client: FleetClient, config: FleetConfig) => Promise<T>): Promise<T> {
  const config = loadConfig();
  await assertRedisReachable(config.redisUrl);
  const redis = createRedis(config.redisUrl, { name: 'fleet-cli' });
  const client = new FleetClient(redis, config.queuePrefix);
  try {
    return await fn(client, config);
  } finally {
    await client.close();
    redis.disconnect();
  }
}
