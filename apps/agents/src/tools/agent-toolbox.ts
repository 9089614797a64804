/**
 * The tools an agent may call inside its turn (a tool loop), for one attempt of one phase: the
 * built-in tools and the user tools of `FLEET_TOOL_MODULES` (the {@link ToolRegistry} the tools pool
 * uses, with its allow-lists and path rules), and the tools of MCP servers (./mcp-client.ts).
 *
 * Which tools: the role's `tools` and the phase's `tools`; an entry naming an MCP server (of the
 * role's `mcp_servers` or the workflow's) stands for every tool its allow-list lets through. A
 * role's own MCP servers are always connected.
 */
import { FleetError, type LlmToolCall, type LlmToolDefinition, type McpServerSpec } from '@agentfleet/core';
import { z } from 'zod';
import { connectMcpServer, type McpConnection } from './mcp-client.js';
import type { ToolRegistry } from './registry.js';
import type { ToolSettings } from './settings.js';

/** The result of one tool call, as the model receives it (before it is marked as data). */
export interface ToolCallOutcome {
  /** The tool's output as text (JSON for structured outputs), or the error message. */
  content: string;
  isError: boolean;
}

/** The tools of one attempt, ready to call. */
export interface AgentToolbox {
  /** What the model is offered, besides the submit tool. */
  readonly definitions: readonly LlmToolDefinition[];
  /** Whether `name` is an MCP tool (`gen_ai.tool.type` `extension`) rather than a function run here. */
  isExtension(name: string): boolean;
  /**
   * Run one call. Errors of the tool (a refused path, a failed request, input that does not match the
   * tool's parameters) come back as `isError` results, so the model can correct itself; only an abort
   * of `signal` (the phase's timeout or a cancellation) is thrown.
   */
  call(call: LlmToolCall, ctx: { signal: AbortSignal; idempotencyKey: string; timeoutMs: number }): Promise<ToolCallOutcome>;
  /** Close the MCP connections. Never throws. */
  close(): Promise<void>;
}

/** What {@link openAgentToolbox} needs. */
export interface AgentToolboxOptions {
  /** Tool names of the role and the phase (duplicates are fine). */
  names: readonly string[];
  /** The role's own MCP servers (always connected). */
  roleServers: readonly McpServerSpec[];
  /** The workflow's MCP servers (connected when `names` names them). */
  workflowServers: readonly McpServerSpec[];
  registry: ToolRegistry;
  settings: ToolSettings;
  runId: string;
  phase: string;
  signal: AbortSignal;
  /** Bound on connecting to each MCP server, ms. */
  connectTimeoutMs: number;
}

/**
 * Resolve the names, connect the MCP servers, and return the toolbox; `undefined` when there is no
 * tool at all (the turn is then a plain forced call of the submit tool).
 *
 * @throws FleetError `UNKNOWN_TOOL` naming an entry that is neither a tool nor an MCP server, with
 *   what exists; what {@link connectMcpServer} throws (`TOOL_NOT_ALLOWED`, `TOOL_FAILED`).
 */
export async function openAgentToolbox(options: AgentToolboxOptions): Promise<AgentToolbox | undefined> {
  const servers = new Map<string, McpServerSpec>();
  for (const s of options.workflowServers) servers.set(s.name, s);
  const wanted = new Map<string, McpServerSpec>();
  for (const s of options.roleServers) wanted.set(s.name, s);
  const local: string[] = [];
  for (const name of new Set(options.names)) {
    const server = wanted.get(name) ?? servers.get(name);
    if (server) wanted.set(name, server);
    else if (options.registry.get(name)) local.push(name);
    else {
      throw new FleetError(
        'UNKNOWN_TOOL',
        `tools: "${name}" is neither a tool of this agent pool (${options.registry.names().join(', ')}) nor an MCP server of the workflow or role (${[...servers.keys(), ...options.roleServers.map((s) => s.name)].join(', ') || 'none declared'}); register the tool with FLEET_TOOL_MODULES or declare the server in mcp_servers`,
        { details: { tool: name } },
      );
    }
  }
  if (local.length === 0 && wanted.size === 0) return undefined;
  const connections: McpConnection[] = [];
  try {
    for (const spec of wanted.values()) connections.push(await connectMcpServer(spec, options.settings, options.signal, options.connectTimeoutMs));
  } catch (err) {
    await Promise.all(connections.map((c) => c.close()));
    throw err;
  }
  const definitions: LlmToolDefinition[] = local.map((name) => {
    const registered = options.registry.get(name);
    const tool = registered?.tool;
    return { name, description: tool?.description ?? `Tool "${name}".`, inputSchema: toolInputSchema(tool?.parameters) };
  });
  const mcpByName = new Map<string, { connection: McpConnection; name: string }>();
  for (const connection of connections) {
    for (const t of connection.tools) {
      if (mcpByName.has(t.exposedName) || local.includes(t.exposedName)) continue;
      mcpByName.set(t.exposedName, { connection, name: t.name });
      definitions.push({ name: t.exposedName, description: t.description, inputSchema: t.inputSchema });
    }
  }
  return {
    definitions,
    isExtension: (name) => mcpByName.has(name),
    async call(call, ctx) {
      try {
        const mcp = mcpByName.get(call.name);
        if (mcp) return await mcp.connection.call(mcp.name, call.input, ctx.signal, ctx.timeoutMs);
        const registered = options.registry.get(call.name);
        if (!registered || !local.includes(call.name)) return { content: `no tool "${call.name}" is offered in this phase`, isError: true };
        const params = registered.validate(call.input);
        const output: unknown = await registered.tool.handler(params, {
          signal: ctx.signal,
          artifactsDir: options.settings.artifactsDir(options.runId),
          runId: options.runId,
          phase: options.phase,
          settings: options.settings,
          idempotencyKey: ctx.idempotencyKey,
        });
        return { content: typeof output === 'string' ? output : (JSON.stringify(output ?? null) ?? 'null'), isError: false };
      } catch (err) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const message = err instanceof FleetError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
        return { content: message, isError: true };
      }
    },
    async close() {
      await Promise.all(connections.map((c) => c.close()));
    },
  };
}

/** A tool's parameters as the JSON Schema of its input: zod schemas converted, JSON Schemas as they are. */
function toolInputSchema(parameters: unknown): Record<string, unknown> {
  if (parameters && typeof (parameters as { safeParse?: unknown }).safeParse === 'function') {
    const schema = z.toJSONSchema(parameters as z.ZodType, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    delete schema.$schema;
    return schema;
  }
  const { $schema, $id, ...rest } = (parameters ?? { type: 'object' }) as Record<string, unknown>;
  void $schema;
  void $id;
  return rest;
}
