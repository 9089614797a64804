/**
 * Faults 1, 2 and 5 of issue 6, with real processes: a coder pool (`fleet agents --roles coder`) in a
 * child process calling the real Anthropic SDK against the local Messages API server, killed,
 * frozen or stopped while its LLM call is in flight. The manager and the planner pool run in this
 * process; locks are short (1 s) so a dead worker's job is taken over within seconds.
 */
import { planner } from '@agentfleet/agents';
import type { Manager } from '@agentfleet/manager';
import type { AgentPool } from '@agentfleet/agents';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic, type FakeReply } from '../support/fake-anthropic.js';
import { cliEnv, spawnCli, testWorkflow, type CliProcess } from '../support/fleet.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from '../support/redis.js';
import { CountingOfflineLlm, codeBy, connect, countEvents, quietManager, quietPool, runEvents, waitUntil } from './helpers.js';

const workflow = testWorkflow({
  agents: ['planner', 'coder'],
  phases: [
    { name: 'planning', agent: 'planner', timeout: 20 },
    { name: 'implementation', agent: 'coder', timeout: 20, retries: 1, depends_on: ['planning'] },
  ],
});

const coderArgs = ['agents', '--roles', 'coder', '--lock-duration', '1000', '--stalled-interval', '500'];

let url: string;
let prefix: string;
let fake: FakeAnthropic;
let manager: Manager;
let plannerPool: AgentPool;
let conn: ReturnType<typeof connect>;
const children: CliProcess[] = [];

function coderProcess(extraEnv: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): CliProcess {
  // JSON log lines at info: the zombie test reads the pool's "phase attempt completed" entry.
  const env = { ...cliEnv(url, prefix, { ANTHROPIC_API_KEY: 'sk-ant-test-key', ANTHROPIC_BASE_URL: fake.url, FLEET_LOG_FORMAT: 'json' }), ...extraEnv };
  const child = spawnCli([...coderArgs, ...extraArgs], env);
  children.push(child);
  return child;
}

/** Requests of the coder role the fake server received. */
const coderRequests = () => fake.requests.filter((r) => r.forcedToolName === 'submit_coder_output').length;

beforeEach(async () => {
  url = redisUrl();
  prefix = uniquePrefix('fault-worker');
  fake = await startFakeAnthropic({ apiKey: 'sk-ant-test-key' });
  manager = await quietManager(url, prefix);
  plannerPool = await quietPool(url, prefix, [planner], new CountingOfflineLlm([planner]));
  conn = connect(url, prefix);
});

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL')));
  await plannerPool.close(1000);
  await manager.close();
  await conn.close();
  await fake.close();
  await cleanupPrefix(url, prefix);
});

