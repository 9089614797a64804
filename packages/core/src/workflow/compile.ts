import { withClosures } from './graph.js';
import { compileBudget } from './budget.js';
import { compileMcpServers, duplicateServerNames } from './agent-tools.js';
import type { z } from 'zod';
import { FleetError, formatIssues, type ValidationIssue } from '../errors.js';
import { parseExpression, pathsIn } from './condition.js';
import type { AgentSelect, PhaseDefinition, WorkflowDefinition } from './definition.js';
import { ErrorHandlingSchema, OutputSchema, PhaseSchema, StepActionRuleSchema, WorkflowFileSchema, type WorkflowFile } from './schema.js';
import { didYouMean } from '../did-you-mean.js';
import { validateVariableLimits } from '../limits.js';
import { checkTemplateFields, compileTemplateFields } from './template-fields.js';

/** The role (queue `agent-tools`) of the pool that runs tool phases (`fleet agents --roles tools`). */
export const TOOLS_ROLE = 'tools';

/** `planner_agent` → `planner`: both spellings are accepted, the bare role name is canonical. */
export function normalizeRoleName(agent: string): string {
  return agent.endsWith('_agent') && agent.length > '_agent'.length ? agent.slice(0, -'_agent'.length) : agent;
}

/** Render a zod issue path as `phases[2].depends_on[0]`. */
function pathOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** Every field name of the workflow file format, for "did you mean" on an unknown one. */
const KNOWN_FIELDS: readonly string[] = [
  ...new Set([WorkflowFileSchema, PhaseSchema, ErrorHandlingSchema, OutputSchema, StepActionRuleSchema].flatMap((schema) => Object.keys(schema.shape))),
];

/** The value at a zod issue's path in the raw input (undefined when absent). */
function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** What a person calls a JSON value's type: "a string", "a list", "nothing". */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v === 'number' ? 'the number' : 'the boolean'} ${String(v)}`;
  return 'nothing';
}

const EXPECTED_WORDS: Record<string, string> = { number: 'a number', string: 'a string', boolean: 'true or false', array: 'a list', object: 'a mapping', int: 'a whole number' };

/**
 * Every zod issue in words a person writes: one issue per unknown field (its path ends with the
 * field), with the closest known field; a missing field said to be missing; a wrong type with what
 * was given.
 */
function zodIssues(error: z.ZodError, raw: unknown): ValidationIssue[] {
  return error.issues.flatMap((issue): ValidationIssue[] => {
    const path = pathOf(issue.path);
    if (issue.code === 'unrecognized_keys') {
      // The path names the unknown field itself, so a top-level one has a path too.
      return issue.keys.map((k) => ({ path: pathOf([...issue.path, k]), message: `unknown field "${k}"${didYouMean(k, KNOWN_FIELDS)}; remove it or check the spelling` }));
    }
    if (issue.code === 'invalid_type') {
      const value = valueAt(raw, issue.path);
      const field = issue.path[issue.path.length - 1];
      if (value === undefined && typeof field === 'string') return [{ path, message: `"${field}" is required and missing; add it` }];
      const expected = EXPECTED_WORDS[issue.expected] ?? issue.expected;
      return [{ path, message: `must be ${expected}, got ${kindOf(value)}` }];
    }
    return [{ path, message: issue.message }];
  });
}

/**
 * The graph's problems of a file zod refused, so that every problem shows at once: the fields zod
 * refused are dropped (an unknown field, a value of the wrong type in a mapping), and when what is
 * left parses, it is checked like a valid file. Problems at a dropped field's path are left out
 * (the schema's own message says what is wrong there). Nothing when what is left does not parse
 * either (a required field is missing, say).
 */
