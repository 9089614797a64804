/**
 * The MCP client of an agent's tool loop, through the official `@modelcontextprotocol/sdk`: one
 * connection per server and attempt, to a stdio server the worker starts (`command`) or a streamable
 * HTTP server (`url`). The server's tools (those its `tools` allow-list lets through) are offered to
 * the model as `mcp__<server>__<tool>`.
 *
 * Allow-lists: a stdio `command` must be listed in `FLEET_MCP_ALLOWED_COMMANDS` (or that setting is
 * `*`), a `url`'s host must be loopback or in `FLEET_TOOL_ALLOWED_HOSTS`, as for `http_request`;
 * anything else is refused with `TOOL_NOT_ALLOWED` naming the setting.
 *
 * @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports
 * @see https://modelcontextprotocol.io/specification/2025-06-18/server/tools
 */
import { FleetError, type McpServerSpec } from '@agentfleet/core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { basename } from 'node:path';
import { checkTarget } from './http-request.js';
import type { ToolSettings } from './settings.js';

/** One tool of a connected MCP server. */
export interface McpTool {
  /** The name the model sees: `mcp__<server>__<tool>` (characters outside `[A-Za-z0-9_-]` become `_`, at most 64). */
  exposedName: string;
  /** The tool's name on its server. */
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

/** What a call of an MCP tool returned: its text content, and whether the server flagged it an error. */
export interface McpCallResult {
  content: string;
  isError: boolean;
}

/** A connected MCP server. */
export interface McpConnection {
  readonly server: string;
  readonly tools: readonly McpTool[];
  /**
   * Call a tool by its name on the server.
   * @param timeoutMs - how long to wait for the result, ms.
   * @throws what the SDK throws (a lost connection, a timeout, an abort): the caller turns it into an error result.
   */
  call(name: string, input: unknown, signal: AbortSignal, timeoutMs: number): Promise<McpCallResult>;
  /** Close the connection (a stdio server's process is ended). Never throws. */
  close(): Promise<void>;
}

/** The name an MCP tool is offered to the model under. */
export function exposedToolName(server: string, tool: string): string {
  return `mcp__${server}__${tool}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

/** Refuse a server the settings do not allow, naming the setting to change. */
export async function checkServerAllowed(spec: McpServerSpec, settings: ToolSettings): Promise<void> {
  if (spec.command !== undefined) {
    const allowed = settings.mcpCommands ?? [];
    if (!allowed.includes('*') && !allowed.includes(spec.command) && !allowed.includes(basename(spec.command))) {
      throw new FleetError(
        'TOOL_NOT_ALLOWED',
        `MCP server "${spec.name}": command "${spec.command}" is not allowed; add it to FLEET_MCP_ALLOWED_COMMANDS (comma-separated, or *) on the agent pool to let workflows and roles start it`,
        { details: { server: spec.name, command: spec.command, allowed_commands: allowed } },
      );
    }
    return;
  }
  const url = new URL(spec.url ?? '');
  // The same rule as http_request: an allowed host, and a host on this machine or a private network
  // only when an entry names it.
  try {
    await checkTarget(url, settings.allowedHosts);
  } catch (err) {
    if (!(err instanceof FleetError)) throw err;
    throw new FleetError('TOOL_NOT_ALLOWED', `MCP server "${spec.name}": ${err.message.replace(/^http_request: /, '')}`, {
      details: { server: spec.name, host: url.host, ...(err.details ?? {}) },
    });
  }
}

/**
 * Connect to one MCP server and list its allowed tools.
 *
 * @param timeoutMs - bound on connecting and listing, ms.
 * @throws FleetError `TOOL_NOT_ALLOWED` (see {@link checkServerAllowed}); `TOOL_FAILED` (retryable)
 *   when the server cannot be started or reached, or its tool list cannot be read;
 *   `UNKNOWN_TOOL` when the allow-list names a tool the server does not have.
 */
export async function connectMcpServer(spec: McpServerSpec, settings: ToolSettings, signal: AbortSignal, timeoutMs: number): Promise<McpConnection> {
  await checkServerAllowed(spec, settings);
  const transport: Transport =
    spec.command !== undefined
      ? new StdioClientTransport({
          command: spec.command,
          args: spec.args,
          // A minimal environment (PATH, HOME, …) plus the server's own: the worker's secrets stay out.
          env: { ...getDefaultEnvironment(), ...spec.env },
          ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
          stderr: 'inherit',
        })
      : new StreamableHTTPClientTransport(new URL(spec.url ?? ''), { requestInit: { headers: spec.headers } });
  const client = new Client({ name: 'agentfleet', version: '0.1.0' });
  const where = spec.command !== undefined ? `command "${spec.command}"` : `url ${spec.url ?? ''}`;
  let listed: Awaited<ReturnType<Client['listTools']>>['tools'] = [];
  try {
    await client.connect(transport, { signal, timeout: timeoutMs });
    for (let cursor: string | undefined, pages = 0; pages < 100; pages++) {
      const page = await client.listTools(cursor === undefined ? {} : { cursor }, { signal, timeout: timeoutMs });
      listed = [...listed, ...page.tools];
      cursor = page.nextCursor;
      if (cursor === undefined) break;
    }
  } catch (err) {
    await client.close().catch(() => undefined);
    if (signal.aborted) throw signal.reason;
    throw new FleetError('TOOL_FAILED', `MCP server "${spec.name}" (${where}) could not be reached or listed its tools: ${(err as Error).message}`, {
      cause: err,
      details: { server: spec.name },
    });
  }
  const allow = spec.tools;
  if (allow) {
    const missing = allow.filter((name) => !listed.some((t) => t.name === name));
    if (missing.length > 0) {
      await client.close().catch(() => undefined);
      throw new FleetError('UNKNOWN_TOOL', `MCP server "${spec.name}" has no tool ${missing.map((m) => `"${m}"`).join(', ')}; its tools: ${listed.map((t) => t.name).join(', ') || '(none)'}. Fix mcp_servers[].tools`, {
        details: { server: spec.name, missing },
      });
    }
  }
  const tools: McpTool[] = listed
    .filter((t) => !allow || allow.includes(t.name))
    .map((t) => ({
      exposedName: exposedToolName(spec.name, t.name),
      name: t.name,
      description: t.description ?? t.title ?? `Tool "${t.name}" of MCP server "${spec.name}".`,
      inputSchema: t.inputSchema,
    }));
  return {
    server: spec.name,
    tools,
    async call(name, input, callSignal, callTimeoutMs) {
      const args = typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
      const result = await client.callTool({ name, arguments: args }, undefined, { signal: callSignal, timeout: callTimeoutMs });
      const content = Array.isArray(result.content) ? (result.content as Array<Record<string, unknown>>) : [];
      const parts = content.map((c) => (c.type === 'text' && typeof c.text === 'string' ? c.text : JSON.stringify(c)));
      if (parts.length === 0 && result.structuredContent !== undefined) parts.push(JSON.stringify(result.structuredContent));
      return { content: parts.join('\n'), isError: result.isError === true };
    },
    async close() {
      await client.close().catch(() => undefined);
    },
  };
}
