/**
 * Test fixtures for whole fleets: an in-process fleet (manager + agent pools + client) on a unique
 * key prefix, and helpers to run the real `fleet` CLI as a child process.
 *
 * Every fixture is an AsyncDisposable: `await using fleet = await startFleet(...)` tears it down and
 * deletes the prefix's keys even when the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BUILTIN_ROLES, createLlmClient, startAgentPool, type AgentPool, type AgentRole } from '@agentfleet/agents';
import {
  AnthropicLlmClient,
  FleetClient,
  compileWorkflow,
  createRedis,
  loadConfig,
  type LlmClient,
  type RunResult,
  type StoredRunEvent,
  type WorkflowDefinition,
} from '@agentfleet/core';
import { startManager, type Manager, type ManagerOptions } from '@agentfleet/manager';
import type { Redis } from 'ioredis';
import { cleanupPrefix, redisUrl, uniquePrefix } from './redis.js';

/** Path of the `fleet` CLI entry point. */
export const FLEET_BIN = fileURLToPath(new URL('../../apps/cli/bin/fleet.js', import.meta.url));

export interface FleetFixture extends AsyncDisposable {
  prefix: string;
  url: string;
  client: FleetClient;
  redis: Redis;
  manager: Manager;
  pool: AgentPool;
  /** Submit a run and wait for its result, collecting its events. */
  run(workflow: WorkflowDefinition, requirements: string): Promise<{ result: RunResult; events: StoredRunEvent['event'][] }>;
  close(): Promise<void>;
}

export interface FleetFixtureOptions {
  name: string;
  roles?: AgentRole[];
  /** Defaults to the offline model answering with each role's offline output. */
  llm?: LlmClient;
  concurrency?: number;
  /** Further manager options (retention, the run archive). */
  manager?: Partial<ManagerOptions>;
}

/** An LLM client for the real Anthropic SDK pointed at a local fake server (no SDK retries: ours only). */
export function fakeAnthropicClient(baseURL: string, model = 'claude-test'): AnthropicLlmClient {
  return new AnthropicLlmClient({ apiKey: 'sk-ant-test-key', baseURL, model, maxRetries: 0 });
}

/** Start a manager, pools for `roles` and a client, all on a fresh key prefix. */
export async function startFleet(options: FleetFixtureOptions): Promise<FleetFixture> {
  const url = redisUrl();
  const prefix = uniquePrefix(options.name);
  const roles = options.roles ?? Object.values(BUILTIN_ROLES);
  const config = { ...loadConfig({}), redisUrl: url, queuePrefix: prefix };
  const manager = await startManager({ redisUrl: url, prefix, warn: () => undefined, ...options.manager });
  const pool = await startAgentPool({
    redisUrl: url,
    prefix,
    roles,
    concurrency: options.concurrency ?? 4,
    llm: options.llm ?? createLlmClient(config, roles),
    onError: () => undefined,
  });
  const redis = createRedis(url);
  const blocking = createRedis(url, { forWorker: true });
  const client = new FleetClient(redis, prefix);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await pool.close(2000);
    await manager.close();
    await client.close();
    blocking.disconnect();
    redis.disconnect();
    await cleanupPrefix(url, prefix);
  };
  return {
    prefix,
    url,
    client,
    redis,
    manager,
    pool,
    async run(workflow, requirements) {
      const runId = await client.submit({ workflow, requirements, provider: 'test' });
      const events: StoredRunEvent['event'][] = [];
      const result = await client.follow(runId, blocking, (e) => events.push(e.event));
      return { result, events };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Compile a small workflow whose phases default to `agent` and short timeouts. */
export function testWorkflow(raw: Record<string, unknown>): WorkflowDefinition {
  return compileWorkflow({ name: 'test', ...raw });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run `fleet <args>` to completion (bounded by `timeoutMs`). */
export function runCli(args: string[], env: NodeJS.ProcessEnv, options: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLEET_BIN, ...args], { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fleet ${args.join(' ')} did not finish in ${options.timeoutMs ?? 60_000} ms\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A long-running `fleet` process (manager, agents) that is SIGTERMed and awaited on dispose. */
export interface CliProcess extends AsyncDisposable {
  child: ChildProcess;
  output(): string;
  /** Resolve when the output contains `text` (throws after `timeoutMs`, default 60 s: a process start on a loaded machine takes seconds). */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the process exits by itself (null when killed by a signal). */
  exited: Promise<number | null>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, [FLEET_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  /** Waiters of {@link CliProcess.waitFor}, told on every chunk of output and when the process exits. */
  const waiters = new Set<() => void>();
  const append = (d: Buffer) => {
    output += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
      for (const w of [...waiters]) w();
    }),
  );
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    child,
    exited,
    output: () => output,
    waitFor(text, timeoutMs = 60_000) {
      // Resolved by the output itself (each chunk is looked at as it arrives); the timer only bounds the wait.
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (output.includes(text)) return done(resolve);
          if (child.exitCode !== null || child.signalCode !== null) return done(() => reject(new Error(`fleet ${args.join(' ')} exited (${child.exitCode ?? child.signalCode}) before printing "${text}":\n${output}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`fleet ${args.join(' ')} did not print "${text}" in ${timeoutMs} ms:\n${output}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

/** The environment for a CLI child: this one's, minus provider keys, on `url` and `prefix`. */
export function cliEnv(url: string, prefix: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: url, FLEET_QUEUE_PREFIX: prefix, ...extra };
  if (!('ANTHROPIC_API_KEY' in extra)) delete env.ANTHROPIC_API_KEY;
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return env;
}