function graphIssuesDespite(error: z.ZodError, raw: unknown): ValidationIssue[] {
  if (raw === null || typeof raw !== 'object') return [];
  const rest = structuredClone(raw) as Record<PropertyKey, unknown>;
  const dropped: string[] = [];
  for (const issue of error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    for (const path of keys) {
      const parent = valueAt(rest, path.slice(0, -1));
      const last = path[path.length - 1];
      if (last === undefined || parent === null || typeof parent !== 'object' || Array.isArray(parent)) continue;
      delete (parent as Record<PropertyKey, unknown>)[last];
      dropped.push(pathOf(path));
    }
  }
  const reparsed = WorkflowFileSchema.safeParse(rest);
  if (!reparsed.success) return [];
  const atDropped = (path: string) => dropped.some((d) => path === d || path.startsWith(`${d}.`) || path.startsWith(`${d}[`));
  return [...checkWorkflowGraph(reparsed.data), ...checkTemplateFields(reparsed.data)].filter((i) => !atDropped(i.path));
}

/**
 * Check the graph of a parsed workflow file: duplicate phase names, phases whose agent is not listed,
 * unknown or self dependencies, and cycles. Returns every issue found, each naming the phase.
 */
export function checkWorkflowGraph(file: WorkflowFile): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const roles = new Set(file.agents.map(normalizeRoleName));
  const indexByName = new Map<string, number>();
  file.phases.forEach((phase, i) => {
    if (indexByName.has(phase.name)) {
      issues.push({ path: `phases[${i}].name`, message: `duplicate phase name "${phase.name}"; phase names must be unique` });
    } else {
      indexByName.set(phase.name, i);
    }
    const notListed = (agent: string, path: string) => {
      if (!roles.has(normalizeRoleName(agent))) {
        issues.push({
          path,
          message: `phase "${phase.name}": agent "${agent}" is not in the workflow's agents list (${[...roles].join(', ')}); add it to "agents" or pick one of those`,
        });
      }
    };
    const runners = [phase.agent, phase.agent_select, phase.workflow, phase.tool].filter((x) => x !== undefined).length;
    if (phase.type === 'approval') {
      if (runners > 0) issues.push({ path: `phases[${i}]`, message: `phase "${phase.name}": an approval phase has no agent, agent_select, workflow or tool; remove them` });
    } else if (runners === 0) {
      issues.push({ path: `phases[${i}].agent`, message: `phase "${phase.name}": give it an "agent" (or "agent_select", "workflow" to run another workflow, or "tool")` });
    } else if (runners > 1) {
      issues.push({ path: `phases[${i}]`, message: `phase "${phase.name}": use only one of "agent", "agent_select", "workflow" and "tool"` });
    }
    if ((phase.tools !== undefined || phase.max_turns !== undefined) && (phase.tool !== undefined || phase.workflow !== undefined || phase.type === 'approval')) {
      issues.push({ path: `phases[${i}].tools`, message: `phase "${phase.name}": "tools" and "max_turns" belong to an agent phase; remove them` });
    }
    if (phase.input_files !== undefined && (phase.tool !== undefined || phase.workflow !== undefined || phase.type === 'approval')) {
      issues.push({ path: `phases[${i}].input_files`, message: `phase "${phase.name}": "input_files" belongs to an agent phase; remove it` });
    }
    if (phase.parameters !== undefined && phase.tool === undefined) {
      issues.push({ path: `phases[${i}].parameters`, message: `phase "${phase.name}": "parameters" belong to a tool phase; add "tool" or remove them` });
    }
    if (phase.agent !== undefined) notListed(phase.agent, `phases[${i}].agent`);
    const select = phase.agent_select;
    if (select?.type === 'load_balanced') select.agents.forEach((a, j) => notListed(a, `phases[${i}].agent_select.agents[${j}]`));
    if (select?.type === 'based_on_input') {
      select.rules.forEach((r, j) => notListed(r.agent, `phases[${i}].agent_select.rules[${j}].agent`));
      notListed(select.default, `phases[${i}].agent_select.default`);
    }
    if (phase.workflow !== undefined && phase.workflow === file.name) {
      issues.push({ path: `phases[${i}].workflow`, message: `phase "${phase.name}": a workflow cannot run itself as a phase` });
    }
  });
  for (const dup of duplicateServerNames(file.mcp_servers)) {
    issues.push({ path: 'mcp_servers', message: `MCP server "${dup}" is declared twice; give each server its own name` });
  }
  if (file.agents.length === 0 && !file.phases.some((p) => p.tool !== undefined)) {
    issues.push({ path: 'agents', message: 'list at least one agent role' });
  }
  const known = [...indexByName.keys()];
  file.phases.forEach((phase, i) => {
    phase.depends_on.forEach((dep, j) => {
      const target = typeof dep === 'string' ? dep : dep.phase;
      if (target === phase.name) {
        issues.push({ path: `phases[${i}].depends_on[${j}]`, message: `phase "${phase.name}" depends on itself; remove that entry` });
      } else if (!indexByName.has(target)) {
        issues.push({
          path: `phases[${i}].depends_on[${j}]`,
          message: `phase "${phase.name}": depends_on "${target}" is not a phase of this workflow; use one of: ${known.filter((n) => n !== phase.name).join(', ') || '(none)'}`,
        });
      }
    });
  });
  issues.push(...checkReferences(file));
  if (issues.length > 0) return issues;
  const cycle = findCycle(file);
  if (cycle) {
    issues.push({ path: 'phases', message: `dependency cycle: ${cycle.join(' -> ')}; remove one of these depends_on entries` });
  }
  if (file.error_handling.fallback_workflow === file.name) {
    issues.push({ path: 'error_handling.fallback_workflow', message: 'a workflow cannot be its own fallback' });
  }
  return issues;
}

