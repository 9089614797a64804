/**
 * The chaos run (issue 6, fault 8): `npm run chaos -- --runs 200 --kills 50`.
 *
 * Starts manager and agent-pool processes (`fleet manager`, `fleet agents`) on a private
 * `redis-server` (or `--redis URL`), submits `--runs` runs of a fan-out/fan-in workflow while it
 * SIGKILLs `--kills` random processes (agents and managers), restarting each, then waits for every
 * run to end and checks, from each run's event stream and shared context:
 *
 * - every run reached a terminal status, with exactly one `run_finished` event;
 * - no phase iteration was queued twice or completed twice;
 * - every completed phase has exactly one result in the shared context, and a completed run has
 *   every phase completed.
 *
 * Redis faults, each starting once half of the runs are submitted and one has finished (those in
 * flight, the rest submitted during the fault; a refused submission is tried again), on the private
 * `redis-server` only:
 * - `--redis-oom SECONDS`: Redis refuses every write (`maxmemory` 1 byte, policy `noeviction`) for
 *   that long, then takes writes again;
 * - `--redis-freeze SECONDS`: the `redis-server` is SIGSTOPped for that long, then SIGCONTed;
 * - `--drop-replies N`: the processes reach Redis through a loopback proxy
 *   (../../support/reply-dropping-proxy.ts) that, N times, cuts the connection of a fenced commit
 *   (`apply-decision`) right after Redis ran it, before its reply reaches the process.
 *
 * A process that exits on its own is started again at once (as a supervisor would), and counted.
 *
 * Prints the figures as JSON on stdout (and a summary on stderr): with the invariants, the attempts
 * that failed (`phase_retry` and `phase_failed` events) and the results committed twice. Exits 1
 * when an invariant broke or a run did not end. Not part of `npm test`: it runs for minutes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FleetClient, agentQueueName, compileWorkflow, createRedis, pingRedis, type RunResult } from '@agentfleet/core';
import { commandSource } from '@agentfleet/core/internal';
import { startReplyDroppingProxy, type ReplyDroppingProxy } from '../../support/reply-dropping-proxy.js';

// Built to test/chaos/dist/chaos/src/main.js.
const FLEET_BIN = fileURLToPath(new URL('../../../../../apps/cli/bin/fleet.js', import.meta.url));

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    kills: { type: 'string', default: '50' },
    redis: { type: 'string' },
    agents: { type: 'string', default: '3' },
    managers: { type: 'string', default: '2' },
    latency: { type: 'string', default: '150' },
    'kill-every': { type: 'string', default: '400' },
    timeout: { type: 'string', default: '300' },
    'redis-oom': { type: 'string', default: '0' },
    'redis-freeze': { type: 'string', default: '0' },
    'drop-replies': { type: 'string', default: '0' },
  },
});
const num = (name: keyof typeof args): number => {
  const n = Number(args[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number ≥ 0, got "${String(args[name])}"`);
  return n;
};
const RUNS = num('runs');
const KILLS = num('kills');
const AGENT_PROCESSES = Math.max(1, num('agents'));
const MANAGER_PROCESSES = Math.max(1, num('managers'));
const OOM_S = num('redis-oom');
const FREEZE_S = num('redis-freeze');
const DROP_REPLIES = num('drop-replies');
const say = (line: string) => process.stderr.write(`chaos: ${line}\n`);

/** Fan-out and fan-in: plan → (design, implementation) → review. */
const workflow = compileWorkflow({
  name: 'chaos',
  agents: ['planner', 'designer', 'coder', 'reviewer'],
  phases: [
    { name: 'planning', agent: 'planner', timeout: 30, retries: 2, retry_delay: 0.2 },
    { name: 'design', agent: 'designer', timeout: 30, retries: 2, retry_delay: 0.2, depends_on: ['planning'] },
    { name: 'implementation', agent: 'coder', timeout: 30, retries: 2, retry_delay: 0.2, depends_on: ['planning'] },
    { name: 'review', agent: 'reviewer', timeout: 30, retries: 2, retry_delay: 0.2, depends_on: ['design', 'implementation'] },
  ],
});
const PHASES = workflow.phases.map((p) => p.name);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface RedisHandle {
  url: string;
  /** The private `redis-server`, for the faults that need it; absent with `--redis`. */
  child?: ChildProcess | undefined;
  stop(): void;
}

