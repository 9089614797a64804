import {
  AnthropicLlmClient,
  MODEL_PRICES,
  OfflineLlmClient,
  OpenAiCompatibleLlmClient,
  tracedLlmClient,
  type FleetConfig,
  type LlmClient,
  type LlmEffort,
  type ModelPrice,
  type OfflineResponder,
} from '@agentfleet/core';
import type { AgentRole, RoleInput } from './roles/role.js';

type Provider = FleetConfig['provider'];

function providerClient(config: FleetConfig, provider: Provider, model: string, roles: readonly AgentRole[]): LlmClient {
  if (provider === 'anthropic') {
    if (!config.anthropicApiKey) throw new TypeError('createLlmClient: provider anthropic needs anthropicApiKey (ANTHROPIC_API_KEY)');
    const anthropic = new AnthropicLlmClient({ apiKey: config.anthropicApiKey, baseURL: config.anthropicBaseUrl, model, maxRetries: 0 });
    return tracedLlmClient(anthropic, { recordContent: config.traceContent, prices: fleetPrices(config) });
  }
  if (provider === 'openai-compatible') {
    if (!config.openaiBaseUrl) throw new TypeError('createLlmClient: provider openai-compatible needs openaiBaseUrl (FLEET_OPENAI_BASE_URL)');
    const client = new OpenAiCompatibleLlmClient({ baseURL: config.openaiBaseUrl, apiKey: config.openaiApiKey, model });
    return tracedLlmClient(client, { recordContent: config.traceContent, prices: fleetPrices(config) });
  }
  const responders: Record<string, OfflineResponder> = {};
  for (const role of roles) responders[role.name] = (request) => role.offline(request.inputs as unknown as RoleInput);
  return tracedLlmClient(new OfflineLlmClient({ responders, latencyMs: config.offlineLatencyMs, jitterMs: config.offlineJitterMs }), {
    recordContent: config.traceContent,
    prices: fleetPrices(config),
  });
}

/**
 * The LLM client the configuration asks for: Anthropic (real SDK) when a key is set, an
 * OpenAI-compatible server (`FLEET_PROVIDER=openai-compatible`), else the built-in offline model
 * answering with each role's deterministic `offline()` output.
 *
 * The SDKs' own retries are off (`maxRetries: 0`): BullMQ attempts with AgentFleet's backoff (which
 * honours `retry-after`) are the one retry policy, so retries never stack past the phase timeout.
 * Every call is traced and measured by {@link tracedLlmClient} (`chat <model>` spans, GenAI metrics).
 */
export function createLlmClient(config: FleetConfig, roles: readonly AgentRole[]): LlmClient {
  return providerClient(config, config.provider, config.model, roles);
}

/**
 * The client per role: `FLEET_ROLE_MODELS` (`planner=claude-opus-4-6,reviewer=openai-compatible:qwen3:8b`)
 * first, then the role's own `model` (custom roles), else the fleet's default client. Clients are
 * shared between roles on the same provider and model. The offline provider ignores models.
 *
 * @returns a function for the pool's `llmFor` option.
 */
export function createRoleLlmClients(config: FleetConfig, roles: readonly AgentRole[]): (role: string) => LlmClient {
  const fallback = createLlmClient(config, roles);
  const clients = new Map<string, LlmClient>();
  const byRole = new Map<string, LlmClient>();
  for (const role of roles) {
    const spec = config.roleModels[role.name] ?? (role.model || role.provider ? { provider: role.provider, model: role.model ?? config.model } : undefined);
    if (!spec) continue;
    const provider: Provider = spec.provider ?? config.provider;
    if (provider === 'offline') continue;
    const key = `${provider}:${spec.model}`;
    let client = clients.get(key);
    if (!client) {
      client = providerClient(config, provider, spec.model, roles);
      clients.set(key, client);
    }
    byRole.set(role.name, client);
  }
  const tuned = new Map<string, LlmClient>();
  for (const role of roles) {
    const client = byRole.get(role.name) ?? fallback;
    const effort = config.roleEffort[role.name];
    const thinking = config.roleThinking.includes(role.name);
    if (effort === undefined && !thinking && config.strict) continue;
    tuned.set(role.name, withRequestSettings(client, { effort, thinking, strict: config.strict }));
  }
  return (role) => tuned.get(role) ?? byRole.get(role) ?? fallback;
}

/**
 * `client` with the fleet's per-role settings applied to each request: `effort` and `thinking` where
 * the request (the role file) does not set them (`FLEET_ROLE_EFFORT`, `FLEET_ROLE_THINKING`), and
 * `strict` turned off everywhere when `FLEET_STRICT=false`.
 */
function withRequestSettings(client: LlmClient, settings: { effort: LlmEffort | undefined; thinking: boolean; strict: boolean }): LlmClient {
  return {
    provider: client.provider,
    model: client.model,
    generate: (request) =>
      client.generate({
        ...request,
        ...(request.effort === undefined && settings.effort !== undefined ? { effort: settings.effort } : {}),
        ...(request.thinking === undefined && settings.thinking ? { thinking: true } : {}),
        ...(settings.strict ? {} : { strict: false }),
      }),
  };
}

/** The price table: the built-in list prices with `FLEET_PRICES` over them. */
export function fleetPrices(config: FleetConfig): Readonly<Record<string, ModelPrice>> {
  return { ...MODEL_PRICES, ...config.prices };
}

/**
 * The pool options that follow from the configuration for issue 8's features: the client per role
 * (`FLEET_ROLE_MODELS`), the fleet-wide rate limits (`FLEET_RATE_LIMIT_*`), the price table
 * (`FLEET_PRICES`), how often a batch call looks again for its batch (`FLEET_BATCH_POLL_MS`) and
 * how many bytes of input files go inline (`FLEET_INPUT_FILES_INLINE_MAX_BYTES`).
 * Spread into `startAgentPool`'s options.
 */
export function agentPoolSettings(config: FleetConfig, roles: readonly AgentRole[]): {
  llmFor: (role: string) => LlmClient;
  rateLimits: FleetConfig['rateLimits'];
  prices: Readonly<Record<string, ModelPrice>>;
  traceContent: boolean;
  batchPollMs: number;
  inputFilesInlineMaxBytes: number;
} {
  return {
    llmFor: createRoleLlmClients(config, roles),
    rateLimits: config.rateLimits,
    prices: fleetPrices(config),
    traceContent: config.traceContent,
    batchPollMs: config.batchPollMs,
    inputFilesInlineMaxBytes: config.inputFilesInlineMaxBytes,
  };
}
