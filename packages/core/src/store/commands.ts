/**
 * The run store's Redis scripts, BullMQ's way: each is a file `commands/<name>-<numKeys>.lua` whose
 * header lists its KEYS and ARGV, read once per process and defined once per connection (ioredis
 * `defineCommand`: EVALSHA, falling back to EVAL). {@link commandError} turns every outcome code a
 * script returns into the error a caller sees, with one message per code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { FleetError } from '../errors.js';
import { ON_RUN_FINISHED_LUA, ON_RUN_REOPENED_LUA, RETAIN_FUNCTION_LUA } from './retention.js';

/**
 * Where the scripts are: beside this file in the sources; the compiled file (`dist/store/`) reads
 * them from the same sources folder, so nothing has to be copied at build time.
 */
const COMMANDS_DIR = fileURLToPath(new URL('../../src/store/commands/', import.meta.url));

/** Every script of the store: its file name (without `.lua`) and how many of its arguments are keys. */
export const STORE_COMMANDS = {
  applyDecision: { file: 'apply-decision-7', keys: 7 },
  clearOutbox: { file: 'clear-outbox-2', keys: 2 },
  claimDue: { file: 'claim-due-1', keys: 1 },
  reserveBudget: { file: 'reserve-budget-1', keys: 1 },
  settleBudget: { file: 'settle-budget-1', keys: 1 },
  admitRun: { file: 'admit-run-4', keys: 4 },
  releaseConcurrency: { file: 'release-concurrency-3', keys: 3 },
  fairPriority: { file: 'fair-priority-1', keys: 1 },
  decideFire: { file: 'decide-fire-3', keys: 3 },
  scanRunIndex: { file: 'scan-run-index-1', keys: 1 },
} as const;

export type StoreCommandName = keyof typeof STORE_COMMANDS;

/**
 * After outbox entries were dropped: the run leaves the outboxes set when none is left, else it stays
 * aged from now (what is left was written after the reconciler read the outbox). Expects KEYS[1] the
 * run's outbox hash, KEYS[2] the outboxes zset, ARGV[1] the run id, ARGV[2] now (epoch ms); sets `left`.
 */
const OUTBOX_LEFT_LUA = `
local left = redis.call('HLEN', KEYS[1])
if left == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end`;

/** The number of keys of BullMQ's `addPrioritizedJob` script (its file is `addPrioritizedJob-9.lua`). */
export const BULLMQ_ADD_PRIORITIZED_JOB_KEYS = 9;

/**
 * BullMQ's own `addPrioritizedJob-9` script, as the installed BullMQ ships it (its includes already
 * expanded), wrapped as a Lua function `bullmqAddPrioritizedJob(KEYS, ARGV)`: the parameters shadow
 * the script's globals, so it runs unchanged inside another script. The commit (`apply-decision-7`)
 * adds the decision's phase jobs with it, so a phase job is written in the same atomic step as the
 * state that queues it. Its KEYS are the queue's (../engine/phase-job.ts `phaseJobAddArguments`),
 * its packed arguments and options are packed by the commit as `Job#addJob` packs them (a test
 * compares the stored job with `queue.add`'s); a BullMQ whose script has another name or key count
 * fails here, at load.
 * @see https://github.com/taskforcesh/bullmq/blob/master/src/commands/addPrioritizedJob-9.lua
 */
function bullmqAddPrioritizedJobLua(): string {
  const script = (createRequire(import.meta.url)('bullmq/dist/cjs/scripts/addPrioritizedJob-9.js') as { addPrioritizedJob?: { content?: unknown; keys?: unknown } }).addPrioritizedJob;
  if (typeof script?.content !== 'string' || script.keys !== BULLMQ_ADD_PRIORITIZED_JOB_KEYS) {
    throw new Error(`the installed bullmq has no addPrioritizedJob script with ${BULLMQ_ADD_PRIORITIZED_JOB_KEYS} keys (bullmq/dist/cjs/scripts/addPrioritizedJob-9.js); AgentFleet's commit adds phase jobs with it`);
  }
  return `local function bullmqAddPrioritizedJob(KEYS, ARGV)\n${script.content}\nend`;
}