describe('a coder worker dies or freezes during its LLM call', () => {
  it('fault 1: SIGKILL mid-call: the job stalls, another worker takes it, the run completes with exactly one coder result', async () => {
    let n = 0;
    fake.setResponder(() => (++n === 1 ? { hang: true } : { toolInput: codeBy('worker B') }));
    const a = coderProcess();
    await a.waitFor('agents: serving');
    const runId = await conn.client.submit({ workflow, requirements: 'Build a todo API', provider: 'anthropic' });
    await fake.waitForRequests(1, 15_000);
    a.child.kill('SIGKILL');
    await a.stop();

    const b = coderProcess();
    await b.waitFor('agents: serving');
    const result = await conn.client.follow(runId, conn.blocking, () => undefined);

    expect(result.status).toBe('completed');
    expect(result.results.implementation).toEqual(codeBy('worker B'));
    expect(coderRequests()).toBe(2);
    const events = await runEvents(conn.store, runId);
    expect(countEvents(events, 'phase_completed', 'implementation')).toBe(1);
    expect(countEvents(events, 'phase_queued', 'implementation')).toBe(1);
    expect(countEvents(events, 'run_finished')).toBe(1);
    // The shared context holds one implementation entry, B's.
    const context = await conn.redis.hgetall(conn.store.contextKey(runId));
    expect(Object.keys(context).sort()).toEqual(['implementation', 'planning']);
    expect(JSON.parse(context.implementation!)).toEqual(codeBy('worker B'));
  });

  it('fault 2: SIGSTOP past the lock, another worker finishes, SIGCONT: the zombie\'s late completion is refused', async () => {
    // The zombie's reply is held until worker B's result is in; B is answered at once.
    let n = 0;
    let releaseZombie!: () => void;
    const zombieReply = new Promise<FakeReply>((resolve) => (releaseZombie = () => resolve({ toolInput: codeBy('zombie A') })));
    fake.setResponder(() => (++n === 1 ? zombieReply : { toolInput: codeBy('worker B') }));
    const a = coderProcess();
    await a.waitFor('agents: serving');
    const runId = await conn.client.submit({ workflow, requirements: 'Build a todo API', provider: 'anthropic' });
    await fake.waitForRequests(1, 15_000);
    a.child.kill('SIGSTOP');

    const b = coderProcess();
    await b.waitFor('agents: serving');
    const result = await conn.client.follow(runId, conn.blocking, () => undefined);
    expect(result.status).toBe('completed');
    expect(result.results.implementation).toEqual(codeBy('worker B'));

    // Send the zombie its reply while it is still stopped (wait until the whole answer is in the
    // operating system's hands; it is the only request still open), then wake it: it commits a
    // completion the run's version fence must refuse.
    const answeredBefore = fake.answered;
    releaseZombie();
    await fake.waitForAnswered(answeredBefore + 1, 30_000);
    a.child.kill('SIGCONT');
    // The zombie logs after its commit returned, with whether the run accepted it.
    await waitUntil(async () => a.output().includes('phase attempt completed'), 15_000, 'the zombie to commit its completion');
    const zombieLine = a.output().split('\n').find((l) => l.includes('phase attempt completed'));
    expect(JSON.parse(zombieLine!)).toMatchObject({ reported: false });

    const events = await runEvents(conn.store, runId);
    expect(countEvents(events, 'phase_completed', 'implementation')).toBe(1);
    expect(countEvents(events, 'run_finished')).toBe(1);
    const stored = await conn.redis.hget(conn.store.contextKey(runId), 'implementation');
    expect(JSON.parse(stored!)).toEqual(codeBy('worker B'));
    expect((await conn.client.result(runId)).results.implementation).toEqual(codeBy('worker B'));
  });

  it('fault 5: SIGTERM with a job in flight: the job finishes, its spans are exported, the process exits 0 within the grace period', async () => {
    await using receiver = await startOtlpReceiver();
    fake.setResponder(() => ({ delayMs: 1500, then: { toolInput: codeBy('graceful') } }));
    const a = coderProcess({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'fault-coder' }, ['--grace', '10']);
    await a.waitFor('agents: serving');
    const runId = await conn.client.submit({ workflow, requirements: 'Build a todo API', provider: 'anthropic' });
    await fake.waitForRequests(1, 15_000);
    // Exit 0 with the run completed by this process's own reply: a pool that gave up on its job at
    // the end of its grace period would leave the run without a coder (no other coder runs).
    const code = await a.stop('SIGTERM');
    expect(code).toBe(0);
    expect(a.output()).toContain('finishing jobs in flight');

    const result = await conn.client.follow(runId, conn.blocking, () => undefined);
    expect(result.status).toBe('completed');
    expect(result.results.implementation).toEqual(codeBy('graceful'));
    expect(coderRequests()).toBe(1);
    const spans = await receiver.waitForSpans((all) => all.some((s) => s.name === 'process agent-coder'));
    const processSpan = spans.find((s) => s.name === 'process agent-coder');
    expect(processSpan?.attributes['fleet.run.id']).toBe(runId);
    expect(spans.some((s) => s.name === 'invoke_agent coder')).toBe(true);
  });
});
