/**
 * Workflow semantics end to end on real Redis: parallel branches, the review loop, approvals
 * delivered with `fleet event`, cancellation with `fleet cancel`, `fleet resume` and `fleet rerun`,
 * and the result cache. Manager and pools run in this process; agents call the real Anthropic SDK
 * against a local Messages API server (or the offline model with a latency).
 */
import { BUILTIN_ROLES, coder, designer, planner, type RoleInput } from '@agentfleet/agents';
import { OfflineLlmClient, agentQueueName, type LlmClient, type LlmRequest, type LlmResponse, type OfflineResponder } from '@agentfleet/core';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from './faults/helpers.js';
import { startFakeAnthropic, type FakeAnthropic, type FakeRequest } from './support/fake-anthropic.js';
import { cliEnv, fakeAnthropicClient, runCli, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';
import { waitForRunEvent, waitForRunStatus } from './support/run-events.js';

const base: RoleInput = { requirements: 'Build a todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] };
const plan = planner.offline(base);
const design = designer.offline({ ...base, upstream: [{ phase: 'planning', role: 'planner', output: plan }] });
const code = coder.offline({ ...base, upstream: [{ phase: 'design', role: 'designer', output: design }] });
const approve = { verdict: 'approve', findings: [], summary: 'looks good' };
const changes = { verdict: 'changes_requested', findings: [{ severity: 'major', file: 'src/server.mjs', message: 'UNIQUE-FINDING: no input validation' }], summary: 'needs work' };

const toolOf = (r: FakeRequest) => r.forcedToolName?.replace(/^submit_|_output$/g, '');
const count = (fake: FakeAnthropic, role: string) => fake.requests.filter((r) => toolOf(r) === role).length;

/** A responder answering each role with a valid output; `override` replaces some answers. */
function byRole(fake: FakeAnthropic, override: Partial<Record<string, (n: number) => unknown>> = {}) {
  const seen: Record<string, number> = {};
  fake.setResponder((req) => {
    const role = toolOf(req) ?? '';
    const n = (seen[role] = (seen[role] ?? 0) + 1);
    const custom = override[role];
    if (custom) {
      const reply = custom(n);
      if (reply && typeof reply === 'object' && 'status' in reply) return reply as never;
      return { toolInput: reply };
    }
    return { toolInput: { planner: plan, designer: design, coder: code, reviewer: approve }[role] };
  });
}

/**
 * An LLM whose calls each wait until `width` calls are in flight at once, then all answer. Calls made
 * one after another never reach `width`: after 20 s each fails, naming how many were in flight.
 */
class AllInFlightLlm implements LlmClient {
  readonly provider: string;
  readonly model: string;
  #inFlight = 0;
  #open!: () => void;
  readonly #gate = new Promise<void>((resolve) => (this.#open = resolve));
  constructor(
    private readonly inner: LlmClient,
    private readonly width: number,
  ) {
    this.provider = inner.provider;
    this.model = inner.model;
  }
  async generate(request: LlmRequest): Promise<LlmResponse> {
    if (++this.#inFlight >= this.width) this.#open();
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${this.#inFlight} of ${this.width} calls were ever in flight at once`)), 20_000);
    });
    try {
      await Promise.race([this.#gate, gaveUp]);
    } finally {
      clearTimeout(timer);
    }
    return this.inner.generate(request);
  }
}

/** Tests that spawn `fleet` commands: each start costs seconds on a loaded machine, so they get four minutes, not the default 30 s. */
const SPAWNS_FLEET = { timeout: 240_000 };

let fake: FakeAnthropic | undefined;
let fleet: FleetFixture | undefined;
afterEach(async () => {
  await fleet?.close();
  await fake?.close();
  fleet = undefined;
  fake = undefined;
});

async function anthropicFleet(name: string): Promise<{ fake: FakeAnthropic; fleet: FleetFixture }> {
  fake = await startFakeAnthropic();
  fleet = await startFleet({ name, llm: fakeAnthropicClient(fake.url) });
  return { fake, fleet };
}

describe('workflow semantics on real Redis', () => {
  // Parallelism is read from the events, not from timings: every model call waits until all four
  // phases are in a call at once, so phases run one after another never get past the first call
  // (the gate gives up after 20 s and the phase fails, naming how many calls were in flight).
  it('runs four independent phases in parallel: every phase started before the first one finished', async () => {
    const responders: Record<string, OfflineResponder> = {};
    for (const [name, role] of Object.entries(BUILTIN_ROLES)) responders[name] = (req) => role.offline(req.inputs as unknown as RoleInput);
    fleet = await startFleet({ name: 'wide', llm: new AllInFlightLlm(new OfflineLlmClient({ responders }), 4), concurrency: 4 });
    const wide = testWorkflow({
      agents: ['planner'],
      phases: ['a', 'b', 'c', 'd'].map((name) => ({ name, agent: 'planner', retries: 0 })),
    });
    const { result, events } = await fleet.run(wide, 'Build a todo API');
    expect(result.status, JSON.stringify(result.phases.map((p) => p.error))).toBe('completed');
    expect(result.completed_phases).toEqual(['a', 'b', 'c', 'd']);
    const starts = events.filter((e) => e.type === 'phase_started');
    const finishes = events.filter((e) => e.type === 'phase_completed');
    expect(starts.map((e) => e.phase).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(finishes).toHaveLength(4);
    const lastStart = Math.max(...starts.map((e) => e.at));
    const firstFinish = Math.min(...finishes.map((e) => e.at));
    expect(lastStart).toBeLessThanOrEqual(firstFinish);
  });

  it('review loop: changes_requested sends the findings back to the coder once, then the reviewer approves the new version', async () => {
    const { fake, fleet } = await anthropicFleet('review-loop');
    byRole(fake, { reviewer: (n) => (n === 1 ? changes : approve) });
    const { loadBuiltinWorkflow } = await import('@agentfleet/core');
    const { result, events } = await fleet.run(await loadBuiltinWorkflow('software-delivery'), 'Build a todo API');
    expect(result.status).toBe('completed');
    expect(count(fake, 'planner')).toBe(1);
    expect(count(fake, 'designer')).toBe(1);
    expect(count(fake, 'coder')).toBe(2);
    expect(count(fake, 'reviewer')).toBe(2);
    // The second coder request carries the review's findings; the second review sees the code again.
    const coderRequests = fake.requests.filter((r) => toolOf(r) === 'coder');
    expect(JSON.stringify(coderRequests[1]?.body)).toContain('UNIQUE-FINDING');
    expect(JSON.stringify(coderRequests[0]?.body)).not.toContain('UNIQUE-FINDING');
    expect(result.phases.find((p) => p.name === 'implementation')).toMatchObject({ iterations: 2, status: 'completed' });
    expect(result.phases.find((p) => p.name === 'review')).toMatchObject({ iterations: 2, status: 'completed' });
    expect(result.results.review).toMatchObject({ verdict: 'approve' });
    expect(events.filter((e) => e.type === 'step_action')).toEqual([expect.objectContaining({ phase: 'review', action: 'jump', target: 'implementation' })]);
  });

  it('waits for an approval delivered with `fleet event`, then goes on', SPAWNS_FLEET, async () => {
    const { fake, fleet } = await anthropicFleet('approval');
    byRole(fake);
    const wf = testWorkflow({
      agents: ['planner', 'designer'],
      phases: [
        { name: 'planning', agent: 'planner' },
        { name: 'sign_off', type: 'approval', description: 'approve the plan', depends_on: ['planning'], timeout: 60 },
        { name: 'design', agent: 'designer', depends_on: ['sign_off'] },
      ],
    });
    const runId = await fleet.client.submit({ workflow: wf, requirements: 'Build a todo API', provider: 'test' });
    const waiting = await waitForRunStatus(fleet, runId, 'waiting');
    expect(waiting.waiting_for).toEqual([{ phase: 'sign_off', event: 'approval', prompt: 'approve the plan' }]);
    expect(count(fake, 'designer')).toBe(0);

    const sent = await runCli(['event', runId, 'approval', '--data', '{"approved": true, "comment": "go"}'], cliEnv(fleet.url, fleet.prefix));
    expect(sent.code, sent.stderr).toBe(0);
    const done = await waitForRunStatus(fleet, runId, 'completed');
    expect(done.results.sign_off).toEqual({ approved: true, comment: 'go' });
    expect(count(fake, 'designer')).toBe(1);
  });

  it('`fleet cancel` during a slow phase aborts the LLM call and enqueues nothing more', SPAWNS_FLEET, async () => {
    const { fake, fleet } = await anthropicFleet('cancel');
    fake.setResponder(() => ({ hang: true }));
    const { loadBuiltinWorkflow } = await import('@agentfleet/core');
    const runId = await fleet.client.submit({ workflow: await loadBuiltinWorkflow('software-delivery'), requirements: 'Build a todo API', provider: 'test' });
    await fake.waitForRequests(1);
    const res = await runCli(['cancel', runId], cliEnv(fleet.url, fleet.prefix));
    expect(res.code, res.stderr).toBe(0);
    const result = await waitForRunStatus(fleet, runId, 'cancelled');
    expect(result.phases.map((p) => p.status)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    await fake.waitForAborted(1);
    // Nothing more can call the model: once the aborted job has ended, no role queue holds a job.
    const queues = ['planner', 'designer', 'coder', 'reviewer'].map((role) => new Queue(agentQueueName(role), { connection: fleet.redis, prefix: fleet.prefix }));
    try {
      const counts = async () => Promise.all(queues.map((q) => q.getJobCounts('active', 'wait', 'delayed', 'prioritized', 'waiting-children')));
      await waitUntil(async () => (await counts()).every((c) => (c.active ?? 0) === 0), 10_000, 'the aborted job to end');
      expect((await counts()).map((c) => (c.wait ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) + (c['waiting-children'] ?? 0))).toEqual([0, 0, 0, 0]);
    } finally {
      await Promise.all(queues.map((q) => q.close()));
    }
    expect(fake.requests).toHaveLength(1);
  });

  it('`fleet resume` after a failure re-runs only the failed phase; `fleet rerun --from` reuses what came before', SPAWNS_FLEET, async () => {
    const { fake, fleet } = await anthropicFleet('resume');
    let designerFails = true;
    byRole(fake, { designer: () => (designerFails ? { status: 400, errorType: 'invalid_request_error', message: 'bad design prompt' } : design) });
    const { loadBuiltinWorkflow } = await import('@agentfleet/core');
    const { result: failed } = await fleet.run(await loadBuiltinWorkflow('software-delivery'), 'Build a todo API');
    expect(failed.status).toBe('failed');
    expect(failed.failed_phases).toEqual(['design']);

    designerFails = false;
    const env = cliEnv(fleet.url, fleet.prefix);
    const resumed = await runCli(['resume', failed.run_id], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = await waitForRunStatus(fleet, failed.run_id, 'completed');
    expect(done.completed_phases).toEqual(['planning', 'design', 'implementation', 'review']);
    expect(count(fake, 'planner')).toBe(1); // planning kept its output: its agent was not called again

    const rerun = await runCli(['rerun', failed.run_id, '--from', 'implementation'], env);
    expect(rerun.code, rerun.stderr).toBe(0);
    const newId = rerun.stdout.trim();
    const second = await waitForRunStatus(fleet, newId, 'completed');
    expect(second.links).toMatchObject({ rerun_of: { run_id: failed.run_id, from: 'implementation' } });
    expect(second.results.planning).toEqual(done.results.planning);
    expect([count(fake, 'planner'), count(fake, 'designer'), count(fake, 'coder')]).toEqual([1, 2, 2]);
  });

  it('reuses an identical agent result from the cache on the second run: no model call, no tokens', async () => {
    const { fake, fleet } = await anthropicFleet('cache');
    byRole(fake);
    const wf = testWorkflow({ agents: ['planner', 'designer'], cache: true, phases: [{ name: 'planning', agent: 'planner' }, { name: 'design', agent: 'designer', depends_on: ['planning'] }] });
    const first = await fleet.run(wf, 'Build a todo API');
    expect(first.result.status).toBe('completed');
    expect(fake.requests).toHaveLength(2);
    const second = await fleet.run(wf, 'Build a todo API');
    expect(second.result.status).toBe('completed');
    expect(fake.requests).toHaveLength(2);
    expect(second.result.phases.map((p) => p.cache_hit)).toEqual([true, true]);
    expect(second.result.usage).toMatchObject({ input_tokens: 0, output_tokens: 0 });
    expect(second.events.filter((e) => e.type === 'phase_completed').every((e) => (e as { cache_hit?: boolean }).cache_hit === true)).toBe(true);
    expect(second.result.results).toEqual(first.result.results);
    // Different requirements: a miss.
    await fleet.run(wf, 'Build a chat server');
    expect(fake.requests).toHaveLength(4);
  });

  it('a failed run starts its fallback workflow (linked both ways); a workflow phase runs a child run', async () => {
    const { fake, fleet } = await anthropicFleet('fallback');
    let plannerCalls = 0;
    byRole(fake, { planner: () => (++plannerCalls === 1 ? { status: 400, errorType: 'invalid_request_error', message: 'first plan refused' } : plan) });
    const failing = testWorkflow({
      agents: ['planner'],
      error_handling: { fallback_workflow: 'software-delivery' },
      phases: [{ name: 'planning', agent: 'planner', retries: 0 }],
    });
    const { result: failed } = await fleet.run(failing, 'Build a todo API');
    expect(failed.status).toBe('failed');
    const started = await waitForRunEvent(fleet, failed.run_id, (e) => e.type === 'fallback_started', { what: 'the fallback to start' });
    // One fallback per run: its id, as the README says (not a list).
    const fallbackId = (await fleet.client.result(failed.run_id)).links.fallback_run_id as string;
    expect(fallbackId).toBe((started as { fallback_run_id: string }).fallback_run_id);
    const fallback = await waitForRunStatus(fleet, fallbackId, 'completed');
    expect(fallback.workflow.name).toBe('software-delivery');
    expect(fallback.requirements).toBe('Build a todo API');
    expect(fallback.links).toMatchObject({ fallback_of: failed.run_id });

    const parent = testWorkflow({
      agents: ['planner'],
      phases: [{ name: 'delivery', workflow: 'software-delivery' }, { name: 'wrap_up', agent: 'planner', depends_on: ['delivery'] }],
    });
    const { result } = await fleet.run(parent, 'Build a todo API');
    expect(result.status).toBe('completed');
    const [childId] = result.links.children as string[];
    const child = await fleet.client.result(childId!);
    expect(child).toMatchObject({ status: 'completed', links: { parent: { run_id: result.run_id, phase: 'delivery' } } });
    expect(result.results.delivery).toEqual({ run_id: childId, results: child.results });
  });

  it('a failed child run, and one that could not start, fail their phases with CHILD_RUN_FAILED', SPAWNS_FLEET, async () => {
    const { fake, fleet } = await anthropicFleet('child-failed');
    byRole(fake, { planner: () => ({ status: 400, errorType: 'invalid_request_error', message: 'plan refused' }) });
    const parent = testWorkflow({
      agents: ['planner'],
      phases: [
        { name: 'delivery', workflow: 'software-delivery', continue_on_error: true },
        { name: 'missing', workflow: 'no-such-workflow', depends_on: [{ phase: 'delivery', optional: true }] },
      ],
    });
    const { result } = await fleet.run(parent, 'Build a todo API');
    expect(result.status).toBe('failed');
    const [childId] = result.links.children as string[];
    expect((await fleet.client.result(childId!)).status).toBe('failed');
    const delivery = result.phases.find((p) => p.name === 'delivery');
    expect(delivery).toMatchObject({ status: 'failed', error: { code: 'CHILD_RUN_FAILED', details: { child_run_id: childId } } });
    expect(delivery?.error?.message).toContain(`child run ${childId} (software-delivery) failed`);
    const missing = result.phases.find((p) => p.name === 'missing');
    expect(missing).toMatchObject({ status: 'failed', error: { code: 'CHILD_RUN_FAILED' } });
    expect(missing?.error?.message).toContain('could not start workflow "no-such-workflow"');
  });
});
