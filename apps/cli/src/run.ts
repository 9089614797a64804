/**
 * `fleet run "<requirements>"`: the main job. Runs the manager and one agent pool per role in this
 * process (unless `--no-local-workers`), submits the run, draws progress on stderr from the run's
 * event stream, writes the artifacts and prints the result.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline/promises';
import { agentPoolSettings, createLlmClient, loadToolSettings, startAgentPool, startToolPool, type AgentPool, type ToolPool } from '@agentfleet/agents';
import { FleetClient, FleetError, createAnthropicBatches, createRedis, incomingTraceCarrier, listBuiltinWorkflows, reportUnservedPhases, validateRequirements, type Budget, type FleetConfig, type LlmClient, type RunResult, type StoredRunEvent, type WorkflowDefinition } from '@agentfleet/core';
import { startTelemetry } from '@agentfleet/host';
import { startHttpApi, startManager, type HttpApi, type Manager } from '@agentfleet/manager';
import { ensureRedis } from './local-redis.js';
import { followPhaseOutput, type PhaseOutputFollower } from './output-stream.js';
import { progressDisplay, progressLine, wantsLiveProgress, type ProgressDisplay } from './progress.js';
import { redisNotice } from './redis-notice.js';
import { EXIT, say } from './shared.js';
import { writeRunArtifacts } from './run-artifacts.js';
import { RecordingLlmClient } from './testing/cassette.js';
import { checkRunnable, isWorkflowPath, resolveLibraryWorkflow } from './workflow-library.js';

/** How often `fleet run --no-local-workers` checks that its queued phases have a pool, ms. */
const UNSERVED_CHECK_MS = 1000;
/**
 * How long closing the local manager, pools and connections may take once the run is over, ms. The
 * result is written by then; a step still waiting after this (a connection still recovering from a
 * Redis outage, say) is named and the process exits with the run's exit code instead of hanging.
 */
const SHUTDOWN_BOUND_MS = 15_000;
/** How long `fleet run` waits for the manager to start the fallback of a failed run, ms. */
const FALLBACK_START_WAIT_MS = 30_000;

/**
 * Refuse an `--out` that cannot hold the artifacts before anything starts.
 *
 * @throws FleetError `INVALID_INPUT` when `--out` is an existing file.
 */
export async function checkOutDir(out: string | undefined): Promise<void> {
  if (!out) return;
  const info = await stat(out).catch(() => undefined);
  if (info && !info.isDirectory()) throw new FleetError('INVALID_INPUT', `--out ${out} is a file, not a directory: give a directory (it is created if missing)`);
}

export interface RunCommandOptions {
  workflow: string;
  vars: Record<string, string>;
  json: boolean;
  out: string | undefined;
  localWorkers: boolean;
  concurrency: number;
  /** Ask waiting phases' questions and approvals on the terminal. */
  interactive?: boolean;
  /** The request's run budget (`--max-cost-usd`, `--max-tokens-budget`). */
  budget?: Budget | undefined;
  /** `--batch`: every agent phase through the Message Batches API. */
  batch?: boolean | undefined;
  /** Append every model call and reply to this cassette (JSON lines, keys redacted; `fleet test --replay`). */
  record?: string | undefined;
  /** Print the output of the phase in progress on stderr as the model writes it (`--stream`). */
  stream?: boolean | undefined;
  /**
   * `--console`: serve the HTTP API and the browser console from this process while the run goes on,
   * and print the run's console address with a key made for this process.
   */
  console?: ConsoleServeOptions | undefined;
}

/** Where `fleet run --console` serves the console. */
export interface ConsoleServeOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to listen on. @defaultValue `FLEET_HTTP_HOST`, else `127.0.0.1` */
  host?: string | undefined;
}

