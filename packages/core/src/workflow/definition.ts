/**
 * The compiled workflow: what the scheduler and the workers run. Durations are in milliseconds here
 * (the file says seconds); agent names are bare role names (`planner`, never `planner_agent`); every
 * default is filled in and every phase's `continue_on_error` is resolved against the workflow's.
 *
 * A run stores the definition it started with, so editing a workflow never changes a run in flight.
 */
import type { Budget } from './budget.js';
import type { ConcurrencySpec } from './concurrency.js';
import type { McpServerSpec } from './agent-tools.js';
import type { TemplateFields } from './template-fields.js';

export interface PhaseDependency {
  phase: string;
  /** When true the dependent runs even if this dependency failed, and sees its error in the context. */
  optional: boolean;
}

/** A condition as written in the workflow (parsed where it is evaluated). JSON-safe. */
export type ConditionSpec = string | { type: 'result_contains'; phase: string; value: string } | { type: 'error_count'; max_errors: number };

export type StepActionType = 'continue' | 'repeat' | 'jump' | 'wait' | 'complete';

export interface StepActionRule {
  when: ConditionSpec | undefined;
  action: StepActionType;
  target: string | undefined;
  note: string | undefined;
  /** For `wait`: the event type that resumes the run. */
  event: string | undefined;
}

export type AgentSelect =
  | { type: 'load_balanced'; agents: string[] }
  | { type: 'based_on_input'; rules: Array<{ contains: string; agent: string }>; default: string };

/** `agent`: a role runs it; `approval`: a person (an external event) decides; `workflow`: a child run; `tool`: the `tools` pool runs a tool. */
export type PhaseKind = 'agent' | 'approval' | 'workflow' | 'tool';

export interface PhaseDefinition {
  name: string;
  description: string;
  kind: PhaseKind;
  /**
   * Agent role (queue) that runs the phase. With `agentSelect`, the role used when selection has
   * nothing to go on; `approval` for approval phases; `workflow` for child-workflow phases.
   */
  agent: string;
  agentSelect: AgentSelect | undefined;
  /** Child workflow name (kind `workflow`). */
  workflow: string | undefined;
  /** Tool name (kind `tool`; `agent` is then `tools`, the queue of the tool pool). */
  tool?: string | undefined;
  /** Tool parameters as written (kind `tool`): string values are templates rendered by the tool worker. */
  parameters?: Record<string, unknown> | undefined;
  condition: ConditionSpec | undefined;
  /** Templated input text for the agent. */
  input: string | undefined;
  stepActions: StepActionRule[];
  /** Reuse identical earlier agent results. */
  cache: boolean;
  /** Approval phases: the outcome when the wait times out. */
  onTimeout: 'approve' | 'reject';
  /** Per-attempt timeout, ms. */
  timeoutMs: number;
  /** Further attempts after a transient failure. */
  retries: number;
  /** Delay before the first retry, ms; exponential with jitter after that. */
  retryDelayMs: number;
  dependsOn: PhaseDependency[];
  /**
   * Phases this one depends on, directly or not, in dependency order: computed when the workflow is
   * compiled (absent in definitions stored before; read it through `upstreamOf`, ./graph.ts).
   */
  upstream?: string[] | undefined;
  /** Phases that depend on this one, directly or not, in dependency order (as `upstream`; read through `downstreamOf`). */
  downstream?: string[] | undefined;
  /** Resolved: the phase's own setting, else the workflow's. */
  continueOnError: boolean;
  instructions: string | undefined;
  maxIterations: number;
  /** Caps on this phase's model spend. */
  budget?: Budget | undefined;
  /** Model for this phase's agent calls, overriding the role's. */
  model?: string | undefined;
  /** Resolved (phase, else workflow): how long the provider keeps the prompt prefix cached; absent: the provider's default (5 minutes). */
  promptCacheTtl?: '5m' | '1h' | undefined;
  /** Resolved (phase, else workflow): `batch` sends the calls through the Message Batches API; absent: direct. */
  mode?: 'direct' | 'batch' | undefined;
  /** Resolved: how long a batch phase waits for its batch, ms. Absent: 24 h. */
  batchTimeoutMs?: number | undefined;
  /** Tools the agent may call in this phase, besides the role's own (see ../workflow/agent-tools.ts). */
  tools?: string[] | undefined;
  /** Model calls the phase's tool loop may make per attempt; the role's, else 10, when absent. */
  maxTurns?: number | undefined;
  /** How the files of the phase's inputs reach the model (see ../workflow/agent-tools.ts `InputFilesSchema`); absent: inline, or by reference with `read_file`. */
  inputFiles?: 'auto' | 'inline' | 'reference' | undefined;
}

/** Template fields, all optional: see ./template-fields.ts. */
export interface WorkflowDefinition extends TemplateFields {
  name: string;
  description: string;
  version: string;
  agents: string[];
  /** In file order, which is also a valid topological order after compilation. */
  phases: PhaseDefinition[];
  /** Default variable values; the run's own variables override them. */
  variables: Record<string, string>;
  /** How long cached agent results stay usable, ms. */
  cacheTtlMs: number;
  /** Caps on the run's model spend; a request's budget may tighten it. */
  budget?: Budget | undefined;
  /** Concurrency key (a template over the run's variables) and limit; a request's setting overrides it. */
  concurrency?: ConcurrencySpec | undefined;
  /** 1 (least urgent) .. 10 (most urgent); a request's priority overrides it. Absent: 5. */
  priority?: number | undefined;
  /** MCP servers phases may name in their `tools`. */
  mcpServers?: McpServerSpec[] | undefined;
  errorHandling: {
    continueOnError: boolean;
    fallbackWorkflow: string | null;
    maxTotalRetries: number;
  };
  output: {
    format: 'structured' | 'json' | 'markdown';
    includeAgentOutputs: boolean;
    saveToFile: boolean;
  };
}