/**
 * Conditions parse, step-action targets exist, and every `{{path}}` in conditions, `input` and
 * `instructions` starts from something that can exist: `requirements`, `errors`, a declared variable,
 * or a phase. A bare `{{name}}` may also be a variable given at run time (`--var name=…`), so only
 * dotted or indexed paths to an unknown name are rejected.
 */
function checkReferences(file: WorkflowFile): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const phases = new Set(file.phases.map((p) => p.name));
  const known = (head: string) => head === 'requirements' || head === 'errors' || Object.hasOwn(file.variables, head) || phases.has(head);
  const checkText = (text: string | undefined, path: string, phaseName: string) => {
    if (text === undefined) return;
    for (const ref of pathsIn(text)) {
      if (ref.rest.length > 0 && !known(ref.head)) {
        issues.push({ path, message: `phase "${phaseName}": {{${ref.head}…}} refers to "${ref.head}", which is not a phase, a declared variable or requirements; use one of: ${[...phases].join(', ')}` });
      }
    }
  };
  const checkCondition = (condition: WorkflowFile['phases'][number]['condition'], path: string, phaseName: string) => {
    if (condition === undefined) return;
    if (typeof condition === 'string') {
      try {
        parseExpression(condition);
      } catch (err) {
        issues.push({ path, message: `phase "${phaseName}": ${(err as Error).message}` });
        return;
      }
      checkText(condition, path, phaseName);
    } else if (condition.type === 'result_contains' && !phases.has(condition.phase)) {
      issues.push({ path: `${path}.phase`, message: `phase "${phaseName}": result_contains refers to unknown phase "${condition.phase}"` });
    }
  };
  file.phases.forEach((phase, i) => {
    checkCondition(phase.condition, `phases[${i}].condition`, phase.name);
    checkText(phase.instructions, `phases[${i}].instructions`, phase.name);
    checkText(phase.input, `phases[${i}].input`, phase.name);
    for (const [path, text] of templateStrings(phase.parameters, `phases[${i}].parameters`)) checkText(text, path, phase.name);
    phase.step_actions.forEach((rule, j) => {
      const at = `phases[${i}].step_actions[${j}]`;
      checkCondition(rule.when, `${at}.when`, phase.name);
      if (rule.action === 'jump' && rule.target === undefined) issues.push({ path: `${at}.target`, message: `phase "${phase.name}": a jump needs a "target" phase` });
      if (rule.target !== undefined && !phases.has(rule.target)) {
        issues.push({ path: `${at}.target`, message: `phase "${phase.name}": step action target "${rule.target}" is not a phase; use one of: ${[...phases].join(', ')}` });
      }
    });
  });
  return issues;
}