/** @returns the exit status: 0 completed, 1 failed or cancelled. Throws FleetError for bad input. */
export async function runCommand(requirements: string, options: RunCommandOptions, config: FleetConfig): Promise<number> {
  validateRequirements(requirements);
  await checkOutDir(options.out);
  // Files and built-ins are checked before anything starts; other names are registered templates,
  // looked up once Redis is there.
  let workflow: WorkflowDefinition | undefined =
    isWorkflowPath(options.workflow) || (await listBuiltinWorkflows()).includes(options.workflow) ? await resolveLibraryWorkflow(options.workflow) : undefined;

  const telemetry = await startTelemetry({ serviceName: 'agentfleet' });
  const redisHandle = await ensureRedis(config.redisUrl, say, { allowPrivate: options.localWorkers });
  if (redisHandle.private && !options.localWorkers) say('warning: --no-local-workers with a private Redis: no other process can serve this run');
  if (config.provider === 'offline') {
    say('note: no ANTHROPIC_API_KEY set: agents answer with the built-in offline model (deterministic placeholders, not an LLM)');
  }

  const redis = createRedis(redisHandle.url, { name: 'fleet-run' });
  const blocking = createRedis(redisHandle.url, { forWorker: true, name: 'fleet-run-follow' });
  // One line when Redis goes away and one when it is back, for every connection of this process.
  const notice = redisNotice(redisHandle.url, say);
  notice.watch(redis);
  blocking.on('error', notice.onError);
  const client = new FleetClient(redis, config.queuePrefix);
  let manager: Manager | undefined;
  let pool: AgentPool | undefined;
  let tools: ToolPool | undefined;
  let onSignal: (() => void) | undefined;
  let asker: TerminalAsker | undefined;
  let unservedTimer: NodeJS.Timeout | undefined;
  let follower: PhaseOutputFollower | undefined;
  let exitCode: number | undefined;
  let display: ProgressDisplay | undefined;
  let consoleApi: HttpApi | undefined;
  try {
    const library = { redis, prefix: config.queuePrefix };
    workflow ??= await resolveLibraryWorkflow(options.workflow, library);
    // Every role the run can reach: its own, its child workflows', its fallback's (and theirs), so no
    // job of this run waits in a queue this process does not serve.
    // What `fleet workflows validate` checks: workflows it starts, roles and tools, every problem at once.
    const reach = await checkRunnable(workflow, library);
    // Built-in roles, FLEET_ROLE_MODULES roles, then roles registered in this Redis (`fleet roles add`).
    const roles = options.localWorkers ? reach.agentRoles : [];
    // The console listens before anything runs: a busy port stops the command with nothing started.
    // Its key is made here and lives as long as this process; FLEET_ADMIN_KEY signs in too.
    const consoleKey = options.console ? randomBytes(24).toString('hex') : undefined;
    if (options.console && consoleKey) {
      consoleApi = await startHttpApi({
        redisUrl: redisHandle.url,
        prefix: config.queuePrefix,
        port: options.console.port,
        ...(options.console.host ? { host: options.console.host } : {}),
        adminKeys: [consoleKey, ...(process.env.FLEET_ADMIN_KEY ? [process.env.FLEET_ADMIN_KEY] : [])],
        provider: config.provider,
      });
    }
    if (options.localWorkers) {
      manager = await startManager({ redisUrl: redisHandle.url, prefix: config.queuePrefix, onError: notice.onError, batches: createAnthropicBatches(config), batchPollMs: config.batchPollMs });
      pool = await startAgentPool({
        redisUrl: redisHandle.url,
        prefix: config.queuePrefix,
        roles,
        concurrency: options.concurrency,
        ...recording(options.record, createLlmClient(config, roles), agentPoolSettings(config, roles)),
        maxTokens: config.maxTokens,
        // Agents' read_file / list_files / write_file see the run's artifacts directory, --out included.
        ...(options.out ? { toolSettings: { ...loadToolSettings(), artifactsDir: () => resolve(options.out as string) } } : {}),
        onError: notice.onError,
      });
      if (reach.tools) {
        // Tool phases write into the run's artifacts directory: the same one as the artifacts below.
        const settings = loadToolSettings();
        const out = options.out;
        tools = await startToolPool({
          redisUrl: redisHandle.url,
          prefix: config.queuePrefix,
          concurrency: options.concurrency,
          settings: { ...settings, artifactsDir: out ? () => resolve(out) : settings.artifactsDir },
          onError: notice.onError,
        });
      }
    }
    // TRACEPARENT / TRACESTATE (the OpenTelemetry environment carrier) make a calling script's span the run's parent.
    const trace = incomingTraceCarrier(process.env.TRACEPARENT, process.env.TRACESTATE);
    const runId = await client.submit({ workflow, requirements, variables: options.vars, provider: config.provider, trace, ...(options.budget ? { budget: options.budget } : {}), ...(options.batch ? { callMode: 'batch' as const } : {}) });
    say(`run ${runId}: ${workflow.name} v${workflow.version}, ${workflow.phases.length} ${workflow.phases.length === 1 ? 'phase' : 'phases'}`);
    if (consoleApi) say(`console: ${consoleUrl(consoleApi.url, runId, consoleKey ?? '')} (served until the run ends; the key in it is good for this process only)`);
    // The run followed now: the submitted one, then its fallback when it failed and started one.
    let following = runId;
    // A terminal gets a live status under the lines (not with --json, nor while --interactive asks).
    display = progressDisplay({ runId: () => (asker ? undefined : following), live: wantsLiveProgress(options.json) && !options.interactive && !options.stream });
    const show = display;
    onSignal = () => {
      show.line('interrupted: cancelling the run (Ctrl-C again to quit at once)');
      process.once('SIGINT', () => process.exit(130));
      void client.cancel(runId, 'interrupted by the user (SIGINT)').catch(() => undefined);
    };
    process.once('SIGINT', onSignal);

    asker = options.interactive ? new TerminalAsker(client, runId) : undefined;
    if (!options.localWorkers) {
      // Without a manager here, this process says itself when a phase waits for a pool that is not there.
      unservedTimer = setInterval(() => void reportUnservedPhases(redis, client.store, config.queuePrefix, following).catch(() => undefined), UNSERVED_CHECK_MS);
      unservedTimer.unref();
    }
    follower = options.stream ? followPhaseOutput(redisHandle.url, redis, config.queuePrefix, runId, process.stderr) : undefined;
    const onEvent = (e: StoredRunEvent) => {
      // With --interactive the question is asked here; else say how to answer it from elsewhere.
      // A progress line cuts into the phase output being printed only when there is one to print.
      if (progressLine(e.event, following) !== undefined) follower?.breakLine();
      show.event(e.event);
      if (asker && e.event.type === 'phase_waiting') asker.answer(e.event.phase, e.event.event, e.event.prompt);
    };
    let result = await client.follow(runId, blocking, onEvent);
    await follower?.stop();
    follower = undefined;
    const fallbackWorkflow = result.status === 'failed' ? workflow.errorHandling.fallbackWorkflow : null;
    if (fallbackWorkflow) {
      const fallbackId = await awaitFallback(client, blocking, runId);
      if (fallbackId) {
        show.line(`run ${runId} failed: following its fallback run ${fallbackId} (${fallbackWorkflow})`);
        following = fallbackId;
        if (asker) asker.runId = fallbackId;
        result = await client.follow(fallbackId, blocking, onEvent);
      } else {
        show.line(`run ${runId} failed and its fallback workflow ${fallbackWorkflow} did not start (is a manager running?)`);
      }
    }
    show.close();
    // The workflow that produced the result (the fallback's, when it ran) says what to write;
    // `--out` asks for the files whatever `output.save_to_file` says.
    const output = (result.run_id === runId ? workflow : (await client.store.getRun(result.run_id)).meta.workflow).output;
    const dir = await writeRunArtifacts(client, result, output, options.out);
    const final: RunResult = { ...result, artifacts_dir: dir };
    if (options.json) process.stdout.write(JSON.stringify(final, null, 2) + '\n');
    else process.stdout.write(summary(final));
    exitCode = final.status === 'completed' ? EXIT.ok : EXIT.failed;
    return exitCode;
  } finally {
    let closing = 'the phase output follower';
    const bound = setTimeout(() => {
      say(`fleet: closing ${closing} took longer than ${SHUTDOWN_BOUND_MS / 1000} s; exiting (the run's result is saved)`);
      process.exit(exitCode ?? EXIT.failed);
    }, SHUTDOWN_BOUND_MS);
    bound.unref();
    await follower?.stop().catch(() => undefined);
    clearInterval(unservedTimer);
    display?.close();
    asker?.close();
    if (onSignal) process.removeListener('SIGINT', onSignal);
    closing = 'the console';
    if (consoleApi) {
      await consoleApi.close();
      say(`console: no longer served (the run has ended); \`fleet manager --port 8080\` serves every run's page at http://localhost:8080/ui/`);
    }
    closing = 'the agent pools';
    await pool?.close(5000);
    closing = 'the tools pool';
    await tools?.close(5000);
    closing = 'the manager';
    await manager?.close();
    closing = 'the Redis connections';
    await client.close();
    blocking.disconnect();
    redis.disconnect();
    closing = 'the private Redis';
    await redisHandle.stop();
    closing = 'telemetry';
    await telemetry.shutdown();
    // Everything is closed: the process ends now unless a handle was left open, which the bound
    // (unref'd, so it never holds the process itself) then ends too.
    closing = 'the last open handles';
  }
}

