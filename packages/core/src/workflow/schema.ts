/**
 * The workflow file format, as users already write it (see shared/background/multi-agent-orchestrator-guide.md):
 * `name`, `description`, `version`, `agents`, `phases` (`name`, `agent`, `timeout` in seconds, `retries`,
 * `depends_on`), `error_handling` and `output`. Snake_case throughout, like the rest of the JSON surface.
 *
 * This module only describes shapes (zod). {@link compileWorkflow} in `./compile.ts` adds the graph checks
 * and turns a parsed file into the {@link WorkflowDefinition} the scheduler runs.
 */
import { z } from 'zod';
import { TEMPLATE_FIELD_SHAPES } from './template-fields.js';
import { BudgetSchema } from './budget.js';
import { SPENDING_FIELDS } from './spending.js';
import { ConcurrencySchema, PrioritySchema } from './concurrency.js';
import { AgentToolsSchema, InputFilesSchema, MaxTurnsSchema, McpServersSchema } from './agent-tools.js';
import { NAME_PATTERN } from './names.js';

export { NAME_PATTERN };

const name = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .regex(NAME_PATTERN, `${what} must start with a letter and use only letters, digits, "_" or "-" (at most 64)`);

/** A dependency: a phase name, or `{phase, optional}` when the dependent may run after it failed. */
export const DependencySchema = z.union([
  name('depends_on entry'),
  z.strictObject({ phase: name('depends_on[].phase'), optional: z.boolean().default(false) }),
]);

/** A condition: an expression over the context, or a structured test. */
export const ConditionSchema = z.union([
  z.string().min(1, 'condition must not be empty'),
  z.strictObject({ type: z.literal('result_contains'), phase: name('condition.phase'), value: z.string() }),
  z.strictObject({ type: z.literal('error_count'), max_errors: z.number().int().min(0) }),
]);

/** What an agent's result may ask of the run, declared on the phase (first matching rule wins). */
export const StepActionRuleSchema = z.strictObject({
  /** When to apply the action; always when omitted. */
  when: ConditionSchema.optional(),
  action: z.enum(['continue', 'repeat', 'jump', 'wait', 'complete']),
  /** The phase to jump to (required for `jump`). */
  target: name('step_actions[].target').optional(),
  /** Passed to the phase that runs next (e.g. "fix the findings"). */
  note: z.string().optional(),
  /** For `wait`: the external event type that resumes the run. */
  event: name('step_actions[].event').optional(),
});

export const AgentSelectSchema = z.union([
  z.strictObject({ type: z.literal('load_balanced'), agents: z.array(name('agent_select.agents entry')).min(1) }),
  z.strictObject({
    type: z.literal('based_on_input'),
    rules: z.array(z.strictObject({ contains: z.string().min(1), agent: name('agent_select.rules[].agent') })).min(1),
    default: name('agent_select.default'),
  }),
]);

