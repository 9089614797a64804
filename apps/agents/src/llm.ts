import { AnthropicLlmClient, OfflineLlmClient, tracedLlmClient, type FleetConfig, type LlmClient, type OfflineResponder } from '@agentfleet/core';
import type { AgentRole, RoleInput } from './roles/role.js';

/**
 * The LLM client the configuration asks for: Anthropic (real SDK) when a key is set, else the
 * built-in offline model answering with each role's deterministic `offline()` output.
 *
 * The SDK's own retries are off (`maxRetries: 0`): BullMQ attempts with AgentFleet's backoff (which
 * honours `retry-after`) are the one retry policy, so retries never stack past the phase timeout.
 * Every call is traced and measured by {@link tracedLlmClient} (`chat <model>` spans, GenAI metrics).
 */
export function createLlmClient(config: FleetConfig, roles: readonly AgentRole[]): LlmClient {
  if (config.provider === 'anthropic') {
    if (!config.anthropicApiKey) throw new TypeError('createLlmClient: provider anthropic needs anthropicApiKey');
    const anthropic = new AnthropicLlmClient({
      apiKey: config.anthropicApiKey,
      baseURL: config.anthropicBaseUrl,
      model: config.model,
      maxRetries: 0,
    });
    return tracedLlmClient(anthropic, { recordContent: config.traceContent });
  }
  const responders: Record<string, OfflineResponder> = {};
  for (const role of roles) responders[role.name] = (request) => role.offline(request.inputs as unknown as RoleInput);
  return tracedLlmClient(new OfflineLlmClient({ responders, latencyMs: config.offlineLatencyMs, jitterMs: config.offlineJitterMs }), {
    recordContent: config.traceContent,
  });
}