/**
 * The console page of `runId` on the API at `apiUrl`, signing in with `key`: the key rides in the
 * fragment, which the browser never sends to a server, and the page removes it from the address.
 */
export function consoleUrl(apiUrl: string, runId: string, key: string): string {
  return `${apiUrl}/ui/#/runs/${encodeURIComponent(runId)}?key=${encodeURIComponent(key)}`;
}

/**
 * The id of the fallback run the manager starts for the failed run `runId`, read from the run's
 * events (`fallback_started`, or `fallback_failed`: undefined), waiting up to
 * {@link FALLBACK_START_WAIT_MS}; undefined when none started by then.
 */
async function awaitFallback(client: FleetClient, blocking: Parameters<FleetClient['follow']>[1], runId: string): Promise<string | undefined> {
  const until = Date.now() + FALLBACK_START_WAIT_MS;
  let last = '0';
  while (Date.now() < until) {
    for (const e of await client.store.readEvents(runId, last, 1000, blocking)) {
      last = e.id;
      if (e.event.type === 'fallback_started') return e.event.fallback_run_id;
      if (e.event.type === 'fallback_failed') return undefined;
    }
  }
  return (await client.store.getLinks(runId)).fallback_run_id;
}

/**
 * The summary `fleet run` prints on stdout at the end: status, a line per phase, tokens and cost,
 * artifacts. Every column (status, phase, role, time with attempts, model) is as wide as its
 * longest entry, so the rows line up whatever the names, durations and models; the last column
 * (an error or a skip reason) is free text.
 */