async function startPrivateRedis(): Promise<RedisHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-chaos-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 200 && !(await pingRedis(url, 200)).ok; i++) await new Promise((r) => setTimeout(r, 50));
  return {
    url,
    child,
    stop() {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Slot {
  kind: 'manager' | 'agents';
  args: string[];
  child: ChildProcess;
  /** Stopped by the chaos run itself (killed, or at the end): not started again on exit. */
  stopped: boolean;
}

/** What the Redis faults did, for the figures. */
interface FaultFigures {
  redis_oom_s: number;
  redis_freeze_s: number;
  drop_replies: number;
  /** Commits whose reply the proxy withheld and whose connection it cut. */
  replies_dropped: number;
  /** Writes Redis refused with OOM while it was full (from its `errorstat_OOM`). */
  writes_refused_oom: number;
  /** Runs not finished yet when the fault started. */
  runs_in_flight_at_start: number;
  /** Submissions Redis refused (full), each tried again. */
  submissions_refused: number;
}

/** Redis full for `seconds`: every write refused with OOM (`maxmemory` 1 byte, `noeviction`). */
async function redisOutOfMemory(redis: ReturnType<typeof createRedis>, seconds: number): Promise<void> {
  say(`Redis full (maxmemory 1 byte, noeviction) for ${seconds} s`);
  await redis.config('SET', 'maxmemory-policy', 'noeviction');
  await redis.config('SET', 'maxmemory', '1');
  await sleep(seconds * 1000);
  await redis.config('SET', 'maxmemory', '0');
  say('Redis takes writes again');
}

/** The private `redis-server` SIGSTOPped for `seconds`. */
async function redisFreeze(child: ChildProcess, seconds: number): Promise<void> {
  say(`Redis frozen (SIGSTOP) for ${seconds} s`);
  child.kill('SIGSTOP');
  await sleep(seconds * 1000);
  child.kill('SIGCONT');
  say('Redis thawed (SIGCONT)');
}

/** `n` fenced commits lose their reply (connection cut after Redis ran them), one after another. */
async function dropReplies(proxy: ReplyDroppingProxy, n: number, drained: AbortSignal): Promise<number> {
  const script = commandSource('applyDecision');
  const markers = [createHash('sha1').update(script).digest('hex'), 'apply-decision: commit a decision'];
  let dropped = 0;
  // Resolves false once every run has ended: no commit is left to cut.
  const stopped = new Promise<false>((resolve) => {
    if (drained.aborted) resolve(false);
    drained.addEventListener('abort', () => resolve(false), { once: true });
  });
  for (let i = 0; i < n && !drained.aborted; i++) {
    // Redis answers a command after running it: the first withheld reply means it ran.
    const cut = proxy.dropReplyTo(markers, () => Promise.resolve(true)).then(() => true);
    if (!(await Promise.race([cut, stopped]))) break;
    dropped++;
    await sleep(Math.random() * 200);
  }
  return dropped;
}

async function main(): Promise<number> {
  const redisHandle: RedisHandle = args.redis ? { url: args.redis, stop: () => undefined } : await startPrivateRedis();
  if ((OOM_S > 0 || FREEZE_S > 0) && !redisHandle.child) throw new Error('--redis-oom and --redis-freeze need the private redis-server: leave out --redis');
  const proxy = DROP_REPLIES > 0 ? await startReplyDroppingProxy(redisHandle.url) : undefined;
  const prefix = `{chaos-${Date.now().toString(36)}}`;
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: proxy?.url ?? redisHandle.url, FLEET_QUEUE_PREFIX: prefix, FLEET_OFFLINE_LATENCY_MS: String(num('latency')), FLEET_PROVIDER: 'offline', LOG_LEVEL: 'error' };
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const lock = ['--lock-duration', '2000', '--stalled-interval', '1000'];
  // A process that exits on its own (one that starts while Redis is frozen gives up after 2 s, exit
  // 2) is started again at once, as a supervisor (systemd, Kubernetes) would.
  const exitedOnOwn: Array<{ kind: Slot['kind']; code: number | null }> = [];
  const start = (kind: Slot['kind'], extra: string[]): Slot => {
    const a = kind === 'manager' ? ['manager', ...lock, ...extra] : ['agents', '--roles', 'planner,designer,coder,reviewer', '--concurrency', '8', '--grace', '1', ...lock, ...extra];
    const slot: Slot = { kind, args: a, stopped: false, child: spawn(process.execPath, [FLEET_BIN, ...a], { env, stdio: 'ignore' }) };
    slot.child.on('exit', (code) => {
      if (slot.stopped) return;
      exitedOnOwn.push({ kind, code });
      const i = slots.indexOf(slot);
      if (i >= 0) slots[i] = start(kind, extra);
    });
    return slot;
  };
  const slots: Slot[] = [...Array.from({ length: MANAGER_PROCESSES }, () => start('manager', [])), ...Array.from({ length: AGENT_PROCESSES }, () => start('agents', []))];

  const redis = createRedis(redisHandle.url);
  const client = new FleetClient(redis, prefix);
  const t0 = Date.now();
  const ids: string[] = [];
  const killed = { manager: 0, agents: 0 };
  let stopKilling = false;

  // Submit runs steadily while the killer works. A submission Redis refuses (full) is tried again
  // with the same run id, as a user would: a refused one wrote nothing, and one that was written
  // but not started is started by the manager at its start deadline.
  let refusedSubmits = 0;
  let halfSubmitted: () => void = () => undefined;
  const half = new Promise<void>((resolve) => (halfSubmitted = resolve));
  const submitting = (async () => {
    for (let i = 0; i < RUNS; i++) {
      const runId = `${prefix.slice(1, -1)}-${i}`;
      for (;;) {
        try {
          ids.push(await client.submit({ runId, workflow, requirements: `Chaos service ${i}: an API with accounts and reminders`, provider: 'offline' }));
          break;
        } catch (err) {
          refusedSubmits++;
          if (refusedSubmits % 50 === 1) say(`submission ${i} refused (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); trying again`);
          await sleep(500);
        }
      }
      if (ids.length >= RUNS / 2) halfSubmitted();
      await new Promise((r) => setTimeout(r, 20));
    }
    halfSubmitted();
  })();
  const killing = (async () => {
    await new Promise((r) => setTimeout(r, 1500));
    for (let k = 0; k < KILLS && !stopKilling; k++) {
      const i = Math.floor(Math.random() * slots.length);
      const slot = slots[i]!;
      slot.stopped = true;
      slot.child.kill('SIGKILL');
      killed[slot.kind] += 1;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
      slots[i] = start(slot.kind, []);
      await new Promise((r) => setTimeout(r, Math.random() * num('kill-every')));
    }
  })();
  // The Redis faults start once half of the runs are submitted and the processes serve runs (one
  // has finished): the runs submitted so far are in flight, and the rest are submitted during the fault.
  await half;
  if (OOM_S > 0 || FREEZE_S > 0 || DROP_REPLIES > 0) {
    while ((await client.store.activeRunIds()).length >= ids.length) await sleep(100);
  }
  const faults: FaultFigures = { redis_oom_s: OOM_S, redis_freeze_s: FREEZE_S, drop_replies: DROP_REPLIES, replies_dropped: 0, writes_refused_oom: 0, runs_in_flight_at_start: 0, submissions_refused: 0 };
  faults.runs_in_flight_at_start = (await client.store.activeRunIds()).length;
  const drained = new AbortController();
  const oomBefore = OOM_S > 0 ? await oomErrors(redis) : 0;
  const faulting = (async () => {
    if (OOM_S > 0) await redisOutOfMemory(redis, OOM_S);
    if (FREEZE_S > 0 && redisHandle.child) await redisFreeze(redisHandle.child, FREEZE_S);
    if (proxy) faults.replies_dropped = await dropReplies(proxy, DROP_REPLIES, drained.signal);
  })();
  await submitting;
  const submittedAt = Date.now();
  await killing;
  const killsDoneAt = Date.now();

  const deadline = Date.now() + num('timeout') * 1000;
  // While Redis is frozen, this read waits for it: the runs cannot move either.
  while ((await client.store.activeRunIds()).length > 0 && Date.now() < deadline) await sleep(250);
  drained.abort();
  stopKilling = true;
  const wallMs = Date.now() - t0;
  await faulting;
  if (OOM_S > 0) faults.writes_refused_oom = (await oomErrors(redis)) - oomBefore;
  faults.submissions_refused = refusedSubmits;

  // Check the invariants on every run.
  const problems: string[] = [];
  const statuses: Record<string, number> = {};
  const durations: number[] = [];
  let reexecuted = 0;
  let failedAttempts = 0;
  let duplicateResults = 0;
  for (const id of ids) {
    const result: RunResult = await client.result(id);
    statuses[result.status] = (statuses[result.status] ?? 0) + 1;
    if (!['completed', 'failed', 'cancelled'].includes(result.status)) problems.push(`${id}: not terminal (${result.status})`);
    durations.push(result.duration_ms);
    const events = (await client.store.readEvents(id, '0')).map((e) => e.event);
    const count = (type: string, phase?: string) => events.filter((e) => e.type === type && (phase === undefined || ('phase' in e && e.phase === phase))).length;
    if (count('run_finished') !== 1) problems.push(`${id}: run_finished ×${count('run_finished')}`);
    failedAttempts += count('phase_retry') + count('phase_failed');
    const context = await redis.hkeys(client.store.contextKey(id));
    for (const phase of PHASES) {
      const queued = count('phase_queued', phase);
      const completed = count('phase_completed', phase);
      if (queued > 1) problems.push(`${id}: ${phase} queued ×${queued}`);
      if (completed > 1) {
        problems.push(`${id}: ${phase} completed ×${completed}`);
        duplicateResults += completed - 1;
      }
      if ((completed === 1) !== context.includes(phase)) problems.push(`${id}: ${phase} completed ×${completed} but ${context.includes(phase) ? 'a' : 'no'} result in the context`);
      if (result.status === 'completed' && completed !== 1) problems.push(`${id}: completed run with ${phase} completed ×${completed}`);
    }
  }
  // Phase jobs taken more than once (a worker killed holding one): counted from each role queue's
  // BullMQ event stream, since a re-take of the same attempt adds no run event.
  for (const role of ['planner', 'designer', 'coder', 'reviewer']) {
    const taken = new Map<string, number>();
    const entries = await redis.xrange(`${prefix}:${agentQueueName(role)}:events`, '-', '+');
    for (const [, fields] of entries) {
      const at = fields.indexOf('jobId');
      if (fields[fields.indexOf('event') + 1] === 'active' && at >= 0) taken.set(fields[at + 1]!, (taken.get(fields[at + 1]!) ?? 0) + 1);
    }
    for (const n of taken.values()) if (n > 1) reexecuted += 1;
  }

  for (const s of slots) {
    s.stopped = true;
    s.child.kill('SIGTERM');
  }
  await client.close();
  redis.disconnect();
  await new Promise((r) => setTimeout(r, 500));
  for (const s of slots) s.child.kill('SIGKILL');
  await proxy?.close();
  redisHandle.stop();

  durations.sort((a, b) => a - b);
  const pct = (p: number) => durations[Math.min(durations.length - 1, Math.floor((p / 100) * durations.length))] ?? 0;
  const figures = {
    runs: ids.length,
    statuses,
    kills: killed,
    processes: { managers: MANAGER_PROCESSES, agents: AGENT_PROCESSES },
    offline_latency_ms: num('latency'),
    faults,
    wall_s: Math.round(wallMs / 100) / 10,
    drain_after_last_submit_s: Math.round((Date.now() - submittedAt) / 100) / 10,
    drain_after_last_kill_s: Math.round((Date.now() - killsDoneAt) / 100) / 10,
    run_duration_ms: { p50: pct(50), p95: pct(95), max: durations[durations.length - 1] ?? 0 },
    processes_exited_on_their_own: exitedOnOwn.length,
    phases_executed_more_than_once: reexecuted,
    failed_attempts: failedAttempts,
    duplicate_results: duplicateResults,
    invariant_violations: problems.length,
  };
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
  say(`${ids.length} runs, ${killed.agents + killed.manager} kills (${killed.agents} agents, ${killed.manager} managers), ${JSON.stringify(statuses)}, ${problems.length} invariant violations`);
  for (const p of problems.slice(0, 20)) say(`  ${p}`);
  return problems.length === 0 && (statuses.completed ?? 0) + (statuses.failed ?? 0) + (statuses.cancelled ?? 0) === ids.length ? 0 : 1;
}

/** How many commands Redis has refused with OOM since it started (`INFO errorstats`). */
async function oomErrors(redis: ReturnType<typeof createRedis>): Promise<number> {
  const info = await redis.info('errorstats');
  return Number(/errorstat_OOM:count=(\d+)/.exec(info)?.[1] ?? 0);
}

process.exitCode = await main();
