/**
 * One trace per run across processes: the manager (one process) and the agent pools (another) export
 * OTLP/HTTP to a local receiver that decodes what arrives. Spans join across processes through the
 * W3C trace context carried in the job data and the span identities stored with the run.
 */
import { FleetClient, createRedis, loadBuiltinWorkflow } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { startOtlpReceiver, OtlpSpanKind, type ReceivedSpan } from './support/otlp-receiver.js';
import { cliEnv, spawnCli } from './support/fleet.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './support/redis.js';

describe('tracing across the manager and agent processes', () => {
  it('exports one trace per run: run → phase → send → process → invoke_agent', async () => {
    const receiver = await startOtlpReceiver();
    const url = redisUrl();
    const prefix = uniquePrefix('tracing');
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '200' };
    const manager = spawnCli(['manager'], { ...cliEnv(url, prefix), ...otel, OTEL_SERVICE_NAME: 'test-manager' });
    const agents = spawnCli(['agents', '--roles', 'planner,designer,coder,reviewer'], { ...cliEnv(url, prefix), ...otel, OTEL_SERVICE_NAME: 'test-agents' });
    const redis = createRedis(url);
    const blocking = createRedis(url, { forWorker: true });
    const client = new FleetClient(redis, prefix);
    try {
      await manager.waitFor('manager: consuming');
      await agents.waitFor('agents: serving');
      // Run 1 is submitted from a process with tracing on (`fleet run`, service test-client), run 2 from
      // this test process, which has no OpenTelemetry SDK.
      const cli = spawnCli(['run', '--no-local-workers', '--json', 'A chat server'], { ...cliEnv(url, prefix), ...otel, OTEL_SERVICE_NAME: 'test-client' });
      expect(await cli.exited, cli.output()).toBe(0);
      const runId = await client.submit({ workflow: await loadBuiltinWorkflow('software-delivery'), requirements: 'A todo API', provider: 'offline' });
      const result = await client.follow(runId, blocking, () => undefined);
      expect(result.status).toBe('completed');
      // SIGTERM flushes the exporters before exit.
      expect(await agents.stop()).toBe(0);
      expect(await manager.stop()).toBe(0);

      const roots = await receiver.waitForSpans((s) => s.filter((x) => x.name === 'invoke_workflow software-delivery').length >= 2);
      const root = roots.find((s) => s.name === 'invoke_workflow software-delivery' && s.attributes['fleet.run.id'] !== runId);
      expect(root).toBeDefined();
      const trace = roots.filter((s) => s.traceId === root!.traceId);
      const cliRunId = root!.attributes['fleet.run.id'] as string;
      expect(root!.parentSpanId).toBe('');
      // Run and phase spans come from whichever process committed their end: here the agent pool that
      // finished the last phase. The run's first phase was queued by the submitting client (its `send` span).
      expect(root!.resource['service.name']).toBe('test-agents');
      expect(trace.find((s) => s.name === 'send agent-planner')?.resource['service.name']).toBe('test-client');
      const byId = new Map(trace.map((s) => [s.spanId, s]));
      const parentOf = (s: ReceivedSpan) => byId.get(s.parentSpanId);

      for (const [phase, role] of [['planning', 'planner'], ['design', 'designer'], ['implementation', 'coder'], ['review', 'reviewer']] as const) {
        const phaseSpan = trace.find((s) => s.name === `phase ${phase}`);
        expect(phaseSpan, `phase span of ${phase}`).toBeDefined();
        expect(parentOf(phaseSpan!)?.spanId).toBe(root!.spanId);
        const send = trace.find((s) => s.name === `send agent-${role}`);
        expect(send?.kind).toBe(OtlpSpanKind.Producer);
        expect(parentOf(send!)?.spanId).toBe(phaseSpan!.spanId);
        expect(send!.attributes['messaging.destination.name']).toBe(`agent-${role}`);
        expect(send!.attributes['messaging.message.id']).toBe(`${cliRunId}.${phase}.1`);
        const processSpan = trace.find((s) => s.name === `process agent-${role}`);
        expect(processSpan?.kind).toBe(OtlpSpanKind.Consumer);
        expect(processSpan!.resource['service.name']).toBe('test-agents');
        expect(parentOf(processSpan!)?.spanId).toBe(send!.spanId);
        const agent = trace.find((s) => s.name === `invoke_agent ${role}`);
        expect(parentOf(agent!)?.spanId).toBe(processSpan!.spanId);
      }

      // Run 2: a submitter without an SDK records no `send` span, yet the run is one whole trace: the
      // first phase job carries its phase span's identity, so the worker's spans join under it.
      const root2 = roots.find((s) => s.name === 'invoke_workflow software-delivery' && s.attributes['fleet.run.id'] === runId);
      expect(root2).toBeDefined();
      const trace2 = roots.filter((s) => s.traceId === root2!.traceId);
      const byId2 = new Map(trace2.map((s) => [s.spanId, s]));
      const planning = trace2.find((s) => s.name === 'phase planning');
      expect(planning?.parentSpanId).toBe(root2!.spanId);
      expect(trace2.some((s) => s.name === 'send agent-planner')).toBe(false);
      const firstProcess = trace2.find((s) => s.name === 'process agent-planner');
      expect(firstProcess?.parentSpanId).toBe(planning!.spanId);
      for (const [phase, role] of [['design', 'designer'], ['implementation', 'coder'], ['review', 'reviewer']] as const) {
        const phaseSpan = trace2.find((s) => s.name === `phase ${phase}`);
        const processSpan = trace2.find((s) => s.name === `process agent-${role}`);
        expect(byId2.get(byId2.get(processSpan!.parentSpanId)!.parentSpanId)?.spanId, `${phase}: process → send → phase`).toBe(phaseSpan!.spanId);
        const agent = trace2.find((s) => s.name === `invoke_agent ${role}`);
        expect(agent!.attributes['gen_ai.usage.output_tokens']).toBe(result.phases.find((p) => p.name === phase)!.usage.output_tokens);
      }
      // One gen_ai.provider.name per provider on every span that carries one (invoke_agent and chat alike).
      const providerNames = new Set(trace.concat(trace2).flatMap((s) => (s.attributes['gen_ai.provider.name'] === undefined ? [] : [s.attributes['gen_ai.provider.name']])));
      expect([...providerNames]).toEqual(['agentfleet.offline']);
    } finally {
      await Promise.all([manager.stop('SIGKILL'), agents.stop('SIGKILL')]);
      await client.close();
      blocking.disconnect();
      redis.disconnect();
      await cleanupPrefix(url, prefix);
      await receiver.close();
    }
  });
});