export function summary(r: RunResult): string {
  const multiModel = r.models.length > 1;
  const rows = r.phases.map((p) => [
    p.status,
    p.name,
    p.agent,
    `${p.duration_ms === null ? '' : `${(p.duration_ms / 1000).toFixed(1)}s`}${p.attempts > 1 ? ` (${p.attempts} attempts)` : ''}`,
    multiModel ? (p.model ?? '') : '',
    p.error ? `${p.error.code}: ${p.error.message}` : (p.reason ?? ''),
  ]);
  const minWidths = [10, 16, 10, 0, 0, 0];
  const widths = minWidths.map((min, i) => Math.max(min, ...rows.map((row) => (row[i] as string).length)));
  const line = (row: string[]) => `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] as number))).join('  ')}`.trimEnd();
  const lines = [
    '',
    `Run ${r.run_id} ${r.status} in ${(r.duration_ms / 1000).toFixed(1)}s (${r.workflow.name} v${r.workflow.version})`,
    ...rows.map(line),
    `Tokens: ${r.usage.input_tokens} in, ${r.usage.output_tokens} out, cost $${(r.usage.cost_usd ?? 0).toFixed(4)}${r.batch_savings_usd ? ` (batch discount saved $${r.batch_savings_usd.toFixed(4)})` : ''}${r.prompt_cache_hit_rate ? `, prompt cache hit rate ${(r.prompt_cache_hit_rate * 100).toFixed(1)}%` : ''} (${[r.provider, ...(r.models.length > 0 ? r.models : r.model ? [r.model] : [])].join(', ')})`,
    `Artifacts: ${r.artifacts_dir ?? 'none (output.save_to_file is false; --out DIR writes them anyway)'}`,
    '',
  ];
  return lines.join('\n');
}

