/**
 * Run history housekeeping:
 *
 *   fleet runs purge --older-than 30d [--status failed]   remove finished runs from Redis and the archive
 */
import { FleetError, parseDuration } from '@agentfleet/core';
import { openHistoryStore, purgeRuns } from '@agentfleet/manager';
import { Option, type Command } from 'commander';
import { say, withClient } from '../shared.js';

export function register(program: Command): void {
  const runs = program.command('runs').description('run history housekeeping');
  runs
    .command('purge')
    .description('remove runs that finished before a cutoff from Redis and, with FLEET_HISTORY_URL, from the PostgreSQL archive')
    .requiredOption('--older-than <duration>', 'finished longer ago than this: 30d, 12h, 90s')
    .addOption(new Option('--status <status>', 'only runs of this status').choices(['completed', 'failed', 'cancelled']))
    .action(async (opts: { olderThan: string; status?: 'completed' | 'failed' | 'cancelled' }) => {
      const olderThanMs = parseDuration(opts.olderThan, '--older-than');
      if (olderThanMs <= 0) throw new FleetError('INVALID_INPUT', '--older-than must be more than 0, e.g. 30d');
      const removed = await withClient(async (client, config) => {
        const history = config.historyUrl ? await openHistoryStore({ url: config.historyUrl, schema: config.historySchema }) : undefined;
        try {
          return await purgeRuns(client.store, history, { finishedBefore: Date.now() - olderThanMs, status: opts.status });
        } finally {
          await history?.close();
        }
      });
      say(`purged ${removed.redis} run(s) from Redis${process.env.FLEET_HISTORY_URL ? `, ${removed.archive} from the archive` : ''}`);
    });
}
