/**
 * Job payloads are bounded (BullMQ sizeLimit) and large agent outputs travel apart from job data:
 * a 200 KiB coder output reaches the run's context although a report may hold at most 128 KiB.
 */
import { coder } from '@agentfleet/agents';
import { JOB_SIZE_LIMITS, MAX_INLINE_OUTPUT_BYTES } from '@agentfleet/core';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from './support/fake-anthropic.js';
import { fakeAnthropicClient, startFleet, testWorkflow, type FleetFixture } from './support/fleet.js';

let fake: FakeAnthropic | undefined;
let fleet: FleetFixture | undefined;
afterEach(async () => {
  await fleet?.close();
  await fake?.close();
});

describe('large outputs', () => {
  it('a 200 KiB output is staged apart from the report and lands whole in the context', async () => {
    fake = await startFakeAnthropic();
    fleet = await startFleet({ name: 'large-output', roles: [coder], llm: fakeAnthropicClient(fake.url) });
    const content = 'x'.repeat(200 * 1024);
    const big = { files: [{ path: 'big.txt', language: 'text', content }], notes: 'a large file' };
    expect(200 * 1024).toBeGreaterThan(JOB_SIZE_LIMITS.managerReport);
    expect(200 * 1024).toBeGreaterThan(MAX_INLINE_OUTPUT_BYTES);
    fake.setResponder(() => ({ toolInput: big }));
    const { result } = await fleet.run(testWorkflow({ agents: ['coder'], phases: [{ name: 'implementation', agent: 'coder' }] }), 'Write a big file');
    expect(result.status).toBe('completed');
    expect((result.results.implementation as typeof big).files[0]?.content).toHaveLength(content.length);
    expect(await fleet.redis.keys(`${fleet.prefix}:run:${result.run_id}:staged:*`)).toEqual([]);
  });
});
