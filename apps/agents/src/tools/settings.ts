/**
 * Settings of the tools pool, parsed once from the environment:
 *
 * - `FLEET_TOOL_ALLOWED_HOSTS`: hosts `http_request` may reach besides loopback, comma-separated:
 *   `api.example.com`, `*.example.com` (any subdomain), `api.example.com:8443` (that port only), or
 *   `*` (any host). @defaultValue none: loopback only
 * - `FLEET_ARTIFACTS_DIR`: each run's artifacts directory, where `write_file` writes; `<run_id>` is
 *   replaced by the run id (appended as a subdirectory when absent). @defaultValue `runs/<run_id>`
 * - `FLEET_TOOL_MODULES`: user tool modules (.js, .mjs or .ts), comma-separated paths.
 * - `FLEET_MCP_ALLOWED_COMMANDS`: executables a stdio MCP server of a workflow or role may be started
 *   with (`node`, `npx`, `/opt/mcp/files-server`), comma-separated, or `*` (any). Streamable HTTP
 *   servers follow `FLEET_TOOL_ALLOWED_HOSTS` instead. @defaultValue none: no stdio server starts
 */
import { resolve } from 'node:path';
import { FleetError } from '@agentfleet/core';

export interface ToolSettings {
  /** Host patterns `http_request` may reach besides loopback (lowercase). */
  allowedHosts: string[];
  /** The artifacts directory of a run (absolute). */
  artifactsDir: (runId: string) => string;
  /** Absolute paths of user tool modules. */
  modules: string[];
  /** Executables stdio MCP servers may be started with (`*`: any). @defaultValue [] */
  mcpCommands?: string[] | undefined;
}

const HOST_PATTERN = /^(\*|(\*\.)?[a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/;

/**
 * @param env - the environment. @defaultValue `process.env`
 * @param cwd - base of relative paths. @defaultValue `process.cwd()`
 * @throws FleetError `INVALID_INPUT` naming the variable and the bad entry.
 */
export function loadToolSettings(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ToolSettings {
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const allowedHosts = list(env.FLEET_TOOL_ALLOWED_HOSTS).map((h) => h.toLowerCase());
  for (const h of allowedHosts) {
    if (!HOST_PATTERN.test(h)) throw new FleetError('INVALID_INPUT', `FLEET_TOOL_ALLOWED_HOSTS: "${h}" is not a host, *.domain, host:port or *`);
  }
  const dir = env.FLEET_ARTIFACTS_DIR?.trim() || 'runs/<run_id>';
  return {
    allowedHosts,
    artifactsDir: (runId) => resolve(cwd, dir.includes('<run_id>') ? dir.replaceAll('<run_id>', runId) : `${dir}/${runId}`),
    modules: list(env.FLEET_TOOL_MODULES).map((p) => resolve(cwd, p)),
    mcpCommands: list(env.FLEET_MCP_ALLOWED_COMMANDS),
  };
}
