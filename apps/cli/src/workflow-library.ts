/**
 * One library for `fleet run --workflow`, `fleet workflows show|validate`: a path names a file; a
 * name is a registered template (`fleet workflows add`, the HTTP API) or a built-in workflow.
 */
import { createToolRegistry, loadToolSettings, type AgentRole } from '@agentfleet/agents';
import { FleetError, TOOLS_ROLE, TemplateRegistry, createRedis, didYouMean, listBuiltinWorkflows, loadConfig, pingRedis, resolveWorkflow, type WorkflowDefinition } from '@agentfleet/core';
import { resolveRoles } from './shared.js';

type Redis = ReturnType<typeof createRedis>;

/** Whether `ref` names a file rather than a workflow in the library. */
export function isWorkflowPath(ref: string): boolean {
  return /\.(ya?ml|json)$/i.test(ref) || ref.includes('/') || ref.includes('\\');
}

/**
 * Resolve `ref` (a file, a registered template, a built-in workflow).
 *
 * @param registry - the templates registered in Redis; without it only files and built-ins resolve.
 * @throws FleetError `WORKFLOW_NOT_FOUND` naming the workflows there are (and the closest name);
 *   `INVALID_WORKFLOW` for a file that does not validate.
 */
export async function resolveLibraryWorkflow(ref: string, registry?: { redis: Redis; prefix: string }): Promise<WorkflowDefinition> {
  if (isWorkflowPath(ref) || !registry) return resolveWorkflow(ref);
  const templates = new TemplateRegistry(registry.redis, registry.prefix);
  try {
    return await templates.resolve(ref);
  } catch (err) {
    throw await libraryNotFound(err, ref, templates);
  }
}

/**
 * `err` as thrown, unless it says that no template is named `ref`: then a `WORKFLOW_NOT_FOUND`
 * naming the closest workflow, the built-ins and the registered templates (the CLI's wording, not
 * the HTTP API's).
 */
export async function libraryNotFound(err: unknown, ref: string, templates: TemplateRegistry): Promise<unknown> {
  if (!(err instanceof FleetError) || err.code !== 'WORKFLOW_NOT_FOUND' || !err.message.startsWith('no workflow template')) return err;
  const builtins = await listBuiltinWorkflows();
  const registered = (await templates.list({ limit: 1000 })).items.map((t) => t.name).filter((n) => !builtins.includes(n));
  return new FleetError(
    'WORKFLOW_NOT_FOUND',
    `no workflow "${ref}"${didYouMean(ref, [...builtins, ...registered])}; built-in workflows: ${builtins.join(', ')}` +
      (registered.length > 0 ? `; registered templates: ${registered.join(', ')}` : '') +
      '; or pass a path to a .yaml/.json file',
  );
}

/** What a run of a workflow can reach, and so what a process running it alone must serve. */
export interface Reach {
  /** The workflow and every workflow it can start: child-workflow phases, `fallback_workflow`, a `workflow` end action. */
  workflows: WorkflowDefinition[];
  /** Every agent role of those workflows (without `tools`). */
  roles: string[];
  /** Whether any of them has a tool phase (the `tools` pool is needed). */
  tools: boolean;
}

/**
 * Walk the workflows `root` can start, resolving each by name once.
 *
 * @throws what `resolveByName` throws for a workflow that cannot be found.
 */
export async function reachOf(root: WorkflowDefinition, resolveByName: (name: string) => Promise<WorkflowDefinition>): Promise<Reach> {
  const seen = new Map<string, WorkflowDefinition>([[root.name, root]]);
  const todo = [root];
  for (let wf = todo.pop(); wf; wf = todo.pop()) {
    const next = [
      ...wf.phases.flatMap((p) => (p.kind === 'workflow' && p.workflow ? [p.workflow] : [])),
      ...(wf.errorHandling.fallbackWorkflow ? [wf.errorHandling.fallbackWorkflow] : []),
      ...(wf.endAction?.type === 'workflow' && wf.endAction.target ? [wf.endAction.target] : []),
    ];
    for (const name of next) {
      if (seen.has(name)) continue;
      const found = await resolveByName(name);
      seen.set(name, found);
      todo.push(found);
    }
  }
  const workflows = [...seen.values()];
  const roles = [...new Set(workflows.flatMap((w) => w.agents))].filter((r) => r !== TOOLS_ROLE);
  return { workflows, roles, tools: workflows.some((w) => w.phases.some((p) => p.kind === 'tool')) };
}

