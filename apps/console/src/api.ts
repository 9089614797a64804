/**
 * The console's only way to the manager: the public HTTP API, with the API key the user signed in
 * with (`Authorization: Bearer <key>`). Errors keep the API's answer verbatim so the page can show it.
 */

/** Usage of a phase or a run: tokens as summed, cost in USD. */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  cost_usd: number;
}

export type RunStatus = 'created' | 'queued' | 'active' | 'waiting' | 'completed' | 'failed' | 'cancelled';

export interface RunSummary {
  run_id: string;
  status: RunStatus;
  workflow: { name: string; version: string };
  created_at: string;
  finished_at: string | null;
  user_id: string | null;
  conversation_id: string | null;
  template: string | null;
}

export interface RunProgress {
  run_id: string;
  status: string;
  phases_total: number;
  phases_done: number;
  phases_failed: number;
  phases_running: number;
  duration_ms: number;
  usage: Usage;
}

export interface SerializedError {
  code: string;
  message: string;
  category?: string;
  retryable?: boolean;
  details?: Record<string, unknown>;
}

export interface PhaseResult {
  name: string;
  agent: string;
  status: string;
  attempts: number;
  iterations: number;
  duration_ms: number | null;
  usage: Usage;
  error?: SerializedError;
  reason?: string;
  cache_hit?: boolean;
  /** Model that answered the phase's last completion. */
  model?: string;
}

export interface RunDetail {
  run_id: string;
  status: RunStatus;
  workflow: { name: string; version: string };
  requirements: string;
  created_at: string;
  finished_at: string | null;
  duration_ms: number;
  phases: PhaseResult[];
  results: Record<string, unknown>;
  errors: Array<{ phase: string; error: SerializedError }>;
  usage: Usage;
  provider: string;
  model: string | null;
  /** Every model that answered a phase, in order of first use. */
  models?: string[];
  parallel_speedup: number;
  /** Share of the run's prompt tokens read from the provider's prompt cache, 0..1; null before any call. */
  prompt_cache_hit_rate?: number | null;
  links: Record<string, unknown>;
  waiting_for: Array<{ phase: string; event: string; prompt?: unknown }>;
  /** The run's concurrency key and limit, when it has one. */
  concurrency?: { key: string; limit: number | null };
  /** 1 (least urgent) .. 10 (most urgent), when the request or the workflow set one. */
  priority?: number;
  user_id: string | null;
  /** The schedule that started the run, and the fire time it stands for (ISO 8601). */
  schedule?: string | null;
  schedule_fire_time?: string | null;
}

export interface RunWorkflowPhase {
  name: string;
  kind: 'agent' | 'approval' | 'workflow' | 'tool';
  agent: string;
  description: string;
  depends_on: Array<{ phase: string; optional: boolean }>;
  max_iterations: number;
  retries: number;
  timeout_ms: number;
  instructions: string | null;
  input: string | null;
  workflow: string | null;
  tool: string | null;
}

export interface RunWorkflow {
  run_id: string;
  workflow: { name: string; version: string; description: string };
  phases: RunWorkflowPhase[];
}

/** One run event as the SSE stream sends it (`id` is the Redis Stream id). */
export interface RunEvent {
  id: string;
  type: string;
  data: { type: string; at?: number; phase?: string } & Record<string, unknown>;
}

/** An answer of the API other than 2xx: the status and the body exactly as sent. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`${status}: ${body}`);
    this.name = 'ApiError';
  }

  /** The API's `error.code` and `error.message` when the body is the API's error JSON. */
  get apiMessage(): string {
    try {
      const parsed = JSON.parse(this.body) as { error?: { code?: string; message?: string } };
      if (parsed.error?.message) return `${this.status} ${parsed.error.code ?? ''}: ${parsed.error.message}`;
    } catch {
      // not JSON: the body as is
    }
    return `${this.status}: ${this.body}`;
  }
}

const KEY_STORAGE = 'agentfleet.console.key';

/** The signed-in key (kept for this browser tab only), or null. */
export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_STORAGE);
  else sessionStorage.setItem(KEY_STORAGE, key);
}

/**
 * Call the API with the stored key.
 *
 * @throws ApiError for any status outside 2xx, with the body verbatim.
 */
export async function api<T>(method: string, path: string, body?: unknown, key: string | null = storedKey()): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  if (!res.ok) throw new ApiError(res.status, text);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** `text` for a query string value. */
export const q = encodeURIComponent;