/** Every string inside a tool's parameters (nested objects and arrays too), with its path. */
export function templateStrings(value: unknown, path: string): Array<[string, string]> {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => templateStrings(v, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => templateStrings(v, `${path}.${k}`));
  return [];
}

/** Depth-first search for a cycle; returns its phase names (first repeated at the end) or undefined. */
function findCycle(file: WorkflowFile): string[] | undefined {
  const deps = new Map(file.phases.map((p) => [p.name, p.depends_on.map((d) => (typeof d === 'string' ? d : d.phase))]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const s = state.get(name);
    if (s === 'done') return undefined;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of deps.get(name) ?? []) {
      const found = visit(dep);
      if (found) return found;
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const phase of file.phases) {
    const found = visit(phase.name);
    if (found) return found;
  }
  return undefined;
}

/** Stable topological order: file order, except that a phase comes after all its dependencies. */
function topologicalOrder(phases: PhaseDefinition[]): PhaseDefinition[] {
  const done = new Set<string>();
  const out: PhaseDefinition[] = [];
  const remaining = [...phases];
  while (remaining.length > 0) {
    const i = remaining.findIndex((p) => p.dependsOn.every((d) => done.has(d.phase)));
    // checkWorkflowGraph rejected cycles, so some phase is always ready.
    const [next] = remaining.splice(i < 0 ? 0 : i, 1);
    if (!next) break;
    done.add(next.name);
    out.push(next);
  }
  return out;
}

/**
 * Validate a workflow (already parsed from YAML or JSON) and compile it for the scheduler.
 *
 * @param raw - the workflow object, in the file format (snake_case, durations in seconds).
 * @returns the compiled {@link WorkflowDefinition} (durations in ms, role names normalized, phases in
 *   dependency order).
 * @throws FleetError `INVALID_WORKFLOW` listing every problem, one per line, each with its path
 *   (`phases[1].depends_on[0]: phase "design": depends_on "plan" is not a phase ...`); `details.issues`
 *   holds them as `{path, message}`.
 */
export function compileWorkflow(raw: unknown): WorkflowDefinition {
  const parsed = WorkflowFileSchema.safeParse(raw);
  if (!parsed.success) throw invalid([...zodIssues(parsed.error, raw), ...graphIssuesDespite(parsed.error, raw)], raw);
  const file = parsed.data;
  const graphIssues = [...checkWorkflowGraph(file), ...checkTemplateFields(file), ...variableLimitIssues(file.variables)];
  if (graphIssues.length > 0) throw invalid(graphIssues, raw);

  const workflowContinue = file.error_handling.continue_on_error;
  const workflowCache = file.cache;
  const phases: PhaseDefinition[] = file.phases.map((p) => ({
    name: p.name,
    description: p.description ?? '',
    kind: p.type === 'approval' ? 'approval' : p.workflow !== undefined ? 'workflow' : p.tool !== undefined ? 'tool' : 'agent',
    agent: roleOf(p),
    agentSelect: normalizeSelect(p.agent_select),
    workflow: p.workflow,
    ...(p.tool !== undefined ? { tool: p.tool, parameters: p.parameters ?? {} } : {}),
    condition: p.condition,
    input: p.input,
    stepActions: p.step_actions.map((r) => ({ when: r.when, action: r.action, target: r.target, note: r.note, event: r.event })),
    cache: p.cache ?? workflowCache,
    onTimeout: p.on_timeout,
    timeoutMs: Math.round(p.timeout * 1000),
    retries: p.retries,
    retryDelayMs: Math.round(p.retry_delay * 1000),
    dependsOn: p.depends_on.map((d) => (typeof d === 'string' ? { phase: d, optional: false } : { phase: d.phase, optional: d.optional })),
    continueOnError: p.continue_on_error ?? workflowContinue,
    instructions: p.instructions,
    maxIterations: p.max_iterations,
    ...(p.budget ? { budget: compileBudget(p.budget) } : {}),
    ...(p.model !== undefined ? { model: p.model } : {}),
    ...((p.prompt_cache_ttl ?? file.prompt_cache_ttl) ? { promptCacheTtl: p.prompt_cache_ttl ?? file.prompt_cache_ttl } : {}),
    ...((p.mode ?? file.mode) ? { mode: p.mode ?? file.mode } : {}),
    ...((p.batch_timeout ?? file.batch_timeout) !== undefined ? { batchTimeoutMs: Math.round((p.batch_timeout ?? file.batch_timeout ?? 0) * 1000) } : {}),
    ...(p.tools !== undefined && p.tools.length > 0 ? { tools: [...new Set(p.tools)] } : {}),
    ...(p.max_turns !== undefined ? { maxTurns: p.max_turns } : {}),
    ...(p.input_files !== undefined ? { inputFiles: p.input_files } : {}),
  }));
  return {
    name: file.name,
    description: file.description,
    version: file.version,
    agents: [...new Set(file.agents.map(normalizeRoleName))],
    // Each phase's upstream and downstream closures, computed once here.
    phases: withClosures(topologicalOrder(phases)),
    variables: file.variables,
    cacheTtlMs: file.cache_ttl * 1000,
    ...compileTemplateFields(file),
    ...(file.budget ? { budget: compileBudget(file.budget) } : {}),
    ...(file.concurrency ? { concurrency: { key: file.concurrency.key, ...(file.concurrency.limit !== undefined ? { limit: file.concurrency.limit } : {}) } } : {}),
    ...(file.priority !== undefined ? { priority: file.priority } : {}),
    ...(file.mcp_servers.length > 0 ? { mcpServers: compileMcpServers(file.mcp_servers) } : {}),
    errorHandling: {
      continueOnError: workflowContinue,
      fallbackWorkflow: file.error_handling.fallback_workflow,
      maxTotalRetries: file.error_handling.max_total_retries,
    },
    output: {
      format: file.output.format,
      includeAgentOutputs: file.output.include_agent_outputs,
      saveToFile: file.output.save_to_file,
    },
  };
}

type FilePhase = WorkflowFile['phases'][number];

function roleOf(p: FilePhase): string {
  if (p.type === 'approval') return 'approval';
  if (p.tool !== undefined) return TOOLS_ROLE;
  if (p.agent !== undefined) return normalizeRoleName(p.agent);
  if (p.agent_select?.type === 'load_balanced') return normalizeRoleName(p.agent_select.agents[0] as string);
  if (p.agent_select?.type === 'based_on_input') return normalizeRoleName(p.agent_select.default);
  return 'workflow';
}

function normalizeSelect(select: FilePhase['agent_select']): AgentSelect | undefined {
  if (!select) return undefined;
  if (select.type === 'load_balanced') return { type: 'load_balanced', agents: select.agents.map(normalizeRoleName) };
  return { type: 'based_on_input', rules: select.rules.map((r) => ({ contains: r.contains, agent: normalizeRoleName(r.agent) })), default: normalizeRoleName(select.default) };
}

/** The workflow's default variables are stored with every run: they get the limits of a run's variables. */
function variableLimitIssues(variables: Record<string, string>): ValidationIssue[] {
  try {
    validateVariableLimits(variables, 'variables');
    return [];
  } catch (err) {
    if (!(err instanceof FleetError)) throw err;
    return (err.details?.issues as ValidationIssue[] | undefined) ?? [{ path: 'variables', message: err.message }];
  }
}

function invalid(issues: ValidationIssue[], raw: unknown): FleetError {
  const name = typeof raw === 'object' && raw !== null && typeof (raw as { name?: unknown }).name === 'string' ? (raw as { name: string }).name : undefined;
  const head = name ? `workflow "${name}" is not valid` : 'workflow is not valid';
  return new FleetError('INVALID_WORKFLOW', `${head}:\n${formatIssues(issues)}`, { details: { issues } });
}
