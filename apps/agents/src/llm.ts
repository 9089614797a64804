import { AnthropicLlmClient, OfflineLlmClient, type FleetConfig, type LlmClient, type OfflineResponder } from '@agentfleet/core';
import type { AgentRole, RoleInput } from './roles/role.js';

/**
 * The LLM client the configuration asks for: Anthropic (real SDK) when a key is set, else the
 * built-in offline model answering with each role's deterministic `offline()` output.
 *
 * SDK retries are kept low (1): BullMQ's attempts with backoff are the main retry policy, so the two
 * do not multiply past the phase timeout; each SDK attempt is also bounded by the phase's AbortSignal.
 */
export function createLlmClient(config: FleetConfig, roles: readonly AgentRole[]): LlmClient {
  if (config.provider === 'anthropic') {
    if (!config.anthropicApiKey) throw new TypeError('createLlmClient: provider anthropic needs anthropicApiKey');
    return new AnthropicLlmClient({
      apiKey: config.anthropicApiKey,
      baseURL: config.anthropicBaseUrl,
      model: config.model,
      maxRetries: 1,
    });
  }
  const responders: Record<string, OfflineResponder> = {};
  for (const role of roles) responders[role.name] = (request) => role.offline(request.inputs as unknown as RoleInput);
  return new OfflineLlmClient({ responders, latencyMs: config.offlineLatencyMs });
}
