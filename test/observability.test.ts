/**
 * Observability end to end, with the manager and the agents in separate `fleet` processes, the
 * agents calling the real Anthropic SDK against a local fake of the Messages API:
 *
 * - traces: one trace per run; run → phase → send → process → invoke_agent → chat; the chat spans'
 *   GenAI token attributes equal the usage in the run result; a phase that got a 529 once shows two
 *   attempts, the first with its error recorded; a fan-in phase links to each dependency's span;
 * - metrics: `/metrics` of the manager shows the queue depth moving (a job waits while no agent
 *   runs, then none), `/metrics` of the agents shows token usage;
 * - logs: JSON lines with trace ids, and neither the API key nor the Redis password anywhere in
 *   what the processes wrote.
 */
import { designer, planner, reviewer, type RoleInput } from '@agentfleet/agents';
import { FleetClient, compileWorkflow, createRedis } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeReply } from './support/fake-anthropic.js';
import { startOtlpReceiver, OtlpSpanKind, OtlpStatusCode, type ReceivedSpan } from './support/otlp-receiver.js';
import { cliEnv, spawnCli, type CliProcess } from './support/fleet.js';
import { cleanupPrefix, freePort, redisUrl, startRedisServer, uniquePrefix } from './support/redis.js';

const emptyInput: RoleInput = { requirements: 'A todo API', variables: {}, phase: 'p', instructions: undefined, upstream: [], upstreamErrors: [] };
const answers: Record<string, unknown> = {
  submit_planner_output: planner.offline(emptyInput),
  submit_designer_output: designer.offline(emptyInput),
  submit_reviewer_output: reviewer.offline(emptyInput),
};
const USAGE = { input_tokens: 120, output_tokens: 45, cache_read_input_tokens: 30, cache_creation_input_tokens: 7 };
const answer = (tool: string | undefined): FakeReply => ({ delayMs: 100, then: { toolInput: answers[tool ?? ''], usage: USAGE } });

/** plan → (api, data) → review: a fan-out and a fan-in. */
const workflow = compileWorkflow({
  name: 'obs',
  agents: ['planner', 'designer', 'reviewer'],
  phases: [
    { name: 'plan', agent: 'planner', timeout: 10, retries: 1, retry_delay: 0.1 },
    { name: 'api', agent: 'designer', depends_on: ['plan'], timeout: 10 },
    { name: 'data', agent: 'designer', depends_on: ['plan'], timeout: 10 },
    { name: 'review', agent: 'reviewer', depends_on: ['api', 'data'], timeout: 10 },
  ],
});