/**
 * Check what `fleet run` needs of a workflow beyond its schema, reporting every problem at once:
 * the workflows it starts (child phases, fallback, a `workflow` end action) exist, every agent role
 * of them resolves (built-in, `FLEET_ROLE_MODULES`, `fleet roles add`), and every tool phase names a
 * tool the tools pool has (built-in or `FLEET_TOOL_MODULES`).
 *
 * @param library - Redis with the registered templates and roles; without it only built-ins count.
 * @returns what the run can reach, and its roles resolved (`agentRoles`).
 * @throws FleetError `INVALID_WORKFLOW` listing every problem, one per line.
 */
export async function checkRunnable(workflow: WorkflowDefinition, library?: { redis: Redis; prefix: string }): Promise<Reach & { agentRoles: AgentRole[] }> {
  const problems: string[] = [];
  const missing = new Set<string>();
  const reach = await reachOf(workflow, async (name) => {
    try {
      return await resolveLibraryWorkflow(name, library);
    } catch (err) {
      if (!(err instanceof FleetError) || err.code !== 'WORKFLOW_NOT_FOUND') throw err;
      missing.add(name);
      problems.push(`workflow "${name}" (started by ${workflow.name}): ${err.message}`);
      // Nothing to walk into: an empty stand-in keeps the walk going so every problem is listed.
      return { ...workflow, name, agents: [], phases: [], errorHandling: { ...workflow.errorHandling, fallbackWorkflow: null }, endAction: undefined };
    }
  });
  // Once for all (role modules load once); one by one only to list every unknown role.
  let roles: AgentRole[] = [];
  try {
    roles = await resolveRoles(reach.roles, library);
  } catch (err) {
    if (!(err instanceof FleetError)) throw err;
    for (const role of reach.roles) {
      try {
        await resolveRoles([role], library);
      } catch (one) {
        if (!(one instanceof FleetError)) throw one;
        problems.push(one.message);
      }
    }
  }
  const toolPhases = reach.workflows.flatMap((w) => w.phases.filter((p) => p.kind === 'tool' && p.tool).map((p) => ({ workflow: w.name, phase: p.name, tool: p.tool as string })));
  if (toolPhases.length > 0) {
    const tools = await createToolRegistry(loadToolSettings().modules);
    for (const t of toolPhases) {
      if (tools.get(t.tool)) continue;
      problems.push(`phases.${t.phase}.tool: no tool "${t.tool}"${didYouMean(t.tool, tools.names())}; tools: ${tools.names().join(', ')}; add one with FLEET_TOOL_MODULES`);
    }
  }
  if (problems.length > 0) {
    throw new FleetError('INVALID_WORKFLOW', `workflow ${workflow.name} cannot run:\n${problems.map((p) => `- ${p}`).join('\n')}`);
  }
  return { ...reach, workflows: reach.workflows.filter((w) => !missing.has(w.name)), agentRoles: roles };
}

/**
 * `fleet workflows validate`: resolve `ref` and {@link checkRunnable} it against the configured
 * fleet's registry (templates, roles) when Redis answers, else against the built-ins alone.
 *
 * @throws FleetError `INVALID_WORKFLOW` / `WORKFLOW_NOT_FOUND` with every problem.
 */
export async function validateWorkflowRef(ref: string): Promise<WorkflowDefinition> {
  const config = loadConfig();
  const reachable = await pingRedis(config.redisUrl, 1500);
  const redis = reachable.ok ? createRedis(config.redisUrl, { name: 'fleet-validate' }) : undefined;
  try {
    const library = redis ? { redis, prefix: config.queuePrefix } : undefined;
    const wf = await resolveLibraryWorkflow(ref, library);
    await checkRunnable(wf, library);
    return wf;
  } finally {
    redis?.disconnect();
  }
}
