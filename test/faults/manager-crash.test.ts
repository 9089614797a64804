/**
 * Faults 3 and 7: the manager is a real `fleet manager` process, SIGKILLed at exact
 * points of many runs and restarted (3), or run as two replicas at once under 200 concurrent runs (7).
 * Agents run in this process with an LLM that counts its calls per run and phase, so "no phase ran
 * twice" is counted from the work actually done, and "no phase enqueued twice / no run finished
 * twice" from each run's event stream.
 */
import { BUILTIN_ROLES } from '@agentfleet/agents';
import { agentQueueName, createRedis, decide, type LlmRequest, type LlmResponse } from '@agentfleet/core';
import { Queue, Worker, type Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { cliEnv, spawnCli, testWorkflow, type CliProcess } from '../support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';
import { waitForRunEvent } from '../support/run-events.js';
import { CountingOfflineLlm, connect, countEvents, createUnstartedRun, quietManager, quietPool, runEvents, waitUntil } from './helpers.js';

/** Fan-out and fan-in: a → (b, c, d) → e, each phase with a timeout of `timeout` seconds. */
function fanOutWorkflow(name: string, timeout: number) {
  return testWorkflow({
    name,
    agents: ['planner', 'designer', 'coder', 'reviewer'],
    phases: [
      { name: 'a', agent: 'planner', timeout },
      { name: 'b', agent: 'designer', timeout, depends_on: ['a'] },
      { name: 'c', agent: 'coder', timeout, depends_on: ['a'] },
      { name: 'd', agent: 'reviewer', timeout, depends_on: ['a'] },
      { name: 'e', agent: 'coder', timeout, depends_on: ['b', 'c', 'd'] },
    ],
  });
}
const workflow = fanOutWorkflow('test', 20);
const PHASES = ['a', 'b', 'c', 'd', 'e'];
/** The same DAG with phase timeouts far above any wait of the test, so no deadline fires while the gate is shut. */
const slowWorkflow = fanOutWorkflow('fault-slow', 600);

/** A counting offline LLM whose calls wait until `open()` is called. */
class GatedLlm extends CountingOfflineLlm {
  completed = 0;
  #open!: () => void;
  readonly #gate = new Promise<void>((resolve) => (this.#open = resolve));

  open(): void {
    this.#open();
  }

  override async generate(request: LlmRequest): Promise<LlmResponse> {
    const count = super.generate.bind(this);
    await this.#gate;
    const response = await count(request);
    this.completed += 1;
    return response;
  }
}
const managerArgs = ['manager', '--lock-duration', '1000', '--stalled-interval', '500'];

/** Check every run's stream and the LLM's call counts: one queue, one completion, one call per phase; one finish per run. */
async function expectExactlyOnce(conn: ReturnType<typeof connect>, llm: CountingOfflineLlm, runs: Array<{ id: string; requirements: string }>, phases: string[]) {
  const problems: string[] = [];
  for (const { id, requirements } of runs) {
    const result = await conn.client.result(id);
    if (result.status !== 'completed') problems.push(`${id}: ${result.status}`);
    const events = await runEvents(conn.store, id);
    if (countEvents(events, 'run_finished') !== 1) problems.push(`${id}: run_finished ×${countEvents(events, 'run_finished')}`);
    for (const phase of phases) {
      for (const type of ['phase_queued', 'phase_completed'] as const) {
        const n = countEvents(events, type, phase);
        if (n !== 1) problems.push(`${id}: ${type} ${phase} ×${n}`);
      }
      const calls = llm.calls.get(`${requirements}|${phase}`) ?? 0;
      if (calls !== 1) problems.push(`${id}: ${phase} ran ${calls} times`);
    }
  }
  expect(problems).toEqual([]);
}

describe('manager crashes and replicas', () => {
  // Spawns `fleet manager` processes (six in a row): four minutes, not the default 30 s, on a loaded machine.
  it('fault 3: SIGKILL the manager six times, each right after it started a run a dead client left, with every run in flight: every run completes, no phase runs twice', { timeout: 240_000 }, async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('fault-manager-kill');
    const env = cliEnv(url, prefix);
    // Every model call waits for the gate, so all twelve runs are certainly in flight at each kill,
    // whatever the machine's speed; the kills land at exact points, not after random delays.
    const llm = new GatedLlm();
    const pool = await quietPool(url, prefix, Object.values(BUILTIN_ROLES), llm, 8);
    const conn = connect(url, prefix);
    let manager: CliProcess | undefined;
    try {
      // Run starts and phase outcomes do not pass through the manager; starting a run whose client
      // died before starting it (from the create's outbox entry, at the manager's start) does. Six runs are submitted as a live client
      // does; six are left unstarted, one before each manager process, which is killed as soon as
      // it committed that run's start.
      const runs: Array<{ id: string; requirements: string }> = [];
      for (let i = 0; i < 6; i++) {
        const requirements = `Service number ${i}`;
        runs.push({ id: await conn.client.submit({ workflow: slowWorkflow, requirements, provider: 'offline' }), requirements });
      }
      let killsMidRun = 0;
      for (let i = 6; i < 12; i++) {
        const requirements = `Service number ${i}`;
        const id = await createUnstartedRun(conn.store, slowWorkflow, requirements);
        runs.push({ id, requirements });
        manager = spawnCli(managerArgs, env);
        await manager.waitFor('manager: consuming');
        await waitForRunEvent({ redis: conn.redis, prefix }, id, (e) => e.type === 'run_started', { what: 'the manager to start it' });
        manager.child.kill('SIGKILL');
        await manager.stop();
        manager = undefined;
        if ((await conn.store.activeRunIds()).length === runs.length && llm.completed === 0) killsMidRun += 1;
      }
      expect(killsMidRun).toBe(6);
      llm.open();
      manager = spawnCli(managerArgs, env);
      await waitUntil(async () => (await conn.store.activeRunIds()).length === 0, 60_000, 'every run to finish');
      expect(runs).toHaveLength(12);
      await expectExactlyOnce(conn, llm, runs, PHASES);
    } finally {
      llm.open();
      await manager?.stop('SIGKILL');
      await pool.close(1000);
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('fault 1, exact point: a worker that dies after committing its outcome but before adding the next jobs: its job is taken again and the run repaired', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('fault-worker-point');
    const llm = new CountingOfflineLlm(Object.values(BUILTIN_ROLES));
    const others = await quietPool(url, prefix, [BUILTIN_ROLES.designer!, BUILTIN_ROLES.coder!, BUILTIN_ROLES.reviewer!], llm, 8);
    const manager = await quietManager(url, prefix);
    const conn = connect(url, prefix);
    const dying = createRedis(url, { forWorker: true });
    let planners: Awaited<ReturnType<typeof quietPool>> | undefined;
    try {
      const requirements = 'Crash between a worker commit and its enqueue';
      const id = await conn.client.submit({ workflow, requirements, provider: 'offline' });
      // A planner worker takes phase a's job (1 s lock), commits a's completion (which queues b, c
      // and d) and dies before adding any of their jobs or finishing its own.
      const worker = new Worker(agentQueueName('planner'), null, { connection: dying, prefix, lockDuration: 1000, autorun: false });
      let job: Job | undefined;
      await waitUntil(async () => Boolean((job = await worker.getNextJob('dying-token'))), 5000, "phase a's job");
      expect(job!.id).toBe(`${id}.a.1`);
      const aOutput = BUILTIN_ROLES.planner!.offline({ requirements, variables: {}, phase: 'a', instructions: undefined, upstream: [], upstreamErrors: [] });
      const fanOut = await conn.store.apply(
        id,
        (m, s) => decide(m.workflow, s, { type: 'phase_completed', at: Date.now(), phase: 'a', iteration: 1, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm', startedAt: Date.now() }),
        { output: { phase: 'a', value: aOutput } },
      );
      expect(fanOut.decision.actions.filter((a) => a.type === 'enqueue_phase').map((a) => a.phase)).toEqual(['b', 'c', 'd']);
      await worker.close(true);
      dying.disconnect();

      // A live planner pool finds the job stalled, takes it again, sees a already completed and asks
      // the manager to repair the run: b, c and d get their jobs and the run completes, a never re-run.
      planners = await quietPool(url, prefix, [BUILTIN_ROLES.planner!], llm, 2);
      const result = await conn.client.follow(id, conn.blocking, () => undefined);
      expect(result.status).toBe('completed');
      const events = await runEvents(conn.store, id);
      expect(countEvents(events, 'run_finished')).toBe(1);
      for (const phase of PHASES) expect(countEvents(events, 'phase_completed', phase)).toBe(1);
      for (const phase of ['b', 'c', 'd', 'e']) expect(llm.calls.get(`${requirements}|${phase}`)).toBe(1);
      expect(llm.calls.get(`${requirements}|a`)).toBeUndefined();
    } finally {
      dying.disconnect();
      await planners?.close(1000);
      await others.close(1000);
      await manager.close();
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('fault 3, exact point: a crash after the fan-out was committed but before any phase job was added is repaired at restart', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('fault-manager-point');
    const llm = new CountingOfflineLlm(Object.values(BUILTIN_ROLES));
    const pool = await quietPool(url, prefix, Object.values(BUILTIN_ROLES), llm, 8);
    const conn = connect(url, prefix);
    try {
      const requirements = 'Crash between commit and enqueue';
      // Do what a client and a worker do up to the crash: create the run, commit run_started and then
      // phase a's completion (which queues b, c and d: the fan-out), and die before adding any job.
      const id = await createUnstartedRun(conn.store, workflow, requirements);
      const started = await conn.store.apply(id, (m, s) => decide(m.workflow, s, { type: 'run_started', at: Date.now() }));
      const enqueued = (actions: ReadonlyArray<{ type: string; phase?: string }>) => actions.filter((a) => a.type === 'enqueue_phase').map((a) => a.phase);
      expect(enqueued(started.decision.actions)).toEqual(['a']);
      const aOutput = BUILTIN_ROLES.planner!.offline({ requirements, variables: {}, phase: 'a', instructions: undefined, upstream: [], upstreamErrors: [] });
      const fanOut = await conn.store.apply(
        id,
        (m, s) => decide(m.workflow, s, { type: 'phase_completed', at: Date.now(), phase: 'a', iteration: 1, attempt: 1, usage: { input_tokens: 1, output_tokens: 1 }, model: 'm' }),
        { output: { phase: 'a', value: aOutput } },
      );
      expect(enqueued(fanOut.decision.actions)).toEqual(['b', 'c', 'd']);
      expect(JSON.parse((await conn.redis.hget(conn.store.contextKey(id), 'a'))!)).toEqual(aOutput);

      // The restarted manager reconciles: b, c, d get their jobs, and the run completes.
      const manager = await quietManager(url, prefix);
      try {
        const result = await conn.client.follow(id, conn.blocking, () => undefined);
        expect(result.status).toBe('completed');
        const events = await runEvents(conn.store, id);
        expect(countEvents(events, 'run_finished')).toBe(1);
        for (const phase of ['b', 'c', 'd', 'e']) {
          expect(countEvents(events, 'phase_completed', phase)).toBe(1);
          expect(llm.calls.get(`${requirements}|${phase}`)).toBe(1);
        }
        expect(llm.calls.get(`${requirements}|a`)).toBeUndefined();
      } finally {
        await manager.close();
      }
    } finally {
      await pool.close(1000);
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });

  // Spawns two `fleet manager` processes: four minutes on a loaded machine.
  it('fault 7: two manager replicas under 200 concurrent runs: no phase enqueued or run twice, no run finished twice', { timeout: 240_000 }, async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('fault-replicas');
    const env = cliEnv(url, prefix);
    const llm = new CountingOfflineLlm(Object.values(BUILTIN_ROLES));
    const pool = await quietPool(url, prefix, Object.values(BUILTIN_ROLES), llm, 16);
    const conn = connect(url, prefix);
    const managers = [spawnCli([...managerArgs, '--concurrency', '16'], env), spawnCli([...managerArgs, '--concurrency', '16'], env)];
    try {
      await Promise.all(managers.map((m) => m.waitFor('manager: consuming')));
      const small = testWorkflow({
        agents: ['planner', 'designer', 'coder'],
        phases: [
          { name: 'a', agent: 'planner' },
          { name: 'b', agent: 'designer', depends_on: ['a'] },
          { name: 'c', agent: 'coder', depends_on: ['a'] },
        ],
      });
      // Half the runs are started by the managers (as a client that died a minute before leaves them:
      // their start's outbox entry is past the managers' 30 s lease): both replicas race to start them.
      const runs = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const requirements = `Replica run ${i}`;
          if (i % 2 === 0) return { id: await conn.client.submit({ workflow: small, requirements, provider: 'offline' }), requirements };
          return { id: await createUnstartedRun(conn.store, small, requirements, Date.now() - 60_000), requirements };
        }),
      );
      await waitUntil(async () => (await conn.store.activeRunIds()).length === 0, 25_000, 'all 200 runs to finish');
      await expectExactlyOnce(conn, llm, runs, ['a', 'b', 'c']);
      // No phase job failed or is left waiting or running; at most one job per run and phase ever completed
      // (finished runs' jobs are removed as they finish, so fewer may remain).
      for (const role of ['planner', 'designer', 'coder']) {
        const q = new Queue(agentQueueName(role), { connection: conn.redis, prefix });
        const counts = await q.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
        await q.close();
        expect({ ...counts, completed: 0 }).toEqual({ completed: 0, failed: 0, waiting: 0, active: 0, delayed: 0 });
        expect(counts.completed).toBeLessThanOrEqual(200);
      }
    } finally {
      await Promise.all(managers.map((m) => m.stop('SIGKILL')));
      await pool.close(1000);
      await conn.close();
      await cleanupPrefix(url, prefix);
    }
  });
});