/** The value of a Prometheus sample whose name is `name` and whose labels include `labels`; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function scrapeUntil(port: number, ok: (text: string) => boolean, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
    if (ok(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`/metrics on ${port} never met the condition; last scrape:\n${text.slice(0, 4000)}`);
}

describe('observability across the manager and agent processes', () => {
  it('traces, meters and logs one run end to end', async () => {
    // Redis with a password, and a canary API key: neither may appear in any output.
    const apiKey = 'sk-ant-canary-7f3a9c1e5b2d4f60';
    const password = 'redis-canary-pw-93b1';
    const redisServer = await startRedisServer();
    const admin = createRedis(redisServer.url);
    await admin.config('SET', 'requirepass', password);
    admin.disconnect();
    const url = redisServer.url.replace('redis://', `redis://:${password}@`);
    void redisUrl;
    const prefix = uniquePrefix('observability');
    const receiver = await startOtlpReceiver();
    const fake = await startFakeAnthropic({ apiKey });
    fake.enqueue({ status: 529, errorType: 'overloaded_error', message: 'Overloaded' });
    fake.setResponder((req) => answer(req.forcedToolName));
    const [managerPort, agentsPort] = [await freePort(), await freePort()];
    const env = {
      ...cliEnv(url, prefix, { ANTHROPIC_API_KEY: apiKey }),
      ANTHROPIC_BASE_URL: fake.url,
      FLEET_MODEL: 'claude-sonnet-4-5',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      FLEET_METRICS_POLL_MS: '100',
      FLEET_LOG_LEVEL: 'debug',
    };
    let agents: CliProcess | undefined;
    const manager = spawnCli(['manager', '--metrics-port', String(managerPort)], { ...env, OTEL_SERVICE_NAME: 'obs-manager' });
    const redis = createRedis(url);
    const blocking = createRedis(url, { forWorker: true });
    const client = new FleetClient(redis, prefix);
    try {
      await manager.waitFor('manager: consuming');
      const submittedBefore = Date.now();
      const runId = await client.submit({ workflow, requirements: 'A todo API', provider: 'anthropic' });

      // No agent runs yet: the plan job waits, and the manager's /metrics says so.
      const waitingLabels = { fleet_agent_role: 'planner', fleet_queue_state: 'waiting' };
      const before = await scrapeUntil(managerPort, (t) => sample(t, 'fleet_queue_jobs', waitingLabels) === 1);
      // The plan job's age, s: never more than the time since it was submitted.
      const oldest = sample(before, 'fleet_queue_oldest_wait_seconds', { fleet_agent_role: 'planner' });
      expect(oldest).toBeTypeOf('number');
      expect(oldest).toBeGreaterThanOrEqual(0);
      expect(oldest).toBeLessThanOrEqual((Date.now() - submittedBefore) / 1000);

      agents = spawnCli(['agents', '--roles', 'planner,designer,reviewer', '--concurrency', '1', '--metrics-port', String(agentsPort)], {
        ...env,
        OTEL_SERVICE_NAME: 'obs-agents',
      });
      await agents.waitFor('agents: serving');
      const result = await client.follow(runId, blocking, () => undefined);
      expect(result.status).toBe('completed');
      expect(result.phases.find((p) => p.name === 'plan')?.attempts).toBe(2);

      // The queue drained, and the agents counted tokens. Phase and run metrics come from whichever
      // process committed the event (here the agents, which commit outcomes; the manager only when it
      // applies a deadline or a cancellation): a dashboard sums them across processes, and so does this.
      await scrapeUntil(managerPort, (t) => sample(t, 'fleet_queue_jobs', waitingLabels) === 0);
      const summed = async (name: string, labels: Record<string, string>) => {
        const texts = await Promise.all([managerPort, agentsPort].map((port) => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text())));
        return texts.reduce((sum, t) => sum + (sample(t, name, labels) ?? 0), 0);
      };
      await scrapeUntil(agentsPort, (t) => (sample(t, 'fleet_run_duration_seconds_count', { fleet_run_status: 'completed' }) ?? 0) >= 1);
      expect(await summed('fleet_run_duration_seconds_count', { fleet_run_status: 'completed' })).toBe(1);
      expect(await summed('fleet_phase_duration_seconds_count', { fleet_phase_name: 'review', fleet_phase_status: 'completed' })).toBe(1);
      expect(await summed('fleet_phase_retries_total', { fleet_phase_name: 'plan', error_type: 'PROVIDER_OVERLOADED' })).toBe(1);
      const agentsText = await scrapeUntil(agentsPort, (t) => (sample(t, 'gen_ai_client_token_usage_count', { gen_ai_token_type: 'output' }) ?? 0) >= 4);
      expect(sample(agentsText, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'output' })).toBe(4 * USAGE.output_tokens);
      expect(sample(agentsText, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input' })).toBe(
        4 * (USAGE.input_tokens + USAGE.cache_read_input_tokens + USAGE.cache_creation_input_tokens),
      );
      expect(sample(agentsText, 'fleet_llm_cost_usd_total', { gen_ai_request_model: 'claude-sonnet-4-5' })).toBeGreaterThan(0);
      expect(sample(agentsText, 'fleet_phase_schedule_to_start_seconds_count', { fleet_agent_role: 'planner' })).toBe(1);
      // Every family with a unit carries its Prometheus suffix, as a Collector converting OTLP would name it.
      expect(sample(agentsText, 'gen_ai_client_operation_duration_seconds_count')).toBeGreaterThan(0);
      expect(agentsText).not.toMatch(/^fleet_phase_duration_(bucket|sum|count)\b/m);

      // SIGTERM flushes the exporters before exit.
      expect(await agents.stop()).toBe(0);
      expect(await manager.stop()).toBe(0);

      const spans = await receiver.waitForSpans(
        (s) => s.some((x) => x.name === 'invoke_workflow obs') && s.filter((x) => x.name === 'chat claude-sonnet-4-5').length >= 5,
        10_000,
      );
      const root = spans.find((s) => s.name === 'invoke_workflow obs' && s.attributes['fleet.run.id'] === runId);
      expect(root).toBeDefined();
      const trace = spans.filter((s) => s.traceId === root!.traceId);
      expect(spans.filter((s) => s.attributes['fleet.run.id'] === runId).every((s) => s.traceId === root!.traceId)).toBe(true);
      const byId = new Map(trace.map((s) => [s.spanId, s]));
      const parentOf = (s: ReceivedSpan) => byId.get(s.parentSpanId);

      for (const phase of ['plan', 'api', 'data', 'review']) {
        const role = workflow.phases.find((p) => p.name === phase)!.agent;
        const phaseSpan = trace.find((s) => s.name === `phase ${phase}`)!;
        expect(parentOf(phaseSpan)?.spanId).toBe(root!.spanId);
        const send = trace.find((s) => s.name === `send agent-${role}` && s.attributes['fleet.phase.name'] === phase);
        if (phase === 'plan') {
          // Queued by this test's client, which has no SDK: no `send` span, the job carries the phase span.
          expect(send).toBeUndefined();
        } else {
          expect(send?.kind).toBe(OtlpSpanKind.Producer);
          expect(parentOf(send!)?.spanId).toBe(phaseSpan.spanId);
        }
        const attempts = trace.filter((s) => s.name === `process agent-${role}` && s.parentSpanId === (send ?? phaseSpan).spanId);
        expect(attempts.map((s) => s.attributes['fleet.phase.attempt']).sort()).toEqual(phase === 'plan' ? [1, 2] : [1]);
        for (const attempt of attempts) {
          expect(attempt.kind).toBe(OtlpSpanKind.Consumer);
          expect(attempt.resource['service.name']).toBe('obs-agents');
          const agent = trace.find((s) => s.name === `invoke_agent ${role}` && s.parentSpanId === attempt.spanId)!;
          const chat = trace.find((s) => s.name === 'chat claude-sonnet-4-5' && s.parentSpanId === agent.spanId)!;
          expect(chat.kind).toBe(OtlpSpanKind.Client);
          if (attempt.attributes['fleet.phase.attempt'] === 1 && phase === 'plan') {
            // The failed attempt: its error is on every span of the attempt.
            for (const failed of [attempt, agent, chat]) {
              expect(failed.status.code, failed.name).toBe(OtlpStatusCode.Error);
              expect(failed.events.some((e) => e.name === 'exception'), failed.name).toBe(true);
            }
            expect(chat.attributes['error.type']).toBe('PROVIDER_OVERLOADED');
            continue;
          }
          const usage = result.phases.find((p) => p.name === phase)!.usage;
          expect(chat.attributes['gen_ai.usage.output_tokens']).toBe(usage.output_tokens);
          expect(chat.attributes['gen_ai.usage.input_tokens']).toBe(
            usage.input_tokens + Number(chat.attributes['gen_ai.usage.cache_read.input_tokens']) + Number(chat.attributes['gen_ai.usage.cache_creation.input_tokens']),
          );
          expect(chat.attributes).toMatchObject({
            'gen_ai.operation.name': 'chat',
            'gen_ai.provider.name': 'anthropic',
            'gen_ai.request.model': 'claude-sonnet-4-5',
            'gen_ai.request.max_tokens': 8192,
            'gen_ai.response.finish_reasons': ['tool_use'],
            'gen_ai.usage.cache_read.input_tokens': USAGE.cache_read_input_tokens,
            'gen_ai.usage.cache_creation.input_tokens': USAGE.cache_creation_input_tokens,
          });
          expect(chat.attributes['gen_ai.response.id']).toMatch(/^msg_/);
          expect(chat.attributes['gen_ai.input.messages']).toBeUndefined();
        }
      }
      // The fan-in phase links to both phases it depends on.
      const review = trace.find((s) => s.name === 'phase review')!;
      const linked = review.links.map((l) => byId.get(l.spanId)?.name).sort();
      expect(linked).toEqual(['phase api', 'phase data']);
      // Only our spans: the SDK's own would be a second span per call.
      expect(spans.filter((s) => s.scope.name.startsWith('@anthropic-ai'))).toEqual([]);

      // Logs: JSON lines with trace ids; no secret anywhere in what either process wrote.
      const output = manager.output() + agents.output();
      expect(output).not.toContain(apiKey);
      expect(output).not.toContain(password);
      const lines = output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const completed = lines.find((l) => l.msg === 'phase attempt completed' && l.phase === 'review');
      expect(completed?.trace_id).toBe(root!.traceId);
      expect(lines.find((l) => l.msg === 'phase attempt failed')).toMatchObject({ phase: 'plan', attempt: 1, will_retry: true, level: 'warn' });
      expect(lines.find((l) => l.msg === 'phase enqueued' && l.phase === 'review')?.trace_id).toBe(root!.traceId);
    } finally {
      await Promise.all([manager.stop('SIGKILL'), agents?.stop('SIGKILL')]);
      await client.close();
      blocking.disconnect();
      redis.disconnect();
      await cleanupPrefix(url, prefix).catch(() => 0);
      await Promise.all([receiver.close(), fake.close(), redisServer.stop()]);
    }
  });
});
