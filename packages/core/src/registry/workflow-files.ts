/**
 * Workflow files on disk: a file by path, and the built-in workflows shipped with
 * `@agentfleet/core` (its `workflows/` folder), read, parsed (../workflow/parse.ts) and compiled.
 */
import { readFile, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FleetError } from '../errors.js';
import { didYouMean } from '../did-you-mean.js';
import { compileWorkflow } from '../workflow/compile.js';
import type { WorkflowDefinition } from '../workflow/definition.js';
import { parseWorkflowText } from '../workflow/parse.js';

/** Folder of the built-in workflow templates shipped with `@agentfleet/core` (YAML). */
export const BUILTIN_WORKFLOWS_DIR = fileURLToPath(new URL('../../workflows/', import.meta.url));

/**
 * Read, parse and compile a workflow file (`.yaml`, `.yml` or `.json`).
 *
 * @throws FleetError `INVALID_WORKFLOW` when the file cannot be read, parsed or validated; the message
 *   starts with the path.
 */
export async function loadWorkflowFile(path: string): Promise<WorkflowDefinition> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new FleetError('INVALID_WORKFLOW', `cannot read workflow file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return compileWorkflow(parseWorkflowText(text, path));
  } catch (err) {
    if (err instanceof FleetError && !err.message.startsWith(path)) {
      throw new FleetError(err.code, `${path}: ${err.message}`, { ...(err.details ? { details: err.details } : {}), cause: err });
    }
    throw err;
  }
}

/** Names of the built-in workflows (file names without extension). */
export async function listBuiltinWorkflows(): Promise<string[]> {
  const entries = await readdir(BUILTIN_WORKFLOWS_DIR);
  return entries.filter((f) => ['.yaml', '.yml', '.json'].includes(extname(f))).map((f) => f.slice(0, -extname(f).length)).sort();
}

/**
 * Load a built-in workflow by name, e.g. `software-delivery`.
 *
 * @throws FleetError `WORKFLOW_NOT_FOUND` naming the built-in workflows when there is none by that name.
 */
export async function loadBuiltinWorkflow(name: string): Promise<WorkflowDefinition> {
  const names = await listBuiltinWorkflows();
  if (!names.includes(name)) {
    throw new FleetError('WORKFLOW_NOT_FOUND', `no built-in workflow "${name}"${didYouMean(name, names)}; built-in workflows: ${names.join(', ')}; or pass a path to a .yaml/.json file`);
  }
  for (const ext of ['.yaml', '.yml', '.json']) {
    try {
      return await loadWorkflowFile(join(BUILTIN_WORKFLOWS_DIR, name + ext));
    } catch (err) {
      if (err instanceof FleetError && err.message.startsWith('cannot read')) continue;
      throw err;
    }
  }
  throw new FleetError('WORKFLOW_NOT_FOUND', `built-in workflow "${name}" could not be read`);
}

/**
 * Resolve what a user typed after `--workflow`: a path to a file when it ends in .yaml/.yml/.json
 * (or contains a path separator), a built-in workflow name otherwise.
 */
export async function resolveWorkflow(nameOrPath: string): Promise<WorkflowDefinition> {
  const looksLikePath = /\.(ya?ml|json)$/i.test(nameOrPath) || nameOrPath.includes('/') || nameOrPath.includes('\\');
  return looksLikePath ? loadWorkflowFile(nameOrPath) : loadBuiltinWorkflow(nameOrPath);
}
