/**
 * Batch pricing, end to end on real Redis through the real Anthropic SDK against a local server that
 * speaks the Messages and Message Batches APIs: a `mode: batch` phase submits its call as a batch,
 * its worker slot is freed, the run shows the phase waiting on the batch, and the manager polls the
 * batch and resumes the phase, also when the manager is restarted in the middle; errors and retries
 * work as for direct calls, and the batch call costs half. A worker that dies right after the API
 * accepted its batch (before recording the id) leaves no second batch: the retaken attempt finds it.
 */
import { designer, planner, startAgentPool, type RoleInput } from '@agentfleet/agents';
import { AnthropicLlmClient, createAnthropicBatches, createRedis, FleetClient, type RunResult, type StoredRunEvent, type WorkflowDefinition } from '@agentfleet/core';
import { startManager, type Manager } from '@agentfleet/manager';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic, type FakeBatchOptions, type FakeRequest } from './support/fake-anthropic.js';
import { cliEnv, fakeAnthropicClient, runCli, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MODEL = 'claude-sonnet-5-5'; // $3 / $15 per MTok; half through the Batches API
const base: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan = planner.offline(base);
const design = designer.offline({ ...base, upstream: [{ phase: 'planning', role: 'planner', output: plan }] });
const outputs: Record<string, unknown> = { planner: plan, designer: design };
const toolOf = (r: { forcedToolName: string | undefined }) => r.forcedToolName?.replace(/^submit_|_output$/g, '') ?? '';
const direct = (f: FakeAnthropic) => f.requests.filter((r) => r.path === '/v1/messages');

let fake: FakeAnthropic | undefined;
let fleet: FleetFixture | undefined;
let extraManager: Manager | undefined;
afterEach(async () => {
  await extraManager?.close();
  await fleet?.close();
  await fake?.close();
  extraManager = undefined;
  fleet = undefined;
  fake = undefined;
});

async function setup(name: string, batches: FakeBatchOptions): Promise<{ fake: FakeAnthropic; fleet: FleetFixture }> {
  fake = await startFakeAnthropic({ batches });
  fake.setResponder((req: FakeRequest) => ({ toolInput: outputs[toolOf(req)], usage: { input_tokens: 1000, output_tokens: 1000 } }));
  fleet = await startFleet({
    name,
    llm: fakeAnthropicClient(fake.url, MODEL),
    manager: { batches: createAnthropicBatches({ anthropicApiKey: 'sk-ant-test-key', anthropicBaseUrl: fake.url }), batchPollMs: 50 },
  });
  return { fake, fleet };
}

const twoPhases = (planning: Record<string, unknown>): WorkflowDefinition =>
  testWorkflow({
    agents: ['planner', 'designer'],
    phases: [
      { name: 'planning', agent: 'planner', mode: 'batch', ...planning },
      { name: 'design', agent: 'designer', depends_on: ['planning'] },
    ],
  });

async function submit(f: FleetFixture, workflow: WorkflowDefinition, onEvent: (e: StoredRunEvent['event']) => void = () => undefined): Promise<{ runId: string; done: Promise<RunResult> }> {
  const runId = await f.client.submit({ workflow, requirements: 'Build a todo API', provider: 'test' });
  const blocking = createRedis(f.url, { forWorker: true });
  const done = f.client.follow(runId, blocking, (e) => onEvent(e.event)).finally(() => blocking.disconnect());
  return { runId, done };
}

describe('mode: batch', () => {
  it('submits the call as a batch, shows the phase waiting on it, and completes after the manager restarts in the middle, at half the price', async () => {
    const { fake, fleet } = await setup('batch-restart', {});
    let onWaiting: (e: StoredRunEvent['event']) => void = () => undefined;
    const waiting = new Promise<StoredRunEvent['event']>((resolve) => (onWaiting = resolve));
    const { runId, done } = await submit(fleet, twoPhases({}), (e) => {
      if (e.type === 'phase_waiting' && e.event === 'batch') onWaiting(e);
    });
    await waiting;
    const paused = await fleet.client.result(runId);
    expect(paused.status).toBe('waiting');
    expect(paused.waiting_for).toHaveLength(1);
    expect(paused.waiting_for[0]).toMatchObject({ phase: 'planning', event: 'batch', prompt: { batch_id: fake.batches[0]?.id } });
    expect(fake.batches).toHaveLength(1);
    expect(fake.batches[0]?.requests[0]?.params).toMatchObject({ model: MODEL, tool_choice: { type: 'tool', name: 'submit_planner_output' } });
    expect(direct(fake).filter((r) => toolOf(r) === 'planner')).toHaveLength(0);

    // The manager goes away while the batch runs; a new one takes up the open batch.
    await fleet.manager.close();
    extraManager = await startManager({
      redisUrl: fleet.url,
      prefix: fleet.prefix,
      warn: () => undefined,
      batches: createAnthropicBatches({ anthropicApiKey: 'sk-ant-test-key', anthropicBaseUrl: fake.url }),
      batchPollMs: 50,
    });
    await fake.endBatches();

    const result = await done;
    expect(result.status).toBe('completed');
    expect(result.results.planning).toEqual(plan);
    expect(result.results.design).toEqual(design);
    // One batch, never a second submission; the planner was never called directly.
    expect(fake.batches).toHaveLength(1);
    expect(direct(fake).filter((r) => toolOf(r) === 'planner')).toHaveLength(0);
    const planning = result.phases.find((p) => p.name === 'planning');
    const designing = result.phases.find((p) => p.name === 'design');
    expect(planning).toMatchObject({ status: 'completed', attempts: 1 });
    // 1000 in × $3 + 1000 out × $15 per MTok = $0.018 direct; half in the batch.
    expect(planning?.usage.cost_usd).toBeCloseTo(0.009, 9);
    expect(designing?.usage.cost_usd).toBeCloseTo(0.018, 9);
    // The cost report shows the discount.
    expect(planning?.mode).toBe('batch');
    expect(designing?.mode).toBeUndefined();
    expect(result.batch_savings_usd).toBeCloseTo(0.009, 9);
  });

  it('an errored batch request is retried like a direct call: a new attempt sends a new batch', async () => {
    const { fake, fleet } = await setup('batch-retry', { endAfterRetrievals: 0 });
    fake.enqueue({ status: 529, errorType: 'overloaded_error', message: 'Overloaded' });
    const events: StoredRunEvent['event'][] = [];
    const { done } = await submit(fleet, twoPhases({ retries: 2, retry_delay: 0.05 }), (e) => events.push(e));
    const result = await done;
    expect(result.status).toBe('completed');
    expect(fake.batches).toHaveLength(2);
    expect(result.phases.find((p) => p.name === 'planning')).toMatchObject({ status: 'completed', attempts: 2 });
    const retry = events.find((e) => e.type === 'phase_retry') as { error: { code: string } } | undefined;
    expect(retry?.error.code).toBe('PROVIDER_OVERLOADED');
  });

  it('budgets count batch calls at the batch price: a budget too small for two direct phases pays for two batch phases', async () => {
    const { fake, fleet } = await setup('batch-budget', { endAfterRetrievals: 0 });
    const wf = testWorkflow({
      agents: ['planner', 'designer'],
      // Direct, planning alone costs $0.018 and design could not start; in batches each costs $0.009.
      budget: { max_cost_usd: 0.02 },
      mode: 'batch',
      phases: [
        { name: 'planning', agent: 'planner' },
        { name: 'design', agent: 'designer', depends_on: ['planning'] },
      ],
    });
    const { done } = await submit(fleet, wf);
    const result = await done;
    expect(result.status).toBe('completed');
    expect(fake.batches).toHaveLength(2);
    expect(result.usage.cost_usd).toBeCloseTo(0.018, 9);
    expect(result.batch_savings_usd).toBeCloseTo(0.018, 9);
  });

  it('a reply that fails validation is repaired through a second batch; the first reply is billed once', async () => {
    const { fake, fleet } = await setup('batch-repair', { endAfterRetrievals: 0 });
    fake.enqueue({ toolInput: { not: 'a plan' }, usage: { input_tokens: 1000, output_tokens: 1000 } });
    const wf = testWorkflow({ agents: ['planner'], budget: { max_cost_usd: 1 }, phases: [{ name: 'planning', agent: 'planner', mode: 'batch' }] });
    const { runId, done } = await submit(fleet, wf);
    const result = await done;
    expect(result.status).toBe('completed');
    expect(result.results.planning).toEqual(plan);
    expect(fake.batches).toHaveLength(2);
    // The budget ledger counted each batch reply once, though the attempt read the first one twice.
    expect(Number(await fleet.redis.hget(`${fleet.prefix}:run:${runId}:budget`, 'run:spent_usd'))).toBeCloseTo(0.018, 9);
    // The repair carries the validation error back to the model, as a direct repair does.
    expect(JSON.stringify(fake.batches[1]?.requests[0]?.params)).toContain('That tool input is not valid');
    const planning = result.phases.find((p) => p.name === 'planning');
    expect(planning).toMatchObject({ status: 'completed', attempts: 1 });
    expect(planning?.usage).toMatchObject({ input_tokens: 2000, output_tokens: 2000 });
    expect(planning?.usage.cost_usd).toBeCloseTo(0.018, 9);
  });

  it('a batch that does not end within batch_timeout is cancelled and the phase fails with PHASE_TIMEOUT', async () => {
    const { fake, fleet } = await setup('batch-timeout', {});
    const { done } = await submit(fleet, twoPhases({ batch_timeout: 0.2 }));
    const result = await done;
    expect(result.status).toBe('failed');
    expect(result.errors[0]).toMatchObject({ phase: 'planning', error: { code: 'PHASE_TIMEOUT' } });
    expect(result.errors[0]?.error.message).toContain('batch_timeout');
    expect(fake.batches[0]?.cancelled).toBe(true);
  });
});

describe('a worker that dies after its batch was accepted and before the batch id was recorded', () => {
  it('the retaken attempt finds the batch it submitted (listed, matched by custom_id once it ended) and submits no second one', async () => {
    fake = await startFakeAnthropic({ batches: {} });
    fake.setResponder((req: FakeRequest) => ({ toolInput: outputs[toolOf(req)], usage: { input_tokens: 1000, output_tokens: 1000 } }));
    const url = redisUrl();
    const prefix = uniquePrefix('batch-crash');
    const batches = createAnthropicBatches({ anthropicApiKey: 'sk-ant-test-key', anthropicBaseUrl: fake.url });
    extraManager = await startManager({ redisUrl: url, prefix, warn: () => undefined, batches, batchPollMs: 50 });
    const roles = [planner, designer];
    const worker = { redisUrl: url, prefix, roles, onError: () => undefined, lockDurationMs: 1000, stalledIntervalMs: 500, batchPollMs: 50 };
    // Worker A stops dead right after the Batches API accepted its batch: the id is never recorded.
    let onSubmitted: () => void = () => undefined;
    const submitted = new Promise<void>((resolve) => (onSubmitted = resolve));
    const dying = new AnthropicLlmClient({
      apiKey: 'sk-ant-test-key',
      baseURL: fake.url,
      model: MODEL,
      maxRetries: 0,
      afterBatchSubmit: () => {
        onSubmitted();
        return new Promise<void>(() => undefined);
      },
    });
    const a = await startAgentPool({ ...worker, llm: dying });
    const client = new FleetClient(createRedis(url), prefix);
    const blocking = createRedis(url, { forWorker: true });
    try {
      const runId = await client.submit({ workflow: twoPhases({}), requirements: 'Build a todo API', provider: 'test' });
      const done = client.follow(runId, blocking, () => undefined);
      await submitted;
      expect(fake.batches).toHaveLength(1);
      // A is gone (its job abandoned, its lock left to expire); B takes the same attempt over.
      await a.close(100);
      const b = await startAgentPool({ ...worker, llm: fakeAnthropicClient(fake.url, MODEL) });
      try {
        // B looks for A's batch (rather than submitting a second one); while it is in progress B
        // cannot see whose it is, so it waits.
        await Promise.race([fake.waitForBatchLists(1, 30_000), fake.waitForBatches(2, 30_000)]);
        expect(fake.batches).toHaveLength(1);
        await fake.endBatches();
        const result = await done;
        expect(result.status, JSON.stringify(result.errors)).toBe('completed');
        expect(result.results.planning).toEqual(plan);
        // One batch, adopted by B: the planner was paid for once, at the batch price.
        expect(fake.batches).toHaveLength(1);
        expect(direct(fake).filter((r) => toolOf(r) === 'planner')).toHaveLength(0);
        const planning = result.phases.find((p) => p.name === 'planning');
        expect(planning).toMatchObject({ status: 'completed', attempts: 1, mode: 'batch' });
        expect(planning?.usage.cost_usd).toBeCloseTo(0.009, 9);
        expect(fake.billed.requests).toBe(2); // the planner's batch request and the designer's direct call
      } finally {
        await b.close(2000);
      }
    } finally {
      blocking.disconnect();
      await client.close();
      await cleanupPrefix(url, prefix);
    }
  });
});

describe('fleet run --batch', () => {
  it('runs every agent phase through the Message Batches API from the CLI and reports the discount', async () => {
    fake = await startFakeAnthropic({ batches: { endAfterRetrievals: 0 } });
    fake.setResponder((req: FakeRequest) => ({ toolInput: outputs[toolOf(req)], usage: { input_tokens: 1000, output_tokens: 1000 } }));
    const dir = await mkdtemp(join(tmpdir(), 'fleet-batch-cli-'));
    try {
      const file = join(dir, 'wf.yaml');
      await writeFile(file, ['name: batch-cli', 'agents: [planner, designer]', 'phases:', '  - name: planning', '    agent: planner', '  - name: design', '    agent: designer', '    depends_on: [planning]', ''].join('\n'));
      const prefix = uniquePrefix('batch-cli');
      try {
        const env = cliEnv(redisUrl(), prefix, { ANTHROPIC_API_KEY: 'sk-ant-test-key', ANTHROPIC_BASE_URL: fake.url, FLEET_MODEL: MODEL, FLEET_BATCH_POLL_MS: '100', FLEET_LOG_LEVEL: 'warn' });
        const run = await runCli(['run', '--batch', '-w', file, '-o', join(dir, 'out'), 'Build a todo API'], env, { timeoutMs: 90_000 });
        expect(run.code, run.stderr).toBe(0);
        expect(run.stderr + run.stdout).toMatch(/batch discount saved \$0\.0180/);
        expect(fake.batches).toHaveLength(2);
        expect(direct(fake)).toHaveLength(0);
      } finally {
        await cleanupPrefix(redisUrl(), prefix);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
