/**
 * `fleet watch <run_id>`: draw a run's progress (the same lines as `fleet run`) until it ends, then a
 * one-line summary; exit 0 when the run completed, 1 otherwise. Reads the run's events from Redis
 * (`REDIS_URL`), or, with `--manager-url` (or `FLEET_MANAGER_URL`), from the manager's SSE stream;
 * with `--stream` (through the manager) also the running phase's output as it is written.
 */
import { Option, type Command } from 'commander';
import { FleetError, type RunResult } from '@agentfleet/core';
import { followRun, withFollower } from '../follow.js';
import { wantsLiveProgress } from '../progress.js';
import { EXIT, say } from '../shared.js';
import { clientOptions, watchRun } from './submit.js';

export function register(program: Command): void {
  program
    .command('watch')
    .description("follow a run's progress live, from Redis, or through the manager HTTP API (Server-Sent Events) with --manager-url")
    .argument('<run_id>')
    .option('--json', 'print the result JSON on stdout at the end', false)
    .option('--stream', 'with --manager-url: also print the output of the phase in progress on stderr as the model writes it', false)
    .addOption(new Option('--manager-url <url>', 'follow through this manager HTTP API instead of Redis').env('FLEET_MANAGER_URL'))
    .addOption(new Option('--api-key <key>', 'API key for the manager HTTP API').env('FLEET_API_KEY'))
    .action(async (runId: string, opts: { json: boolean; stream: boolean; managerUrl?: string; apiKey?: string }) => {
      if (opts.stream && !opts.managerUrl) throw new FleetError('INVALID_INPUT', '--stream follows the output through the manager HTTP API: give --manager-url (or FLEET_MANAGER_URL)');
      const result: RunResult = opts.managerUrl
        ? await watchRun(clientOptions({ managerUrl: opts.managerUrl, ...(opts.apiKey ? { apiKey: opts.apiKey } : {}) }), runId, { stream: opts.stream, live: wantsLiveProgress(opts.json) })
        : await withFollower(async (client, blocking) => {
            // A run id that does not exist fails here, naming it, before anything is drawn.
            await client.store.getRun(runId);
            return followRun(client, blocking, runId, { json: opts.json });
          });
      if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      else say(`run ${result.run_id} ${result.status} (${result.workflow.name} v${result.workflow.version}, ${(result.duration_ms / 1000).toFixed(1)}s)`);
      process.exitCode = result.status === 'completed' ? EXIT.ok : EXIT.failed;
    });
}
