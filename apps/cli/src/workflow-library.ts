/**
 * One library for `fleet run --workflow`, `fleet workflows show|validate`: a path names a file; a
 * name is a registered template (`fleet workflows add`, the HTTP API) or a built-in workflow.
 */
import { FleetError, TOOLS_ROLE, TemplateRegistry, didYouMean, listBuiltinWorkflows, resolveWorkflow, type WorkflowDefinition, type createRedis } from '@agentfleet/core';

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
    if (!(err instanceof FleetError) || err.code !== 'WORKFLOW_NOT_FOUND' || !err.message.startsWith('no workflow template')) throw err;
    const builtins = await listBuiltinWorkflows();
    const registered = (await templates.list({ limit: 1000 })).items.map((t) => t.name).filter((n) => !builtins.includes(n));
    throw new FleetError(
      'WORKFLOW_NOT_FOUND',
      `no workflow "${ref}"${didYouMean(ref, [...builtins, ...registered])}; built-in workflows: ${builtins.join(', ')}` +
        (registered.length > 0 ? `; registered templates: ${registered.join(', ')}` : '') +
        '; or pass a path to a .yaml/.json file',
    );
  }
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
