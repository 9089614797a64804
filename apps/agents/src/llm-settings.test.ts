/**
 * FLEET_ROLE_EFFORT, FLEET_ROLE_THINKING and FLEET_STRICT reach the Messages API request of the
 * roles they name, through the real SDK against the local fake server.
 */
import { loadConfig, type LlmRequest } from '@agentfleet/core';
import { describe, expect, it } from 'vitest';
import { startFakeAnthropic } from '../../../test/support/fake-anthropic.js';
import { createRoleLlmClients } from './llm.js';
import { BUILTIN_ROLES } from './roles/index.js';

const request = (role: string): LlmRequest => ({
  role,
  system: 's',
  messages: [{ role: 'user', content: 'u' }],
  tool: { name: 'submit', description: 'd', inputSchema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] } },
  maxTokens: 1024,
  signal: AbortSignal.timeout(5000),
  inputs: {},
  strict: true,
});

describe('per-role effort, thinking and strict from the environment', () => {
  it('sends effort and adaptive thinking for the roles named, and nothing for the others', async () => {
    await using fake = await startFakeAnthropic({ strict: 'honour', responder: () => ({ toolInput: { a: 'x' } }) });
    const env = { ANTHROPIC_API_KEY: 'sk-ant-test', ANTHROPIC_BASE_URL: fake.url, FLEET_ROLE_EFFORT: 'planner=high', FLEET_ROLE_THINKING: 'planner' };
    const llmFor = createRoleLlmClients(loadConfig(env), Object.values(BUILTIN_ROLES));
    expect((await llmFor('planner').generate(request('planner'))).output).toEqual({ a: 'x' });
    expect((await llmFor('coder').generate(request('coder'))).output).toEqual({ a: 'x' });
    const [planner, coder] = fake.requests.map((r) => r.body ?? {});
    expect(planner).toMatchObject({ thinking: { type: 'adaptive' }, output_config: { effort: 'high', format: { type: 'json_schema' } } });
    expect(coder).not.toHaveProperty('thinking');
    expect(coder).not.toHaveProperty('output_config');
    expect(coder).toMatchObject({ tools: [{ name: 'submit', strict: true }] });
  });

  it('FLEET_STRICT=false sends every tool without strict', async () => {
    await using fake = await startFakeAnthropic({ responder: () => ({ toolInput: { a: 'x' } }) });
    const llmFor = createRoleLlmClients(loadConfig({ ANTHROPIC_API_KEY: 'sk-ant-test', ANTHROPIC_BASE_URL: fake.url, FLEET_STRICT: 'false' }), Object.values(BUILTIN_ROLES));
    await llmFor('coder').generate(request('coder'));
    expect((fake.requests[0]?.body?.['tools'] as Array<Record<string, unknown>>)[0]).not.toHaveProperty('strict');
  });
});
