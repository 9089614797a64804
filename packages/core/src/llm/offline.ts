/**
 * The built-in offline model: answers without any network, deterministically from the request's
 * structured inputs, so the whole job runs (and tests can assert exact artifacts) with no API key.
 * Every answer is labelled as coming from the offline model by the role that builds it.
 */
import { FleetError, abortError } from '../errors.js';
import { sleep } from './abort.js';
import { messageText, type LlmClient, type LlmRequest, type LlmResponse } from './types.js';

/** Model name reported for offline answers. */
export const OFFLINE_MODEL = 'agentfleet-offline-1';

/** Builds one role's structured answer from the request (pure and deterministic). */
export type OfflineResponder = (request: LlmRequest) => unknown;

export interface OfflineClientOptions {
  /** Role name → responder. */
  responders: Record<string, OfflineResponder>;
  /** Simulated latency per call, ms. @defaultValue 0 */
  latencyMs?: number;
  /** Extra random latency in [0, jitterMs), ms (benchmarks only; 0 keeps answers timing-stable). @defaultValue 0 */
  jitterMs?: number;
}

/** Rough token count (4 characters a token), so usage and budgets behave plausibly offline. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export class OfflineLlmClient implements LlmClient {
  readonly provider = 'offline';
  readonly model = OFFLINE_MODEL;
  private calls = 0;

  constructor(private readonly options: OfflineClientOptions) {}

  /**
   * @throws FleetError `UNKNOWN_ROLE` when no responder serves `request.role`; `PHASE_TIMEOUT` or
   *   `PHASE_CANCELLED` when `request.signal` aborts during the simulated latency.
   */
  async generate(request: LlmRequest): Promise<LlmResponse> {
    const responder = this.options.responders[request.role];
    if (!responder) {
      throw new FleetError('UNKNOWN_ROLE', `the offline model has no answer for role "${request.role}"; roles it knows: ${Object.keys(this.options.responders).join(', ')}`);
    }
    const latency = (this.options.latencyMs ?? 0) + (this.options.jitterMs ? Math.random() * this.options.jitterMs : 0);
    if (latency > 0) await sleep(latency, request.signal);
    if (request.signal.aborted) throw abortError(request.signal, { what: 'the offline call' });
    const output = responder(request);
    const prompt = request.system + request.messages.map(messageText).join('\n');
    this.calls += 1;
    return {
      output,
      usage: { input_tokens: estimateTokens(prompt), output_tokens: estimateTokens(JSON.stringify(output)) },
      model: OFFLINE_MODEL,
      id: `offline_${this.calls}`,
      stopReason: 'tool_use',
    };
  }
}
