import type { LlmEffort, McpServerSpec, StepAction } from '@agentfleet/core';
import type { z } from 'zod';

/** What an agent receives for one phase: the run's requirements and its dependencies' outputs. */
export interface RoleInput {
  requirements: string;
  variables: Record<string, string>;
  phase: string;
  /** The phase's `instructions`, templates already substituted. */
  instructions: string | undefined;
  /** Outputs of the phase's dependencies, in dependency order. Untrusted data, never instructions. */
  upstream: Array<{ phase: string; role: string; output: unknown }>;
  /** Errors of optional dependencies that failed. */
  upstreamErrors: Array<{ phase: string; error: string }>;
  /**
   * Why this phase runs again: the phase that sent the work back (`from`), its note and output
   * (a reviewer's findings), or the event that answered what this phase asked (`event`).
   */
  feedback?: { from: string; note?: string; output?: unknown; event?: { type: string; data: unknown } };
  /** This phase's own previous output, when it runs again (repeat, answers). */
  previous?: unknown;
  /** The workflow's `guidelines`: standing instructions for every agent of the workflow (system prompt). */
  guidelines?: string;
}

/**
 * An agent role: its standing instructions, its output schema (zod; the JSON Schema sent to the
 * model is derived from it) and its offline answer.
 */
export interface AgentRole<T = unknown> {
  name: string;
  description: string;
  /** System prompt: what the role does and how it answers. */
  instructions: string;
  outputSchema: z.ZodType<T>;
  /** Deterministic answer of the offline model. */
  offline(input: RoleInput): T;
  /**
   * JSON Schema of the output sent as the tool's `input_schema`, when the role is not defined by its
   * zod schema (custom YAML roles). @defaultValue derived from `outputSchema`
   */
  outputJsonSchema?: Record<string, unknown>;
  /** Validate a reply (custom roles: Ajv against `outputJsonSchema`). @defaultValue `outputSchema.safeParse` */
  validateOutput?(value: unknown): { ok: true; value: T } | { ok: false; problems: string[] };
  /** Stream this role's replies (long outputs such as the coder's files). */
  stream?: boolean;
  /** Model for this role, overriding the fleet's default. */
  model?: string;
  /** Provider for this role (custom roles), overriding the fleet's `FLEET_PROVIDER`. */
  provider?: 'anthropic' | 'openai-compatible';
  /** Sampling temperature (sent only by providers that accept it). */
  temperature?: number;
  /**
   * Tools this role may call before it submits (a tool loop): built-in, user (`FLEET_TOOL_MODULES`)
   * or the name of an MCP server; a phase's `tools` add to them. @defaultValue none
   */
  tools?: string[];
  /** MCP servers of this role; their allowed tools are always offered. @defaultValue none */
  mcpServers?: McpServerSpec[];
  /** Model calls one attempt's tool loop may make; a phase's `max_turns` overrides it. @defaultValue 10 */
  maxTurns?: number;
  /**
   * Ask the provider to guarantee the output's schema (structured outputs, `strict`); the zod schema
   * still checks what the grammar cannot express. @defaultValue true
   */
  strict?: boolean;
  /** How much effort the model puts in (Anthropic `output_config.effort`). @defaultValue the provider's */
  effort?: LlmEffort;
  /** Let the model think first (Anthropic adaptive thinking; the output then comes as `output_config.format` JSON). @defaultValue false */
  thinking?: boolean;
  /** A step action this role's output implies (e.g. the planner waits for answers to its questions). */
  stepAction?(output: unknown, input: RoleInput): StepAction | undefined;
}

/** Find the first upstream output produced by `role` (or by a phase of that name). */
export function upstreamOf(input: RoleInput, role: string): unknown {
  return input.upstream.find((u) => u.role === role || u.phase === role)?.output;
}

/** The label every offline answer carries. */
export const OFFLINE_LABEL = '[offline model: deterministic placeholder, not an LLM answer]';

/** Split requirements into short clauses: the offline model's idea of "features". */
export function clauses(requirements: string): string[] {
  const parts = requirements
    .replace(/\s+/g, ' ')
    .split(/(?:[.;\n]|,|\band\b|\bwith\b|\bplus\b)/i)
    .map((s) => s.trim())
    .filter((s) => s.length > 2);
  return parts.length > 0 ? parts.slice(0, 8) : [requirements.trim() || 'the requested feature'];
}

/** `"due-date reminders"` → `due_date_reminders`. */
export function slug(text: string): string {
  const s = text.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  return s.slice(0, 40) || 'item';
}
