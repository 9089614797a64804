/**
 * Tool use inside an agent phase: which tools a role or a phase may call before it submits its
 * output (`tools`), the MCP servers that provide some of them (`mcp_servers`), and how many model
 * turns the tool loop may take (`max_turns`). Shared by workflow files and role files.
 *
 * A `tools` entry names a built-in tool (`read_file`, `list_files`, `write_file`, `http_request`), a
 * user tool of `FLEET_TOOL_MODULES`, or an MCP server of `mcp_servers` (all the tools that server's
 * own `tools` allow-list lets through). The model sees an MCP tool as `mcp__<server>__<tool>`.
 *
 * @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports
 */
import { z } from 'zod';

/** Tool and MCP server names: a letter, then letters, digits, `_` or `-` (at most 48, so `mcp__<server>__<tool>` fits 64). */
export const AGENT_TOOL_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,47}$/;

/** `max_turns` default: model calls one agent turn may make, the submit call and repairs included. */
export const DEFAULT_MAX_TURNS = 10;

const toolName = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(AGENT_TOOL_NAME_PATTERN, `${what} must start with a letter and use only letters, digits, "_" or "-" (at most 48)`);

/**
 * One MCP server: a stdio `command` the agent worker starts (with `args`, `env`, `cwd`), or a
 * streamable HTTP `url`. `tools` is the allow-list of its tool names the model may call (all of
 * them when absent).
 */
export const McpServerSchema = z
  .strictObject({
    name: toolName('mcp_servers[].name'),
    /** Executable of a stdio server, e.g. `npx` or `node`; it must be allowed by FLEET_MCP_ALLOWED_COMMANDS. */
    command: z.string().min(1, 'mcp_servers[].command must not be empty').optional(),
    args: z.array(z.string()).default([]),
    /** Extra environment of the stdio server (on top of a minimal safe environment). */
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().min(1).optional(),
    /** URL of a streamable HTTP server, e.g. `http://127.0.0.1:8080/mcp`; its host must be allowed like `http_request`'s. */
    url: z.url({ protocol: /^https?$/, error: 'mcp_servers[].url must be an http:// or https:// URL' }).optional(),
    /** HTTP headers sent to a streamable HTTP server (e.g. `Authorization`). */
    headers: z.record(z.string(), z.string()).default({}),
    /** The server's tools the model may call; all of them when absent. */
    tools: z.array(z.string().min(1)).optional(),
  })
  .refine((s) => (s.command === undefined) !== (s.url === undefined), {
    message: 'an MCP server needs exactly one of "command" (stdio) and "url" (streamable HTTP)',
  });
export type McpServerFile = z.output<typeof McpServerSchema>;

/** An MCP server as the agent worker connects to it (compiled: defaults filled in). */
export interface McpServerSpec {
  name: string;
  command?: string | undefined;
  args: string[];
  env: Record<string, string>;
  cwd?: string | undefined;
  url?: string | undefined;
  headers: Record<string, string>;
  /** Allow-list of tool names; undefined allows every tool of the server. */
  tools?: string[] | undefined;
}

/** The `tools` field of a phase or a role. */
export const AgentToolsSchema = z.array(toolName('tools entry')).max(64, 'at most 64 tools');
/** The `mcp_servers` field of a workflow or a role. */
export const McpServersSchema = z.array(McpServerSchema).max(16, 'at most 16 MCP servers');
/**
 * The `input_files` field of an agent phase: how the files of its inputs (outputs shaped like the
 * coder's, `files: [{path, content}]`) reach the model. `inline`: their content in the prompt;
 * `reference`: the prompt names them (path and size), and the phase gets `list_files` and
 * `read_file` to read the ones it needs; `auto`: `reference` when their content is larger than
 * `FLEET_INPUT_FILES_INLINE_MAX_BYTES`, else `inline`.
 */
export const InputFilesSchema = z.enum(['auto', 'inline', 'reference'], { error: 'input_files must be "auto", "inline" or "reference"' });
export type InputFilesMode = z.output<typeof InputFilesSchema>;

/** `FLEET_INPUT_FILES_INLINE_MAX_BYTES` default: the most bytes of input files an `input_files: auto` phase gets inline. */
export const DEFAULT_INPUT_FILES_INLINE_MAX_BYTES = 49_152;

/** The `max_turns` field of a phase or a role. */
export const MaxTurnsSchema = z.number().int().min(1, 'max_turns must be at least 1').max(200, 'max_turns is at most 200');

/** Compile the servers of a file: defaults filled in, fields that are absent left out. */
export function compileMcpServers(servers: readonly McpServerFile[]): McpServerSpec[] {
  return servers.map((s) => ({
    name: s.name,
    ...(s.command !== undefined ? { command: s.command } : {}),
    args: s.args,
    env: s.env,
    ...(s.cwd !== undefined ? { cwd: s.cwd } : {}),
    ...(s.url !== undefined ? { url: s.url } : {}),
    headers: s.headers,
    ...(s.tools !== undefined ? { tools: s.tools } : {}),
  }));
}

/** Names that duplicate within a list of servers, for a validation message. */
export function duplicateServerNames(servers: readonly { name: string }[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const s of servers) (seen.has(s.name) ? dup : seen).add(s.name);
  return [...dup];
}
