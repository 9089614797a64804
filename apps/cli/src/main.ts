/**
 * The `fleet` command.
 *
 *   fleet run "<requirements>"        run a workflow end to end (manager + pools in this process)
 *   fleet manager                     run the manager alone
 *   fleet agents --roles a,b          run agent pools for these roles
 *   fleet status [run_id]             a run's result, or the latest runs
 *   fleet cancel <run_id>             cancel a run
 *   fleet workflows list|show|validate|add|search|suggest|export|import|webhook-secret
 *   fleet triggers add|list|show|remove|fire   inbound triggers: POST /api/triggers/<name> starts a run
 *   fleet patterns [suggest <n>]       recurring sequences in the run history, as workflows
 *   fleet roles add|list|show|remove   custom agent roles (YAML: instructions + output JSON Schema)
 *   fleet schedules add|list|show|pause|resume|remove|trigger   runs that start themselves (cron or interval)
 *   fleet test <workflow> --replies r.yaml [--expect e.yaml]   scripted agents on a private Redis
 *   fleet submit "<requirements>" --manager-url URL [--wait] [--idempotency-key K]   (HTTP API)
 *   fleet watch <run_id> [--manager-url URL]   follow a run from Redis (or the HTTP API)
 *   fleet resume <run_id> [--follow], fleet rerun <run_id> --from <phase> [--follow]
 *
 * Exit status: 0 success, 1 a run failed or was cancelled, 2 bad input or usage. Every command takes
 * `--log-json` (JSON log lines instead of short human ones; logging.ts).
 */
import { readFile } from 'node:fs/promises';
import { agentPoolSettings, createLlmClient, startAgentPool, startToolPool } from '@agentfleet/agents';
import { FleetError, RunLabelStore, TOOLS_ROLE, assertRedisReachable, createAnthropicBatches, createRedis, isRedisOutOfMemory, loadConfig, redisOutOfMemoryError, setDefaultLogLevel } from '@agentfleet/core';
import { startTelemetry } from '@agentfleet/host';
import { openHistoryStore, resolveHttpApiOptions, startHttpApi, startManager } from '@agentfleet/manager';
import { Command, CommanderError, Option } from 'commander';
import { metricsPortOption, sayMetrics } from './metrics-flag.js';
import { runCommand } from './run.js';
import { register as registerWorkers } from './commands/workers.js';
import { register as registerRunControl } from './commands/run-control.js';
import { register as registerRuns } from './commands/runs.js';
import { register as registerSubmit } from './commands/submit.js';
import { register as registerWatch } from './commands/watch.js';
import { register as registerPatterns } from './commands/patterns.js';
import { register as registerAnalytics } from './commands/analytics.js';
import { register as registerRoles } from './commands/roles.js';
import { register as registerSchedules } from './commands/schedules.js';
import { register as registerTest } from './commands/test.js';
import { register as registerTriggers } from './commands/triggers.js';
import { listWorkflowLines, register as registerWorkflows, showWorkflow } from './commands/workflows.js';
import { startupErrorLine } from './startup-error.js';
import { logOptions } from './logging.js';
import { validateWorkflowRef } from './workflow-library.js';
import { EXIT, budgetOptions, parseVars, positiveInt, requestBudget, resolveRoles, say, unservedNote, untilSignal, withClient } from './shared.js';

const program = new Command()
  .name('fleet')
  .description('AgentFleet: run workflows of LLM agents over BullMQ and Redis.')
  .version('0.1.0')
  .exitOverride()
  // An option belongs to the command it follows: `fleet patterns suggest 1 --min-frequency 1` gives
  // the threshold to `suggest`, not to `patterns`, which has the same option.
  .enablePositionalOptions()
  .showHelpAfterError('(run with --help for usage)');

