import { describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { OfflineLlmClient } from './offline.js';
import type { LlmRequest } from './types.js';

const request = (signal: AbortSignal): LlmRequest => ({
  role: 'planner',
  system: 'You plan.',
  messages: [{ role: 'user', content: 'Plan a CLI.' }],
  tool: { name: 'submit_plan', description: 'Submit the plan.', inputSchema: { type: 'object' } },
  maxTokens: 256,
  signal,
  inputs: {},
});

async function failure(reason: unknown): Promise<FleetError> {
  const llm = new OfflineLlmClient({ responders: { planner: () => ({ summary: 'ok' }) } });
  const c = new AbortController();
  c.abort(reason);
  const err = await llm.generate(request(c.signal)).then(() => undefined, (e: unknown) => e);
  if (!(err instanceof FleetError)) throw new Error(`expected a FleetError, got ${String(err)}`);
  return err;
}

describe('OfflineLlmClient on an aborted signal', () => {
  it('reports a timeout as PHASE_TIMEOUT (retried), as every provider does', async () => {
    const err = await failure(new DOMException('the attempt ran out of its 50 ms', 'TimeoutError'));
    expect([err.code, err.retryable]).toEqual(['PHASE_TIMEOUT', true]);
  });

  it('reports a cancel as PHASE_CANCELLED (not retried)', async () => {
    const err = await failure('cancelled by the manager');
    expect([err.code, err.retryable]).toEqual(['PHASE_CANCELLED', false]);
  });
});
