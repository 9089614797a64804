import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

/** See ./mcp-files-server.mjs. */
export function filesMcpServer(files: Record<string, string>, onCall: (tool: string, args: unknown) => void, nextTicket: () => number): McpServer;