budgetOptions(program
  .command('run')
  .description('run a workflow on requirements, with the manager and agent pools in this process')
  .argument('[requirements...]', 'what to build, in plain language (or use --file)')
  .option('-w, --workflow <name|file>', 'built-in workflow name or a .yaml/.json file', 'software-delivery')
  .option('-f, --file <path>', 'read the requirements from a file')
  .option('--var <key=value>', 'a workflow variable (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--json', 'print only the result JSON on stdout (progress stays on stderr)', false)
  .option('-o, --out <dir>', 'where to write artifacts (default runs/<run_id>)')
  .option('--no-local-workers', 'only submit and follow: the manager and pools run elsewhere')
  .option('-i, --interactive', "answer the planner's clarifying questions and approvals in the terminal", false)
  .option('--record <cassette>', 'append every model request and reply to this file (JSON lines, keys redacted) for fleet test --replay')
  .option('--batch', "send every agent phase's model calls through the Message Batches API: half price, results within hours (docs/spending.md)", false)
  .option('--stream', 'print the output of the phase in progress on stderr as the model writes it (the coder\'s files as they are written)', false)
  .option('--console', "serve the browser console from this process until the run ends and print the run's console URL (opens nothing itself)", false)
  .addOption(new Option('--port <n>', 'with --console: the port it listens on (default: a free one)').argParser(positiveInt('--port')))
  .addOption(new Option('--host <address>', 'with --console: the interface it listens on (default: 127.0.0.1, or FLEET_HTTP_HOST)'))
  .addOption(new Option('-c, --concurrency <n>', 'jobs in flight per role in this process').argParser(positiveInt('--concurrency')).default(4)))
  .action(async (words: string[], opts: { workflow: string; file?: string; var: string[]; json: boolean; out?: string; localWorkers: boolean; concurrency: number; interactive: boolean; maxCostUsd?: number; maxTokensBudget?: number; onBudgetExceed?: 'fail' | 'wait'; record?: string; batch: boolean; stream: boolean; console: boolean; port?: number; host?: string }) => {
    setDefaultLogLevel('warn'); // stderr is the progress display: only warnings and errors as JSON logs
    if (!opts.console && (opts.port !== undefined || opts.host !== undefined)) {
      throw new FleetError('INVALID_INPUT', `${opts.port !== undefined ? '--port' : '--host'} says where the console listens: add --console (fleet run "…" --console --port 8080)`);
    }
    const config = loadConfig();
    let requirements = words.join(' ');
    if (opts.file) {
      if (requirements) throw new FleetError('INVALID_INPUT', 'give the requirements either as arguments or with --file, not both');
      requirements = await readFile(opts.file, 'utf8').catch((err: Error) => {
        throw new FleetError('INVALID_INPUT', `--file: cannot read ${opts.file}: ${err.message}`);
      });
    }
    if (!requirements.trim()) throw new FleetError('INVALID_INPUT', 'no requirements given: fleet run "Build a REST API for ..." (or --file requirements.md)');
    process.exitCode = await runCommand(
      requirements,
      {
        workflow: opts.workflow,
        vars: { ...parseVars(opts.var), ...(opts.interactive ? { interactive: 'true' } : {}) },
        json: opts.json,
        out: opts.out,
        localWorkers: opts.localWorkers,
        concurrency: opts.concurrency,
        interactive: opts.interactive,
        budget: requestBudget(opts),
        batch: opts.batch,
        record: opts.record,
        stream: opts.stream,
        ...(opts.console ? { console: { port: opts.port ?? 0, ...(opts.host ? { host: opts.host } : {}) } } : {}),
      },
      config,
    );
  });

