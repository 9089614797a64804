/**
 * The workflow file format, as users already write it (see shared/background/multi-agent-orchestrator-guide.md):
 * `name`, `description`, `version`, `agents`, `phases` (`name`, `agent`, `timeout` in seconds, `retries`,
 * `depends_on`), `error_handling` and `output`. Snake_case throughout, like the rest of the JSON surface.
 *
 * This module only describes shapes (zod). {@link compileWorkflow} in `./compile.ts` adds the graph checks
 * and turns a parsed file into the {@link WorkflowDefinition} the scheduler runs.
 */
import { z } from 'zod';

/** Phase and workflow names: they become parts of Redis keys and BullMQ job ids. */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const name = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .regex(NAME_PATTERN, `${what} must start with a letter and use only letters, digits, "_" or "-" (at most 64)`);

/** A dependency: a phase name, or `{phase, optional}` when the dependent may run after it failed. */
export const DependencySchema = z.union([
  name('depends_on entry'),
  z.strictObject({ phase: name('depends_on[].phase'), optional: z.boolean().default(false) }),
]);

export const PhaseSchema = z.strictObject({
  name: name('phase name'),
  description: z.string().optional(),
  /** Agent role that runs the phase: `planner` or `planner_agent`. */
  agent: name('agent'),
  /** Seconds before the phase's attempt is aborted. */
  timeout: z.number().positive('timeout is in seconds and must be > 0').max(86_400).default(300),
  /** Further attempts after the first fails with a transient error. */
  retries: z.number().int().min(0).max(100).default(2),
  /** Seconds before the first retry; doubles on each retry, with jitter. */
  retry_delay: z.number().min(0).max(3600).default(1),
  depends_on: z.array(DependencySchema).default([]),
  /** Overrides `error_handling.continue_on_error` for this phase. */
  continue_on_error: z.boolean().optional(),
  /** Extra instructions for the agent; may use `{{requirements}}`, `{{var}}` and `{{phase.field}}`. */
  instructions: z.string().max(65_536).optional(),
  /** How many times this phase may run within one run (step actions `repeat`/`jump`). */
  max_iterations: z.number().int().min(1).max(100).default(3),
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
  agents: z.array(name('agents entry')).min(1, 'list at least one agent role'),
  phases: z.array(PhaseSchema).min(1, 'a workflow needs at least one phase').max(1000, 'at most 1000 phases'),
  error_handling: ErrorHandlingSchema.default({ continue_on_error: false, fallback_workflow: null, max_total_retries: 10 }),
  output: OutputSchema.default({ format: 'structured', include_agent_outputs: true, save_to_file: true }),
});

/** A workflow file after zod parsing (defaults applied, graph not yet checked). */
export type WorkflowFile = z.output<typeof WorkflowFileSchema>;
/** What a user may write. */
export type WorkflowFileInput = z.input<typeof WorkflowFileSchema>;