export const PhaseSchema = z.strictObject({
  name: name('phase name'),
  description: z.string().optional(),
  /** `agent` (default): an agent role runs it. `approval`: the run waits for an `approval` event. */
  type: z.enum(['agent', 'approval']).default('agent'),
  /** Agent role that runs the phase: `planner` or `planner_agent`. */
  agent: name('agent').optional(),
  /** Pick the role at run time instead of a fixed `agent`. */
  agent_select: AgentSelectSchema.optional(),
  /** Run another workflow as this phase; its results become this phase's output. */
  workflow: name('workflow').optional(),
  /** Run a tool instead of an agent (served by the `tools` pool): `http_request`, `write_file`, `render_template` or a registered tool. */
  tool: name('tool').optional(),
  /** The tool's parameters; every string value is templated like `input` (`"{{base_url}}/issues/{{plan.tasks[0].id}}"`). */
  parameters: z.record(z.string(), z.unknown()).optional(),
  /** Seconds before the phase's attempt is aborted (for approvals: how long to wait). */
  timeout: z.number().positive('timeout is in seconds and must be > 0').max(7 * 86_400).default(300),
  /** Further attempts after the first fails with a transient error. */
  retries: z.number().int().min(0).max(100).default(2),
  /** Seconds before the first retry; doubles on each retry, with jitter. */
  retry_delay: z.number().min(0).max(3600).default(1),
  depends_on: z.array(DependencySchema).default([]),
  /** Overrides `error_handling.continue_on_error` for this phase. */
  continue_on_error: z.boolean().optional(),
  /** Run the phase only when this holds; otherwise it is skipped ("condition not met"). */
  condition: ConditionSchema.optional(),
  /** Extra instructions for the agent; may use `{{requirements}}`, `{{var}}` and `{{phase.field}}`. */
  instructions: z.string().max(65_536).optional(),
  /** Input text for the agent (templated like `instructions`). */
  input: z.string().max(262_144).optional(),
  /** How many times this phase may run within one run (step actions `repeat`/`jump`). */
  max_iterations: z.number().int().min(1).max(100).default(3),
  /** Rules that turn this phase's result into a step action (repeat, jump, wait, complete). */
  step_actions: z.array(StepActionRuleSchema).default([]),
  /** Reuse an identical earlier agent result (same role, model, prompt and inputs). */
  cache: z.boolean().optional(),
  /** For `type: approval`: the outcome when `timeout` passes with no event. */
  on_timeout: z.enum(['approve', 'reject']).default('reject'),
  /** Caps on this phase's model spend (./budget.ts). */
  budget: BudgetSchema.optional(),
  /** Model for this phase's agent calls, overriding the role's (on the role's provider), e.g. `claude-haiku-4-5`. */
  model: z.string().min(1, 'model names a model, e.g. claude-haiku-4-5').max(256).optional(),
  /** Prompt cache TTL, call mode (direct or batch) and batch timeout (./spending.ts). */
  ...SPENDING_FIELDS,
  /**
   * Tools the agent may call before it submits (a tool loop), besides the role's own: built-in
   * (`read_file`, `list_files`, `write_file`, `http_request`), user tools, or the name of an MCP
   * server of `mcp_servers` (see ./agent-tools.ts).
   */
  tools: AgentToolsSchema.optional(),
  /** Model calls the tool loop may make in one attempt. @defaultValue the role's, else 10 */
  max_turns: MaxTurnsSchema.optional(),
  /**
   * How the files of the phase's inputs reach the model: `inline`, `reference` (read with
   * `read_file`) or `auto` (by size, `FLEET_INPUT_FILES_INLINE_MAX_BYTES`). @defaultValue `inline`,
   * or `reference` when the phase's tools include `read_file`
   */
  input_files: InputFilesSchema.optional(),
});

export const ErrorHandlingSchema = z.strictObject({
  continue_on_error: z.boolean().default(false),
  fallback_workflow: name('fallback_workflow').nullable().default(null),
  max_total_retries: z.number().int().min(0).max(10_000).default(10),
});

export const OutputSchema = z.strictObject({
  format: z.enum(['structured', 'json', 'markdown']).default('structured'),
  include_agent_outputs: z.boolean().default(true),
  save_to_file: z.boolean().default(true),
});

export const WorkflowFileSchema = z.strictObject({
  name: name('name'),
  description: z.string().default(''),
  version: z.union([z.string().min(1), z.number()]).transform(String).default('1.0.0'),
  /** Agent roles the phases use; may be empty only when every phase is a tool phase (checked in compile). */
  agents: z.array(name('agents entry')).default([]),
  phases: z.array(PhaseSchema).min(1, 'a workflow needs at least one phase').max(1000, 'at most 1000 phases'),
  /** Caps on the run's model spend (./budget.ts). */
  budget: BudgetSchema.optional(),
  /** Defaults for every phase: prompt cache TTL, call mode and batch timeout (./spending.ts). */
  ...SPENDING_FIELDS,
  /** At most `limit` runs per rendered `key` active at once; the rest wait `queued` (./concurrency.ts). */
  concurrency: ConcurrencySchema.optional(),
  /** 1 (least urgent) .. 10 (most urgent): the run's phase jobs are taken before those of less urgent runs. */
  priority: PrioritySchema.optional(),
  /** MCP servers whose tools phases may use, by naming the server in their `tools`. */
  mcp_servers: McpServersSchema.default([]),
  error_handling: ErrorHandlingSchema.default({ continue_on_error: false, fallback_workflow: null, max_total_retries: 10 }),
  output: OutputSchema.default({ format: 'structured', include_agent_outputs: true, save_to_file: true }),
  /** Default values of `{{variables}}`; `--var key=value` overrides them. */
  variables: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are letters, digits and "_"'), z.string()).default({}),
  /** Cache agent results of every phase (a phase's own `cache` overrides it). */
  cache: z.boolean().default(false),
  /** Seconds a cached agent result stays usable. */
  cache_ttl: z.number().int().positive().max(30 * 86_400).default(86_400),
  // Template fields: category, tags, guidelines, state_schema, end_action_type/_target.
  ...TEMPLATE_FIELD_SHAPES,
});

/** A workflow file after zod parsing (defaults applied, graph not yet checked). */
export type WorkflowFile = z.output<typeof WorkflowFileSchema>;
/** What a user may write. */
export type WorkflowFileInput = z.input<typeof WorkflowFileSchema>;
