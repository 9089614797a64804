/**
 * `fleet run "<requirements>"`: the main job. Runs the manager and one agent pool per role in this
 * process (unless `--no-local-workers`), submits the run, draws progress on stderr from the run's
 * event stream, writes the artifacts and prints the result.
 */
import { join, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline/promises';
import { agentPoolSettings, createLlmClient, loadToolSettings, startAgentPool, startToolPool, writeArtifacts, type AgentPool, type ToolPool } from '@agentfleet/agents';
import { FleetClient, createRedis, resolveWorkflow, startTelemetry, validateRequirements, type Budget, type FleetConfig, type LlmClient, type RunResult } from '@agentfleet/core';
import { startManager, type Manager } from '@agentfleet/manager';
import { ensureRedis } from './local-redis.js';
import { progressLine } from './progress.js';
import { EXIT, resolveRoles, say } from './shared.js';
import { RecordingLlmClient } from './testing/cassette.js';

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
  /** Append every model call and reply to this cassette (JSON lines, keys redacted; `fleet test --replay`). */
  record?: string | undefined;
}

/** @returns the exit status: 0 completed, 1 failed or cancelled. Throws FleetError for bad input. */
export async function runCommand(requirements: string, options: RunCommandOptions, config: FleetConfig): Promise<number> {
  validateRequirements(requirements);
  const workflow = await resolveWorkflow(options.workflow);

  const telemetry = await startTelemetry({ serviceName: 'agentfleet' });
  const redisHandle = await ensureRedis(config.redisUrl, say, { allowPrivate: options.localWorkers });
  if (redisHandle.private && !options.localWorkers) say('warning: --no-local-workers with a private Redis: no other process can serve this run');
  if (config.provider === 'offline') {
    say('note: no ANTHROPIC_API_KEY set: agents answer with the built-in offline model (deterministic placeholders, not an LLM)');
  }

  const redis = createRedis(redisHandle.url, { name: 'fleet-run' });
  const blocking = createRedis(redisHandle.url, { forWorker: true, name: 'fleet-run-follow' });
  const client = new FleetClient(redis, config.queuePrefix);
  let manager: Manager | undefined;
  let pool: AgentPool | undefined;
  let tools: ToolPool | undefined;
  let onSignal: (() => void) | undefined;
  let asker: TerminalAsker | undefined;
  try {
    // Built-in roles, FLEET_ROLE_MODULES roles, then roles registered in this Redis (`fleet roles add`).
    const roles = options.localWorkers ? await resolveRoles(workflow.agents, { redis, prefix: config.queuePrefix }) : [];
    if (options.localWorkers) {
      manager = await startManager({ redisUrl: redisHandle.url, prefix: config.queuePrefix });
      pool = await startAgentPool({
        redisUrl: redisHandle.url,
        prefix: config.queuePrefix,
        roles,
        concurrency: options.concurrency,
        ...recording(options.record, createLlmClient(config, roles), agentPoolSettings(config, roles)),
        maxTokens: config.maxTokens,
      });
      if (workflow.phases.some((p) => p.kind === 'tool')) {
        // Tool phases write into the run's artifacts directory: the same one as the artifacts below.
        const settings = loadToolSettings();
        const out = options.out;
        tools = await startToolPool({
          redisUrl: redisHandle.url,
          prefix: config.queuePrefix,
          concurrency: options.concurrency,
          settings: { ...settings, artifactsDir: out ? () => resolve(out) : settings.artifactsDir },
        });
      }
    }
    const runId = await client.submit({ workflow, requirements, variables: options.vars, provider: config.provider, ...(options.budget ? { budget: options.budget } : {}) });
    say(`run ${runId}: ${workflow.name} v${workflow.version}, ${workflow.phases.length} phases`);
    onSignal = () => {
      say('interrupted: cancelling the run (Ctrl-C again to quit at once)');
      process.once('SIGINT', () => process.exit(130));
      void client.cancel(runId, 'interrupted by the user (SIGINT)').catch(() => undefined);
    };
    process.once('SIGINT', onSignal);

    asker = options.interactive ? new TerminalAsker(client, runId) : undefined;
    const result = await client.follow(runId, blocking, (e) => {
      const line = progressLine(e.event);
      if (line) say(line);
      if (asker && e.event.type === 'phase_waiting') asker.answer(e.event.phase, e.event.event, e.event.prompt);
    });
    const dir = resolve(options.out ?? join('runs', runId));
    await writeArtifacts(result, dir);
    const final: RunResult = { ...result, artifacts_dir: dir };
    if (options.json) process.stdout.write(JSON.stringify(final, null, 2) + '\n');
    else process.stdout.write(summary(final));
    return final.status === 'completed' ? EXIT.ok : EXIT.failed;
  } finally {
    asker?.close();
    if (onSignal) process.removeListener('SIGINT', onSignal);
    await pool?.close(5000);
    await tools?.close(5000);
    await manager?.close();
    await client.close();
    blocking.disconnect();
    redis.disconnect();
    await redisHandle.stop();
    await telemetry.shutdown();
  }
}

function summary(r: RunResult): string {
  const lines = [
    '',
    `Run ${r.run_id} ${r.status} in ${(r.duration_ms / 1000).toFixed(1)}s (${r.workflow.name} v${r.workflow.version})`,
    ...r.phases.map((p) => `  ${p.status.padEnd(10)} ${p.name.padEnd(16)} ${p.agent.padEnd(10)} ${p.duration_ms === null ? '' : `${(p.duration_ms / 1000).toFixed(1)}s`}${p.attempts > 1 ? ` (${p.attempts} attempts)` : ''}${p.error ? `  ${p.error.code}: ${p.error.message}` : p.reason ? `  ${p.reason}` : ''}`),
    `Tokens: ${r.usage.input_tokens} in, ${r.usage.output_tokens} out (${r.provider}${r.model ? `, ${r.model}` : ''})`,
    `Artifacts: ${r.artifacts_dir}`,
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
    private readonly runId: string,
  ) {}

  answer(phase: string, event: string, prompt: unknown): void {
    this.queue = this.queue.then(async () => {
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
