/**
 * `fleet watch <run_id> [--manager-url URL]`: draw a run's progress from the manager's SSE stream
 * (the same lines as `fleet run`; with `--stream` also the running phase's output as it is written),
 * then a one-line summary. Exit 0 when the run completed, 1 otherwise.
 */
import type { Command } from 'commander';
import { EXIT, say } from '../shared.js';
import { apiOptions, clientOptions, watchRun } from './submit.js';

export function register(program: Command): void {
  apiOptions(
    program
      .command('watch')
      .description("follow a run's progress live through the manager HTTP API (Server-Sent Events)")
      .argument('<run_id>')
      .option('--json', 'print the result JSON on stdout at the end', false)
      .option('--stream', 'also print the output of the phase in progress on stderr as the model writes it', false),
  ).action(async (runId: string, opts: { json: boolean; stream: boolean; managerUrl: string; apiKey?: string }) => {
    const result = await watchRun(clientOptions(opts), runId, { stream: opts.stream });
    if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else say(`run ${result.run_id} ${result.status} (${result.workflow.name} v${result.workflow.version}, ${(result.duration_ms / 1000).toFixed(1)}s)`);
    process.exitCode = result.status === 'completed' ? EXIT.ok : EXIT.failed;
  });
}
