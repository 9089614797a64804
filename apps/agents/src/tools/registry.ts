/**
 * The tools a `tools` pool (and an agent's tool loop) runs: the built-ins (`http_request`, `write_file`,
 * `read_file`, `list_files`, `render_template`) and
 * the user tools of `FLEET_TOOL_MODULES`.
 *
 * A user tool module exports a tool as its default export, as `tool`, or several as `tools` (an
 * array). `.js`/`.mjs` modules are imported as they are; `.ts`/`.mts` modules through tsx, so no
 * build step is needed.
 *
 * @example
 * // tools/slack.ts
 * import { z } from 'zod';
 * export default {
 *   name: 'slack_post',
 *   parameters: z.object({ channel: z.string(), text: z.string() }),
 *   async handler(p, ctx) { ... return { ok: true }; },
 * };
 */
import { FleetError, NAME_PATTERN } from '@agentfleet/core';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { httpRequestTool } from './http-request.js';
import { renderTemplateTool } from './render-template.js';
import { parameterValidator, type FleetTool } from './tool.js';
import { writeFileTool } from './write-file.js';
import { readFileTool } from './read-file.js';
import { listFilesTool } from './list-files.js';

/** The built-in tools, by name. */
export const BUILTIN_TOOLS: Readonly<Record<string, FleetTool>> = {
  http_request: httpRequestTool,
  write_file: writeFileTool,
  read_file: readFileTool,
  list_files: listFilesTool,
  render_template: renderTemplateTool,
};

/** A tool with its parameter validator, ready to run. */
export interface RegisteredTool {
  tool: FleetTool;
  validate: (params: unknown) => unknown;
  /** `builtin`, or the module path it came from. */
  source: string;
}

/** Tools by name. */
export class ToolRegistry {
  private readonly tools = new Map<string, RegisteredTool>();

  /** @throws FleetError `INVALID_INPUT` for a malformed tool or a name registered twice. */
  add(tool: FleetTool, source = 'builtin'): void {
    const t = tool as Partial<FleetTool> | null;
    if (!t || typeof t !== 'object' || typeof t.name !== 'string' || !NAME_PATTERN.test(t.name)) {
      throw new FleetError('INVALID_INPUT', `${source}: a tool needs a "name" (a letter, then letters, digits, "_" or "-")`);
    }
    if (typeof t.handler !== 'function') throw new FleetError('INVALID_INPUT', `${source}: tool "${t.name}" needs a "handler" function`);
    if (!t.parameters || typeof t.parameters !== 'object') {
      throw new FleetError('INVALID_INPUT', `${source}: tool "${t.name}" needs "parameters" (a zod schema or a JSON Schema object)`);
    }
    const known = this.tools.get(t.name);
    if (known) throw new FleetError('INVALID_INPUT', `${source}: tool "${t.name}" is already registered (by ${known.source}); rename one of them`);
    let validate: (params: unknown) => unknown;
    try {
      validate = parameterValidator(tool);
    } catch (err) {
      throw new FleetError('INVALID_INPUT', `${source}: tool "${t.name}": parameters are not a valid JSON Schema: ${(err as Error).message}`, { cause: err });
    }
    this.tools.set(t.name, { tool, validate, source });
  }

  get(name: string): RegisteredTool | undefined {
    return this.tools.get(name);
  }

  names(): string[] {
    return [...this.tools.keys()].sort();
  }
}

/**
 * Import a user module (tools, roles): `.js`/`.mjs` as they are, `.ts`/`.mts`/`.cts` through tsx.
 *
 * @param setting - the variable that named it (`FLEET_TOOL_MODULES`), for the error message.
 * @throws FleetError `INVALID_INPUT` naming the setting and the path when it cannot be loaded.
 */
export async function importUserModule(path: string, setting: string): Promise<Record<string, unknown>> {
  try {
    if (['.ts', '.mts', '.cts'].includes(extname(path))) {
      const { tsImport } = await import('tsx/esm/api');
      return (await tsImport(pathToFileURL(path).href, import.meta.url)) as Record<string, unknown>;
    }
    return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new FleetError('INVALID_INPUT', `${setting}: cannot load ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Import one user tool module and return the tools it exports. */
async function importToolModule(path: string): Promise<FleetTool[]> {
  const mod = await importUserModule(path, 'FLEET_TOOL_MODULES');
  const found = [mod.default, mod.tool, ...(Array.isArray(mod.tools) ? (mod.tools as unknown[]) : [])].filter((t) => t !== undefined && t !== null);
  // tsx wraps a TypeScript module's default export in another `default`.
  const tools = found.map((t) => (typeof t === 'object' && 'default' in t && !('handler' in t) ? t.default : t));
  if (tools.length === 0) throw new FleetError('INVALID_INPUT', `FLEET_TOOL_MODULES: ${path} exports no tool; export default { name, parameters, handler } (or "tool", or "tools": [...])`);
  return tools as FleetTool[];
}

/**
 * The built-in tools plus the tools of `modules`.
 *
 * @throws FleetError `INVALID_INPUT` naming the module when one cannot be loaded or exports no valid tool.
 */
export async function createToolRegistry(modules: readonly string[] = [], extra: readonly FleetTool[] = []): Promise<ToolRegistry> {
  const registry = new ToolRegistry();
  for (const tool of Object.values(BUILTIN_TOOLS)) registry.add(tool);
  for (const tool of extra) registry.add(tool, 'options');
  for (const path of modules) {
    for (const tool of await importToolModule(path)) registry.add(tool, path);
  }
  return registry;
}