/**
 * Lua shared between scripts, included where a script has a line `-- @include <name>`: a file
 * `commands/includes/<name>.lua` (the fair priority, used by `fair-priority-1` and the commit), or
 * one of these, built in code: the outboxes set's update by the outbox clear, the retention rules of
 * a finished run (./retention.ts, used by the commit and the archive's scripts alike), and BullMQ's
 * job add.
 */
const INCLUDES: Record<string, () => string> = {
  'outbox-left': () => OUTBOX_LEFT_LUA,
  'retention-functions': () => RETAIN_FUNCTION_LUA,
  'retention-on-finished': () => ON_RUN_FINISHED_LUA,
  'retention-on-reopened': () => ON_RUN_REOPENED_LUA,
  'bullmq-add-prioritized-job': bullmqAddPrioritizedJobLua,
};

/** The text of an include: built in code, else the file `includes/<name>.lua`; undefined when neither. */
function includeSource(name: string): string | undefined {
  const built = INCLUDES[name];
  if (built) return built();
  const file = `${COMMANDS_DIR}includes/${name}.lua`;
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

const sources = new Map<StoreCommandName, string>();

/**
 * The text of a store script (read once per process), its `-- @include` lines replaced.
 * @throws Error naming the script and the include when an include is unknown.
 */
export function commandSource(name: StoreCommandName): string {
  let lua = sources.get(name);
  if (lua === undefined) {
    const file = STORE_COMMANDS[name].file;
    lua = readFileSync(`${COMMANDS_DIR}${file}.lua`, 'utf8').replace(/^[ \t]*-- @include ([\w-]+)[ \t]*$/gm, (_line, include: string) => {
      const text = includeSource(include);
      if (text === undefined) throw new Error(`store script ${file}.lua includes "${include}", which is neither commands/includes/${include}.lua nor one of ${Object.keys(INCLUDES).join(', ')}`);
      return text;
    });
    sources.set(name, lua);
  }
  return lua;
}

/**
 * A store script as a function on `redis`, defined once per connection, bound and typed by the caller.
 * The command is named `fleet<Name>` (e.g. `fleetApplyDecision`).
 */
export function storeCommand<F extends (...args: string[]) => Promise<unknown>>(redis: Redis, name: StoreCommandName): F {
  const commandName = `fleet${name[0]?.toUpperCase() ?? ''}${name.slice(1)}`;
  const commands = redis as unknown as Record<string, F | undefined>;
  if (!commands[commandName]) redis.defineCommand(commandName, { numberOfKeys: STORE_COMMANDS[name].keys, lua: commandSource(name) });
  return (commands[commandName] as F).bind(redis) as F;
}

/**
 * The error for a script's outcome code, or undefined when the code means success (1) or a lost
 * race the caller retries (0, `applyDecision` only).
 *
 * @param runId - the run the script ran on, named in the message.
 */
export function commandError(name: StoreCommandName, code: number, runId: string): FleetError | undefined {
  switch (name) {
    case 'applyDecision':
      if (code === -1) return new FleetError('RUN_NOT_FOUND', `run "${runId}" disappeared while being updated`);
      if (code === 0 || code === 1) return undefined;
      return new FleetError('INTERNAL', `run "${runId}": the commit script answered an unknown code ${code}`);
    case 'admitRun':
      if (code === -1) return new FleetError('RUN_NOT_FOUND', `run "${runId}" disappeared before it was admitted`);
      return undefined;
    case 'clearOutbox':
    case 'claimDue':
    case 'reserveBudget':
    case 'settleBudget':
    case 'releaseConcurrency':
    case 'fairPriority':
    case 'decideFire':
    case 'scanRunIndex':
      return undefined;
  }
}
