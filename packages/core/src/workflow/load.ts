import { readFile, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { FleetError } from '../errors.js';
import { didYouMean } from '../did-you-mean.js';
import { compileWorkflow } from './compile.js';
import type { WorkflowDefinition } from './definition.js';

/** Folder of the built-in workflow templates shipped with `@agentfleet/core` (YAML). */
export const BUILTIN_WORKFLOWS_DIR = fileURLToPath(new URL('../../workflows/', import.meta.url));

/**
 * Parse workflow text. JSON is tried when the text starts with `{`, YAML otherwise (YAML 1.2 is a
 * superset of JSON, so either parser accepts JSON).
 *
 * @param source - where the text came from, for error messages (a path or `request body`).
 * @throws FleetError `INVALID_WORKFLOW` with the line and column of a syntax error.
 */
export function parseWorkflowText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    if (err instanceof RangeError || (err instanceof Error && err.message.includes('Maximum call stack size exceeded'))) {
      // Hostile input: nesting deep enough to exhaust the parser's stack.
      throw new FleetError('INVALID_WORKFLOW', `${source}: nested too deeply to parse; a workflow needs only a few levels of nesting`, { cause: err });
    }
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new FleetError('INVALID_WORKFLOW', `${source}: not valid YAML or JSON${where}: ${message}`, { cause: err });
  }
}

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