/**
 * `--interactive`: when a phase waits, ask on the terminal (stderr) and send the answer as the event
 * it waits for: `answers` to a planner's questions, `approval` for an approval phase.
 */
class TerminalAsker {
  private readonly rl: Interface = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: FleetClient,
    /** The run answers go to (the fallback's, once `fleet run` follows it). */
    public runId: string,
  ) {}

  answer(phase: string, event: string, prompt: unknown): void {
    // A message batch ends by itself; nobody answers it.
    if (event === 'batch') return;
    this.queue = this.queue.then(async () => {
      if (event === 'budget') {
        const limit = (prompt as { limit?: string; message?: string } | undefined)?.limit === 'max_tokens' ? 'tokens' : 'USD';
        const reply = await this.rl.question(`  ? ${(prompt as { message?: string } | undefined)?.message ?? `${phase} waits for its budget`}\n  ${limit} to add (empty: leave it waiting) > `);
        const amount = Number(reply.trim());
        if (!reply.trim() || !Number.isFinite(amount) || amount <= 0) return;
        await this.client.sendEvent(this.runId, 'budget', limit === 'tokens' ? { add_tokens: Math.round(amount) } : { add_usd: amount });
        return;
      }
      if (event === 'approval') {
        const reply = await this.rl.question(`  ? approve "${phase}"${typeof prompt === 'string' ? ` (${prompt})` : ''} [y/N] `);
        const approved = /^y(es)?$/i.test(reply.trim());
        await this.client.sendEvent(this.runId, 'approval', { approved, comment: approved ? 'approved in the terminal' : 'rejected in the terminal' });
        return;
      }
      const questions = Array.isArray(prompt) ? prompt.map(String) : [typeof prompt === 'string' ? prompt : `input for ${phase}`];
      const answers: Record<string, string> = {};
      for (const q of questions) answers[q] = (await this.rl.question(`  ? ${q}\n  > `)).trim();
      await this.client.sendEvent(this.runId, event, { answers });
    }).catch((err: unknown) => say(`could not send the answer: ${(err as Error).message}`));
  }

  close(): void {
    this.rl.close();
  }
}

/** The pool's clients, each recording into the cassette at `path` when one is given (`--record`). */
function recording<S extends { llmFor: (role: string) => LlmClient }>(path: string | undefined, llm: LlmClient, settings: S): S & { llm: LlmClient } {
  if (!path) return { ...settings, llm };
  const calls = new Map<string, number>();
  const clients = new Map<string, LlmClient>();
  return {
    ...settings,
    llm: new RecordingLlmClient(llm, path, calls),
    llmFor: (role: string) => {
      let client = clients.get(role);
      if (!client) clients.set(role, (client = new RecordingLlmClient(settings.llmFor(role), path, calls)));
      return client;
    },
  };
}