program
  .command('manager')
  .description('run the manager alone (consumes run events, schedules phases)')
  .addOption(new Option('-c, --concurrency <n>', 'run events processed at once').argParser(positiveInt('--concurrency')).default(16))
  .addOption(new Option('--lock-duration <ms>', 'BullMQ lock of a run event being processed; a crashed manager\'s events are taken over after it').argParser(positiveInt('--lock-duration')).default(30_000))
  .addOption(new Option('--stalled-interval <ms>', 'how often run events held by a crashed manager are looked for').argParser(positiveInt('--stalled-interval')).default(30_000))
  .addOption(metricsPortOption())
  .addOption(new Option('--port <n>', 'also serve the HTTP API on this port (default: no HTTP API)').env('FLEET_HTTP_PORT').argParser(positiveInt('--port')))
  .addOption(new Option('--host <address>', 'interface the HTTP API listens on (default: 127.0.0.1, or 0.0.0.0 inside a container)').env('FLEET_HTTP_HOST'))
  .action(async (opts: { concurrency: number; lockDuration: number; stalledInterval: number; metricsPort?: number; port?: number; host?: string }) => {
    const config = loadConfig();
    // API keys are checked before anything starts: a bad one stops the process, not just its API.
    if (opts.port) resolveHttpApiOptions({ redisUrl: config.redisUrl, prefix: config.queuePrefix, port: opts.port });
    await assertRedisReachable(config.redisUrl);
    const telemetry = await startTelemetry({ serviceName: 'agentfleet-manager', metricsPort: opts.metricsPort ?? config.metricsPort });
    sayMetrics('manager', telemetry);
    // The run archive, when FLEET_HISTORY_URL is set: migrations are applied here, before anything is archived.
    const history = config.historyUrl ? await openHistoryStore({ url: config.historyUrl, schema: config.historySchema }) : undefined;
    // The HTTP API listens first: a busy port stops the process before the manager takes any work.
    const http = opts.port
      ? await startHttpApi({ redisUrl: config.redisUrl, prefix: config.queuePrefix, port: opts.port, ...(opts.host ? { host: opts.host } : {}), provider: config.provider, ...(history ? { history } : {}) })
      : undefined;
    const manager = await startManager({
      redisUrl: config.redisUrl,
      prefix: config.queuePrefix,
      concurrency: opts.concurrency,
      lockDurationMs: opts.lockDuration,
      stalledIntervalMs: opts.stalledInterval,
      runRetentionMs: config.runRetentionMs,
      ...(history ? { history } : {}),
      batches: createAnthropicBatches(config),
      batchPollMs: config.batchPollMs,
    });
    say(`manager: consuming ${config.queuePrefix}:manager (concurrency ${opts.concurrency}); ${history ? 'archiving finished runs to PostgreSQL; ' : ''}Ctrl-C to stop`);
    if (http) say(`manager: HTTP API listening on ${http.listening}${/^(0\.0\.0\.0|\[::\]):/.test(http.listening) ? ' (every interface)' : ''}, ${http.url} (docs ${http.url}/docs)${process.env.FLEET_ADMIN_KEY ? '' : '; note: FLEET_ADMIN_KEY is not set, so nothing can be managed'}`);
    const signal = await untilSignal();
    say(`manager: ${signal}, stopping`);
    await http?.close();
    // Bounded: with Redis unreachable, closing would wait for it forever. Reports being handled are
    // taken over by another manager once their lock expires (--lock-duration).
    await Promise.race([manager.close(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    await history?.close();
    await telemetry.shutdown();
    process.exit(process.exitCode ?? 0);
  });

program
  .command('agents')
  .description('run agent worker pools for some roles in this process')
  .requiredOption('-r, --roles <list>', 'comma-separated roles, e.g. planner,designer,coder,reviewer')
  .addOption(new Option('-c, --concurrency <n>', 'jobs in flight per role').argParser(positiveInt('--concurrency')).default(4))
  .addOption(new Option('--grace <seconds>', 'on SIGTERM, wait this long for jobs in flight').argParser(positiveInt('--grace')).default(30))
  .addOption(new Option('--lock-duration <ms>', 'BullMQ job lock; a job whose worker died is taken over after it').argParser(positiveInt('--lock-duration')).default(30_000))
  .addOption(new Option('--stalled-interval <ms>', 'how often jobs of dead workers are looked for').argParser(positiveInt('--stalled-interval')).default(30_000))
  .addOption(metricsPortOption())
  .action(async (opts: { roles: string; concurrency: number; grace: number; lockDuration: number; stalledInterval: number; metricsPort?: number }) => {
    const config = loadConfig();
    const names = opts.roles.split(',').map((r) => r.trim()).filter(Boolean);
    await assertRedisReachable(config.redisUrl);
    // `tools` is the pool that runs tool phases (apps/agents/src/tools), not an LLM role. Roles
    // registered with `fleet roles add` are read from Redis once, at start.
    const lookup = createRedis(config.redisUrl, { name: 'fleet-agents-roles' });
    const roles = await resolveRoles(names.filter((r) => r !== TOOLS_ROLE), { redis: lookup, prefix: config.queuePrefix }).finally(() => lookup.disconnect());
    const telemetry = await startTelemetry({ serviceName: 'agentfleet-agents', metricsPort: opts.metricsPort ?? config.metricsPort });
    sayMetrics('agents', telemetry);
    const tools = names.includes(TOOLS_ROLE)
      ? await startToolPool({ redisUrl: config.redisUrl, prefix: config.queuePrefix, concurrency: opts.concurrency, lockDurationMs: opts.lockDuration, stalledIntervalMs: opts.stalledInterval })
      : undefined;
    const pool = await startAgentPool({
      redisUrl: config.redisUrl,
      prefix: config.queuePrefix,
      roles,
      concurrency: opts.concurrency,
      llm: createLlmClient(config, roles),
      ...agentPoolSettings(config, roles),
      maxTokens: config.maxTokens,
      lockDurationMs: opts.lockDuration,
      stalledIntervalMs: opts.stalledInterval,
    });
    say(`agents: serving ${[...pool.roles, ...(tools ? [`tools (${tools.tools.join(', ')})`] : [])].join(', ')} (concurrency ${opts.concurrency} each, ${config.provider === 'offline' ? 'offline model' : `anthropic ${config.model}`}); Ctrl-C to stop`);
    const signal = await untilSignal();
    say(`agents: ${signal}, finishing jobs in flight (up to ${opts.grace}s)`);
    await Promise.all([pool.close(opts.grace * 1000), tools?.close(opts.grace * 1000)]);
    await telemetry.shutdown();
    // A job abandoned at the end of the grace period (Redis gone, LLM call hanging) may still hold
    // sockets; its lock expires and another worker takes it over, so exit now rather than wait.
    process.exit(process.exitCode ?? 0);
  });

program
  .command('status')
  .description("print a run's result JSON, or list the latest runs (with FLEET_HISTORY_URL: archived runs too)")
  .argument('[run_id]')
  .addOption(new Option('--status <status>', 'only runs of this status').choices(['created', 'queued', 'active', 'waiting', 'completed', 'failed', 'cancelled']))
  .option('--workflow <name>', 'only runs of this workflow')
  .option('--schedule <name>', 'only runs started by this schedule')
  .addOption(new Option('-n, --limit <n>', 'how many runs to list').argParser(positiveInt('--limit')).default(20))
  .action(async (runId: string | undefined, opts: { status?: string; workflow?: string; schedule?: string; limit: number }) => {
    await withClient(async (client, config) => {
      const history = config.historyUrl ? await openHistoryStore({ url: config.historyUrl, schema: config.historySchema }) : undefined;
      try {
        if (runId) {
          const result = await client.result(runId).catch(async (err: unknown) => {
            // Past its retention in Redis: the archive still has it.
            const archived = err instanceof FleetError && err.code === 'RUN_NOT_FOUND' ? await history?.get(runId) : undefined;
            if (!archived) throw err;
            return archived.result;
          });
          process.stdout.write(JSON.stringify(result, null, 2) + '\n');
          for (const u of result.unserved ?? []) say(`warning: phase ${u.phase} is queued but ${u.message}`);
          return;
        }
        const rows: Array<{ run_id: string; status: string; workflow: string; created_at: string; note?: string }> = [];
        // Runs in Redis (all of them without an archive; the ones not archived yet with one), newest first.
        let ids = history ? await client.store.activeRunIds() : await client.store.recentRunIds(10_000);
        if (opts.schedule !== undefined) {
          // The runs a schedule started are labelled with its name.
          const labels = await new RunLabelStore(client.redis, config.queuePrefix).getMany(ids);
          ids = ids.filter((_, i) => labels[i]?.schedule === opts.schedule);
        }
        for (const id of ids) {
          const r = await client.result(id).catch(() => undefined);
          if (!r || (opts.status && r.status !== opts.status) || (opts.workflow && r.workflow.name !== opts.workflow)) continue;
          rows.push({ run_id: r.run_id, status: r.status, workflow: r.workflow.name, created_at: r.created_at, note: unservedNote(r) });
          if (!history && rows.length === opts.limit) break;
        }
        if (history) {
          const seen = new Set(rows.map((r) => r.run_id));
          for (const r of await history.list({ status: opts.status, workflow: opts.workflow, schedule: opts.schedule }, opts.limit)) {
            if (!seen.has(r.run_id)) rows.push({ run_id: r.run_id, status: r.status, workflow: r.workflow.name, created_at: r.created_at });
          }
          rows.sort((a, b) => b.created_at.localeCompare(a.created_at));
        }
        for (const r of rows.slice(0, opts.limit)) process.stdout.write(`${r.run_id}  ${r.status.padEnd(9)}  ${r.workflow}  ${r.created_at}${r.note ?? ''}\n`);
      } finally {
        await history?.close();
      }
    });
  });

program
  .command('cancel')
  .description('cancel a run: phases in flight are aborted, nothing else is enqueued')
  .argument('<run_id>')
  .action(async (runId: string) => {
    await withClient(async (client) => {
      await client.cancel(runId);
      say(`cancel requested for run ${runId}`);
    });
  });

registerWorkers(program);
registerRunControl(program);
registerRuns(program);
registerSubmit(program);
registerWatch(program);
registerPatterns(program);
registerAnalytics(program);
registerRoles(program);
registerSchedules(program);
registerTest(program);

const workflows = program.command('workflows').description('list, show and validate workflows');
workflows
  .command('list')
  .description('list the built-in workflows and the registered templates')
  .action(async () => {
    const { lines, unread } = await listWorkflowLines();
    for (const line of lines) process.stdout.write(`${line}\n`);
    if (unread) {
      say(`fleet: ${unread}`);
      process.exitCode = EXIT.usage;
    }
  });
workflows
  .command('show')
  .description('print a workflow after validation (compiled: durations in ms)')
  .argument('<name|file>')
  .action(async (ref: string) => {
    process.stdout.write(JSON.stringify(await showWorkflow(ref), null, 2) + '\n');
  });
workflows
  .command('validate')
  .description('validate a workflow (file, template or built-in) as `fleet run` would: schema, workflows it starts, roles, tools; exit 2 with every problem')
  .argument('<file|name>')
  .action(async (ref: string) => {
    const wf = await validateWorkflowRef(ref);
    say(`${ref}: valid (${wf.name} v${wf.version}, ${wf.phases.length} ${wf.phases.length === 1 ? 'phase' : 'phases'})`);
  });
registerWorkflows(program);
registerTriggers(program);

/** REDIS_URL as configured, or undefined when the configuration itself is bad. */
function configuredRedisUrl(): string | undefined {
  try {
    return loadConfig().redisUrl;
  } catch {
    return undefined;
  }
}
logOptions(program);

/** Map an error to a message on stderr and an exit status. */
function exitFor(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
    return EXIT.usage;
  }
  if (isRedisOutOfMemory(err)) err = redisOutOfMemoryError(err, configuredRedisUrl());
  if (err instanceof FleetError) {
    say(`fleet: ${err.message}`);
    return err.category === 'user' || err.code === 'REDIS_UNAVAILABLE' || err.code === 'REDIS_OUT_OF_MEMORY' ? EXIT.usage : EXIT.failed;
  }
  say(`fleet: ${startupErrorLine(err)}`);
  return EXIT.failed;
}

// `fleet status | head -5`: a reader that stops early is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
  throw err;
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Exit now: a manager or pool that failed half-way through its start must not go on running
  // (without its HTTP API, say) while a supervisor sees a live process.
  process.exit(exitFor(err));
}
