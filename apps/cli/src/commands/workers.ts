/**
 * `fleet workers`: per agent role, the processes serving it, their concurrency, busy slots, waiting
 * jobs and the age of the oldest waiting job — what to look at before scaling a pool.
 *
 * Processes come from BullMQ (`Queue.getWorkers()`: the workers connected to the role's queue);
 * concurrency from the pools' heartbeats (`<prefix>:pools`, see `startPoolHeartbeat`); busy slots,
 * waiting and delayed jobs from the queue's counts. A role whose jobs wait with no live pool is
 * marked with the command that starts one.
 */
import { BUILTIN_ROLES } from '@agentfleet/agents';
import { assertRedisReachable, createRedis, loadConfig, readRoleQueueStats, type RoleQueueStats } from '@agentfleet/core';
import type { Command } from 'commander';
import { CLI_COMMAND_TIMEOUT_MS } from '../shared.js';

/** One row of `fleet workers`. */
export type WorkerRow = RoleQueueStats;

/** Read the rows for every built-in role, every role a live pool announced and every role with a queue. */
export async function readWorkerRows(redisUrl: string, prefix: string, now = Date.now()): Promise<WorkerRow[]> {
  // Bounded like the other short commands: a Redis that stops answering fails the read (see withClient).
  const redis = createRedis(redisUrl, { name: 'fleet-workers', commandTimeoutMs: CLI_COMMAND_TIMEOUT_MS });
  redis.on('error', () => undefined);
  try {
    return await readRoleQueueStats(redis, prefix, Object.keys(BUILTIN_ROLES), now);
  } finally {
    redis.disconnect();
  }
}

/** The rows as an aligned text table. */
export function formatWorkerRows(rows: readonly WorkerRow[]): string {
  const header = ['ROLE', 'PROCESSES', 'CONCURRENCY', 'BUSY', 'WAITING', 'DELAYED', 'OLDEST WAIT', 'NOTE'];
  const cells = rows.map((r) => [r.role, String(r.processes), String(r.concurrency), `${r.busy}/${r.concurrency}`, String(r.waiting), String(r.delayed), `${r.oldest_wait_s.toFixed(1)}s`, r.unserved ? `! ${r.unserved}` : '']);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) => c.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...cells.map(line)].join('\n') + '\n';
}

/** Add `fleet workers` to the program. */
export function register(program: Command): void {
  program
    .command('workers')
    .description('per agent role: processes, concurrency, busy slots, waiting jobs, oldest wait')
    .option('--json', 'print the rows as JSON', false)
    .action(async (opts: { json: boolean }) => {
      const config = loadConfig();
      await assertRedisReachable(config.redisUrl);
      const rows = await readWorkerRows(config.redisUrl, config.queuePrefix);
      process.stdout.write(opts.json ? JSON.stringify(rows, null, 2) + '\n' : formatWorkerRows(rows));
    });
}
