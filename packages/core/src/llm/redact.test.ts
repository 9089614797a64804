/**
 * The provider API key never leaves a provider error, wherever the provider echoes it: the real
 * Anthropic SDK against a local fake that puts the key in the `request-id` header, `error.details`
 * and the message.
 */
import { describe, expect, it } from 'vitest';
import { startFakeAnthropic } from '../../../../test/support/fake-anthropic.js';
import { FleetError } from '../errors.js';
import { AnthropicLlmClient } from './anthropic.js';

const API_KEY = 'sk-ant-echoed-9f8e7d6c5b4a3210';

describe('provider errors', { timeout: 10_000 }, () => {
  it('redact the key from the message, details (request id, error details) and cause', async () => {
    await using fake = await startFakeAnthropic({ apiKey: API_KEY });
    fake.enqueue({
      status: 400,
      errorType: 'invalid_request_error',
      message: `bad request for key ${API_KEY}`,
      headers: { 'request-id': `req_${API_KEY}` },
      details: { error_code: `key_${API_KEY}`, echoed: { key: API_KEY } },
    });
    const llm = new AnthropicLlmClient({ apiKey: API_KEY, baseURL: fake.url, model: 'claude-test', maxRetries: 0 });
    const err = await llm
      .generate({ role: 'planner', system: 's', messages: [{ role: 'user', content: 'hi' }], tool: { name: 'submit', description: 'Submit.', inputSchema: { type: 'object', properties: {} } }, maxTokens: 64, signal: AbortSignal.timeout(5_000), inputs: {} })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(FleetError);
    const e = err as FleetError;
    const everything = [e.message, e.stack ?? '', JSON.stringify(e.toJSON()), String((e.cause as Error | undefined)?.message), String((e.cause as Error | undefined)?.stack)].join('\n');
    expect(everything).not.toContain(API_KEY);
    expect(everything).toContain('[redacted]');
    expect(e.details?.['request_id']).toBe('req_[redacted]');
  });
});
