import { BUILTIN_ROLES, customRole, loadRoleModules, roleModulePaths, type AgentRole } from '@agentfleet/agents';
import { FleetClient, FleetError, RoleRegistry, assertRedisReachable, didYouMean, createRedis, loadConfig, redisNotAnsweringMessage, type Budget, type FleetConfig, type RunResult } from '@agentfleet/core';
import { Option, type Command } from 'commander';

/** A Redis connection as `createRedis` opens it. */
type Redis = ReturnType<typeof createRedis>;

/** Exit statuses of every `fleet` command. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Longest wait for one Redis command of a short CLI command (status, cancel, event, …), ms. */
export const CLI_COMMAND_TIMEOUT_MS = 10_000;

/** Write one line to stderr. */
export function say(line: string): void {
  process.stderr.write(line + '\n');
}

/** The custom-role registry on `redis` (built-in role names reserved). */
export function roleRegistry(redis: Redis, prefix: string): RoleRegistry {
  return new RoleRegistry(redis, prefix, Object.keys(BUILTIN_ROLES));
}

/**
 * The roles named in `names`: built-in roles first, then the roles of the modules in
 * `FLEET_ROLE_MODULES`, then the roles registered with `fleet roles add` (looked up in Redis only
 * for names found nowhere else).
 *
 * @param registry - where registered roles are read; without it only built-in and module roles resolve.
 * @throws FleetError `UNKNOWN_ROLE` naming the unknown role and the roles there are; `INVALID_INPUT`
 *   for a module that cannot be loaded.
 */
export async function resolveRoles(names: readonly string[], registry?: { redis: Redis; prefix: string }): Promise<AgentRole[]> {
  const modulePaths = roleModulePaths();
  const modules = names.some((n) => !BUILTIN_ROLES[n]) && modulePaths.length > 0 ? await loadRoleModules(modulePaths, Object.keys(BUILTIN_ROLES)) : [];
  const registered = registry ? roleRegistry(registry.redis, registry.prefix) : undefined;
  const roles: AgentRole[] = [];
  for (const name of names) {
    const role = BUILTIN_ROLES[name] ?? modules.find((r) => r.name === name) ?? (registered ? await registered.find(name) : undefined);
    if (!role) {
      const custom = registered ? (await registered.list()).map((r) => r.definition.name) : [];
      throw new FleetError(
        'UNKNOWN_ROLE',
        `no agent role "${name}"${didYouMean(name, [...Object.keys(BUILTIN_ROLES), ...custom, ...modules.map((r) => r.name)])}; built-in roles: ${Object.keys(BUILTIN_ROLES).join(', ')}` +
          (custom.length > 0 ? `; registered roles: ${custom.join(', ')}` : '') +
          (modules.length > 0 ? `; FLEET_ROLE_MODULES roles: ${modules.map((r) => r.name).join(', ')}` : '') +
          '; register one with `fleet roles add <file>`',
      );
    }
    roles.push('definition' in role ? customRole(role.definition) : role);
  }
  return roles;
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

/** Parse a positive decimal flag (USD amounts). @throws FleetError `INVALID_INPUT` naming the flag. */
export function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new FleetError('INVALID_INPUT', `${flag} must be a number > 0 (e.g. 2.50), got "${value}"`);
    return n;
  };
}

/**
 * A run budget from `--max-cost-usd` (USD) and `--max-tokens-budget` (tokens billed: input, output
 * and cache), in the shape `FleetClient.submit` takes; undefined when neither is given.
 */
export function requestBudget(opts: { maxCostUsd?: number | undefined; maxTokensBudget?: number | undefined; onBudgetExceed?: 'fail' | 'wait' | undefined }): Budget | undefined {
  if (opts.maxCostUsd === undefined && opts.maxTokensBudget === undefined && opts.onBudgetExceed === undefined) return undefined;
  return {
    ...(opts.maxCostUsd !== undefined ? { maxCostUsd: opts.maxCostUsd } : {}),
    ...(opts.maxTokensBudget !== undefined ? { maxTokens: opts.maxTokensBudget } : {}),
    ...(opts.onBudgetExceed !== undefined ? { onExceed: opts.onBudgetExceed } : {}),
  };
}

/** `--max-cost-usd` and `--max-tokens-budget` on a command that starts runs. */
export function budgetOptions(command: Command): Command {
  return command
    .addOption(new Option('--max-cost-usd <usd>', "cap the run's model spend in USD (price table; FLEET_PRICES); a phase that would pass it fails with BUDGET_EXCEEDED").argParser(positiveNumber('--max-cost-usd')))
    .addOption(new Option('--max-tokens-budget <n>', "cap the run's tokens (input + output + cache reads and writes); a phase that would pass it fails with BUDGET_EXCEEDED").argParser(positiveInt('--max-tokens-budget')))
    .addOption(
      new Option('--on-budget-exceed <action>', "`wait`: a phase that would pass the budget waits (waiting_for: budget) until `fleet event <run_id> budget --data '{\"add_usd\": 2}'` raises it; `fail` (default): BUDGET_EXCEEDED").choices(['fail', 'wait']),
    );
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
  // A Redis that answered PING and then stops (frozen, CLIENT PAUSE, a long script) fails the command, not the terminal.
  const redis = createRedis(config.redisUrl, { name: 'fleet-cli', commandTimeoutMs: CLI_COMMAND_TIMEOUT_MS });
  redis.on('error', () => undefined); // each failed command says what went wrong
  const client = new FleetClient(redis, config.queuePrefix);
  try {
    return await fn(client, config);
  } catch (err) {
    if (err instanceof Error && /Command timed out/.test(err.message)) {
      throw new FleetError('REDIS_UNAVAILABLE', redisNotAnsweringMessage(config.redisUrl, CLI_COMMAND_TIMEOUT_MS, 'a command'), { cause: err });
    }
    throw err;
  } finally {
    await client.close();
    redis.disconnect();
  }
}

/** `'  ! no worker serves role …'` for a run with phases queued to a role no pool serves, else `''`. */
export function unservedNote(result: Pick<RunResult, 'unserved'>): string {
  const roles = [...new Set((result.unserved ?? []).map((u) => u.role))];
  return roles.length > 0 ? `  ! no worker serves role ${roles.join(', ')}: start \`fleet agents --roles ${roles.join(',')}\`` : '';
}
