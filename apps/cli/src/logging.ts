/**
 * How `fleet` commands log: short human lines on stderr, each warning once (the default), or JSON
 * log lines for a log pipeline with `--log-json`, `FLEET_LOG_FORMAT=json` (the container image's
 * setting) or `FLEET_LOG_LEVEL=debug`/`trace`.
 */
import { FleetError, createLogger, routeConsoleWarnings, setLogFormat, type FleetLogger, type LogFormat } from '@agentfleet/core';
import type { Command } from 'commander';

/**
 * The log format a command runs with.
 *
 * @param logJson - `--log-json` was given.
 * @throws FleetError `INVALID_INPUT` when `FLEET_LOG_FORMAT` is neither `json` nor `human`.
 */
export function logFormatFor(logJson: boolean, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const asked = env.FLEET_LOG_FORMAT?.trim().toLowerCase();
  if (asked !== undefined && asked !== '' && asked !== 'json' && asked !== 'human') {
    throw new FleetError('INVALID_INPUT', `FLEET_LOG_FORMAT must be "json" or "human", got "${env.FLEET_LOG_FORMAT}"`);
  }
  const level = env.FLEET_LOG_LEVEL?.trim().toLowerCase();
  if (logJson || asked === 'json' || level === 'debug' || level === 'trace') return 'json';
  return 'human';
}

/**
 * Set the format for every logger this process creates from now on, and route `console.warn`
 * (BullMQ's warnings) the same way, each distinct warning once.
 */
export function configureLogging(format: LogFormat): void {
  setLogFormat(format);
  let json: FleetLogger | undefined;
  routeConsoleWarnings(format === 'json' ? (m) => (json ??= createLogger({ name: 'fleet' })).warn(m) : undefined);
}

/** Every command under `command`, depth first. */
function descendants(command: Command): Command[] {
  return command.commands.flatMap((c) => [c, ...descendants(c)]);
}

/**
 * Add `--log-json` to every command of `program` and set the log format before each action runs.
 * Call once all commands are registered.
 */
export function logOptions(program: Command): void {
  for (const command of descendants(program)) {
    command.option('--log-json', 'log lines as JSON on stderr (default: short human lines, each warning once; also FLEET_LOG_FORMAT=json)', false);
  }
  program.hook('preAction', (_root, action) => {
    configureLogging(logFormatFor(action.opts<{ logJson?: boolean }>().logJson === true));
  });
}
