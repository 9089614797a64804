/**
 * The compiled workflow: what the scheduler and the workers run. Durations are in milliseconds here
 * (the file says seconds); agent names are bare role names (`planner`, never `planner_agent`); every
 * default is filled in and every phase's `continue_on_error` is resolved against the workflow's.
 *
 * A run stores the definition it started with, so editing a workflow never changes a run in flight.
 */
export interface PhaseDependency {
  phase: string;
  /** When true the dependent runs even if this dependency failed, and sees its error in the context. */
  optional: boolean;
}

export interface PhaseDefinition {
  name: string;
  description: string;
  /** Agent role (queue) that runs the phase. */
  agent: string;
  /** Per-attempt timeout, ms. */
  timeoutMs: number;
  /** Further attempts after a transient failure. */
  retries: number;
  /** Delay before the first retry, ms; exponential with jitter after that. */
  retryDelayMs: number;
  dependsOn: PhaseDependency[];
  /** Resolved: the phase's own setting, else the workflow's. */
  continueOnError: boolean;
  instructions: string | undefined;
  maxIterations: number;
}

export interface WorkflowDefinition {
  name: string;
  description: string;
  version: string;
  agents: string[];
  /** In file order, which is also a valid topological order after compilation. */
  phases: PhaseDefinition[];
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
