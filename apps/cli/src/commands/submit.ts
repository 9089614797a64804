/**
 * `fleet submit "<requirements>" --manager-url URL [--wait]`: start a run through the manager's HTTP
 * API. Prints the run id (stdout); with `--wait`, draws progress from the run's SSE stream on stderr
 * and prints the result JSON, exiting 0 when the run completed and 1 otherwise.
 */
import { readFile } from 'node:fs/promises';
import { FleetError, type RunResult } from '@agentfleet/core';
import { Option, type Command } from 'commander';
import { apiRequest, followRunEvents, type ApiClientOptions } from '../api-client.js';
import { PhaseOutputPrinter } from '../output-stream.js';
import { progressDisplay } from '../progress.js';
import { EXIT, budgetOptions, parseVars, positiveInt, say } from '../shared.js';

/** `--manager-url` (default `FLEET_MANAGER_URL`) and `--api-key` (default `FLEET_API_KEY`). */
export function apiOptions(command: Command): Command {
  return command
    .addOption(new Option('--manager-url <url>', 'base URL of the manager HTTP API').env('FLEET_MANAGER_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--api-key <key>', 'API key for the manager HTTP API').env('FLEET_API_KEY'));
}

export function clientOptions(opts: { managerUrl: string; apiKey?: string }): ApiClientOptions {
  try {
    new URL(opts.managerUrl);
  } catch {
    throw new FleetError('INVALID_INPUT', `--manager-url "${opts.managerUrl}" is not a URL; e.g. http://127.0.0.1:8080`);
  }
  return { managerUrl: opts.managerUrl, apiKey: opts.apiKey };
}

/**
 * Follow a run over SSE, drawing progress on stderr (with a live status on a terminal when `live`,
 * and with `stream` the running phases' output as it is written instead); then fetch and return its
 * result.
 */
export async function watchRun(api: ApiClientOptions, runId: string, options: { stream?: boolean; live?: boolean } = {}): Promise<RunResult> {
  const printer = options.stream ? new PhaseOutputPrinter(process.stderr) : undefined;
  // The live status redraws lines under the output: with the output streamed, plain lines only.
  const display = progressDisplay({ runId: () => runId, live: (options.live ?? false) && !printer });
  try {
    await followRunEvents(
      api,
      runId,
      (e) => {
        printer?.breakLine();
        display.event(e.event);
      },
      printer ? (delta) => printer.show(delta) : undefined,
    );
  } finally {
    display.close();
    printer?.breakLine();
  }
  return apiRequest<RunResult>(api, 'GET', `/api/runs/${encodeURIComponent(runId)}`);
}

export function register(program: Command): void {
  apiOptions(
    budgetOptions(program
      .command('submit')
      .description('start a run through the manager HTTP API (fleet manager --port)')
      .argument('[requirements...]', 'what to build, in plain language (or use --file)')
      .option('-w, --workflow <name>', 'template or built-in workflow name', 'software-delivery')
      .option('-f, --file <path>', 'read the requirements from a file')
      .option('--var <key=value>', 'a workflow variable (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
      .option('--conversation <id>', 'conversation id: at most one active run per conversation')
      .option('--priority <n>', 'run priority, 1 (least urgent) .. 10 (most urgent); overrides the workflow\'s (default 5)', positiveInt('--priority'))
      .option('--concurrency-key <template>', 'concurrency key, e.g. "{{tenant}}" (a template over the variables); overrides the workflow\'s')
      .option('--concurrency-limit <n>', 'at most this many runs of the key active at once; the rest are queued', positiveInt('--concurrency-limit'))
      .option('--idempotency-key <key>', 'retry safely: a repeat with this key within 24 h prints the first run instead of starting another')
      .option('--wait', 'follow the run until it finishes and print its result JSON', false)
      .option('--stream', 'with --wait: print the output of the phase in progress on stderr as the model writes it', false)),
  ).action(async (words: string[], opts: { workflow: string; file?: string; var: string[]; conversation?: string; idempotencyKey?: string; wait: boolean; stream: boolean; managerUrl: string; apiKey?: string; maxCostUsd?: number; maxTokensBudget?: number; onBudgetExceed?: 'fail' | 'wait'; priority?: number; concurrencyKey?: string; concurrencyLimit?: number }) => {
    if (opts.stream && !opts.wait) throw new FleetError('INVALID_INPUT', '--stream needs --wait: fleet submit --wait --stream "..."');
    let requirements = words.join(' ');
    if (opts.file) {
      if (requirements) throw new FleetError('INVALID_INPUT', 'give the requirements either as arguments or with --file, not both');
      requirements = await readFile(opts.file, 'utf8').catch((err: Error) => {
        throw new FleetError('INVALID_INPUT', `--file: cannot read ${opts.file}: ${err.message}`);
      });
    }
    if (!requirements.trim()) throw new FleetError('INVALID_INPUT', 'no requirements given: fleet submit "Build a REST API for ..." --manager-url http://host:8080');
    if (opts.concurrencyLimit !== undefined && opts.concurrencyKey === undefined) {
      throw new FleetError('INVALID_INPUT', '--concurrency-limit needs --concurrency-key (e.g. --concurrency-key "{{tenant}}" --var tenant=acme)');
    }
    const api = clientOptions(opts);
    const created = await apiRequest<{ run_id: string; status: string; workflow: { name: string; version: string } }>(api, 'POST', '/api/runs', {
      requirements,
      template: opts.workflow,
      variables: parseVars(opts.var),
      ...(opts.conversation ? { conversation_id: opts.conversation } : {}),
      ...(opts.maxCostUsd !== undefined || opts.maxTokensBudget !== undefined || opts.onBudgetExceed !== undefined
        ? { budget: { max_cost_usd: opts.maxCostUsd, max_tokens: opts.maxTokensBudget, on_exceed: opts.onBudgetExceed } }
        : {}),
      ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
      ...(opts.concurrencyKey !== undefined ? { concurrency: { key: opts.concurrencyKey, ...(opts.concurrencyLimit !== undefined ? { limit: opts.concurrencyLimit } : {}) } } : {}),
    }, opts.idempotencyKey !== undefined ? { 'idempotency-key': opts.idempotencyKey } : {});
    say(`run ${created.run_id}: ${created.workflow.name} v${created.workflow.version}${created.status === 'queued' ? ' (queued: its concurrency key is at its limit)' : ''}`);
    if (!opts.wait) {
      process.stdout.write(`${created.run_id}\n`);
      return;
    }
    const result = await watchRun(api, created.run_id, { stream: opts.stream });
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    process.exitCode = result.status === 'completed' ? EXIT.ok : EXIT.failed;
  });
}
